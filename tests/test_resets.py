"""``resets``: the carry restarts from zeros where a new document begins in a stream."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

F64 = jnp.float64
I, H, T = 3, 4, 7
CELLS = {"lstm": rnn_jax.lstm(I, H, peephole=True, dtype=F64), "gru": rnn_jax.gru(I, H, dtype=F64),
         "elman": rnn_jax.elman(I, H, dtype=F64), "jordan": rnn_jax.jordan(I, H, 2, dtype=F64)}
RESETS = np.array([[False, False, True, False, False, True, False],
                   [True, False, False, False, True, False, False]])


@pytest.mark.parametrize("name", sorted(CELLS))
def test_resets_equal_separate_documents(name):
    cell = CELLS[name]
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (2, T, I), F64)
    c0 = jax.tree.map(lambda a: a + 0.5, cell.initial_carry((2,), F64))  # carried-in state
    carry, ys = rnn_jax.run(cell, params, xs, c0, resets=RESETS)
    for b in range(2):
        starts = [0] + [t for t in range(T) if RESETS[b, t] and t > 0] + [T]
        c = jax.tree.map(lambda a: a[b], c0)
        for lo, hi in zip(starts[:-1], starts[1:]):
            if RESETS[b, lo]:
                c = jax.tree.map(jnp.zeros_like, c)
            c, y = rnn_jax.run(cell, params, xs[b, lo:hi], c)
            np.testing.assert_allclose(ys[b, lo:hi], y, rtol=1e-12, atol=1e-12)
        jax.tree.map(lambda a, w: np.testing.assert_allclose(a[b], w, rtol=1e-12), carry, c)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradient_methods_agree_with_resets_lengths_and_reverse(name):
    cell = CELLS[name]
    params = cell.init(jax.random.key(2))
    xs = jax.random.normal(jax.random.key(3), (2, T, I), F64)
    w = jax.random.normal(jax.random.key(4), (2, T, cell.output_size), F64)
    lengths = jnp.array([7, 4])

    def loss(p, x, c0, method, reverse):
        carry, ys = rnn_jax.run(cell, p, x, c0, lengths=lengths, resets=RESETS, reverse=reverse,
                                grad=method)
        return jnp.sum(w * ys) + sum(jnp.sum(c ** 2) for c in jax.tree.leaves(carry))

    c0 = jax.tree.map(lambda a: a + 0.3, cell.initial_carry((2,), F64))
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=(3, 4))
    for reverse in (False, True):
        ref = grad(params, xs, c0, rnn_jax.Autodiff(), reverse)
        for method in (rnn_jax.Checkpointed(), rnn_jax.ManualBPTT()):
            got = grad(params, xs, c0, method, reverse)
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12),
                         got, ref)
    # a reset at t = 0 of sequence 1 means its initial carry gets no gradient (forward run)
    g_c0 = grad(params, xs, c0, rnn_jax.ManualBPTT(), False)[2]
    jax.tree.map(lambda g: np.testing.assert_array_equal(g[1], 0.0), g_c0)


def test_bptt_function_takes_resets():
    cell = CELLS["gru"]
    params = cell.init(jax.random.key(5))
    xs = jax.random.normal(jax.random.key(6), (2, T, I), F64)
    dys = jax.random.normal(jax.random.key(7), (2, T, H), F64)
    _, vjp = jax.vjp(lambda p, x: rnn_jax.run(cell, p, x, resets=RESETS)[1], params, xs)
    want_p, want_x = vjp(dys)
    dp, _, dx = rnn_jax.bptt(cell, params, xs, dys, resets=RESETS)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), dp, want_p)
    np.testing.assert_allclose(dx, want_x, rtol=1e-10, atol=1e-12)


def test_bad_resets():
    cell = CELLS["gru"]
    params = cell.init(jax.random.key(0))
    xs = jnp.zeros((2, T, I), F64)
    with pytest.raises(TypeError, match="resets must be a boolean array, got dtype int"):
        rnn_jax.run(cell, params, xs, resets=RESETS.astype(int))
    with pytest.raises(ValueError, match=r"resets has shape \(7, 2\) but the inputs need \(2, 7\)"):
        rnn_jax.run(cell, params, xs, resets=RESETS.T)
