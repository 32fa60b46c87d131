"""The features-first scan (``scan_steps(features_first=True)``) against the batch-first one.

Both run the same cell equations on transposed arrays, so outputs, final carries and gradients
must agree to rounding for every cell and option, with padding, reversal and resets; large
batches take the features-first path by default, and cells whose step is not marked as
supporting it never do.
"""

import functools

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rnn_jax
from rnn_jax._src import scan as scan_mod
from rnn_jax._src import tuning

F64 = jnp.float64
I, H, T = 3, 4, 6
BATCH = (2, 3)
RULES = tuning.FEATURES_FIRST_FROM[tuning.backend()]  # this backend's layout rules
LSTM_FROM = RULES["lstm"][0]  # batch size from which an LSTM runs features first

CELLS = {
    "elman_relu": rnn_jax.elman(I, H, activation="relu", dtype=F64),
    "jordan": rnn_jax.jordan(I, H, 2, dtype=F64),
    "lstm": rnn_jax.lstm(I, H, dtype=F64),
    "lstm_peep_proj": rnn_jax.lstm(I, H, peephole=True, proj_size=3, dtype=F64),
    "gru_after": rnn_jax.gru(I, H, dtype=F64),
    "gru_before": rnn_jax.gru(I, H, reset="before", dtype=F64),
}


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("reverse", "features_first"))
def scan_loss(cell, params, xs, carry, valid, resets, *, reverse, features_first):
    """``(final, ys)`` of the scan and the gradient of a loss of both w.r.t. params and xs."""
    def loss(params, xs):
        final, ys = scan_mod.scan_steps(cell, params, xs, carry, valid, reverse=reverse,
                                        resets=resets, features_first=features_first)
        out = jnp.sum(jnp.sin(ys)) + sum(jnp.sum(c ** 2) for c in jax.tree.leaves(final))
        return out, (final, ys)

    (_, aux), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, xs)
    return aux, grads


@given(name=st.sampled_from(sorted(CELLS)), seed=st.integers(0, 2**16), reverse=st.booleans(),
       masks=st.booleans())
def test_features_first_scan_equals_batch_first(name, seed, reverse, masks):
    cell = CELLS[name]
    assert scan_mod.can_scan_features_first(cell)
    k = jax.random.split(jax.random.key(seed), 5)
    params = cell.init(k[0])
    xs = jax.random.normal(k[1], (T, *BATCH, I), F64)
    carry = jax.tree.map(lambda c: jax.random.normal(k[2], c.shape, F64),
                         cell.initial_carry(BATCH, F64))
    valid = jax.random.bernoulli(k[3], 0.8, (T, *BATCH)) if masks else None
    resets = jax.random.bernoulli(k[4], 0.2, (T, *BATCH)) if masks else None
    got = scan_loss(cell, params, xs, carry, valid, resets, reverse=reverse, features_first=True)
    want = scan_loss(cell, params, xs, carry, valid, resets, reverse=reverse,
                     features_first=False)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_large_batches_run_features_first_and_agree_with_every_method(reverse):
    """From ``tuning.FEATURES_FIRST_FROM`` sequences ``run`` scans an LSTM features first
    (outputs equal to the batch-first scan), and its gradients agree with batch-first autodiff."""
    cell = rnn_jax.lstm(I, H, peephole=True, dtype=F64)
    B = LSTM_FROM
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (B, T, I), F64)
    lengths = jax.random.randint(jax.random.key(2), (B,), 0, T + 1)
    resets = jax.random.bernoulli(jax.random.key(3), 0.2, (B, T))
    calls = []
    original = scan_mod._scan_features_first

    def spy(*args):
        calls.append(1)
        return original(*args)

    def loss(p, grad):
        return jnp.sum(jnp.tanh(rnn_jax.run(cell, p, xs, lengths=lengths, resets=resets,
                                            grad=grad, reverse=reverse)[1]))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scan_mod, "_scan_features_first", spy)
        _, ys = rnn_jax.run(cell, params, xs, lengths=lengths, resets=resets, reverse=reverse)
        assert calls, "a large LSTM batch did not take the features-first path"
        g_auto = jax.grad(loss)(params, rnn_jax.Autodiff())
        n = len(calls)
        g_manual = jax.grad(loss)(params, rnn_jax.ManualBPTT())
        g_recompute = jax.grad(loss)(params, rnn_jax.ManualBPTT(recompute=True))
        assert len(calls) >= n + 2, "ManualBPTT's saving forward did not run features first"
    time_major = jnp.moveaxis(xs, 1, 0)
    valid = jnp.arange(T)[:, None] < lengths[None, :]
    resets_tm = resets.T
    _, ys_bf = scan_mod.scan_steps(cell, params, time_major, cell.initial_carry((B,), F64),
                                   valid, reverse=reverse, resets=resets_tm,
                                   features_first=False)
    np.testing.assert_allclose(ys, jnp.moveaxis(ys_bf, 0, 1), rtol=1e-12, atol=1e-12)
    g_ref = jax.grad(lambda p: jnp.sum(jnp.tanh(scan_mod.scan_steps(
        cell, p, time_major, cell.initial_carry((B,), F64), valid, reverse=reverse,
        resets=resets_tm, features_first=False)[1])))(params)
    for g in (g_auto, g_manual, g_recompute):
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_small_batches_other_cells_and_replaced_steps_stay_batch_first():
    cell = rnn_jax.lstm(I, H, dtype=F64)
    mine = cell._replace(recur=lambda p, c, xp: cell.recur(p, c, xp))  # unmarked user step
    gru = rnn_jax.gru(I, H, dtype=F64)
    assert scan_mod.can_scan_features_first(cell) and scan_mod.can_scan_features_first(gru)
    assert not scan_mod.can_scan_features_first(mine)
    params = cell.init(jax.random.key(0))
    B = LSTM_FROM
    xs = jax.random.normal(jax.random.key(1), (B, T, I), F64)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scan_mod, "_scan_features_first", None)  # calling it would raise
        _, ys_mine = rnn_jax.run(mine, params, xs)
        _, ys_small = rnn_jax.run(cell, params, xs[: B - 1])
        rnn_jax.run(gru, gru.init(jax.random.key(2)), xs)
    _, ys = rnn_jax.run(cell, params, xs)
    np.testing.assert_allclose(ys_mine, ys, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ys_small, ys[: B - 1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reset", ["after", "before"])
def test_gru_per_sequence_step_equals_batched_step(reset):
    """Batches in ``PER_SEQUENCE_BATCHES`` run the GRU step vmapped per sequence; outputs and
    every gradient method's gradients equal the batched step's."""
    from rnn_jax._src.cells import gru as gru_mod

    cell = rnn_jax.gru(I, H, reset=reset, dtype=F64)
    B = gru_mod.PER_SEQUENCE_BATCHES.start
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (B, T, I), F64)
    lengths = jax.random.randint(jax.random.key(2), (B,), 0, T + 1)

    def outputs(grad):
        def loss(p):
            return jnp.sum(jnp.sin(rnn_jax.run(cell, p, xs, lengths=lengths, grad=grad)[1]))
        return rnn_jax.run(cell, params, xs, lengths=lengths)[1], jax.grad(loss)(params)

    methods = (rnn_jax.Autodiff(), rnn_jax.ManualBPTT(), rnn_jax.ManualBPTT(recompute=True))
    assert gru_mod.per_sequence(jnp.zeros((B, H)))
    vmapped = [outputs(m) for m in methods]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gru_mod, "PER_SEQUENCE_BATCHES", range(0))
        assert not gru_mod.per_sequence(jnp.zeros((B, H)))
        batched = [outputs(m) for m in methods]
    for got, want in zip(vmapped, batched):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fa", [-1, 0])
@pytest.mark.parametrize("opts", [{}, {"peephole": True, "proj_size": 3}])
def test_lstm_fused_step_equals_recur_of_project(fa, opts):
    """The LSTM's fused step (one matmul over ``[x; h]``) is ``recur(project(x))``, in both
    layouts, for outputs and for gradients w.r.t. params, carry and x."""
    from rnn_jax._src.cell import fused_recur

    cell = rnn_jax.lstm(I, H, dtype=F64, **opts)
    fused = fused_recur(cell)
    assert fused is not None
    k = jax.random.split(jax.random.key(7), 3)
    params = cell.init(k[0])
    lay = (lambda a: a) if fa == -1 else (lambda a: jnp.moveaxis(a, -1, 0))
    carry = jax.tree.map(lambda c: lay(jax.random.normal(k[1], c.shape, F64)),
                         cell.initial_carry(BATCH, F64))
    x = lay(jax.random.normal(k[2], (*BATCH, I), F64))

    def both(f):
        def loss(p, c, x):
            new, y = f(p, c, x)
            return jnp.sum(jnp.sin(y)) + jnp.sum(new.c ** 2)
        return f(params, carry, x), jax.grad(loss, argnums=(0, 1, 2))(params, carry, x)

    got = both(lambda p, c, x: fused(p, c, x, fa))
    want = both(lambda p, c, x: cell.recur(p, c, cell.project(p, x, fa=fa), fa=fa))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_fused_step_only_for_the_cells_own_functions_and_small_h():
    """The features-first scan runs the fused step while the cell keeps its own ``project``
    and ``recur`` and ``h`` is at most ``FUSED_UP_TO``; a replaced ``project`` is honoured."""
    from rnn_jax._src.cell import features_first_capable

    cell = rnn_jax.lstm(I, H, dtype=F64)
    assert scan_mod.fused_step(cell) is not None
    assert scan_mod.fused_step(rnn_jax.lstm(I, scan_mod.FUSED_UP_TO + 1)) is None
    assert scan_mod.fused_step(rnn_jax.gru(I, H)) is None

    @features_first_capable
    def doubled(p, x, fa=-1):  # a user's input projection: twice the cell's
        return 2 * cell.project(p, x, fa=fa)

    mine = cell._replace(project=doubled)
    assert scan_mod.fused_step(mine) is None and scan_mod.can_scan_features_first(mine)
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (T, *BATCH, I), F64)
    carry = cell.initial_carry(BATCH, F64)
    got = scan_mod.scan_steps(mine, params, xs, carry, None, features_first=True)
    want = scan_mod.scan_steps(mine, params, xs, carry, None, features_first=False)
    other = scan_mod.scan_steps(cell, params, xs, carry, None, features_first=False)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert not np.allclose(got[1], other[1])


def _scan_split(params):
    """How many of a ``scan`` equation's inputs are constants and how many are carries.

    jax < 0.11 names the counts; jax 0.11 keeps a flat tree of (consts, carry, xs) in ``ft_in``.
    """
    if "num_consts" in params:
        return params["num_consts"], params["num_carry"]
    consts, carry, _ = params["ft_in"].unpack()
    return len(list(consts.vals)), len(list(carry.vals))


def _shapes_carried_by_scans(jaxpr):
    """The shapes of every ``scan``'s carried values in ``jaxpr`` and its sub-jaxprs."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            n_consts, n_carry = _scan_split(eqn.params)
            out.append([v.aval.shape for v in eqn.invars[n_consts:n_consts + n_carry]])
    for sub in jax.extend.core.subjaxprs(jaxpr):
        out += _shapes_carried_by_scans(sub)
    return out


def _masked_problem(cell, batch, seed, perturb=False):
    """``(params, xs, lengths, resets, carry)`` for a ``batch`` of sequences in float64; with
    ``perturb`` the params get noise (nonzero biases and peepholes)."""
    k = jax.random.split(jax.random.key(seed), 6)
    params = cell.init(k[0])
    if perturb:
        params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(k[5], p.shape, F64), params)
    xs = jax.random.normal(k[1], (*batch, T, I), F64)
    lengths = jax.random.randint(k[2], batch, 0, T + 1)
    resets = jax.random.bernoulli(k[3], 0.2, (*batch, T))
    carry = jax.tree.map(lambda c: jax.random.normal(k[4], c.shape, F64),
                         cell.initial_carry(batch, F64))
    return params, xs, lengths, resets, carry


def _grads_and_scans(cell, problem, method, reverse):
    """Gradients (params, inputs, initial carry) of a loss of a padded, reset run with
    ``grad=method``, and the shapes every scan of that computation carries."""
    params, xs, lengths, resets, carry = problem

    def loss(p, x, c):
        final, ys = rnn_jax.run(cell, p, x, c, lengths=lengths, resets=resets, grad=method,
                                reverse=reverse)
        return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(f ** 2) for f in jax.tree.leaves(final))

    f = jax.grad(loss, argnums=(0, 1, 2))
    return f(params, xs, carry), _shapes_carried_by_scans(
        jax.make_jaxpr(f)(params, xs, carry).jaxpr)


@pytest.mark.parametrize("reverse", [False, True])
def test_features_first_manual_backward_matches_batch_first(reverse):
    """From ``tuning.FEATURES_FIRST_FROM`` sequences ``ManualBPTT`` runs its backward scan
    features first and writes each step's ``δa`` over that step's saved pre-activations (the
    scan carries the ``(T, 4H, batch)`` buffer); its gradients, with peepholes, a projection,
    padding, resets, truncation, clipping and a 2-D batch, equal the batch-first backward's."""
    cell = rnn_jax.lstm(I, H, peephole=True, proj_size=3, dtype=F64)
    B = LSTM_FROM
    batch = (2, B // 2)
    problem = _masked_problem(cell, batch, seed=3)

    def grads(method):
        return _grads_and_scans(cell, problem, method, reverse)

    methods = [rnn_jax.ManualBPTT(), rnn_jax.ManualBPTT(truncate=2, clip=0.5)]
    ff = [grads(m) for m in methods]
    buffer = (T, 4 * H, *batch)
    assert all(any(buffer in shapes for shapes in carried) for _, carried in ff)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RULES, "lstm", (10**9, 0))
        bf = [grads(m) for m in methods]
    assert not any(buffer in shapes for _, carried in bf for shapes in carried)
    for (got, _), (want, _) in zip(ff, bf):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


FF_CELLS = {
    "lstm_peep_proj": rnn_jax.lstm(I, H, peephole=True, proj_size=3, dtype=F64),
    "gru_after": rnn_jax.gru(I, H, dtype=F64),
    "gru_before": rnn_jax.gru(I, H, reset="before", dtype=F64),
}


@pytest.mark.parametrize("name", sorted(FF_CELLS))
@pytest.mark.parametrize("reverse", [False, True])
def test_features_first_accumulating_backward_matches_batch_first(name, reverse):
    """Scanned features first, ``ManualBPTT(accumulate=True)`` adds each step's parameter
    gradients features first inside its backward scan (which carries the carry's gradient as
    ``(H, *batch)`` next to the parameter sums), and the GRU's ``ManualBPTT()`` runs its backward
    features first too; with padding, resets, truncation, clipping, an initial carry and a 2-D
    batch, their gradients (params, inputs, carry) equal the batch-first ones."""
    cell = FF_CELLS[name]
    batch = (2, 4)
    problem = _masked_problem(cell, batch, seed=11, perturb=True)  # nonzero biases, peepholes
    params = problem[0]

    def grads(method):
        return _grads_and_scans(cell, problem, method, reverse)

    methods = [rnn_jax.ManualBPTT(accumulate=True),
               rnn_jax.ManualBPTT(accumulate=True, truncate=2, clip=0.5)]
    if name.startswith("gru"):
        methods.append(rnn_jax.ManualBPTT())
    w_hh, dcarry_ff = params.w_hh.shape, (H, *batch)

    def accumulates_features_first(carried):
        return any(w_hh in shapes and dcarry_ff in shapes for shapes in carried)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RULES, "lstm", (1, 0))
        mp.setitem(RULES, "gru", (1, 0))
        ff = [grads(m) for m in methods]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RULES, "lstm", (10**9, 0))
        mp.setitem(RULES, "gru", (10**9, 0))
        bf = [grads(m) for m in methods]
    assert all(accumulates_features_first(carried) for _, carried in ff[:2])
    assert not any(accumulates_features_first(carried) for _, carried in bf)
    for (got, _), (want, _) in zip(ff, bf):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


def test_gru_features_first_rule_picks_layout_and_default_gradient():
    """On a CPU a GRU of at least ``FEATURES_FIRST_FROM["cpu"]["gru"]`` sequences and features is scanned
    features first and differentiated by ``ManualBPTT(accumulate=True)``; smaller GRUs, 16-bit
    dtypes (accurate sums after the scan) and GPUs keep their previous defaults."""
    from rnn_jax._src.runner import default_method

    B, Hf = tuning.FEATURES_FIRST_FROM["cpu"]["gru"]
    big, narrow = rnn_jax.gru(I, Hf), rnn_jax.gru(I, Hf // 2)
    f32 = jnp.float32
    assert default_method(big, B, on="cpu", dtype=f32) == rnn_jax.ManualBPTT(accumulate=True)
    assert default_method(big, B - 1, on="cpu", dtype=f32) == rnn_jax.Autodiff()
    assert default_method(narrow, B, on="cpu", dtype=f32) == rnn_jax.Autodiff()
    assert default_method(big, B, on="cpu", dtype=jnp.bfloat16) == rnn_jax.ManualBPTT()
    assert default_method(big, B, on="gpu", dtype=f32) == rnn_jax.ManualBPTT()
    mine = big._replace(recur=lambda p, c, xp: big.recur(p, c, xp))  # not rnn_jax's step
    assert default_method(mine, B, on="cpu", dtype=f32) == rnn_jax.Autodiff()
    if jax.default_backend() != "cpu":
        return  # the layout follows the backend tests run on
    xs = jnp.zeros((3, B, I))
    assert scan_mod.features_first_by_default(big, xs)
    assert not scan_mod.features_first_by_default(big, xs[:, : B - 1])
    assert not scan_mod.features_first_by_default(narrow, xs)
    assert not scan_mod.features_first_by_default(big, xs, hoist=True)
