"""Each cell's hand-written backward step and parameter gradients against ``jax.vjp`` of its
forward step (float64), for one sequence and for a batch of steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax._src.activations import derivative, function
from rnn_jax._src.cell import batched
from rnn_jax._src.verify import CASES, call_compiled, random_carry, random_like, rel_err

F64 = jnp.float64
EXACT = [c for c in CASES if c.truncate is None and c.clip is None]
IDS = [f"{c.cell}-{c.options}" for c in EXACT]


@pytest.mark.parametrize("batch", [(), (2, 3)], ids=["unbatched", "batch2x3"])
@pytest.mark.parametrize("case", EXACT, ids=IDS)
def test_step_and_grads_match_vjp(case, batch):
    """``Backward.step`` is the VJP of ``recur`` for the carry and ``xp``; ``Backward.grads``
    is the VJP of ``recur(project(x))`` for the params and ``x``, summed over the batch;
    ``finish(preact(x))`` is ``recur(project(x))``."""
    cell = case.make(3, 4, F64)
    b = cell.backward
    rng = np.random.default_rng(len(case.options))
    params = random_like(cell.init(jax.random.key(0)), rng, 0.5)
    carry = random_carry(cell, batch, rng)
    x = jnp.asarray(rng.normal(size=(*batch, 3)))
    n = len(batch)
    out = jax.eval_shape(lambda c, x: cell.step(params, c, x), carry, x)
    dcarry, dy = random_like(out, rng)

    def both(params, carry, x, dcarry, dy):
        step = batched(lambda c, x1: cell.recur(params, c, cell.project(params, x1)), n)
        ref_out, vjp = jax.vjp(lambda p, c, x: batched(
            lambda c1, x1: cell.recur(p, c1, cell.project(p, x1)), n)(c, x), params, carry, x)
        pre = batched(lambda c1, x1: b.preact(params, c1, cell.project(params, x1)), n)(carry, x)
        fin = batched(lambda c1, a: b.finish(params, c1, a), n)(carry, pre)
        xp = batched(lambda x1: cell.project(params, x1), n)(x)
        _, rvjp = jax.vjp(batched(lambda c1, xp1: cell.recur(params, c1, xp1), n), carry, xp)
        got = batched(lambda c1, a, dc, d: b.step(params, c1, a, dc, d), n)(carry, pre, dcarry, dy)
        cols = jax.tree.map(lambda a: jnp.moveaxis(a, -1, 0), (x, carry, got[1], got[2]))
        dparams, dx = b.grads(params, *cols)     # columns: features first
        return ref_out, fin, step(carry, x), rvjp((dcarry, dy)), got[:2], vjp((dcarry, dy)), \
            (dparams, dx)

    ref_out, fin, stepped, want_rec, got_rec, want_all, got_all = call_compiled(
        both, params, carry, x, dcarry, dy)
    assert rel_err(fin, ref_out) <= 1e-12 and rel_err(stepped, ref_out) <= 1e-12
    assert rel_err(got_rec, want_rec) <= 1e-12
    assert rel_err(got_all[0], want_all[0]) <= 1e-12      # params
    assert rel_err(jnp.moveaxis(got_all[1], 0, -1), want_all[2]) <= 1e-12      # x
    assert float(jnp.max(jnp.abs(jax.tree.leaves(got_all[0])[0]))) > 0   # non-trivial


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu", "identity", jnp.sin])
def test_activation_derivative(name):
    a = jnp.array([-2.0, -0.3, 0.0, 0.4, 3.0], F64)
    g = jnp.array([1.0, -2.0, 3.0, 0.5, -1.0], F64)
    fn = function(name)
    want = jax.vjp(fn, a)[1](g)[0]
    np.testing.assert_allclose(derivative(name)(a, fn(a), g), want, rtol=1e-14, atol=0)


def test_a_replaced_step_loses_the_hand_written_backward():
    """``backward`` belongs to the cell's own ``project`` and ``recur``: replacing either makes
    the default autodiff, and ``ManualBPTT`` refuses, so no wrong gradient comes back."""
    cell = rnn_jax.lstm(2, 3)
    mine = cell._replace(recur=lambda p, c, xp: cell.recur(p, c, 2 * xp))
    assert rnn_jax.plan(cell).grad == rnn_jax.ManualBPTT()
    assert rnn_jax.plan(mine).grad == rnn_jax.Autodiff()
    assert rnn_jax.plan(cell._replace(project=lambda p, x: cell.project(p, x))).grad == \
        rnn_jax.Autodiff()
    params = jax.tree.map(lambda a: a.astype(F64), cell.init(jax.random.key(0)))
    xs = jax.random.normal(jax.random.key(1), (2, 4, 2), F64)
    loss = lambda p, g=None: jnp.sum(rnn_jax.run(mine, p, xs, grad=g)[1] ** 2)  # noqa: E731
    g_default = jax.grad(loss)(params)
    g_fd = (loss(params._replace(b_ih=params.b_ih.at[0].add(1e-6)))
            - loss(params._replace(b_ih=params.b_ih.at[0].add(-1e-6)))) / 2e-6
    assert abs(float(g_default.b_ih[0]) - float(g_fd)) < 1e-7
    with pytest.raises(ValueError, match="no hand-written backward"):
        jax.grad(loss)(params, rnn_jax.ManualBPTT())
