"""``rnn_jax.RTRL``: real-time recurrent learning against autodiff and manual BPTT (float64)."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import rnn_jax
from rnn_jax._src.rtrl import RTRL, rtrl_sensitivities
from rnn_jax._src.verify import CASES, call_compiled, random_carry, random_like, rel_err

F64 = jnp.float64
EXACT = [c for c in CASES if c.truncate is None and c.clip is None]
BY_NAME = {f"{c.cell} {c.options}": c for c in EXACT}
METHODS = (RTRL(), rnn_jax.Autodiff(), rnn_jax.ManualBPTT())


def _problem(case, seed, B, T, I, H):
    cell = case.make(I, H, F64)
    rng = np.random.default_rng(seed)
    params = random_like(cell.init(jax.random.key(seed)), rng, 0.5)
    xs = jnp.asarray(rng.normal(size=(B, T, I)))
    carry0 = random_carry(cell, (B,), rng, 0.5)
    dys = jnp.asarray(rng.normal(size=(B, T, cell.output_size)))
    dcarry = random_like(carry0, rng)
    return cell, params, xs, carry0, dys, dcarry, rng


def _grads(cell, dys, dcarry, lengths, resets, reverse, methods=METHODS, argnums=(0, 1, 2)):
    """``f(params, xs, carry0)``: the gradients of ``<dys, ys> + <dcarry, final>`` by each
    method."""
    def loss(p, x, c, grad):
        final, ys = rnn_jax.run(cell, p, x, c, lengths=lengths, resets=resets, reverse=reverse,
                                grad=grad)
        return jnp.vdot(dys, ys) + sum(jnp.vdot(a, b) for a, b in
                                       zip(jax.tree.leaves(dcarry), jax.tree.leaves(final)))

    return lambda p, x, c: [jax.grad(loss, argnums)(p, x, c, g) for g in methods]


CELLS = ["elman activation=tanh", "jordan activation=tanh output=identity O=5",
         "lstm peephole proj_size=2", "gru reset=after", "gru reset=before",
         "scrn learn_alpha activation=tanh S=2", "clockwork periods=1,2,4,8"]


@pytest.mark.parametrize("name", CELLS)
def test_rtrl_equals_autodiff_and_manual(name):
    """Params, inputs (the adjoint path) and initial carry; lengths T, short and 0; resets;
    forwards and reversed."""
    B, T = 3, 5
    cell, params, xs, carry0, dys, dcarry, rng = _problem(BY_NAME[name], 0, B, T, 2, 3)
    lengths = jnp.array([T, 2, 0])
    resets = jnp.asarray(rng.random((B, T)) < 0.3)

    def all_grads(params, xs, carry0):
        return [_grads(cell, dys, dcarry, lengths, resets, reverse)(params, xs, carry0)
                for reverse in (False, True)]

    for rtrl, *refs in call_compiled(all_grads, params, xs, carry0):
        for ref in refs:
            assert rel_err(rtrl, ref) <= 1e-10


@settings(max_examples=6)
@given(case=st.sampled_from(EXACT), T=st.sampled_from([1, 4]), reverse=st.booleans(),
       use_resets=st.booleans(), seed=st.integers(0, 2**16), data=st.data())
def test_rtrl_matches_autodiff_property(case, T, reverse, use_resets, seed, data):
    B = 2
    cell, params, xs, carry0, dys, dcarry, rng = _problem(case, seed, B, T, 2, 2)
    lengths = jnp.asarray(data.draw(st.lists(st.integers(0, T), min_size=B, max_size=B)))
    resets = jnp.asarray(rng.random((B, T)) < 0.4) if use_resets else None
    f = _grads(cell, dys, dcarry, lengths, resets, reverse, METHODS[:2])
    rtrl, auto = call_compiled(f, params, xs, carry0)
    assert rel_err(rtrl, auto) <= 1e-10


def _scans(jaxpr):
    """Every ``scan`` equation in ``jaxpr`` and its sub-jaxprs."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            yield eqn
        for sub in _subjaxprs(eqn):
            yield from _scans(sub)


def _subjaxprs(eqn):
    for v in eqn.params.values():
        for u in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(u, jax.extend.core.ClosedJaxpr):
                yield u.jaxpr
            elif isinstance(u, jax.extend.core.Jaxpr):
                yield u


def test_no_reverse_pass_unless_inputs_are_differentiated():
    """RTRL is online: the gradient w.r.t. params (and carry) traces no reverse scan; only
    the inputs' gradient adds the adjoint pass."""
    cell, params, xs, carry0, dys, dcarry, _ = _problem(BY_NAME["lstm plain"], 1, 2, 4, 2, 3)

    def reverse_scans(argnums):
        f = _grads(cell, dys, dcarry, jnp.array([4, 2]), None, False, (RTRL(),), argnums)
        jaxpr = jax.make_jaxpr(f)(params, xs, carry0).jaxpr
        scans = list(_scans(jaxpr))
        assert scans
        return sum(bool(e.params["reverse"]) for e in scans)

    assert reverse_scans(0) == 0
    assert reverse_scans((0, 2)) == 0
    assert reverse_scans((0, 1)) == 1


@pytest.mark.parametrize("name", ["lstm peephole proj_size=2", "clockwork periods=1,2,4,8"])
def test_sensitivities_are_the_jvp_of_the_run(name):
    """``M_t @ v`` is ``jax.jvp`` of the run along ``v``: the carry after every step, read as
    the final carries of the prefixes (lengths ``1 … T``)."""
    T = 5
    cell, params, xs, carry0, _, _, rng = _problem(BY_NAME[name], 2, T, T, 2, 3)
    x, c0 = xs[0], jax.tree.map(lambda a: a[0], carry0)
    v = random_like(params, rng)

    def both(params, x, c0, v):
        M = rtrl_sensitivities(cell, params, x, c0)
        prefixes = lambda p: rnn_jax.run(
            cell, p, jnp.broadcast_to(x, (T, *x.shape)),
            jax.tree.map(lambda a: jnp.broadcast_to(a, (T, *a.shape)), c0),
            lengths=jnp.arange(1, T + 1), grad=rnn_jax.Autodiff())[0]
        tangents = jax.jvp(prefixes, (params,), (v,))[1]
        return M @ ravel_pytree(v)[0], jax.vmap(lambda c: ravel_pytree(c)[0])(tangents), M

    got, want, M = call_compiled(both, params, x, c0, v)
    n = ravel_pytree(c0)[0].size
    assert M.shape == (T, n, ravel_pytree(params)[0].size)
    assert rel_err(got, want) <= 1e-10
    assert float(jnp.max(jnp.abs(want))) > 1e-3


def test_custom_cell_under_jit():
    """A cell with its own ``recur`` (no hand-written backward) and float32 params."""
    own = rnn_jax.gru(2, 3, dtype=F64)

    def recur(p, c, xp):
        new, y = own.recur(p, c, xp)
        return jnp.sin(new), 0.5 * y

    cell = own._replace(recur=recur)
    rng = np.random.default_rng(3)
    params = random_like(cell.init(jax.random.key(3)), rng, 0.5)
    xs = jnp.asarray(rng.normal(size=(2, 6, 2)))
    lengths = jnp.array([6, 3])

    @jax.jit
    def grads(params, xs):
        def loss(p, grad):
            return jnp.sum(jnp.tanh(rnn_jax.run(cell, p, xs, lengths=lengths, grad=grad)[1]))
        return [jax.grad(loss)(params, g) for g in (RTRL(), rnn_jax.Autodiff())]

    rtrl, auto = grads(params, xs)
    assert rel_err(rtrl, auto) <= 1e-10
    with pytest.raises(ValueError, match="xs must have shape"):
        rtrl_sensitivities(cell, params, xs)


def test_float32_accumulates_in_float32():
    cell = rnn_jax.elman(2, 3)
    params = cell.init(jax.random.key(4))
    xs = jax.random.normal(jax.random.key(5), (2, 8, 2))

    def loss(p, grad):
        return jnp.sum(rnn_jax.run(cell, p, xs, grad=grad)[1] ** 2)

    rtrl, auto = call_compiled(lambda p: [jax.grad(loss)(p, g) for g in
                                          (RTRL(), rnn_jax.Autodiff())], params)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(rtrl))
    assert rel_err(rtrl, auto) <= 1e-5
