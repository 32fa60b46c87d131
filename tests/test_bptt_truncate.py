"""Truncated BPTT and per-step clipping: ManualBPTT against jax.grad of a forward pass with
``stop_gradient`` at the chunk boundaries (and a clipping identity on the carry)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rnn_jax
from rnn_jax._src.verify import call_compiled, random_carry, random_like, reference_scan, rel_err

F64 = jnp.float64
MAKERS = {
    "elman": lambda: rnn_jax.elman(3, 4, dtype=F64),
    "jordan": lambda: rnn_jax.jordan(3, 4, 2, dtype=F64),
    "lstm": lambda: rnn_jax.lstm(3, 4, peephole=True, proj_size=2, dtype=F64),
    "gru after": lambda: rnn_jax.gru(3, 4, dtype=F64),
    "gru before": lambda: rnn_jax.gru(3, 4, reset="before", dtype=F64),
    "scrn": lambda: rnn_jax.scrn(3, 4, 2, learn_alpha=True, dtype=F64),
    "clockwork": lambda: rnn_jax.clockwork(3, 4, periods=(1, 3), dtype=F64),
}
B, T = 3, 7


def _problem(name, seed):
    cell = MAKERS[name]()
    rng = np.random.default_rng(seed)
    params = random_like(cell.init(jax.random.key(seed)), rng, 0.6)
    xs = jnp.asarray(rng.normal(size=(B, T, 3)))
    carry0 = random_carry(cell, (B,), rng, 0.5)
    dys = jnp.asarray(rng.normal(size=(B, T, cell.output_size)))
    dcarry = random_like(carry0, rng)
    return cell, params, xs, carry0, dys, dcarry


def _pairing(dys, dcarry, final, ys):
    return jnp.vdot(dys, ys) + sum(jnp.vdot(a, b) for a, b in
                                   zip(jax.tree.leaves(dcarry), jax.tree.leaves(final)))


@given(name=st.sampled_from(sorted(MAKERS)), k=st.sampled_from([1, 2, 3, 7]),
       clip=st.sampled_from([None, 0.05, 0.5]), reverse=st.booleans(),
       seed=st.integers(0, 2**16),
       lengths=st.lists(st.integers(0, T), min_size=B, max_size=B))
def test_truncated_matches_stop_gradient_forward(name, k, clip, reverse, seed, lengths):
    cell, params, xs, carry0, dys, dcarry = _problem(name, seed)
    lengths = jnp.asarray(lengths)

    def grads(params, xs, carry0, lengths):
        def manual(p, x, c):
            method = rnn_jax.ManualBPTT(truncate=k, clip=clip)
            return _pairing(dys, dcarry, *rnn_jax.run(cell, p, x, c, lengths=lengths,
                                                      reverse=reverse, grad=method))

        def reference(p, x, c):
            valid = jnp.arange(T)[:, None] < lengths[None]
            final, ys = reference_scan(cell, p, jnp.moveaxis(x, 1, 0), c, valid,
                                       reverse=reverse, truncate=k, clip=clip)
            return _pairing(dys, dcarry, final, jnp.moveaxis(ys, 0, 1))

        return [jax.grad(f, (0, 1, 2))(params, xs, carry0) for f in (manual, reference)]

    got, want = call_compiled(grads, params, xs, carry0, lengths)
    assert rel_err(got, want) <= 1e-10


@pytest.mark.parametrize("name", ["elman", "lstm"])
@pytest.mark.parametrize("k", [1, 3])
def test_truncation_equals_independent_chunked_runs(name, k):
    """Oracle built differently: run the chunks one by one, stop_gradient between them."""
    cell, params, xs, carry0, dys, dcarry = _problem(name, 7)

    def grads(params, xs, carry0):
        def chunked(p, x, c):
            ys = []
            for start in range(0, T, k):
                if start:
                    c = jax.lax.stop_gradient(c)
                c, y = rnn_jax.run(cell, p, x[:, start:start + k], c)
                ys.append(y)
            return _pairing(dys, dcarry, c, jnp.concatenate(ys, axis=1))

        def manual(p, x, c):
            return _pairing(dys, dcarry, *rnn_jax.run(cell, p, x, c,
                                                      grad=rnn_jax.ManualBPTT(truncate=k)))

        def full(p, x, c):
            return _pairing(dys, dcarry, *rnn_jax.run(cell, p, x, c))

        return [jax.grad(f, (0, 1, 2))(params, xs, carry0) for f in (manual, chunked, full)]

    got, want, full = call_compiled(grads, params, xs, carry0)
    assert rel_err(got, want) <= 1e-10
    # Truncation really changes the gradient (parameters and initial carry).
    assert rel_err(got[0], full[0]) > 1e-3
    assert rel_err(got[2], full[2]) > 1e-3


def test_truncate_at_least_T_and_large_clip_are_exact():
    cell, params, xs, carry0, dys, dcarry = _problem("gru after", 3)
    methods = (rnn_jax.ManualBPTT(truncate=T), rnn_jax.ManualBPTT(truncate=100, clip=1e6),
               rnn_jax.Autodiff())
    out = call_compiled(lambda p, x, c: [jax.grad(lambda p, x, c: _pairing(
        dys, dcarry, *rnn_jax.run(cell, p, x, c, grad=m)), (0, 1, 2))(p, x, c) for m in methods],
        params, xs, carry0)
    assert rel_err(out[0], out[2]) <= 1e-10
    assert rel_err(out[1], out[2]) <= 1e-10


@pytest.mark.parametrize("c", [0.01, 0.1])
def test_clip_bounds_the_carry_gradient(c):
    cell, params, xs, carry0, dys, dcarry = _problem("lstm", 4)
    _, dc0, _ = rnn_jax.bptt(cell, params, xs, dys, dcarry, carry0, clip=c)
    _, dc0_full, _ = rnn_jax.bptt(cell, params, xs, dys, dcarry, carry0)
    for d, d_full in zip(jax.tree.leaves(dc0), jax.tree.leaves(dc0_full)):
        assert float(jnp.max(jnp.abs(d))) <= c
        assert float(jnp.max(jnp.abs(d_full))) > c  # the clip was active


@pytest.mark.parametrize("kwargs", [{"truncate": 0}, {"truncate": 1.5}, {"truncate": True},
                                   {"clip": 0.0}, {"clip": -1.0}])
def test_bad_options(kwargs):
    cell = rnn_jax.elman(2, 3)
    with pytest.raises(ValueError):
        rnn_jax.run(cell, cell.init(jax.random.key(0)), jnp.zeros((2, 3, 2)),
                    grad=rnn_jax.ManualBPTT(**kwargs))
