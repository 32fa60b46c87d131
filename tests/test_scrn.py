"""The SCRN cell (Mikolov et al. 2014): its forward against a hand-written NumPy loop, in both
layouts the planner chooses, through the combinators, and its option checks. Its hand-written
backward is checked with every other cell's (``rnn_jax._src.verify.CASES``: against
``jax.grad`` and finite differences, step by step and over sequences, both layouts)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

F64 = jnp.float64
I, H, S, T = 3, 4, 2, 7


def _numpy_scrn(p, xs, alpha):
    P = {k: np.asarray(v) for k, v in p._asdict().items() if v is not None}
    B = xs.shape[0]
    h, s, ys = np.zeros((B, H)), np.zeros((B, S)), []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        s = (1 - alpha) * (x @ P["w_xs"].T) + alpha * s
        h = 1 / (1 + np.exp(-(s @ P["w_sh"].T + x @ P["w_xh"].T + h @ P["w_hh"].T + P["b_h"])))
        ys.append(np.concatenate([h, s], -1))
    return np.stack(ys, 1), h, s


@pytest.mark.parametrize("learn", [False, True], ids=["fixed", "learnt"])
@pytest.mark.parametrize("B", [5, 40], ids=["mapped", "columns"])
def test_forward_equals_a_numpy_loop(learn, B):
    cell = rnn_jax.scrn(I, H, S, learn_alpha=learn, dtype=F64)
    p = cell.init(jax.random.key(0))
    alpha = 0.95
    if learn:
        p = p._replace(alpha=jnp.array([0.3, 0.9], F64))
        alpha = np.array([0.3, 0.9])
    xs = np.random.default_rng(0).normal(size=(B, T, I))
    carry, ys = jax.jit(rnn_jax.run, static_argnums=0)(cell, p, jnp.asarray(xs))
    want, h, s = _numpy_scrn(p, xs, alpha)
    np.testing.assert_allclose(ys, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(carry.h, h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(carry.s, s, rtol=1e-12, atol=1e-12)
    assert cell.output_size == H + S and ys.shape == (B, T, H + S)


def test_learnt_alpha_gets_a_gradient_and_the_fixed_one_is_no_parameter():
    fixed = rnn_jax.scrn(I, H, S, dtype=F64)
    assert fixed.init(jax.random.key(0)).alpha is None
    cell = rnn_jax.scrn(I, H, S, learn_alpha=True, alpha=0.5, dtype=F64)
    p = cell.init(jax.random.key(0))
    np.testing.assert_array_equal(p.alpha, [0.5, 0.5])
    xs = jax.random.normal(jax.random.key(1), (2, T, I), F64)
    g = jax.grad(lambda p: jnp.sum(rnn_jax.run(cell, p, xs)[1] ** 2))(p)
    want = jax.grad(lambda p: jnp.sum(rnn_jax.run(cell, p, xs, grad=rnn_jax.Autodiff())[1] ** 2))(p)
    np.testing.assert_allclose(g.alpha, want.alpha, rtol=1e-10)
    assert float(jnp.max(jnp.abs(g.alpha))) > 0


def test_bidirectional_stacked_with_lengths_and_a_readout():
    cell = rnn_jax.scrn(I, H, S)
    net = rnn_jax.stacked([rnn_jax.bidirectional(cell), rnn_jax.scrn(2 * (H + S), H, S)])
    params = net.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (3, T, I))
    lengths = jnp.array([T, 4, 0])
    _, ys = net.apply(params, xs, lengths=lengths)
    assert ys.shape == (3, T, H + S)
    assert float(jnp.abs(ys[1, 4:]).max()) == 0.0 and float(jnp.abs(ys[2]).max()) == 0.0
    readout = rnn_jax.dense(H + S, 5)          # the paper's softmax(U h + V s)
    logits = readout.apply(readout.init(jax.random.key(2)), ys)
    assert logits.shape == (3, T, 5) and bool(jnp.isfinite(logits).all())


@pytest.mark.parametrize("kwargs, err", [
    (dict(alpha=1.0), ValueError), (dict(alpha=-0.1), ValueError),
    (dict(alpha=float("nan")), ValueError), (dict(alpha="0.9"), TypeError),
    (dict(learn_alpha="yes"), TypeError), (dict(context_size=0), ValueError),
])
def test_bad_options_are_clear_errors(kwargs, err):
    args = dict(context_size=S)
    args.update(kwargs)
    with pytest.raises(err, match="alpha|context_size|learn_alpha"):
        rnn_jax.scrn(I, H, **args)
