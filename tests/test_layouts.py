"""Both layouts the planner can choose give the same values and gradients (float64).

From ``plan.TABLE[...].features_first_from`` sequences the step runs on the batch as columns;
below, mapped over the batch with ``jax.vmap``. A batch of 33 (columns) must equal the sum of
its halves of 16 and 17 (mapped), for every cell, option and gradient method, with lengths,
resets and reverse; and the columns layout's hand-written gradient must match central finite
differences. A run that is not differentiated has its own threshold (128 on a CPU); lowered to
33, its forward pass on columns must equal the mapped halves too."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax._src.plan import TABLE
from rnn_jax._src.verify import CASES, call_compiled, random_carry, random_like, rel_err

F64 = jnp.float64
EXACT = [c for c in CASES if c.truncate is None and c.clip is None]
IDS = [f"{c.cell}-{c.options}" for c in EXACT]
B, T, I, H = 33, 5, 3, 4
METHODS = (rnn_jax.ManualBPTT(), rnn_jax.Autodiff(), rnn_jax.Checkpointed())


def _problem(case, seed=0):
    cell = case.make(I, H, F64)
    rng = np.random.default_rng(seed)
    params = random_like(cell.init(jax.random.key(seed)), rng, 0.5)
    xs = jnp.asarray(rng.normal(size=(B, T, I)))
    carry0 = random_carry(cell, (B,), rng, 0.5)
    lengths = jnp.asarray(rng.integers(0, T + 1, size=B))
    resets = jnp.asarray(rng.random((B, T)) < 0.2)
    dys = jnp.asarray(rng.normal(size=(B, T, cell.output_size)))
    return cell, params, xs, carry0, lengths, resets, dys


def test_the_batch_sizes_here_take_both_layouts():
    cell = rnn_jax.gru(I, H)
    assert B >= TABLE["cpu"].features_first_from > 17
    assert rnn_jax.plan(cell, batch=B, on="cpu").features_first
    assert not rnn_jax.plan(cell, batch=17, on="cpu").features_first


@pytest.mark.parametrize("case", EXACT, ids=IDS)
def test_columns_equal_the_mapped_halves(case):
    cell, params, xs, carry0, lengths, resets, dys = _problem(case)
    halves = (slice(0, 16), slice(16, B))

    def loss(p, x, c, sl, grad, reverse):
        final, ys = rnn_jax.run(cell, p, x[sl], jax.tree.map(lambda a: a[sl], c),
                                lengths=lengths[sl], resets=resets[sl], reverse=reverse,
                                grad=grad)
        return jnp.vdot(dys[sl], ys) + sum(jnp.sum(jnp.sin(f)) for f in jax.tree.leaves(final))

    def all_grads(p, x, c):
        out = []
        for reverse in (False, True):
            want = [jax.grad(loss, (0, 1, 2))(p, x, c, sl, rnn_jax.Autodiff(), reverse)
                    for sl in halves]
            want = jax.tree.map(jnp.add, *want)
            got = [jax.grad(loss, (0, 1, 2))(p, x, c, slice(None), m, reverse) for m in METHODS]
            values = (loss(p, x, c, slice(None), None, reverse),
                      sum(loss(p, x, c, sl, None, reverse) for sl in halves))
            out.append((want, got, values))
        return out

    for want, got, (v_all, v_halves) in call_compiled(all_grads, params, xs, carry0):
        assert abs(float(v_all - v_halves)) <= 1e-10 * max(1.0, abs(float(v_halves)))
        for g in got:
            assert rel_err(g, want) <= 1e-10


@pytest.mark.parametrize("name", ["lstm peephole proj_size=2", "gru reset=before",
                                  "jordan activation=tanh output=identity O=5"])
def test_columns_manual_matches_finite_differences(name):
    case = next(c for c in EXACT if f"{c.cell} {c.options}" == name)
    cell, params, xs, carry0, lengths, resets, dys = _problem(case, 1)
    rng = np.random.default_rng(2)
    direction = random_like(params, rng)
    eps = 1e-5

    def loss(p, grad=None):
        _, ys = rnn_jax.run(cell, p, xs, carry0, lengths=lengths, resets=resets, grad=grad)
        return jnp.vdot(dys, ys)

    def both(p, u):
        g = jax.grad(loss)(p, rnn_jax.ManualBPTT())
        plus = jax.tree.map(lambda a, b: a + eps * b, p, u)
        minus = jax.tree.map(lambda a, b: a - eps * b, p, u)
        fd = (loss(plus) - loss(minus)) / (2 * eps)
        return fd, sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(u)))

    fd, an = call_compiled(both, params, direction)
    assert abs(float(fd - an)) <= 1e-6 * max(1.0, abs(float(an)))


@pytest.mark.parametrize("case", EXACT, ids=IDS)
def test_a_forward_pass_on_columns_equals_the_mapped_halves(case, monkeypatch):
    """A run that is not differentiated takes columns from ``forward_features_first_from``
    sequences (128 on a CPU); lowered to this batch, its outputs and final carry equal those
    of the halves run mapped, with lengths, resets and reverse."""
    cell, params, xs, carry0, lengths, resets, _ = _problem(case, 3)
    monkeypatch.setitem(TABLE, "cpu", TABLE["cpu"]._replace(forward_features_first_from=B))
    assert rnn_jax.plan(cell, batch=B, on="cpu").forward_features_first
    assert not rnn_jax.plan(cell, batch=17, on="cpu").forward_features_first

    def runs(p, x, c):
        out = []
        for reverse in (False, True):
            def one(sl):
                return rnn_jax.run(cell, p, x[sl], jax.tree.map(lambda a: a[sl], c),
                                   lengths=lengths[sl], resets=resets[sl], reverse=reverse)
            halves = [one(sl) for sl in (slice(0, 16), slice(16, B))]
            out.append((one(slice(None)), jax.tree.map(lambda a, b: jnp.concatenate([a, b]),
                                                       *halves)))
        return out

    for got, want in call_compiled(runs, params, xs, carry0):
        assert rel_err(got, want) <= 1e-12
        assert float(jnp.max(jnp.abs(want[1]))) > 1e-3
