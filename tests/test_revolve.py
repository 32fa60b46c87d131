"""``Revolve``: binomial checkpointing against autodiff (float64), its schedule against a
brute-force optimum, and the step evaluations its compiled backward pass really performs."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnn_jax
from rnn_jax._src.revolve import Revolve, revolve_steps, schedule
from rnn_jax._src.verify import (
    _FAST_COMPILE,
    CASES,
    call_compiled,
    random_carry,
    random_like,
    rel_err,
)

F64 = jnp.float64
EXACT = [c for c in CASES if c.truncate is None and c.clip is None]


@functools.cache
def brute_force(L: int, s: int) -> int:
    """Fewest advances reversing ``L`` steps with ``s`` snapshots (``c_0`` one of them): the
    best first split ``m`` by exhaustive search; one snapshot leaves only re-advancing."""
    if L <= 1:
        return 0
    if s == 1:
        return L * (L - 1) // 2
    return min(m + brute_force(L - m, s - 1) + brute_force(m, s) for m in range(1, L))


def closed_form(T: int, s: int) -> int:
    """Griewank 1992: ``r·T - C(s + r, s + 1)`` with ``C(s + r - 1, s) < T ≤ C(s + r, s)``."""
    r = next(r for r in range(T + 1) if math.comb(s + r, s) >= T)
    return r * T - (math.comb(s + r, s + 1) if r >= 1 else 0)


def replay(T: int, k: int) -> int:
    """Runs :func:`schedule` on integers (a carry is its time index); checks every reverse step
    sees its own carry, in order ``T-1 … 0``, with at most ``k`` snapshots; returns the
    advances."""
    rows = schedule(T, k)
    snaps, cur, turned, advances = {0: 0}, None, [], 0
    for load, t, n, store, turn in rows.tolist():
        if load >= 0:
            assert snaps[load] == t
            cur = snaps[load]
        assert cur == t
        cur, advances = cur + n, advances + n
        if store >= 0:
            snaps[store] = cur
        if turn:
            turned.append(cur)
    assert turned == list(range(T - 1, -1, -1))
    assert len(snaps) <= min(k, T) or T == 0
    return advances


def test_schedule_is_optimal_and_correct():
    for T in range(31):
        for s in range(1, 6):
            want = brute_force(T, s)
            assert revolve_steps(T, s) == want == (closed_form(T, s) if T else 0), (T, s)
            assert replay(T, s) == want
    assert revolve_steps(1000, 1) == 1000 * 999 // 2 and revolve_steps(1000, 1000) == 999
    assert replay(400, 4) == revolve_steps(400, 4) == closed_form(400, 4)


def _pairing(dys, dcarry, final, ys):
    return jnp.vdot(dys, ys) + sum(jnp.vdot(a, b) for a, b in
                                   zip(jax.tree.leaves(dcarry), jax.tree.leaves(final)))


def _problem(cell, B, T, seed):
    rng = np.random.default_rng(seed)
    params = random_like(cell.init(jax.random.key(seed)), rng, 0.5)
    xs = jnp.asarray(rng.normal(size=(B, T, cell.input_size)))
    carry0 = random_carry(cell, (B,), rng, 0.5)
    dys = jnp.asarray(rng.normal(size=(B, T, cell.output_size)))
    return rng, params, xs, carry0, dys, random_like(carry0, rng)


def _all_grads(cell, methods, params, xs, carry0, dys, dcarry, lengths, resets, reverse):
    def loss(p, x, c, grad):
        final, ys = rnn_jax.run(cell, p, x, c, lengths=lengths, resets=resets,
                                reverse=reverse, grad=grad)
        return _pairing(dys, dcarry, final, ys)

    return [jax.grad(loss, (0, 1, 2))(params, xs, carry0, g) for g in methods]


FAMILIES = ["elman activation=tanh", "jordan activation=tanh output=identity O=5",
            "lstm peephole proj_size=2", "gru reset=before", "scrn learn_alpha activation=tanh S=2",
            "clockwork periods=1,2,4,8"]


def _check(case, T, reverse, lengths, resets, seed):
    """Revolve(k) for k = 1, 2, 3 and k > T against autodiff: gradients w.r.t. params, inputs
    and initial carry, for each direction in ``reverse``."""
    B = 3
    cell = case.make(3, 4, F64)
    rng, params, xs, carry0, dys, dcarry = _problem(cell, B, T, seed)
    lengths = jnp.asarray([T, int(rng.integers(0, T + 1)), 0]) if lengths else None
    resets = jnp.asarray(rng.random((B, T)) < 0.3) if resets else None
    methods = [rnn_jax.Autodiff()] + [Revolve(k) for k in (1, 2, 3, T + 2)]

    def both(*args):
        return [_all_grads(cell, methods, *args, reverse=r) for r in reverse]

    for auto, *revolved in call_compiled(both, params, xs, carry0, dys, dcarry, lengths, resets):
        for got in revolved:
            assert rel_err(got, auto) <= 1e-10


@pytest.mark.parametrize("name", FAMILIES)
def test_each_cell_matches_autodiff(name):
    """Every cell family, T = 7 with lengths (7, random, 0) and resets; every other family
    reversed (the reversal is the cell's business nowhere: one direction each saves compiles)."""
    i = FAMILIES.index(name)
    _check(next(c for c in EXACT if f"{c.cell} {c.options}" == name), 7, (i % 2 == 1,),
           True, True, seed=i)


@given(case=st.sampled_from(EXACT), T=st.sampled_from([1, 20]), reverse=st.booleans(),
       use_lengths=st.booleans(), use_resets=st.booleans(), seed=st.integers(0, 2**16))
@settings(max_examples=4)
def test_revolve_matches_autodiff(case, T, reverse, use_lengths, use_resets, seed):
    _check(case, T, (reverse,), use_lengths, use_resets, seed)


def test_own_cell_and_step_count():
    """A cell of one's own (no hand-written backward) is differentiated exactly, and the
    compiled program evaluates its step ``2T + revolve_steps(T, k)`` times: ``T`` in the
    forward pass, ``T`` in the pullbacks, the advances of the schedule."""
    base = rnn_jax.gru(3, 4, dtype=F64)
    ks = (1, 3, 20)
    counts = dict.fromkeys((0, *ks), 0)   # 0: autodiff's

    def own(k):   # a cell per k, each counting its own step evaluations
        def recur(p, c, xp):
            jax.debug.callback(lambda: counts.__setitem__(k, counts[k] + 1))
            new, y = base.recur(p, c, xp)
            return jnp.sin(new), y
        return base._replace(recur=recur)

    B, T = 2, 13
    _, params, xs, carry0, dys, dcarry = _problem(base, B, T, 7)
    args = (params, xs, carry0, dys, dcarry, jnp.asarray([T, 5]), None)
    auto = jax.jit(functools.partial(_all_grads, own(0), [rnn_jax.Autodiff()],
                                     reverse=True))(*args)[0]
    f = jax.jit(lambda *a: [_all_grads(own(k), [Revolve(k)], *a, reverse=True)[0]
                            for k in ks])
    f.lower(*args).compile()                  # compiling evaluates nothing
    for got in f(*args):
        assert rel_err(got, auto) <= 1e-10
    assert {k: counts[k] for k in ks} == {k: 2 * T + revolve_steps(T, k) for k in ks}


def test_under_jit_as_static_data():
    cell = rnn_jax.elman(3, 4, dtype=F64)
    _, params, xs, carry0, dys, _ = _problem(cell, 2, 9, 3)

    def loss(p, x, grad):
        return jnp.vdot(dys, rnn_jax.run(cell, p, x, carry0, reverse=True, grad=grad)[1])

    method = Revolve(3)
    assert method == Revolve(3) and hash(method) == hash(Revolve(3))
    assert not jax.tree.leaves(method)
    got = jax.jit(jax.grad(lambda p, x: loss(p, x, method), (0, 1)))(params, xs)
    want = call_compiled(jax.grad(lambda p, x: loss(p, x, rnn_jax.Autodiff()), (0, 1)),
                         params, xs)
    assert rel_err(got, want) <= 1e-10


@pytest.mark.parametrize("bad,error", [(0, ValueError), (-2, ValueError), (True, TypeError),
                                       (2.0, TypeError), ("3", TypeError), (None, TypeError)])
def test_bad_snapshots(bad, error):
    with pytest.raises(error, match="snapshots"):
        Revolve(bad)
    with pytest.raises(error, match="snapshots"):
        revolve_steps(10, bad)


def test_backward_temp_memory_below_autodiff():
    """XLA's temp memory of the compiled gradient, T = 400: k = 4 stores 4 carries instead of
    autodiff's 400 steps of carries and gate activations (about 1.8 MB against 11.6 MB for
    this LSTM, B=8, H=64, float32; the rest is mostly the (T, B, H) outputs and cotangents)."""
    cell = rnn_jax.lstm(8, 64)
    params = cell.init(jax.random.key(0))
    xs = jnp.zeros((8, 400, 8), jnp.float32)

    def temp(method):
        f = jax.jit(jax.grad(lambda p: jnp.sum(rnn_jax.run(cell, p, xs, grad=method)[1] ** 2)))
        return f.lower(params).compile(_FAST_COMPILE).memory_analysis().temp_size_in_bytes

    assert 2 * temp(Revolve(4)) < temp(rnn_jax.Autodiff())


def test_no_input_gradient_buffer_unless_inputs_are_differentiated():
    """The backward pass builds the ``(T + 1, B, I)`` buffer of input gradients only when ``xs``
    is differentiated (a lower layer's outputs); for the parameters alone it traces none."""
    T, B, I = 7, 3, 5
    cell = rnn_jax.gru(I, 4, dtype=F64)
    _, params, xs, carry0, dys, _ = _problem(cell, B, T, 0)

    def buffers(argnums):
        f = jax.grad(lambda p, x: jnp.vdot(dys, rnn_jax.run(cell, p, x, carry0,
                                                             grad=Revolve(2))[1]), argnums)
        return str(jax.make_jaxpr(f)(params, xs)).count(f"f64[{T + 1},{B},{I}]")

    assert buffers(0) == 0
    assert buffers((0, 1)) > 0
