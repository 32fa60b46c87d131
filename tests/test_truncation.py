"""rnn_jax.diagnostics.truncation_angles: truncated BPTT's gradient against the full one."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax.diagnostics import gradient_angle, truncation_angles

F64 = jnp.float64


def _problem(T=10, dtype=F64, make=rnn_jax.lstm):
    cell = make(3, 5, dtype=dtype)
    readout = rnn_jax.dense(5, 2, dtype=dtype)
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 4)
    params = (cell.init(k1), readout.init(k2))
    xs = jax.random.normal(k3, (4, T, 3), dtype)
    ts = jax.random.normal(k4, (4, T, 2), dtype)

    def loss(p, method):
        _, hs = rnn_jax.run(cell, p[0], xs, grad=method)
        return jnp.mean((readout.apply(p[1], hs) - ts) ** 2)

    return cell, readout, params, xs, ts, loss


@pytest.mark.parametrize("make, dtype", [(rnn_jax.lstm, jnp.float32), (rnn_jax.elman, F64)])
def test_k_at_least_T_is_exactly_the_full_gradient(make, dtype):
    # Bit for bit where XLA compiles the backward loop with and without the truncation's
    # select to the same arithmetic (these cases; with x64 enabled an Elman in float32
    # differs from ManualBPTT() in the last bit, the angle ~1e-5 degrees).
    *_, params, _, _, loss = _problem(T=6, dtype=dtype, make=make)
    r = truncation_angles(loss, params, [6, 50])
    assert r.ks == (6, 50)
    np.testing.assert_array_equal(r.angles, 0.0)
    np.testing.assert_array_equal(r.rel_norms, 1.0)
    np.testing.assert_array_equal(r.rel_errors, 0.0)
    assert r.full_norm > 0


def test_k1_on_elman_keeps_only_the_last_step():
    """Loss at the last step only: with k = 1 the gradient is that of one step from the
    (constant) carry h_{T-1}: ∂L/∂W_hh = δa_T h_{T-1}ᵀ, no contribution of earlier steps."""
    T = 7
    cell = rnn_jax.elman(2, 4, dtype=F64)
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    params = cell.init(k1)
    xs = jax.random.normal(k2, (T, 2), F64)

    def loss(p, method):
        _, hs = rnn_jax.run(cell, p, xs, grad=method)
        return jnp.sum(jnp.sin(hs[-1]))

    h_prev, _ = rnn_jax.run(cell, params, xs[:-1])

    def one_step(p):
        _, y = cell.step(p, h_prev, xs[-1])
        return jnp.sum(jnp.sin(y))

    expected = jax.grad(one_step)(params)
    got = jax.grad(lambda p: loss(p, rnn_jax.ManualBPTT(truncate=1)))(params)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # the outer product itself, and the full gradient differs from it
    a_T = params.w_ih @ xs[-1] + params.b_ih + params.w_hh @ h_prev + params.b_hh
    delta = jnp.cos(jnp.tanh(a_T)) * (1 - jnp.tanh(a_T) ** 2)
    np.testing.assert_allclose(got.w_hh, np.outer(delta, h_prev), rtol=1e-12)
    full = jax.grad(lambda p: loss(p, rnn_jax.ManualBPTT()))(params)
    assert not np.allclose(full.w_hh, got.w_hh)
    r = truncation_angles(loss, params, [1])
    assert r.angles[0] == pytest.approx(gradient_angle(expected, full), abs=1e-12)
    assert r.angles[0] > 1.0


def test_angle_decreases_where_it_must():
    """Elman with one unit, h_0 = 0, inputs zero but the last, W_hh = w > 0, loss at the last
    step: steps before the last see h = 0 and x = 0, so their contribution is along the bias
    directions only, g_k ∝ (0, x, 1 + S_k, 1 + S_k) over (W_hh, W_ih, b_ih, b_hh) with
    S_k = Σ_{l=1}^{k-1} w^l: a point moving along a line towards g, so the angle falls
    monotonically, to 0 at k = T. Checked against that closed form."""
    T, w, x_last = 16, 0.9, 0.7
    cell = rnn_jax.elman(1, 1, dtype=F64)
    params = rnn_jax.ElmanParams(jnp.ones((1, 1), F64), jnp.full((1, 1), w, F64),
                                 jnp.zeros(1, F64), jnp.zeros(1, F64))
    xs = jnp.zeros((T, 1), F64).at[-1, 0].set(x_last)

    def loss(p, method):
        _, hs = rnn_jax.run(cell, p, xs, grad=method)
        return (hs[-1, 0] - 1.0) ** 2

    ks = [1, 2, 4, 8, 16]
    r = truncation_angles(loss, params, ks)
    assert np.all(np.diff(r.angles) < 0) and r.angles[-1] == 0.0
    full = np.array([0.0, x_last, 1 + sum(w ** j for j in range(1, T)), 0.0])
    full[3] = full[2]
    for k, angle in zip(ks, r.angles):
        s = 1 + sum(w ** j for j in range(1, k))
        g = np.array([0.0, x_last, s, s])
        cos = g @ full / np.linalg.norm(g) / np.linalg.norm(full)
        assert angle == pytest.approx(np.degrees(np.arccos(min(cos, 1.0))), abs=1e-6)


def _chunked_loss(cell, readout, xs, ts, k):
    """Truncated BPTT written out: the carry's gradient stopped every k steps (Autodiff)."""
    def loss(p):
        carry, hs = None, []
        for start in range(0, xs.shape[1], k):
            carry = None if carry is None else jax.lax.stop_gradient(carry)
            carry, h = rnn_jax.run(cell, p[0], xs[:, start:start + k], carry,
                                   grad=rnn_jax.Autodiff())
            hs.append(h)
        return jnp.mean((readout.apply(p[1], jnp.concatenate(hs, 1)) - ts) ** 2)
    return loss


def test_against_a_direct_computation_of_the_cosine():
    cell, readout, params, xs, ts, loss = _problem(T=8)
    ks = [3, 5]
    full = jax.grad(lambda p: loss(p, rnn_jax.Autodiff()))(params)
    flat = lambda g: np.concatenate([np.ravel(a) for a in jax.tree.leaves(g)])
    truncated = [jax.jit(jax.grad(_chunked_loss(cell, readout, xs, ts, k)))(params)
                 for k in ks]
    r = truncation_angles(loss, params, ks)
    u = flat(full)
    for i, gk in enumerate(truncated):
        v = flat(gk)
        cos = u @ v / np.linalg.norm(u) / np.linalg.norm(v)
        assert r.angles[i] == pytest.approx(np.degrees(np.arccos(cos)), abs=1e-6)
        assert r.rel_norms[i] == pytest.approx(np.linalg.norm(v) / np.linalg.norm(u), rel=1e-9)
        assert r.rel_errors[i] == pytest.approx(np.linalg.norm(v - u) / np.linalg.norm(u),
                                                rel=1e-9)
    # select: the recurrent part alone; the readout's gradient is exact under truncation,
    # so leaving it out the angle grows
    cell_only = truncation_angles(loss, params, ks[:1], select=lambda g: g[0])
    u, v = flat(full[0]), flat(truncated[0][0])
    cos = u @ v / np.linalg.norm(u) / np.linalg.norm(v)
    assert cell_only.angles[0] == pytest.approx(np.degrees(np.arccos(cos)), abs=1e-6)
    assert cell_only.angles[0] > r.angles[0]


def test_refuses_bad_arguments():
    *_, params, _, _, loss = _problem(T=4, make=rnn_jax.elman)
    for ks in ([], [0], [2, -1], [True], [1.5]):
        with pytest.raises(ValueError, match="truncation length"):
            truncation_angles(loss, params, ks)
    with pytest.raises(TypeError, match="reference"):
        truncation_angles(loss, params, [1], reference="bptt")
    with pytest.raises(ValueError, match="zero"):
        gradient_angle(np.zeros(3), np.ones(3))
    assert gradient_angle(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(90.0)
    assert gradient_angle(np.array([1.0, 1.0]), np.array([-1.0, -1.0])) == pytest.approx(180.0)
