"""``rnn_jax.Persistent``: the recurrence as one Pallas kernel per direction.

On a machine without a GPU the kernels run in Pallas's interpreter (the same kernel code, traced
to XLA ops), so these tests check the kernels' arithmetic everywhere; on a GPU they compile with
Triton. Small shapes, H=32 cut into two chunks of 16 so that the chunked matmuls are exercised,
and a batch of 20 padded to 32 (two programs of 16).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

pytestmark = pytest.mark.slow

pytest.importorskip("jax.experimental.pallas")
B, T, I, H = 20, 5, 8, 32
CELLS = {"lstm": lambda: rnn_jax.lstm(I, H), "gru": lambda: rnn_jax.gru(I, H),
         # h = σ(o) relu(c) is unbounded: the float16 operands are rescaled at every step
         "lstm_relu": lambda: rnn_jax.lstm(I, H, output_activation="relu")}


def problem(name, dtype=jnp.float64, batch=(B,), h0_scale=1.0):
    cell = CELLS[name]()
    k = jax.random.split(jax.random.key(0), 5)
    params = cell.init(k[0])
    # non-zero biases (a dropped or doubled bias shows) and a larger W_hh than the default
    params = params._replace(b_ih=jax.random.normal(k[1], params.b_ih.shape),
                             b_hh=jax.random.normal(k[2], params.b_hh.shape),
                             w_hh=1.5 * params.w_hh)
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    xs = jax.random.normal(k[3], (*batch, T, I), dtype)
    h0 = jax.tree.map(lambda c: h0_scale * jax.random.normal(k[4], c.shape, dtype),
                      cell.initial_carry(batch, dtype))
    return cell, params, xs, h0


def loss_fn(cell, reverse=False, scale=1.0):
    def loss(params, xs, h0, grad):
        final, ys = rnn_jax.run(cell, params, xs, h0, reverse=reverse, grad=grad)
        dtype = jnp.promote_types(ys.dtype, jnp.float32)   # the same weights in every dtype
        w = jnp.sin(jnp.arange(ys.size, dtype=dtype)).reshape(ys.shape)
        return scale * (jnp.sum(w * ys.astype(dtype))
                        + sum(jnp.sum(jnp.cos(f.astype(dtype))) for f in jax.tree.leaves(final)))
    return loss


def rel_err(a, b):
    return max(float(jnp.max(jnp.abs(x - y)) / jnp.maximum(jnp.max(jnp.abs(y)), 1e-30))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("reverse,stream", [(False, False), (True, True)])
def test_value_and_gradients_equal_autodiff_in_float64(name, reverse, stream):
    """Outputs, final carry and the gradients of all params, the inputs and the initial carry
    equal autodiff's through the scan to float64 rounding (native float64 operands)."""
    jax.config.update("jax_enable_x64", True)
    cell, params, xs, h0 = problem(name)
    loss = jax.value_and_grad(loss_fn(cell, reverse), argnums=(0, 1, 2))
    method = rnn_jax.Persistent(chunk=16, stream=stream)
    got, want = loss(params, xs, h0, method), loss(params, xs, h0, rnn_jax.Autodiff())
    assert abs(float(got[0] - want[0])) <= 1e-10 * abs(float(want[0]))
    assert rel_err(got[1], want[1]) <= 1e-10
    assert float(jnp.max(jnp.abs(want[1][0].w_hh))) > 1e-2   # a gradient that could be wrong


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_match_autodiff_in_float64(name, reverse):
    """With ``lengths`` (0 and T included): carries kept and outputs zero past each end, a
    reverse run starting at each sequence's own last step, and the gradients of all that."""
    jax.config.update("jax_enable_x64", True)
    cell, params, xs, h0 = problem(name)
    lengths = jnp.arange(B) % (T + 1)

    def loss(params, xs, h0, grad):
        final, ys = rnn_jax.run(cell, params, xs, h0, lengths=lengths, reverse=reverse,
                                grad=grad)
        w = jnp.sin(jnp.arange(ys.size, dtype=ys.dtype)).reshape(ys.shape)
        return jnp.sum(w * ys) + sum(jnp.sum(jnp.cos(f)) for f in jax.tree.leaves(final)), ys

    method = rnn_jax.Persistent(chunk=16)
    (val, ys), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(
        params, xs, h0, method)
    (want_val, want_ys), want = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(
        params, xs, h0, rnn_jax.Autodiff())
    assert float(jnp.max(jnp.abs(ys - want_ys))) <= 1e-12
    assert bool(jnp.all(ys[0] == 0))            # lengths[0] = 0: no output at all
    assert abs(float(val - want_val)) <= 1e-10 * abs(float(want_val))
    assert rel_err(grads, want) <= 1e-10


@pytest.mark.parametrize("name", ["lstm", "gru", "lstm_relu"])
def test_float32_float16_operands_keep_tf32_accuracy(name):
    """float32 runs multiply with float16 operands scaled by powers of two: against a float64
    reference the outputs and gradients stay at TF32's level (11-bit significands), also for
    an initial carry of 1e5 (beyond float16's range unless scaled) and for gradients of order
    1e-7 (below float16's normal range unless scaled row by row). (With ReLU outputs a carry
    of 1e5 stays that large, and 11-bit products flip saturated gates as TF32's would: 1.0.)"""
    jax.config.update("jax_enable_x64", True)
    method = rnn_jax.Persistent(chunk=16)
    cell, p64, x64, h64 = problem(name, h0_scale=1.0 if name == "lstm_relu" else 1e5)
    p32, x32, h32 = jax.tree.map(lambda a: a.astype(jnp.float32), (p64, x64, h64))
    want_ys = rnn_jax.run(cell, p64, x64, h64, grad=rnn_jax.Autodiff())[1]
    got_ys = rnn_jax.run(cell, p32, x32, h32, grad=method)[1]
    assert bool(jnp.all(jnp.isfinite(got_ys)))
    assert rel_err(got_ys, want_ys) <= 2e-3
    cell, p64, x64, h64 = problem(name)
    p32, x32, h32 = jax.tree.map(lambda a: a.astype(jnp.float32), (p64, x64, h64))
    loss = loss_fn(cell, scale=1e-7)
    want = jax.grad(loss, argnums=(0, 1, 2))(p64, x64, h64, rnn_jax.Autodiff())
    got = jax.grad(loss, argnums=(0, 1, 2))(p32, x32, h32, method)
    assert rel_err(got, want) <= 2e-3
    if jax.default_backend() != "gpu":  # (on a GPU, float32 operands run as TF32: no closer)
        # float16 operands are what ran: float32 operands are closer still
        native = jax.grad(loss, argnums=(0, 1, 2))(
            p32, x32, h32, rnn_jax.Persistent(chunk=16, operands="native"))
        assert rel_err(native, want) < rel_err(got, want) / 10


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_bfloat16_gradients_match_a_float32_reference(name):
    """bfloat16 weight gradients are single contractions after the backward kernel, as with
    ManualBPTT: within bfloat16 rounding of float32 arithmetic on the same numbers."""
    cell, params, xs, h0 = problem(name, dtype=jnp.float32)
    bf = jax.tree.map(lambda a: a.astype(jnp.bfloat16), (params, xs, h0))
    ref = jax.tree.map(lambda a: a.astype(jnp.float32), bf)
    loss = loss_fn(cell)
    got = jax.grad(loss)(*bf, rnn_jax.Persistent(chunk=16))
    want = jax.grad(loss)(*ref, rnn_jax.Autodiff())
    assert all(g.dtype == jnp.bfloat16 for g in jax.tree.leaves(got))
    assert rel_err(jax.tree.map(lambda a: a.astype(jnp.float32), got), want) <= 1e-2


def test_batch_shapes_jit_and_vmap():
    """Any number of batch dimensions (none included), under jit and vmap."""
    cell, params, xs, h0 = problem("lstm", dtype=jnp.float32, batch=(2, 3))
    method = rnn_jax.Persistent(chunk=16, operands="native")
    run = jax.jit(lambda p, x, h: rnn_jax.run(cell, p, x, h, grad=method))
    final, ys = run(params, xs, h0)
    want_final, want_ys = rnn_jax.run(cell, params, xs, h0, grad=rnn_jax.Autodiff())
    np.testing.assert_allclose(ys, want_ys, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final.c, want_final.c, rtol=1e-5, atol=1e-5)
    one = rnn_jax.run(cell, params, xs[0, 0], grad=method)[1]
    np.testing.assert_allclose(one, rnn_jax.run(cell, params, xs[0, 0])[1], rtol=1e-5, atol=1e-5)
    many = jax.vmap(lambda x: rnn_jax.run(cell, params, x, grad=method)[1])(xs)
    np.testing.assert_allclose(many, rnn_jax.run(cell, params, xs)[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make,kw,match", [
    (lambda: rnn_jax.lstm(I, H, peephole=True), {}, "peepholes"),
    (lambda: rnn_jax.gru(I, H, reset="before"), {}, "reset='before'"),
    (lambda: rnn_jax.lstm(I, H, cell_activation=jnp.sin), {}, "callable"),
    (lambda: rnn_jax.elman(I, H), {}, "'elman'"),
    (lambda: rnn_jax.lstm(I, 24), {}, "hidden_size=24"),
    (lambda: rnn_jax.lstm(I, H), {"resets": jnp.zeros((B, T), bool)}, "resets"),
])
def test_what_it_does_not_cover_is_a_clear_error(make, kw, match):
    cell = make()
    xs = jnp.zeros((B, T, I))
    with pytest.raises(ValueError, match=match):
        rnn_jax.run(cell, cell.init(jax.random.key(0)), xs, grad=rnn_jax.Persistent(), **kw)


@pytest.mark.parametrize("kw,match", [({"block": 8}, "block"), ({"chunk": 48}, "chunk"),
                                      ({"operands": "float8"}, "operands")])
def test_bad_options_are_clear_errors(kw, match):
    cell = rnn_jax.lstm(I, H)
    with pytest.raises(ValueError, match=match):
        rnn_jax.run(cell, cell.init(jax.random.key(0)), jnp.zeros((B, T, I)),
                    grad=rnn_jax.Persistent(**kw))


def test_default_on_a_gpu_where_w_hh_fits_on_chip():
    """On a GPU, the default for the LSTM and GRU at H <= 128 (with or without lengths); not
    on a CPU, not where W_hh does not fit, with resets, nor when float32 matmuls must be
    exact."""
    lstm, gru = rnn_jax.lstm(I, 128), rnn_jax.gru(I, 128)
    grad = lambda cell, on="gpu", dtype=jnp.float32, resets=False: rnn_jax.plan(  # noqa: E731
        cell, dtype, on=on, resets=resets).grad
    for cell in (lstm, gru):
        for dtype in (jnp.float32, jnp.bfloat16):
            assert isinstance(grad(cell, dtype=dtype), rnn_jax.Persistent)
        assert grad(cell, on="cpu") == rnn_jax.ManualBPTT()
        assert grad(cell, resets=True) == rnn_jax.ManualBPTT()
    assert grad(rnn_jax.lstm(I, 256)) == rnn_jax.ManualBPTT()
    assert grad(rnn_jax.lstm(I, 128, peephole=True)) == rnn_jax.ManualBPTT()
    with jax.default_matmul_precision("highest"):
        assert grad(lstm) == rnn_jax.ManualBPTT()
