"""Decoding a sequence from a step function until an end symbol: greedy, sampling, beam search.

Every decoder here drives one function, ``step(state, token) -> (state, logits)``: the model's
state after reading ``token`` and its scores ``(V,)`` for the next token (an encoder-decoder's
:meth:`~rnn_jax.Seq2Seq.step`, or any language model's). They decode one sequence and are pure,
so ``jax.jit`` and ``jax.vmap`` (over a batch of initial states) apply; the loop runs
``max_len`` steps, and a sequence that has emitted ``eos`` keeps emitting it (its length and
score stop changing).

Returns share one convention: ``tokens (max_len,)`` int32 (``eos`` after the end), ``length``
the number of tokens up to and including the first ``eos`` (``max_len`` if none), and the
sum of the tokens' log-probabilities up to there.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

StepFn = Callable[[Any, jax.Array], tuple[Any, jax.Array]]


class Decoded(NamedTuple):
    """``tokens (..., max_len)``, ``length (...)``, ``log_prob (...)`` (beam search: one row
    per beam, best first, and ``score``, the length-normalised log-probability it ranks by)."""

    tokens: jax.Array
    length: jax.Array
    log_prob: jax.Array
    score: jax.Array


def _check(max_len: int, eos: int) -> None:
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len <= 0:
        raise ValueError(f"max_len must be a positive int, got {max_len!r}")
    if isinstance(eos, bool) or not isinstance(eos, int) or eos < 0:
        raise ValueError(f"eos must be a non-negative int, got {eos!r}")


def _pick(step: StepFn, state: Any, bos: int, eos: int, max_len: int,
          choose: Callable[[jax.Array, jax.Array], jax.Array], key: jax.Array) -> Decoded:
    """The loop of greedy decoding and sampling: ``choose(log_probs, key) -> token``."""

    def body(c, k):
        state, token, done, length, logp = c
        state, logits = step(state, token)
        lp = jax.nn.log_softmax(logits.astype(jnp.float32))
        nxt = jnp.where(done, eos, choose(lp, k)).astype(jnp.int32)
        logp = logp + jnp.where(done, 0.0, lp[nxt])
        length = length + (~done).astype(jnp.int32)
        return (state, nxt, done | (nxt == eos), length, logp), nxt

    init = (state, jnp.asarray(bos, jnp.int32), jnp.asarray(False), jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.float32))
    (_, _, _, length, logp), tokens = jax.lax.scan(body, init, jax.random.split(key, max_len))
    return Decoded(tokens, length, logp, logp)


def greedy(step: StepFn, state: Any, *, bos: int, eos: int, max_len: int) -> Decoded:
    """The most probable token at every step, from ``state`` after the start symbol ``bos``."""
    _check(max_len, eos)
    return _pick(step, state, bos, eos, max_len, lambda lp, k: jnp.argmax(lp),
                 jax.random.key(0))


def sample(step: StepFn, state: Any, key: jax.Array, *, bos: int, eos: int, max_len: int,
           temperature: float = 1.0) -> Decoded:
    """Tokens drawn from ``softmax(logits / temperature)``; ``log_prob`` is the model's
    (temperature 1) log-probability of the drawn sequence."""
    _check(max_len, eos)
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    return _pick(step, state, bos, eos, max_len,
                 lambda lp, k: jax.random.categorical(k, lp / temperature), key)


def beam_search(step: StepFn, state: Any, *, bos: int, eos: int, max_len: int, beam: int,
                length_penalty: float = 0.0) -> Decoded:
    """The ``beam`` most probable sequences found by keeping, at every step, the ``beam`` best
    extensions of the ``beam`` best prefixes (Graves 2012; Sutskever et al. 2014).

    A beam that emits ``eos`` is finished: it stays in the beam with its score, extended only
    by ``eos`` at no cost. Beams are ranked at the end by ``log_prob / length**length_penalty``
    (0: the plain log-probability, which favours short outputs; about 0.6-1: normalised by
    length, Wu et al. 2016). With ``beam=1`` this is :func:`greedy`; with ``beam ≥ V^max_len``
    it is exhaustive search. Returns every beam, best first.
    """
    _check(max_len, eos)
    if isinstance(beam, bool) or not isinstance(beam, int) or beam <= 0:
        raise ValueError(f"beam must be a positive int, got {beam!r}")
    states = jax.tree.map(lambda a: jnp.broadcast_to(a, (beam, *jnp.shape(a))), state)
    scores = jnp.where(jnp.arange(beam) == 0, 0.0, -jnp.inf)   # one live beam at the start

    def body(c, t):
        states, last, scores, done, length, tokens = c
        states, logits = jax.vmap(step)(states, last)
        lp = jax.nn.log_softmax(logits.astype(jnp.float32))                  # (K, V)
        V = lp.shape[-1]
        only_eos = jnp.where(jnp.arange(V) == eos, 0.0, -jnp.inf)
        cand = scores[:, None] + jnp.where(done[:, None], only_eos, lp)
        best, idx = jax.lax.top_k(cand.reshape(-1), beam)
        parent, tok = idx // V, (idx % V).astype(jnp.int32)
        states = jax.tree.map(lambda a: a[parent], states)
        was_done = done[parent]
        tokens = tokens[parent].at[:, t].set(tok)
        length = length[parent] + (~was_done).astype(jnp.int32)
        return (states, tok, best, was_done | (tok == eos), length, tokens), None

    init = (states, jnp.full((beam,), bos, jnp.int32), scores, jnp.zeros((beam,), bool),
            jnp.zeros((beam,), jnp.int32), jnp.full((beam, max_len), eos, jnp.int32))
    (_, _, logp, _, length, tokens), _ = jax.lax.scan(body, init, jnp.arange(max_len))
    ranked = logp / jnp.maximum(length, 1).astype(jnp.float32) ** length_penalty
    order = jnp.argsort(-ranked)
    return Decoded(tokens[order], length[order], logp[order], ranked[order])
