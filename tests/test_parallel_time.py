"""Parallel-in-time evaluation (DEER / quasi-DEER Newton iterations) against the sequential scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnn_jax
from rnn_jax._src.parallel_scan import linear_recurrence
from rnn_jax._src.parallel_time import ParallelInTime, parallel_in_time
from rnn_jax._src.verify import (
    _FAST_COMPILE,
    CASES,
    call_compiled,
    random_carry,
    random_like,
    rel_err,
)

F64 = jnp.float64
B, T, I, H = 3, 7, 3, 4
CELLS = {"elman": lambda: rnn_jax.elman(I, H, dtype=F64),
         "lstm peephole proj_size=2": lambda: rnn_jax.lstm(I, H, peephole=True, proj_size=2,
                                                           dtype=F64),
         "gru reset=before": lambda: rnn_jax.gru(I, H, reset="before", dtype=F64)}
_COMPILED = {}


def _pairing(dcarry, dys, final, ys):
    return jnp.vdot(dys, ys) + sum(jnp.vdot(a, b) for a, b in
                                   zip(jax.tree.leaves(dcarry), jax.tree.leaves(final)))


def _all_variants(cell):
    """Values, info and gradients of every (reverse, jacobian) variant and of Autodiff."""
    def f(params, xs, c0, lengths, resets, dcarry, dys):
        out = {}
        for reverse in (False, True):
            def seq(p, x, c, reverse=reverse):
                return rnn_jax.run(cell, p, x, c, lengths=lengths, resets=resets,
                                   reverse=reverse, grad=rnn_jax.Autodiff())

            want, pull = jax.vjp(seq, params, xs, c0)
            out[f"{reverse} sequential"] = (want, pull((dcarry, dys)), None)
            for jacobian in ("full", "diagonal"):
                def par(p, x, c, reverse=reverse, jacobian=jacobian):
                    final, ys, info = parallel_in_time(
                        cell, p, x, c, lengths=lengths, resets=resets, reverse=reverse,
                        jacobian=jacobian, tol=1e-13, on_failure="nan")
                    return (final, ys), info

                if (jacobian == "full") != reverse:   # gradients: one variant per direction
                    got, pull, info = jax.vjp(par, params, xs, c0, has_aux=True)
                    out[f"{reverse} {jacobian}"] = (got, pull((dcarry, dys)), info)
                else:
                    got, info = par(params, xs, c0)
                    out[f"{reverse} {jacobian}"] = (got, None, info)
        return out
    return f


@pytest.mark.parametrize("name", list(CELLS))
@settings(max_examples=3)
@given(seed=st.integers(0, 2**16), data=st.data())
def test_matches_sequential_and_autodiff(name, seed, data):
    """Forward values (lengths with 0 and T, resets, reverse) equal the sequential run and the
    gradients (params, xs, initial carry) equal Autodiff's, both Jacobian variants, float64."""
    cell = CELLS[name]()
    rng = np.random.default_rng(seed)
    params = random_like(cell.init(jax.random.key(seed)), rng, 0.4)
    xs = jnp.asarray(rng.normal(size=(B, T, I)))
    c0 = random_carry(cell, (B,), rng, 0.5)
    lengths = jnp.asarray([T, data.draw(st.integers(0, T)), 0])
    resets = jnp.asarray(rng.random((B, T)) < 0.25)
    dcarry, dys = random_like(c0, rng), jnp.asarray(rng.normal(size=(B, T, cell.output_size)))
    args = (params, xs, c0, lengths, resets, dcarry, dys)
    if name not in _COMPILED:
        _COMPILED[name] = jax.jit(_all_variants(cell)).lower(*args).compile(_FAST_COMPILE)
    out = _COMPILED[name](*args)
    for reverse in (False, True):
        want, want_grads, _ = out[f"{reverse} sequential"]
        for jacobian in ("full", "diagonal"):
            got, grads, info = out[f"{reverse} {jacobian}"]
            assert bool(jnp.all(info.converged))
            assert int(info.iterations[2]) == 0          # length 0: the guess is the answer
            assert int(jnp.max(info.iterations)) <= T
            assert rel_err(got, want) <= 1e-10
            if grads is not None:
                assert rel_err(grads, want_grads) <= 1e-10


def _expansive():
    """A tanh Elman network whose recurrent matrix has spectral radius 3."""
    cell = rnn_jax.elman(2, 6, dtype=F64)
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 6))
    w *= 3.0 / np.max(np.abs(np.linalg.eigvals(w)))
    params = random_like(cell.init(jax.random.key(1)), rng, 0.5)._replace(w_hh=jnp.asarray(w))
    xs = jnp.asarray(rng.normal(size=(2, 12, 2)))
    return cell, params, xs, rng


def test_expansive_network_newton_exact_within_T_and_failure_modes():
    """Full and diagonal Newton converge within T = 12 iterations on an expansive network;
    with max_iters=2 they do not, and the result is the sequential run's or NaN, as asked."""
    cell, params, xs, rng = _expansive()
    lengths = jnp.array([12, 9])
    dys = jnp.asarray(rng.normal(size=(2, 12, 6)))

    def f(params, xs):
        def loss(p, x, grad):
            return jnp.vdot(dys, rnn_jax.run(cell, p, x, lengths=lengths, grad=grad)[1])

        res = {"seq": rnn_jax.run(cell, params, xs, lengths=lengths, grad=rnn_jax.Autodiff()),
               "grad": jax.grad(loss)(params, xs, rnn_jax.Autodiff()),
               "grad fallback": jax.grad(loss)(params, xs, ParallelInTime(max_iters=2))}
        for jacobian in ("full", "diagonal"):
            for max_iters, on_failure in ((None, "nan"), (2, "sequential"), (2, "nan")):
                res[f"{jacobian} {max_iters} {on_failure}"] = parallel_in_time(
                    cell, params, xs, lengths=lengths, jacobian=jacobian,
                    max_iters=max_iters, on_failure=on_failure)
        return res

    res = call_compiled(f, params, xs)
    seq = res["seq"]
    assert rel_err(res["grad fallback"], res["grad"]) <= 1e-10
    for jacobian in ("full", "diagonal"):
        final, ys, info = res[f"{jacobian} None nan"]
        assert bool(jnp.all(info.converged)) and int(jnp.max(info.iterations)) <= 12
        assert rel_err((final, ys), seq) <= 1e-10
        final, ys, info = res[f"{jacobian} 2 sequential"]
        assert not bool(jnp.any(info.converged))
        assert np.all(np.asarray(info.iterations) == 2) and bool(jnp.all(info.residual > 1e-3))
        assert rel_err((final, ys), seq) <= 1e-10
        final, ys, info = res[f"{jacobian} 2 nan"]
        assert bool(jnp.all(jnp.isnan(final))) and bool(jnp.all(jnp.isnan(ys)))


def test_damping_converges_to_the_same_run_in_more_iterations():
    cell = rnn_jax.elman(2, 5, dtype=F64)
    rng = np.random.default_rng(2)
    params = random_like(cell.init(jax.random.key(2)), rng, 0.5)
    xs = jnp.asarray(rng.normal(size=(2, 10, 2)))

    def f(params, xs):
        return [parallel_in_time(cell, params, xs, damping=d, max_iters=400, tol=1e-13,
                                 on_failure="nan")
                for d in (0.0, 0.5)] + [rnn_jax.run(cell, params, xs, grad=rnn_jax.Autodiff())]

    (*plain, info0), (*damped, info1), seq = call_compiled(f, params, xs)
    assert bool(jnp.all(info0.converged)) and bool(jnp.all(info1.converged))
    assert bool(jnp.all(info1.iterations > info0.iterations))
    assert rel_err(plain, seq) <= 1e-10 and rel_err(damped, seq) <= 1e-10


def test_under_jit_batch_shape_and_float32_defaults():
    """``jax.jit`` with static options, two batch dimensions, float32 and the default tol."""
    cell = rnn_jax.elman(3, 8)
    params = cell.init(jax.random.key(3))
    xs = jax.random.normal(jax.random.key(4), (2, 2, 16, 3), jnp.float32)
    lengths = jnp.array([[16, 11], [0, 15]])
    fn = jax.jit(parallel_in_time, static_argnums=0,
                 static_argnames=("reverse", "jacobian", "tol", "max_iters", "damping"))
    final, ys, info = fn(cell, params, xs, lengths=lengths, reverse=True, jacobian="diagonal")
    want_final, want_ys = rnn_jax.run(cell, params, xs, lengths=lengths, reverse=True)
    assert info.converged.shape == info.iterations.shape == (2, 2)
    assert bool(jnp.all(info.converged)) and ys.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(ys - want_ys))) <= 1e-5
    assert float(max(jnp.max(jnp.abs(a - b)) for a, b in zip(final, want_final))) <= 1e-5


def test_other_cells_forward():
    """Jordan and Clockwork (a pytree carry with a discrete clock) forwards, reversed."""
    cases = [c for c in CASES if c.options in ("activation=tanh output=identity O=5",
                                               "periods=1,2,4,8")]
    rng = np.random.default_rng(6)
    cells = [c.make(I, H, F64) for c in cases]
    params = [random_like(c.init(jax.random.key(6)), rng, 0.4) for c in cells]
    carries = [random_carry(c, (B,), rng, 0.5) for c in cells]
    xs, lengths = jnp.asarray(rng.normal(size=(B, T, I))), jnp.array([T, 3, 0])

    def f(params, carries, xs):
        return [(rnn_jax.run(c, p, xs, c0, lengths=lengths, reverse=True),
                 parallel_in_time(c, p, xs, c0, lengths=lengths, reverse=True, tol=1e-13,
                                  on_failure="nan"))
                for c, p, c0 in zip(cells, params, carries)]

    for want, (*got, info) in call_compiled(f, params, carries, xs):
        assert bool(jnp.all(info.converged)) and rel_err(got, want) <= 1e-10


def test_linear_recurrence_matches_a_loop():
    rng = np.random.default_rng(5)
    a, b, z0 = rng.normal(size=(6, 3, 3)) * 0.7, rng.normal(size=(6, 3)), rng.normal(size=3)
    combos = [(d, r) for d in (False, True) for r in (False, True)]

    def solve_all(a, b, z0):
        return [linear_recurrence(jnp.diagonal(a, axis1=1, axis2=2) if d else a, b, z0,
                                  diagonal=d, reverse=r) for d, r in combos]

    for (diagonal, reverse), got in zip(combos, call_compiled(solve_all, a, b, z0)):
        aa = np.diagonal(a, axis1=1, axis2=2) if diagonal else a
        z, want = z0, []
        for s in (range(5, -1, -1) if reverse else range(6)):
            z = (aa[s] * z if diagonal else aa[s] @ z) + b[s]
            want.append(z)
        assert rel_err(got, np.stack(want[::-1] if reverse else want)) <= 1e-12


@pytest.mark.parametrize("kwargs,error,match", [
    ({"jacobian": "dense"}, ValueError, "jacobian"),
    ({"jacobian": 1}, TypeError, "jacobian"),
    ({"on_failure": "raise"}, ValueError, "on_failure"),
    ({"tol": 0.0}, ValueError, "tol"),
    ({"tol": float("nan")}, ValueError, "tol"),
    ({"tol": "1e-6"}, TypeError, "tol"),
    ({"max_iters": 0}, ValueError, "max_iters"),
    ({"max_iters": 2.0}, TypeError, "max_iters"),
    ({"max_iters": True}, TypeError, "max_iters"),
    ({"damping": -0.1}, ValueError, "damping"),
    ({"damping": float("inf")}, ValueError, "damping"),
    ({"damping": None}, TypeError, "damping"),
])
def test_bad_options_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        ParallelInTime(**kwargs)
    cell = rnn_jax.elman(2, 3)
    with pytest.raises(error, match=match):
        parallel_in_time(cell, cell.init(jax.random.key(0)), jnp.zeros((4, 2)), **kwargs)


def test_gradient_method_is_static_and_hashable():
    m = ParallelInTime(jacobian="diagonal", tol=1e-8, max_iters=5, damping=0.1)
    assert m == ParallelInTime(jacobian="diagonal", tol=1e-8, max_iters=5, damping=0.1)
    assert hash(m) == hash(ParallelInTime(jacobian="diagonal", tol=1e-8, max_iters=5,
                                          damping=0.1))
    assert jax.tree.leaves(m) == []
