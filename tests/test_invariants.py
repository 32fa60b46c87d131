"""Loop invariants of a cell's step (``rnn_jax._src.cell.with_invariants``): the GRU multiplies
small batches by ``W_hhᵀ`` transposed once before the scan. Same values as the plain step,
and each scan body computes the carry's matmul once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax._src.cell import recur_invariants
from rnn_jax._src.cells import gru as gru_mod

jax.config.update("jax_enable_x64", True)
F64 = jnp.float64
T, I, H = 6, 3, 5
METHODS = (None, rnn_jax.Autodiff(), rnn_jax.ManualBPTT(), rnn_jax.ManualBPTT(hoist=True),
           rnn_jax.ManualBPTT(recompute=True), rnn_jax.Checkpointed())


def _results(cell, params, xs, lengths, reverse):
    """Outputs, final carry and every method's gradients (params and inputs)."""
    out = []
    for grad in METHODS:
        def loss(p, x, grad=grad):
            final, ys = rnn_jax.run(cell, p, x, lengths=lengths, reverse=reverse, grad=grad)
            return jnp.sum(jnp.sin(ys)) + jnp.sum(final ** 2)
        out.append(jax.grad(loss, argnums=(0, 1))(params, xs))
    return [rnn_jax.run(cell, params, xs, lengths=lengths, reverse=reverse)] + out


@pytest.mark.parametrize("reset, batch, transposed_carry", [
    ("after", (4,), True), ("before", (4,), True), ("after", (4,), False),
    ("before", (), True), ("after", (2, 2), True)])
def test_gru_invariants_equal_the_plain_step(reset, batch, transposed_carry):
    """With and without the pre-transposed ``W_hh`` (and with either form of the product),
    outputs and the gradients of every method agree to rounding, with lengths and reversal."""
    cell = rnn_jax.gru(I, H, reset=reset, dtype=F64)
    k = jax.random.split(jax.random.key(3), 3)
    params = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(k[0], a.shape, F64),
                          cell.init(k[1]))  # nonzero biases
    xs = jax.random.normal(k[2], (*batch, T, I), F64)
    lengths = (jnp.arange(len(batch) and batch[-1]) % (T + 1)).reshape(batch[-1:]) \
        if len(batch) == 1 else None
    assert recur_invariants(cell, params, batch) is not None
    assert recur_invariants(cell, params, (gru_mod.INVARIANTS_UP_TO + 1,)) is None
    with pytest.MonkeyPatch.context() as mp:
        if not transposed_carry:
            mp.setattr(gru_mod, "TRANSPOSED_CARRY_UP_TO", 0)
        got = [_results(cell, params, xs, lengths, rev) for rev in (False, True)]
        mp.setattr(gru_mod, "INVARIANTS_UP_TO", -1)
        assert recur_invariants(cell, params, batch) is None
        want = [_results(cell, params, xs, lengths, rev) for rev in (False, True)]
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _subjaxprs(params: dict) -> list:
    """The jaxprs nested in an equation's params (bodies of pjit, custom_vjp, cond, ...)."""
    out = []
    for v in params.values():
        for item in (v if isinstance(v, (tuple, list)) else (v,)):
            if hasattr(item, "eqns"):
                out.append(item)
            elif hasattr(getattr(item, "jaxpr", None), "eqns"):
                out.append(item.jaxpr)
    return out


def _dots_per_scan(jaxpr) -> list[int]:
    """The number of ``dot_general`` in the body of each ``scan`` of ``jaxpr``, in order."""
    def dots(jx) -> int:
        n = 0
        for eqn in jx.eqns:
            n += eqn.primitive.name == "dot_general"
            for sub in _subjaxprs(eqn.params):
                n += dots(sub)
        return n

    def scans(jx) -> list[int]:
        out = []
        for eqn in jx.eqns:
            if eqn.primitive.name == "scan":
                out.append(dots(eqn.params["jaxpr"].jaxpr))
            else:
                for sub in _subjaxprs(eqn.params):
                    out += scans(sub)
        return out

    return scans(jaxpr.jaxpr)


def test_gru_manual_scans_do_one_matmul_with_the_carry_per_step():
    """The default GRU gradient at a small batch (``ManualBPTT(hoist=True)``): the saving
    forward scan holds no input projection (hoisted), only the step's carry product and the
    saved activations' identical one (XLA merges the two); the backward scan only ``δa W_hh``
    (nothing recomputed); the plain forward pass runs unhoisted (projection in the step)."""
    cell = rnn_jax.gru(I, H)
    params = cell.init(jax.random.key(0))
    xs = jnp.ones((4, T, I))
    from rnn_jax._src.runner import default_method

    assert default_method(cell, 4, on="cpu") == rnn_jax.ManualBPTT(hoist=True)
    grad = rnn_jax.ManualBPTT(hoist=True)
    loss = lambda p: jnp.sum(rnn_jax.run(cell, p, xs, grad=grad)[1])  # noqa: E731
    assert _dots_per_scan(jax.make_jaxpr(jax.grad(loss))(params)) == [2, 1]
    forward = lambda p: rnn_jax.run(cell, p, xs, grad=grad)[1]  # noqa: E731
    assert _dots_per_scan(jax.make_jaxpr(forward)(params)) == [2]
