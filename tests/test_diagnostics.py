"""Vanishing and exploding gradients: the diagnostics, and the theory they must reproduce.

* ``∂h_T/∂h_k`` three ways (per-step ``jax.jacrev`` products, ``jax.vjp`` basis pullback, the
  hand-written BPTT) and against ``jax.jacrev`` of ``rnn_jax.run`` on the suffix ``xs[k:]``.
* Pascanu et al. 2013: ``‖∂h_T/∂h_k‖ ≤ (γ σ_max)^{T-k}`` at every ``k`` (tanh, sigmoid).
* Linear RNN: ``∂h_T/∂h_k = W^{T-k}``; for ``W = ρ Q`` the norm is exactly ``ρ^{T-k}``, for a
  generic ``W`` it grows at the rate of the spectral radius.
* LSTM with a saturated-open forget gate keeps ``∂c_T/∂c_0`` over 1000 steps; tanh loses it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import rnn_jax
from rnn_jax import diagnostics as dg
from rnn_jax._src.cli import main as cli_main

F64 = jnp.float64
I, H, T = 3, 5, 16


def _xs(seed=1, length=T, size=I):
    return jax.random.normal(jax.random.key(seed), (length, size), F64)


def _cells():
    return {
        "elman tanh": rnn_jax.elman(I, H, dtype=F64),
        "elman relu": rnn_jax.elman(I, H, activation="relu", dtype=F64),
        "jordan": rnn_jax.jordan(I, H, 4, dtype=F64),
        "lstm": rnn_jax.lstm(I, H, dtype=F64),
        "lstm peephole": rnn_jax.lstm(I, H, peephole=True, dtype=F64),
        "gru": rnn_jax.gru(I, H, dtype=F64),
        "gru before": rnn_jax.gru(I, H, reset="before", dtype=F64),
    }


CELLS = _cells()


def _params(cell, seed=0):
    params = cell.init(jax.random.key(seed))
    if cell.name == "lstm" and params.w_ci is not None:  # non-zero peepholes
        k = jax.random.split(jax.random.key(seed + 7), 3)
        params = params._replace(**{n: 0.5 * jax.random.normal(kk, (H,), F64)
                                    for n, kk in zip(("w_ci", "w_cf", "w_co"), k)})
    return params


# The problems are tiny, so XLA's compile time dominates: skip its expensive passes.
_FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _call(f, *args):
    """``jax.jit(f)(*args)``, compiled without XLA's expensive optimisation passes."""
    return jax.jit(f).lower(*args).compile(compiler_options=_FAST)(*args)


# ---------------------------------------------------------------- ∂h_T/∂h_k, computed three ways

@pytest.mark.parametrize("name", ["elman relu", "jordan", "lstm peephole", "gru", "gru before"])
def test_lag_jacobians_agree_vjp_jacrev_manual(name):
    cell = CELLS[name]
    params, xs = _params(cell), _xs()
    methods = ["jacrev", "vjp", "manual"]
    ref, *others = _call(lambda p, x: [dg.lag_jacobians(cell, p, x, method=m)
                                       for m in methods], params, xs)
    n = ravel_pytree(cell.initial_carry((), F64))[0].size
    assert ref.shape == (T + 1, n, n)
    np.testing.assert_allclose(ref[-1], np.eye(n))
    assert float(jnp.max(jnp.abs(ref[0]))) > 1e-8  # not trivially zero
    for other in others:
        np.testing.assert_allclose(other, ref, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["elman tanh", "lstm"])
def test_lag_jacobians_match_jacrev_of_the_runner(name):
    """Independent oracle: jax.jacrev of rnn_jax.run on the suffix xs[k:], started from h_k;
    and the public sequence backward ``bptt`` run on the same suffix with unit upstream
    gradients on the final carry."""
    cell = CELLS[name]
    _, unravel = ravel_pytree(cell.initial_carry((), F64))
    ks = (0, 5, T - 1)

    def compute(params, xs):
        states, _ = dg.trajectory(cell, params, xs)
        out = {"js": dg.lag_jacobians(cell, params, xs), "run": [], "bptt": []}
        for k in ks:
            def final(h, k=k):
                return ravel_pytree(rnn_jax.run(cell, params, xs[k:], unravel(h))[0])[0]
            out["run"].append(jax.jacrev(final)(states[k]))
            out["bptt"].append(dg.jacobian_via_bptt(cell, params, xs, k))
        return out

    out = _call(compute, _params(cell), _xs())
    for i, k in enumerate(ks):
        np.testing.assert_allclose(out["js"][k], out["run"][i], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(out["bptt"][i], out["js"][k], rtol=1e-10, atol=1e-13)


def test_step_jacobian_of_elman_is_diag_phi_prime_times_w():
    cell = CELLS["elman tanh"]
    params, xs = _params(cell), _xs()
    states, xps = dg.trajectory(cell, params, xs)
    a = xps + states[:-1] @ params.w_hh.T                      # (T, H) pre-activations
    expected = (1 - jnp.tanh(a) ** 2)[:, :, None] * params.w_hh[None]
    np.testing.assert_allclose(dg.step_jacobians(cell, params, xs), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["elman tanh", "jordan", "lstm"])
def test_state_gradients_match_the_runner_and_manual(name):
    cell = CELLS[name]
    target = jax.random.normal(jax.random.key(3), (T, cell.output_size), F64)
    weights = jnp.arange(1, T + 1, dtype=F64)[:, None]
    loss_fn = lambda ys: jnp.sum((ys - target) ** 2 * weights)  # noqa: E731
    _, unravel = ravel_pytree(cell.initial_carry((), F64))
    out_of = (lambda c: c.h) if cell.name == "lstm" else (lambda c: c)
    ts = (1, 7, T)

    def compute(params, xs):
        grads = dg.state_gradients(cell, params, xs, loss_fn)
        states, _ = dg.trajectory(cell, params, xs)
        _, ys = rnn_jax.run(cell, params, xs)
        oracle = []
        for t in ts:  # ∂L/∂h_t: outputs before t fixed, y_t read from h_t, the rest re-run
            def loss_from(h, t=t):
                rest = rnn_jax.run(cell, params, xs[t:], unravel(h))[1]
                return loss_fn(jnp.concatenate([ys[:t - 1], out_of(unravel(h))[None], rest]))
            oracle.append(jax.grad(loss_from)(states[t]))
        norms = dg.state_gradient_norms(cell, params, xs, loss_fn)
        by_hand = dg.state_gradients_manual(cell, params, xs, loss_fn)
        return grads, oracle, norms, by_hand

    grads, oracle, norms, by_hand = _call(compute, _params(cell), _xs())
    assert grads.shape == (T, ravel_pytree(cell.initial_carry((), F64))[0].size)
    for t, g in zip(ts, oracle):
        np.testing.assert_allclose(grads[t - 1], g, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(norms, np.linalg.norm(grads, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(by_hand, grads, rtol=1e-10, atol=1e-12)


def test_final_loss_gradient_is_a_row_combination_of_the_jacobian():
    cell = CELLS["elman tanh"]
    params, xs = _params(cell), _xs()
    u = jnp.arange(1.0, H + 1, dtype=F64)
    grads = dg.state_gradients(cell, params, xs, lambda ys: ys[-1] @ u)
    js = dg.lag_jacobians(cell, params, xs)
    np.testing.assert_allclose(grads, jnp.einsum("i,kij->kj", u, js[1:]), rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------- spectra and the Pascanu bound

_ELMANS = {}


def _elman_with_w(activation, w, seed=0):
    """An Elman cell (one per activation and size, so compilations are reused) with W_hh = w."""
    key = (activation, w.shape[0])
    if key not in _ELMANS:
        _ELMANS[key] = rnn_jax.elman(I, w.shape[0], activation=activation, dtype=F64)
    cell = _ELMANS[key]
    return cell, cell.init(jax.random.key(seed))._replace(w_hh=w)


_NORMS = {}


def _norms(cell, params, xs, **kw):
    """jacobian_norms, jitted once per (cell, options): repeated shapes reuse the compilation."""
    key = (id(cell), tuple(sorted(kw.items())), np.shape(xs))
    if key not in _NORMS:
        f = jax.jit(lambda p, x: dg.jacobian_norms(cell, p, x, **kw))
        _NORMS[key] = (cell, f.lower(params, xs).compile(compiler_options=_FAST))
    return np.asarray(_NORMS[key][1](params, xs))


@pytest.mark.parametrize("activation, s_max", [("tanh", 0.95), ("tanh", 0.6), ("sigmoid", 3.8)])
@pytest.mark.parametrize("seed", [0, 1])
def test_pascanu_bound_holds_at_every_lag(activation, s_max, seed):
    """‖∂h_T/∂h_k‖₂ ≤ (γ σ_max)^{T-k} for every k, with γ = 1 (tanh) or 1/4 (sigmoid)."""
    length, hidden = 60, 8
    w = jax.random.normal(jax.random.key(10 + seed), (hidden, hidden), F64)
    w = dg.scale_to_singular_value(w, s_max)
    cell, params = _elman_with_w(activation, w, seed)
    gamma = dg.derivative_bound(activation)
    assert gamma * s_max < 1 and dg.regime(w, gamma) == "vanishing"
    xs = 2.0 * _xs(seed, length)
    norms = _norms(cell, params, xs)
    bound = np.asarray(dg.pascanu_bound(w, np.arange(length + 1), gamma))
    np.testing.assert_allclose(bound, (gamma * s_max) ** np.arange(length + 1), rtol=1e-12)
    assert np.all(norms <= bound * (1 + 1e-10)), np.max(norms / bound)
    assert norms[-1] < 0.5 * bound[-1]  # and it is not vacuous: saturation makes it strict


@pytest.mark.parametrize("rho", [0.9, 1.05])
def test_linear_rnn_with_scaled_orthogonal_w_has_norm_exactly_rho_to_the_lag(rho):
    length = 120
    q = jax.nn.initializers.orthogonal()(jax.random.key(4), (H, H), F64)
    cell, params = _elman_with_w("identity", rho * q)
    assert dg.spectral_radius(rho * q) == pytest.approx(rho, rel=1e-12)
    assert float(dg.largest_singular_value(rho * q)) == pytest.approx(rho, rel=1e-12)
    np.testing.assert_allclose(dg.step_jacobians(cell, params, _xs(0, 5)),
                               np.broadcast_to(rho * q, (5, H, H)), rtol=1e-13)
    norms = _norms(cell, params, _xs(0, length))
    np.testing.assert_allclose(norms, rho ** np.arange(length + 1), rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_linear_rnn_grows_at_the_rate_of_the_spectral_radius(seed):
    """Generic (non-normal) W scaled to ρ = 1.1: σ_max is larger, yet log‖W^l‖ grows like
    l·log ρ (Gelfand's formula)."""
    length, rho = 120, 1.1
    w = dg.scale_to_spectral_radius(jax.random.normal(jax.random.key(20 + seed), (H, H), F64), rho)
    assert float(dg.largest_singular_value(w)) > 1.2 * rho  # the singular value overstates it
    cell, params = _elman_with_w("identity", w)
    norms = _norms(cell, params, _xs(seed, length))
    lags = np.arange(length // 2, length + 1)
    rate = math.exp(np.polyfit(lags, np.log(norms[lags]), 1)[0])
    assert rate == pytest.approx(rho, rel=5e-3)
    assert norms[-1] > 1e4  # 1.1^120 ≈ 9e4: it explodes


def test_lstm_open_forget_gate_keeps_the_gradient_over_1000_steps_while_tanh_loses_it():
    length, hidden = 1000, 6
    xs = _xs(5, length)
    lstm = rnn_jax.lstm(I, hidden, forget_bias=20.0, dtype=F64)
    lp = lstm.init(jax.random.key(0))
    c_norm = _norms(lstm, lp, xs, part="c")[-1]           # ‖∂c_T/∂c_0‖, h_0 held fixed
    tanh = rnn_jax.elman(I, hidden, dtype=F64)            # orthogonal W_hh: σ_max = 1
    h_norm = _norms(tanh, tanh.init(jax.random.key(0)), xs)[-1]
    assert c_norm > 0.5, c_norm
    assert h_norm < 1e-6, h_norm
    # Constant error carousel in isolation (no h -> gates path): ∂c_T/∂c_0 = diag(Π_t f_t).
    lp0 = lp._replace(w_hh=jnp.zeros_like(lp.w_hh))
    f = jax.nn.sigmoid(jax.vmap(lambda x: lstm.project(lp0, x))(xs)[:, hidden:2 * hidden])    # (T, H), h-independent
    cec = _norms(lstm, lp0, xs, part="c")
    np.testing.assert_allclose(cec[-1], np.max(np.prod(np.asarray(f), axis=0)), rtol=1e-10)
    assert cec[-1] > 1 - 1e-3


def test_spectra_small_cases():
    w = jnp.array([[0.0, 2.0], [0.5, 0.0]], F64)           # eigenvalues ±1, singular values 2, 1/2
    assert dg.spectral_radius(w) == pytest.approx(1.0)
    assert float(dg.largest_singular_value(w)) == pytest.approx(2.0)
    assert dg.regime(w, 1.0) == "may explode" and dg.regime(w, 0.25) == "vanishing"
    np.testing.assert_allclose(dg.pascanu_bound(w, [0, 1, 3], 0.25), [1.0, 0.5, 0.125])
    rot = rnn_jax.initializers.random_rotation()(jax.random.key(0), (6, 6), F64)
    assert dg.spectral_radius(rot) == pytest.approx(1.0)
    assert float(dg.largest_singular_value(rot)) == pytest.approx(1.0)
    assert dg.spectral_radius(dg.scale_to_spectral_radius(w, 0.3)) == pytest.approx(0.3)
    for name, gamma in [("tanh", 1.0), ("sigmoid", 0.25), ("relu", 1.0), ("identity", 1.0)]:
        assert dg.derivative_bound(name) == gamma
    a = jnp.linspace(-6.0, 6.0, 2001, dtype=F64)           # γ is the sup of |φ'|, attained at 0
    for name, fn in [("tanh", jnp.tanh), ("sigmoid", jax.nn.sigmoid)]:
        d = jax.vmap(jax.grad(fn))(a)
        assert float(jnp.max(jnp.abs(d))) == pytest.approx(dg.derivative_bound(name))
    with pytest.raises(ValueError, match="no derivative bound"):
        dg.derivative_bound("swish")
    lstm, gru = CELLS["lstm"], CELLS["gru"]
    blocks = dg.gate_blocks(lstm, _params(lstm))
    assert list(blocks) == ["i", "f", "g", "o"] and all(b.shape == (H, H) for b in blocks.values())
    assert list(dg.gate_blocks(gru, _params(gru))) == ["r", "z", "n"]


def test_part_indices_and_errors():
    lstm, elman = CELLS["lstm"], CELLS["elman tanh"]
    np.testing.assert_array_equal(dg.part_indices(lstm, _params(lstm), "h"), np.arange(H))
    np.testing.assert_array_equal(dg.part_indices(lstm, _params(lstm), "c"), np.arange(H, 2 * H))
    with pytest.raises(ValueError, match="part="):
        dg.part_indices(elman, _params(elman), "c")
    with pytest.raises(ValueError, match="method="):
        dg.lag_jacobians(elman, _params(elman), _xs(), method="finite")
    with pytest.raises(ValueError, match="one sequence"):
        dg.lag_jacobians(elman, _params(elman), jnp.zeros((2, T, I), F64))


# ---------------------------------------------------------------- report, plot and command line

def test_gradients_command_writes_table_png_and_csv(tmp_path, capsys):
    out = tmp_path / "g"
    assert cli_main(["gradients", "--out", str(out), "--length", "20", "--hidden", "6",
                     "--sequences", "2", "--radii", "0.5"]) == 0
    text = capsys.readouterr().out
    modules = [f"clockwork module {k + 1} (T={2 ** k})" for k in range(4)]
    names = ["tanh rho=0.5", "identity rho=1.02", "relu identity (IRNN)", "tanh orthogonal",
             "lstm (h,c)", "gru", "clockwork", "scrn", *modules, "scrn h", "scrn s"]
    rows = {}
    for line in text.splitlines():
        found = [n for n in names if line.startswith(n + " ")]
        if found:
            n = max(found, key=len)
            rows[n] = line[len(n):].split()  # rho, s_max, g*s_max, lag 1, 10, 20, rate
    assert list(rows) == names and "lag 20" in text
    assert (out / "gradients.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "gradients.csv") as f:
        assert f.readline().strip() == ",".join(["lag", *names])
    table = np.loadtxt(out / "gradients.csv", delimiter=",", skiprows=1)
    assert table.shape == (21, 1 + len(names))
    np.testing.assert_allclose(table[0, 1:], 1.0)          # lag 0: ‖I‖ = 1
    col = {n: table[:, 1 + i] for i, n in enumerate(names)}
    assert col[modules[-1]][20] > 1e3 * col[modules[0]][20]   # the slow module keeps its gradient
    assert col["scrn s"][20] > col["scrn h"][20]             # and so does the SCRN's context
    assert float(rows["tanh rho=0.5"][0]) == pytest.approx(0.5)
    assert float(rows["identity rho=1.02"][-1]) == pytest.approx(1.02, rel=0.05)  # rate ≈ ρ
    for i, n in enumerate(names):                           # the Pascanu bound, mean curves
        if rows[n][2] != "-":
            bound = float(rows[n][2]) ** table[:, 0]
            assert np.all(table[:, 1 + i] <= bound * (1 + 2e-3)), n  # 3 printed decimals
