"""rnn_jax.decoding on a model whose probabilities are known: beam search against exhaustive
search, beam width 1 against greedy, sampling's log-probabilities, jit and vmap."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import decoding

V, EOS, BOS, L = 3, 0, 1, 4


def _model(seed):
    """A position-dependent Markov model: logits = table[t, token]; state = step counter."""
    table = jnp.asarray(np.random.default_rng(seed).normal(size=(L + 1, V, V)) * 2, jnp.float32)

    def step(t, token):
        return t + 1, table[t, token]
    return step, table


def _exhaustive(table, length_penalty=0.0):
    """Every sequence of L tokens that repeats eos after its first one, scored as beam
    search scores it."""
    lp = np.asarray(jax.nn.log_softmax(table, -1), np.float64)
    best = []
    for seq in itertools.product(range(V), repeat=L):
        if EOS in seq and any(s != EOS for s in seq[seq.index(EOS):]):
            continue
        n = seq.index(EOS) + 1 if EOS in seq else L
        prev, total = BOS, 0.0
        for t in range(n):
            total += lp[t, prev, seq[t]]
            prev = seq[t]
        best.append((total / n ** length_penalty, total, n, seq))
    return sorted(best, reverse=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_wide_beam_is_exhaustive_search(seed, penalty):
    step, table = _model(seed)
    out = decoding.beam_search(step, jnp.int32(0), bos=BOS, eos=EOS, max_len=L, beam=V ** L,
                               length_penalty=penalty)
    want = _exhaustive(table, penalty)
    for k in range(3):
        score, total, n, seq = want[k]
        assert tuple(np.asarray(out.tokens[k])) == seq
        assert int(out.length[k]) == n
        np.testing.assert_allclose(out.log_prob[k], total, rtol=1e-5)
        np.testing.assert_allclose(out.score[k], score, rtol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_beam_one_is_greedy(seed):
    step, _ = _model(seed)
    g = decoding.greedy(step, jnp.int32(0), bos=BOS, eos=EOS, max_len=L)
    b = decoding.beam_search(step, jnp.int32(0), bos=BOS, eos=EOS, max_len=L, beam=1)
    np.testing.assert_array_equal(g.tokens, b.tokens[0])
    assert int(g.length) == int(b.length[0])
    np.testing.assert_allclose(g.log_prob, b.log_prob[0], rtol=1e-6)


def test_beam_is_at_least_as_good_as_greedy_and_sorted():
    step, _ = _model(5)
    g = decoding.greedy(step, jnp.int32(0), bos=BOS, eos=EOS, max_len=L)
    b = decoding.beam_search(step, jnp.int32(0), bos=BOS, eos=EOS, max_len=L, beam=3)
    assert float(b.log_prob[0]) >= float(g.log_prob) - 1e-6
    assert bool(jnp.all(jnp.diff(b.score) <= 1e-6))


def test_sample_log_prob_and_low_temperature():
    step, table = _model(3)
    lp = np.asarray(jax.nn.log_softmax(table, -1))
    for s in range(5):
        out = decoding.sample(step, jnp.int32(0), jax.random.key(s), bos=BOS, eos=EOS, max_len=L)
        prev, total = BOS, 0.0
        for t in range(int(out.length)):
            tok = int(out.tokens[t])
            total, prev = total + lp[t, prev, tok], tok
        np.testing.assert_allclose(out.log_prob, total, rtol=1e-5)
        assert all(int(x) == EOS for x in out.tokens[int(out.length):])
    cold = decoding.sample(step, jnp.int32(0), jax.random.key(0), bos=BOS, eos=EOS, max_len=L,
                           temperature=1e-4)
    np.testing.assert_array_equal(cold.tokens, decoding.greedy(
        step, jnp.int32(0), bos=BOS, eos=EOS, max_len=L).tokens)


def test_jit_and_vmap_over_a_batch_of_states():
    step, _ = _model(0)
    f = jax.jit(jax.vmap(lambda s: decoding.beam_search(step, s, bos=BOS, eos=EOS, max_len=L,
                                                         beam=2)))
    out = f(jnp.zeros((3,), jnp.int32))
    assert out.tokens.shape == (3, 2, L)
    np.testing.assert_array_equal(out.tokens[0], out.tokens[2])


@pytest.mark.parametrize("kw, match", [(dict(beam=0), "beam"), (dict(max_len=0), "max_len"),
                                       (dict(eos=-1), "eos")])
def test_bad_options(kw, match):
    step, _ = _model(0)
    args = dict(bos=BOS, eos=EOS, max_len=L, beam=2)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        decoding.beam_search(step, jnp.int32(0), **args)
