"""The Clockwork RNN (Koutník et al. 2014): its forward against a hand-written NumPy loop in
both layouts, the module schedule under lengths, reverse, resets and carried-over clocks, the
structurally zero blocks of ``W_hh`` and the option checks. Its hand-written backward is
checked with every other cell's (``rnn_jax._src.verify.CASES``: against ``jax.grad`` and
finite differences, step by step and over sequences, both layouts)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnn_jax
from rnn_jax._src.cells.clockwork import free_parameters, structure

F64 = jnp.float64
I, T = 3, 11


def _numpy_clockwork(p, xs, periods, phase0=None, h0=None):
    """The paper's loop: at step t module k is recomputed iff t mod T_k == 0."""
    W_ih, W_hh, b = (np.asarray(a) for a in p)
    B, H, g = xs.shape[0], W_hh.shape[0], len(periods)
    n = H // g
    M = np.array([[float(j // n >= i // n) for j in range(H)] for i in range(H)])
    h = np.zeros((B, H)) if h0 is None else np.array(h0)
    t0 = np.zeros((B, g), int) if phase0 is None else np.asarray(phase0, int)
    ys = []
    for t in range(xs.shape[1]):
        a = xs[:, t] @ W_ih.T + h @ (M * W_hh).T + b
        on = np.repeat(((t0 + t) % np.asarray(periods)) == 0, n, axis=1)
        h = np.where(on, np.tanh(a), h)
        ys.append(h)
    return np.stack(ys, 1), h


@pytest.mark.parametrize("periods", [(1, 2, 4, 8), (1, 3, 5)], ids=["powers", "odd"])
@pytest.mark.parametrize("B", [5, 40], ids=["mapped", "columns"])
def test_forward_equals_a_numpy_loop(periods, B):
    H = 2 * len(periods)
    cell = rnn_jax.clockwork(I, H, periods=periods, dtype=F64)
    p = cell.init(jax.random.key(0))
    p = p._replace(w_hh=jax.random.normal(jax.random.key(3), (H, H), F64))  # zero blocks too
    xs = np.random.default_rng(0).normal(size=(B, T, I))
    for grad in (rnn_jax.ManualBPTT(), rnn_jax.Autodiff()):
        carry, ys = jax.jit(rnn_jax.run, static_argnums=0)(cell, p, jnp.asarray(xs), grad=grad)
        want, h = _numpy_clockwork(p, xs, periods)
        np.testing.assert_allclose(ys, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(carry.h, h, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(carry.phase, np.broadcast_to(T % np.array(periods),
                                                                   (B, len(periods))))


def test_slow_modules_hold_their_state_between_ticks():
    cell = rnn_jax.clockwork(I, 6, periods=(1, 2, 4), dtype=F64)
    xs = jax.random.normal(jax.random.key(1), (1, 9, I), F64)
    _, ys = rnn_jax.run(cell, cell.init(jax.random.key(0)), xs)
    changed = np.abs(np.diff(np.asarray(ys[0]), axis=0)) > 0          # (T-1, H): h_t != h_{t-1}
    for k, period in enumerate((1, 2, 4)):
        ticks = [t for t in range(1, 9) if t % period == 0]
        assert changed[[t - 1 for t in ticks], 2 * k:2 * k + 2].all()
        idle = [t - 1 for t in range(1, 9) if t % period]
        assert not changed[idle, 2 * k:2 * k + 2].any()


def test_schedule_follows_each_sequences_own_time():
    """t counts the steps read of each sequence: lengths freeze it, reverse starts it at the
    last valid step, a reset restarts it, a carried-over clock goes on counting."""
    periods = (1, 2, 4)
    cell = rnn_jax.clockwork(I, 6, periods=periods, dtype=F64)
    p = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (2, T, I), F64)
    lengths = jnp.array([T, 6])
    carry, ys = rnn_jax.run(cell, p, xs, lengths=lengths)
    alone_c, alone = rnn_jax.run(cell, p, xs[1:, :6])
    np.testing.assert_allclose(ys[1, :6], alone[0], rtol=1e-13)
    np.testing.assert_array_equal(carry.phase[1], 6 % np.array(periods))
    _, ys_r = rnn_jax.run(cell, p, xs, lengths=lengths, reverse=True)
    _, flipped = rnn_jax.run(cell, p, xs[1:, :6][:, ::-1])
    np.testing.assert_allclose(ys_r[1, :6], flipped[0, ::-1], rtol=1e-13)
    resets = jnp.zeros((2, T), bool).at[:, 5].set(True)
    _, ys_reset = rnn_jax.run(cell, p, xs, resets=resets)
    _, fresh = rnn_jax.run(cell, p, xs[:, 5:])
    np.testing.assert_allclose(ys_reset[:, 5:], fresh, rtol=1e-13)
    c1, y1 = rnn_jax.run(cell, p, xs[:, :5])                 # streaming: 5 + 6 steps
    _, y2 = rnn_jax.run(cell, p, xs[:, 5:], c1)
    _, whole = rnn_jax.run(cell, p, xs)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), whole, rtol=1e-13)


def test_zero_blocks_are_structural():
    cell = rnn_jax.clockwork(I, 8, modules=4, dtype=F64)
    M = structure(8, 4)
    assert M[0].all() and not M[7, :6].any() and M[7, 6:].all()   # fastest reads all
    p = cell.init(jax.random.key(0))
    assert float(jnp.abs(p.w_hh * (1 - M)).max()) == 0.0
    assert float(jnp.abs(p.w_hh * M).min(initial=1, where=M > 0)) > 0
    xs = jax.random.normal(jax.random.key(1), (3, T, I), F64)
    loss = lambda p, g: jnp.sum(jnp.sin(rnn_jax.run(cell, p, xs, grad=g)[1]))
    opt = optax.adam(1e-2)
    state = opt.init(p)
    for g in (rnn_jax.ManualBPTT(), rnn_jax.Autodiff(), rnn_jax.Checkpointed(),
              rnn_jax.ManualBPTT(truncate=3)):
        d = jax.grad(loss)(p, g)
        assert float(jnp.abs(d.w_hh * (1 - M)).max()) == 0.0
        assert float(jnp.abs(d.w_hh * M).max()) > 0
        updates, state = opt.update(d, state, p)
        p = optax.apply_updates(p, updates)
    assert float(jnp.abs(p.w_hh * (1 - M)).max()) == 0.0
    assert free_parameters(cell) == 8 * I + 8 + 4 * 10      # 10 blocks of 2x2
    assert free_parameters(cell) == sum(a.size for a in jax.tree.leaves(p)) - int((M == 0).sum())


def test_bidirectional_stacked_and_vmap():
    cell = rnn_jax.clockwork(I, 4, modules=2)
    net = rnn_jax.stacked([rnn_jax.bidirectional(cell), rnn_jax.clockwork(8, 4, periods=(1, 5))])
    params = net.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (3, T, I))
    _, ys = net.apply(params, xs, lengths=jnp.array([T, 4, 0]))
    assert ys.shape == (3, T, 4) and float(jnp.abs(ys[1, 4:]).max()) == 0.0
    one = jax.vmap(lambda x: rnn_jax.run(cell, params[0][0], x)[1])(xs[:, None])
    np.testing.assert_allclose(one[:, 0], rnn_jax.run(cell, params[0][0], xs)[1], rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(periods=(1, 1)), "strictly increasing"), (dict(periods=(2, 1)), "strictly increasing"),
    (dict(periods=(1, 2.5)), "positive ints"), (dict(periods=(0, 2)), "positive ints"),
    (dict(periods=()), "positive ints"), (dict(modules=3), "multiple of the number of modules"),
    (dict(modules=2, periods=(1, 2, 4)), "modules=2 but 3 periods"),
    (dict(periods=(1, 512), dtype=jnp.bfloat16), "cannot count the clock"),
])
def test_bad_options_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rnn_jax.clockwork(I, 8, **kwargs)


def test_slow_modules_keep_their_gradient_over_longer_lags():
    """The paper's claim, exactly computed: ‖∂h_T/∂h_{T-l}[module k]‖ decays far more slowly
    for the slow modules; the three ways of computing the Jacobians agree."""
    from rnn_jax import diagnostics as dg
    cell = rnn_jax.clockwork(2, 8, periods=(1, 2, 4, 8), dtype=F64)
    p = cell.init(jax.random.key(0))
    p = p._replace(w_hh=p.w_hh * 8)                      # a contracting fast module
    xs = jax.random.normal(jax.random.key(1), (32, 2), F64)
    blocks = dg.carry_blocks(cell, p)
    assert list(blocks) == [f"module {k + 1} (T={t})" for k, t in enumerate((1, 2, 4, 8))]
    curves = {k: np.asarray(dg.block_norms(cell, p, xs, cols)) for k, cols in blocks.items()}
    fast, slow = curves["module 1 (T=1)"], curves["module 4 (T=8)"]
    assert slow[24] > 1e3 * fast[24] and slow[24] > 1e-3
    np.testing.assert_allclose(fast[0], 1.0)            # lag 0: the identity block
    for method in ("jacrev", "manual"):
        np.testing.assert_allclose(dg.lag_jacobians(cell, p, xs, method=method),
                                   dg.lag_jacobians(cell, p, xs), rtol=1e-10, atol=1e-14)
    g = dg.state_gradients(cell, p, xs, lambda ys: jnp.sum(ys[-1] ** 2))
    assert g.shape == (32, 8 + 4) and float(jnp.abs(g[:, 8:]).max()) == 0.0   # no clock gradient
