"""``rnn_jax.diagnostics.lyapunov_exponent``: the QR (Benettin / Shimada–Nagashima) method."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax import diagnostics as dg

F64 = jnp.float64
H, I, T = 5, 2, 2000
EXPONENTS = jax.jit(dg.lyapunov_exponent, static_argnums=0, static_argnames=("k", "discard"))


def _rotation(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def _normal_matrix(seed=0):
    """``U blockdiag(1.02 R(0.7), -0.9, 0.7, 0.4) Uᵀ``: normal, |eigenvalues| 1.02, 1.02, 0.9,
    0.7, 0.4 (a complex pair first)."""
    u, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(H, H)))
    d = np.zeros((H, H))
    d[:2, :2] = 1.02 * _rotation(0.7)
    d[2:, 2:] = np.diag([-0.9, 0.7, 0.4])
    return u @ d @ u.T


def _linear():
    cell = rnn_jax.elman(I, H, activation="identity", dtype=F64)
    rng = np.random.default_rng(1)
    params = cell.init(jax.random.key(0))._replace(w_hh=jnp.asarray(_normal_matrix()))
    return cell, params, jnp.asarray(rng.normal(size=(T, I)))


def test_linear_normal_matrix_gives_log_moduli():
    cell, params, xs = _linear()
    w = np.asarray(params.w_hh)
    assert np.allclose(w @ w.T, w.T @ w)  # normal
    want = np.sort(np.log(np.abs(np.linalg.eigvals(w))))[::-1]
    got = np.asarray(EXPONENTS(cell, params, xs, k=4, discard=200))
    np.testing.assert_allclose(got, want[:4], rtol=0, atol=1e-10)
    top = float(EXPONENTS(cell, params, xs, k=1, discard=200)[0])
    assert abs(top - np.log(max(abs(np.linalg.eigvals(w))))) <= 1e-10
    # without discarding the transient, the initial frame's overlap costs O(1/T)
    assert abs(float(EXPONENTS(cell, params, xs, k=1)[0]) - want[0]) <= 1e-3


def test_non_normal_linear_top_exponent_is_log_spectral_radius():
    cell, params, xs = _linear()
    s = np.random.default_rng(2).normal(size=(H, H))
    w = s @ np.diag([0.9, 0.6, -0.5, 0.3, 0.1]) @ np.linalg.inv(s)
    assert not np.allclose(w @ w.T, w.T @ w)
    got = float(EXPONENTS(cell, params._replace(w_hh=jnp.asarray(w)), xs, k=1,
                          discard=200)[0])
    assert abs(got - np.log(0.9)) <= 1e-10


def test_discard_splits_the_average():
    """``T λ(discard=0) = d λ(xs[:d]) + (T - d) λ(discard=d)``: same frame, same steps."""
    cell, params, xs = _linear()
    d, xs = 7, xs[:40]
    whole = np.asarray(EXPONENTS(cell, params, xs, k=3))
    head = np.asarray(EXPONENTS(cell, params, xs[:d], k=3))
    tail = np.asarray(EXPONENTS(cell, params, xs, k=3, discard=d))
    np.testing.assert_allclose(40 * whole, d * head + (40 - d) * tail, rtol=1e-12, atol=1e-12)
    assert not np.allclose(tail, whole, rtol=1e-6)


def test_tanh_regimes_and_top_k_prefix():
    cell = rnn_jax.elman(I, H, dtype=F64)
    xs = 0.01 * jnp.asarray(np.random.default_rng(3).normal(size=(T, I)))
    lam = {}
    for rho in (0.5, 3.0):
        params = dg.elman_with_radius(jax.random.key(4), I, H, rho, dtype=F64, cell=cell).params
        three = np.asarray(EXPONENTS(cell, params, xs, k=3, discard=100))
        one = float(EXPONENTS(cell, params, xs, k=1, discard=100)[0])
        assert abs(one - three[0]) <= 1e-10 * max(1.0, abs(one))
        # ‖J_t‖ ≤ ‖W_hh‖ (tanh' ≤ 1): no exponent exceeds log σ_max(W_hh)
        assert three[0] <= np.log(np.linalg.norm(np.asarray(params.w_hh), 2)) + 1e-12
        lam[rho] = one
    assert lam[0.5] < 0
    assert lam[3.0] > lam[0.5]


def test_lstm_carry_and_vmap():
    cell = rnn_jax.lstm(I, 3, dtype=F64)
    params = cell.init(jax.random.key(5))
    xs = jnp.asarray(np.random.default_rng(6).normal(size=(2, 30, I)))
    batch = jax.jit(jax.vmap(lambda x: dg.lyapunov_exponent(cell, params, x, k=6)))(xs)
    assert batch.shape == (2, 6) and np.all(np.isfinite(batch))
    np.testing.assert_allclose(batch[1], EXPONENTS(cell, params, xs[1], k=6), rtol=1e-12)


@pytest.mark.parametrize("kwargs,err", [
    ({"k": 0}, ValueError), ({"k": H + 1}, ValueError), ({"k": 1.0}, TypeError),
    ({"k": True}, TypeError), ({"discard": -1}, ValueError), ({"discard": 10}, ValueError),
    ({"discard": 2.5}, TypeError)])
def test_bad_arguments_raise(kwargs, err):
    cell, params, xs = _linear()
    with pytest.raises(err, match=next(iter(kwargs))):
        dg.lyapunov_exponent(cell, params, xs[:10], **kwargs)


def test_bad_sequence_raises():
    cell, params, xs = _linear()
    with pytest.raises(ValueError, match="xs"):
        dg.lyapunov_exponent(cell, params, xs[None])
    with pytest.raises(ValueError, match="xs"):
        dg.lyapunov_exponent(cell, params, xs[:0])
