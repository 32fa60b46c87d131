"""Each hand-written backward step against ``jax.vjp`` of the cell's forward step (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax._src.bptt.common import derivative, function
from rnn_jax._src.bptt.registry import backward_for, step_vjp
from rnn_jax._src.bptt.verify import CASES, call_compiled, random_like, rel_err

F64 = jnp.float64
EXACT = [c for c in CASES if c.truncate is None and c.clip is None]
IDS = [f"{c.cell}-{c.options}" for c in EXACT]


@pytest.mark.parametrize("batch", [(), (2, 3)], ids=["unbatched", "batch2x3"])
@pytest.mark.parametrize("case", EXACT, ids=IDS)
def test_step_matches_vjp(case, batch):
    cell = case.make(3, 4, F64)
    rng = np.random.default_rng(len(case.options))
    params = random_like(cell.init(jax.random.key(0)), rng, 0.5)
    carry = random_like(cell.initial_carry(batch, F64), rng)
    x = jnp.asarray(rng.normal(size=(*batch, 3)))
    xp = cell.project(params, x)
    dcarry, dy = random_like(jax.eval_shape(cell.recur, params, carry, xp), rng)

    def both(params, carry, xp, x, dcarry, dy):
        _, vjp = jax.vjp(cell.recur, params, carry, xp)
        _, pvjp = jax.vjp(cell.project, params, x)
        got_rec = step_vjp(cell, params, carry, xp, dcarry, dy)
        got_proj = backward_for(cell).project_grads(params, x, got_rec[2])
        return vjp((dcarry, dy)), got_rec, pvjp(got_rec[2]), got_proj

    want_rec, got_rec, want_proj, got_proj = call_compiled(both, params, carry, xp, x, dcarry, dy)
    assert rel_err(got_rec, want_rec) <= 1e-12
    assert rel_err(got_proj, want_proj) <= 1e-12
    # Non-trivial: the step really produces non-zero gradients for the recurrent weights.
    assert float(jnp.max(jnp.abs(got_rec[0][1]))) > 0


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu", "identity", jnp.sin])
def test_activation_derivative(name):
    a = jnp.array([-2.0, -0.3, 0.0, 0.4, 3.0], F64)
    g = jnp.array([1.0, -2.0, 3.0, 0.5, -1.0], F64)
    fn = function(name)
    want = jax.vjp(fn, a)[1](g)[0]
    np.testing.assert_allclose(derivative(name)(a, fn(a), g), want, rtol=1e-14, atol=0)


def test_unknown_cell_is_rejected():
    cell = EXACT[0].make(2, 3, F64)._replace(name="mycell")
    with pytest.raises(ValueError, match="no manual backward"):
        backward_for(cell)
