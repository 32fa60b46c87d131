"""The optax step, truncated BPTT with resets, checkpoints and exact resumption."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

from rnn_jax._src.train import checkpoint as ckpt
from rnn_jax._src.train.models import build_model
from rnn_jax._src.train.step import (init_state, make_optimizer, make_train_step,
                                     reset_carry, tbptt_loss)

V, H, B = 7, 6, 3


@pytest.fixture(scope="module")
def lstm_model():
    model = build_model(dict(cell="lstm", input_size=V, hidden=H, output_size=V, tokens=True))
    return model, model.init(jax.random.PRNGKey(0))


def _xent(logits, targets):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))


def test_make_optimizer_clips_elementwise_and_by_norm():
    g = {"a": jnp.array([10.0, -0.5]), "b": jnp.array([3.0])}
    p = jax.tree.map(jnp.zeros_like, g)
    opt = make_optimizer("sgd", 1.0, clip_value=2.0)
    u, _ = opt.update(g, opt.init(p), p)
    np.testing.assert_allclose(u["a"], [-2.0, 0.5])
    opt = make_optimizer("sgd", 1.0, clip_norm=1.0)
    u, _ = opt.update(g, opt.init(p), p)
    assert float(optax.tree.norm(u)) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError):
        make_optimizer("nope")


def test_resets_restart_the_state(lstm_model):
    model, params = lstm_model
    xs = jax.random.randint(jax.random.PRNGKey(1), (B, 10), 0, V)
    resets = jnp.zeros((B, 10), bool).at[1, 4].set(True)
    carry0 = jax.tree.map(lambda z: z + 0.3, model.initial_carry((B,)))
    _, ys = model.apply(params, xs, carry0, resets)
    _, ys_plain = model.apply(params, xs, carry0)
    np.testing.assert_allclose(ys[0], ys_plain[0], rtol=1e-6)       # rows without a reset
    _, tail = model.apply(params, xs[1:2, 4:])                        # fresh state from t = 4
    np.testing.assert_allclose(ys[1, 4:], tail[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(ys[1, 4:], ys_plain[1, 4:])
    c = reset_carry(jnp.ones((2, 3)), jnp.zeros((2, 3)), jnp.array([True, False]))
    np.testing.assert_array_equal(c, [[0, 0, 0], [1, 1, 1]])


def test_truncated_bptt_gradient_matches_stop_gradient_reference(lstm_model):
    model, params = lstm_model
    L, n_chunks = 3, 3
    toks = jax.random.randint(jax.random.PRNGKey(2), (B, L * n_chunks + 1), 1, V)
    toks = toks.at[2, 4].set(0)   # a document boundary inside chunk 1
    loss_fn = tbptt_loss(model.apply, _xent)

    # Chunk by chunk, as the training loop does, with the params held fixed.
    carry, total = model.initial_carry((B,)), None
    chunk_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    for c in range(n_chunks):
        x, y = toks[:, c * L:(c + 1) * L], toks[:, c * L + 1:(c + 1) * L + 1]
        (_, (carry, _)), g = chunk_grad(params, (x, y, x == 0), carry, None)
        total = g if total is None else jax.tree.map(jnp.add, total, g)

    # Reference: one step at a time with cell.step, stop_gradient on the carry at each chunk
    # boundary, zero carry after the separator; jax.grad of the summed chunk losses.
    def reference(params, stop):
        h = model.initial_carry((B,))
        zeros, loss = h, 0.0
        for t in range(L * n_chunks):
            if stop and t % L == 0:
                h = jax.lax.stop_gradient(h)
            h = reset_carry(h, zeros, toks[:, t] == 0)
            x = jax.nn.one_hot(toks[:, t], V)
            h, out = model.cell.step(params.cell, h, x)
            logits = model.readout.apply(params.readout, out)
            loss += jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
                logits, toks[:, t + 1])) / L
        return loss

    grad_ref = jax.jit(jax.grad(reference), static_argnums=1)
    want = grad_ref(params, True)
    for a, b in zip(jax.tree.leaves(total), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)
    full = grad_ref(params, False)   # untruncated BPTT differs
    assert not np.allclose(full.cell.w_hh, want.cell.w_hh, rtol=1e-3, atol=1e-6)


def test_tiny_training_run_decreases_loss(lstm_model):
    model, params = lstm_model
    toks = jnp.tile(jnp.arange(1, V), (B, 4))[:, :13]   # a periodic stream
    opt = make_optimizer("adam", 3e-2, clip_norm=1.0)
    step = make_train_step(tbptt_loss(model.apply, _xent), opt)
    state = init_state(params, opt, jax.random.PRNGKey(0), model.initial_carry((B,)))
    batch = (toks[:, :12], toks[:, 1:13], jnp.zeros((B, 12), bool))
    losses = []
    for _ in range(60):
        state, m = step(state, batch)
        losses.append(float(m["loss"]))
    assert losses[-1] < 0.25 * losses[0]
    assert int(state.step) == 60


def test_checkpoint_round_trip_is_exact(tmp_path, lstm_model):
    model, params = lstm_model
    opt = make_optimizer("adam", 1e-3, clip_norm=1.0, clip_value=5.0)
    carry = jax.tree.map(lambda z: z + 0.25, model.initial_carry((B,)))
    state = init_state(params, opt, jax.random.PRNGKey(42), carry)
    opt_state = jax.tree.map(lambda x: x + 3, state.opt_state)   # non-trivial moments, count
    state = state._replace(opt_state=opt_state, step=jnp.array(17, jnp.int32))
    ckpt.save_checkpoint(str(tmp_path), state)
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    template = init_state(model.init(jax.random.PRNGKey(9)), opt, jax.random.PRNGKey(0),
                          model.initial_carry((B,)))
    back = ckpt.restore_checkpoint(str(tmp_path), template)
    assert jax.tree.structure(back) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(state)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    bad = init_state(build_model(dict(cell="lstm", input_size=V, hidden=H + 1, output_size=V,
                                      tokens=True)).init(jax.random.PRNGKey(0)),
                     opt, jax.random.PRNGKey(0), model.initial_carry((B,)))
    with pytest.raises(ValueError):
        ckpt.restore_checkpoint(str(tmp_path), bad)
    # a checkpoint saved before Orbax (the leaves in one checkpoint.msgpack) is still read
    old = tmp_path / "old"
    old.mkdir()
    payload = {"format": ckpt.FORMAT, "step": 17,
               "leaves": {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}}
    (old / ckpt.CHECKPOINT).write_bytes(serialization.msgpack_serialize(payload))
    assert ckpt.has_checkpoint(str(old)) and ckpt.read_step(str(old)) == 17
    for a, b in zip(jax.tree.leaves(ckpt.restore_checkpoint(str(old), template)),
                    jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)
    ckpt.save_config(str(tmp_path), {"a": [1, 2]})
    assert ckpt.load_config(str(tmp_path)) == {"a": [1, 2]}
