"""UORO (``rnn_jax._src.uoro``): unbiased against BPTT, exact at T = 1, padding, chunks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import rnn_jax
from rnn_jax._src import uoro as U
from rnn_jax._src.verify import CASES, call_compiled, random_carry, random_like, rel_err

F64 = jnp.float64
BY_NAME = {f"{c.cell} {c.options}": c for c in CASES}
N = 4000  # estimates per statistical test


def _problem(cell, T, batch=(), seed=0):
    rng = np.random.default_rng(seed)
    params = random_like(cell.init(jax.random.key(seed)), rng, 0.7)
    xs = jnp.asarray(rng.normal(size=(*batch, T, cell.input_size)))
    carry0 = random_carry(cell, batch, rng, 0.5)
    dys = jnp.asarray(rng.normal(size=(*batch, T, cell.output_size)))
    return params, xs, carry0, dys


def _z_scores(cell, params, xs, carry0, dys):
    """``|mean − true| / SE`` per coordinate over N keys, and the relative SE."""
    def both(params, xs, carry0, dys):
        true = rnn_jax.bptt(cell, params, xs, dys, initial_carry=carry0)[0]
        one = lambda k: ravel_pytree(U.uoro(cell, params, xs, k, dys, initial_carry=carry0)[0])[0]
        return ravel_pytree(true)[0], jax.vmap(one)(jax.random.split(jax.random.key(1), N))

    true, est = map(np.asarray, call_compiled(both, params, xs, carry0, dys))
    mean, se = est.mean(0), est.std(0, ddof=1) / np.sqrt(N)
    return np.abs(mean - true) / np.maximum(se, 1e-300), se / np.abs(true)


def _fixed_signs(key, step, n, dtype):          # the same ν at every step
    return jax.random.rademacher(key, (n,), dtype)


def _swapped_scalings(js, theta, nu, dtheta, eps):   # ρ0 and ρ1 paired with the wrong terms
    rho0 = jnp.sqrt((jnp.linalg.norm(theta) + eps) / (jnp.linalg.norm(js) + eps))
    rho1 = jnp.sqrt((jnp.linalg.norm(dtheta) + eps) / (jnp.linalg.norm(nu) + eps))
    return rho0 * js + rho1 * nu, theta / rho1 + dtheta / rho0


@pytest.mark.parametrize("make", [lambda: rnn_jax.elman(2, 3, dtype=F64),
                                  lambda: rnn_jax.lstm(2, 2, dtype=F64)], ids=["elman", "lstm"])
def test_unbiased_and_the_test_has_power(make, monkeypatch):
    """The mean of N estimates is within 5 standard errors of BPTT's gradient, coordinate by
    coordinate; the same test rejects two biased variants (ν reused every step; ρ's swapped)."""
    cell = make()
    problem = _problem(cell, T=6)
    z, rel_se = _z_scores(cell, *problem)
    assert z.max() <= 5.0
    assert rel_se.max() > 0.05           # a noisy estimate, not trivially exact
    for name, fn in [("_signs", _fixed_signs), ("_combine", _swapped_scalings)]:
        with monkeypatch.context() as m:
            m.setattr(U, name, fn)
            assert _z_scores(cell, *problem)[0].max() > 5.0, name


@pytest.mark.parametrize("name", ["jordan activation=tanh output=identity O=5",
                                  "lstm peephole proj_size=2", "gru reset=before",
                                  "clockwork periods=1,2,4,8"])
def test_one_step_is_exact(name):
    """With T = 1 there is no history: the estimate is the exact gradient, for any key."""
    cell = BY_NAME[name].make(3, 4, F64)
    params, xs, carry0, dys = _problem(cell, T=1, batch=(2,), seed=2)
    def compute(params, xs, carry0, dys):
        want = rnn_jax.bptt(cell, params, xs, dys, initial_carry=carry0)[0]
        got, ys, _ = U.uoro(cell, params, xs, jax.random.key(7), dys, initial_carry=carry0)
        return want, got, ys, rnn_jax.run(cell, params, xs, carry0)[1]

    want, got, ys, run_ys = call_compiled(compute, params, xs, carry0, dys)
    assert rel_err(got, want) <= 1e-10
    assert rel_err(ys, run_ys) <= 1e-12


def test_lengths_nan_padding_matches_unpadded_sequences():
    """A batch padded with NaN (inputs and dys) gives each sequence's unpadded estimate, with
    the sequence's key ``split(key, B)[b]``; outputs are zero on the padding."""
    cell = rnn_jax.lstm(2, 3, dtype=F64)
    params, xs, carry0, dys = _problem(cell, T=7, batch=(2,), seed=3)
    lengths = jnp.array([5, 3])
    pad = jnp.arange(7)[None, :, None] >= lengths[:, None, None]
    key = jax.random.key(11)

    def compute(xs, dys, carry0):
        padded = U.uoro(cell, params, jnp.where(pad, jnp.nan, xs), key,
                        jnp.where(pad, jnp.nan, dys), initial_carry=carry0, lengths=lengths)
        parts = [U.uoro(cell, params, xs[b, :n], k, dys[b, :n],
                        initial_carry=jax.tree.map(lambda c, b=b: c[b], carry0))
                 for b, (n, k) in enumerate(zip([5, 3], jax.random.split(key, 2)))]
        return padded, parts

    (g, ys, state), parts = call_compiled(compute, xs, dys, carry0)
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves((g, ys, state)))
    assert rel_err(g, jax.tree.map(lambda a, b: a + b, parts[0][0], parts[1][0])) <= 1e-12
    for b, n in enumerate([5, 3]):
        assert rel_err(ys[b, :n], parts[b][1]) <= 1e-12 and np.all(ys[b, n:] == 0)
        assert rel_err(jax.tree.map(lambda a, b=b: a[b], state), parts[b][2]) <= 1e-12


def _sq_loss(y, target):
    return 0.5 * jnp.sum((y - target) ** 2)


def test_loss_grad_is_uoro_with_the_loss_cotangents():
    """``uoro_loss_grad``: the exact loss, and the estimate of :func:`uoro` given
    ``dys = ∂ℓ_t/∂y_t`` at the exact outputs (same key)."""
    cell = rnn_jax.gru(2, 3, dtype=F64)
    params, xs, carry0, targets = _problem(cell, T=6, batch=(2,), seed=4)
    key = jax.random.key(5)

    def compute(params, xs, carry0, targets):
        loss, g, _ = U.uoro_loss_grad(cell, params, xs, targets, key, _sq_loss,
                                      initial_carry=carry0)
        ys = rnn_jax.run(cell, params, xs, carry0)[1]
        want = U.uoro(cell, params, xs, key, ys - targets, initial_carry=carry0)[0]
        return loss, _sq_loss(ys, targets), g, want

    loss, want_loss, g, want = call_compiled(compute, params, xs, carry0, targets)
    assert abs(loss - want_loss) <= 1e-12 * abs(loss)
    assert rel_err(g, want) <= 1e-12


def test_chunks_continue_the_stream():
    """Chunks 0:5 and 5:8 with the carried state and the same key give the whole run's loss
    and estimate (sums) and final state, under jit."""
    cell = rnn_jax.elman(2, 3, dtype=F64)
    params, xs, carry0, targets = _problem(cell, T=8, batch=(2,), seed=6)
    key = jax.random.key(8)

    def compute(xs, targets, carry0):
        fn = lambda x, t, s: U.uoro_loss_grad(cell, params, x, t, key, _sq_loss, state=s)
        start = U.uoro_state(cell, params, (2,), carry0)
        first = fn(xs[:, :5], targets[:, :5], start)
        return fn(xs, targets, start), first, fn(xs[:, 5:], targets[:, 5:], first[2])

    whole, first, second = call_compiled(compute, xs, targets, carry0)
    assert rel_err(whole[0], first[0] + second[0]) <= 1e-12
    assert rel_err(whole[1], jax.tree.map(jnp.add, first[1], second[1])) <= 1e-12
    assert rel_err(whole[2], second[2]) <= 1e-12
    assert np.all(np.asarray(second[2].step) == 8)


def test_bad_arguments_raise():
    cell = rnn_jax.elman(2, 3, dtype=F64)
    params, xs, carry0, dys = _problem(cell, T=3)
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="key"):
        U.uoro(cell, params, xs, 0, dys)
    with pytest.raises(ValueError, match="eps"):
        U.uoro(cell, params, xs, key, dys, eps=0.0)
    with pytest.raises(ValueError, match="dys"):
        U.uoro(cell, params, xs, key, dys[:, :2])
    with pytest.raises(ValueError, match="per-step"):
        U.uoro(cell, params, xs, key, dys[:2])
    with pytest.raises(ValueError, match="xs"):
        U.uoro(cell, params, xs[:, :1], key, dys)
    with pytest.raises(ValueError, match="lengths"):
        U.uoro(cell, params, xs, key, dys, lengths=jnp.array(4))
    with pytest.raises(ValueError, match="initial_carry or state"):
        U.uoro(cell, params, xs, key, dys, initial_carry=carry0,
               state=U.uoro_state(cell, params))
    with pytest.raises(TypeError, match="state"):
        U.uoro(cell, params, xs, key, dys, state=(carry0,))
    with pytest.raises(TypeError, match="step_loss"):
        U.uoro_loss_grad(cell, params, xs, dys, key, "mse")
    with pytest.raises(ValueError, match="scalar"):
        U.uoro_loss_grad(cell, params, xs, dys, key, lambda y, t: y - t)


def test_params_and_inputs_of_different_dtypes():
    """float32 params with float64 inputs: the estimate keeps the params' dtype, the outputs
    are the run's (the state's scan once mixed the two and failed)."""
    cell = rnn_jax.elman(3, 4)
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3), jnp.float64)
    g, ys, state = rnn_jax.uoro(cell, params, xs, jax.random.key(2), jnp.ones((2, 5, 4)))
    assert g.w_hh.dtype == jnp.float32 and state.theta.dtype == jnp.float32
    np.testing.assert_allclose(ys, rnn_jax.run(cell, params, xs)[1], rtol=1e-12)
    assert np.all(np.isfinite(g.w_hh)) and float(jnp.abs(g.w_hh).max()) > 0
