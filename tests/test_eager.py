"""Functions that run a loop compile once when called outside ``jit`` (as ``rnn_jax.run``
does, ``tests/test_plan.py``): a second call with new values of the same shapes traces
nothing and gives the values of a fresh computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax._src import ctc


def _counted_elman():
    traces = []

    def counted_tanh(a):           # called once each time the step is traced
        traces.append(1)
        return jnp.tanh(a)

    return rnn_jax.elman(3, 4, activation=counted_tanh), rnn_jax.elman(3, 4), traces


CALLS = {
    "parallel_in_time": lambda c, p, x, k: rnn_jax.parallel_in_time(
        c, p, x, lengths=jnp.array([5, 3]))[1],
    "rtrl_sensitivities": lambda c, p, x, k: rnn_jax.rtrl_sensitivities(c, p, x[0]),
    "uoro": lambda c, p, x, k: rnn_jax.uoro(c, p, x, k, jnp.ones((2, 5, 4)))[0].w_hh,
}


@pytest.mark.parametrize("name", list(CALLS))
def test_cell_loops_trace_once_per_cell_and_shapes(name):
    call = CALLS[name]
    cell, plain, traces = _counted_elman()
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
    key = jax.random.key(2)
    first = call(cell, params, xs, key)
    n = len(traces)
    assert n >= 1
    second = call(cell, jax.tree.map(lambda a: 0.5 * a, params), 2 * xs, jax.random.key(3))
    assert len(traces) == n                                  # nothing traced again
    want = call(plain, jax.tree.map(lambda a: 0.5 * a, params), 2 * xs, jax.random.key(3))
    np.testing.assert_allclose(second, want, rtol=1e-5, atol=1e-6)
    jitted = jax.jit(lambda p, x: call(cell, p, x, key))(params, xs)  # traced into the caller
    assert len(traces) > n
    np.testing.assert_allclose(jitted, first, rtol=1e-5, atol=1e-6)


def test_ctc_beam_search_traces_once_per_shapes_and_options(monkeypatch):
    traces = []
    search = ctc._prefix_search

    def counted(*args):
        traces.append(1)
        return search(*args)

    monkeypatch.setattr(ctc, "_prefix_search", counted)
    logits = jax.random.normal(jax.random.key(0), (3, 7, 5))
    first = rnn_jax.ctc_beam_search(logits, jnp.array([7, 4, 1]), beam=3, max_len=6)
    n = len(traces)
    assert n >= 1
    second = rnn_jax.ctc_beam_search(-logits, jnp.array([2, 7, 5]), beam=3, max_len=6)
    assert len(traces) == n
    want = jax.vmap(lambda lp, k: search(lp, k, 3, 0, 6))(          # uncompiled
        jax.nn.log_softmax(jnp.where((jnp.arange(7) < jnp.array([2, 7, 5])[:, None])[..., None],
                                     -logits, 0.0)), jnp.array([2, 7, 5]))
    np.testing.assert_array_equal(second.tokens, want.tokens)
    np.testing.assert_allclose(second.scores, want.scores, rtol=1e-6)
    assert not np.array_equal(first.tokens, second.tokens)
    rnn_jax.ctc_beam_search(logits, jnp.array([7, 4, 1]), beam=2, max_len=6)   # new option
    assert len(traces) > n
