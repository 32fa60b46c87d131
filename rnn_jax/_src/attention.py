"""Attention over a source sequence: scores, masked weights and the context vector.

For a decoder query ``q`` (size ``Q``) and the encoder states ``k_1 … k_S`` (size ``D``), only
the first ``length`` of which are valid:

.. math::
   \\text{additive (Bahdanau et al. 2014, arXiv 1409.0473):}\\quad
       e_j = v^⊤ \\tanh(W_q q + W_k k_j + b) \\\\
   \\text{dot (Luong et al. 2015, arXiv 1508.04025):}\\quad e_j = q^⊤ k_j \\quad (Q = D) \\\\
   \\text{general (Luong et al. 2015):}\\quad e_j = q^⊤ W k_j \\\\
   α_j = \\frac{m_j \\exp e_j}{\\sum_i m_i \\exp e_i}, \\qquad c = \\sum_j α_j k_j

with ``m_j`` the source mask. Padding receives exactly zero weight whatever its scores hold
(NaN included), its scores and values zero gradient, and its values never reach the context;
the keys the memory is prepared from should be finite at padding (``rnn_jax.run`` returns zeros
there) for the parameters' gradients to be. A source with no valid position has ``α = 0`` and
``c = 0``: defined, finite, and with zero gradient.

Each :class:`Attention` splits its score in two: ``memory = prepare(params, keys)`` is the part
that depends only on the source (``W_k k_j + b``, ``W k_j``), computed once per sequence, and
``score(params, query, memory)`` the part computed at every decoder step. All functions take
any leading batch dimensions: ``query (..., Q)``, ``keys (..., S, D)``, ``mask (..., S)``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.cell import check_size


class AdditiveParams(NamedTuple):
    """``e_j = vᵀ tanh(W_q q + W_k k_j + b)``."""

    w_q: jax.Array  # (A, Q)
    w_k: jax.Array  # (A, D)
    b: jax.Array    # (A,)
    v: jax.Array    # (A,)


class GeneralParams(NamedTuple):
    """``e_j = qᵀ W k_j``."""

    w: jax.Array    # (Q, D)


class Attention(NamedTuple):
    """A score function: ``init(key) -> params``, ``prepare(params, keys) -> memory`` (once per
    source), ``score(params, query, memory) -> scores (..., S)`` (once per query)."""

    name: str
    query_size: int
    key_size: int
    init: Callable[[jax.Array], Any]
    prepare: Callable[[Any, jax.Array], jax.Array]
    score: Callable[[Any, jax.Array, jax.Array], jax.Array]


def _linear(w: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.einsum("...d,ad->...a", x, w)


def additive(query_size: int, key_size: int, attention_size: int, *,
             w_init=jax.nn.initializers.glorot_uniform(), dtype: Any = jnp.float32) -> Attention:
    """Bahdanau's additive score, with an attention layer of ``attention_size`` units."""
    Q, D, A = (check_size(query_size, "query_size"), check_size(key_size, "key_size"),
               check_size(attention_size, "attention_size"))

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        return AdditiveParams(w_init(k1, (A, Q), dtype), w_init(k2, (A, D), dtype),
                              jnp.zeros((A,), dtype), w_init(k3, (1, A), dtype)[0])

    def prepare(p: AdditiveParams, keys):
        return _linear(p.w_k, keys) + p.b                          # (..., S, A)

    def score(p: AdditiveParams, query, memory):
        return jnp.tanh(memory + _linear(p.w_q, query)[..., None, :]) @ p.v

    return Attention("additive", Q, D, init, prepare, score)


def dot(size: int) -> Attention:
    """Luong's dot score ``qᵀ k_j`` (query and keys of the same ``size``; no parameters)."""
    check_size(size, "size")
    return Attention("dot", size, size, lambda key: (), lambda p, keys: keys,
                     lambda p, query, memory: jnp.einsum("...sd,...d->...s", memory, query))


def general(query_size: int, key_size: int, *, w_init=jax.nn.initializers.glorot_uniform(),
            dtype: Any = jnp.float32) -> Attention:
    """Luong's general (bilinear) score ``qᵀ W k_j``."""
    Q, D = check_size(query_size, "query_size"), check_size(key_size, "key_size")
    return Attention("general", Q, D, lambda key: GeneralParams(w_init(key, (Q, D), dtype)),
                     lambda p, keys: _linear(p.w, keys),            # W k_j: (..., S, Q)
                     lambda p, query, memory: jnp.einsum("...sq,...q->...s", memory, query))


def masked_softmax(scores: jax.Array, mask: Optional[jax.Array]) -> jax.Array:
    """``softmax(scores)`` over the last axis, restricted to ``mask``: masked positions get 0
    (value and gradient); a row with no valid position is all zeros."""
    if mask is None:
        return jax.nn.softmax(scores, axis=-1)
    mask = jnp.broadcast_to(mask, scores.shape)
    e = jnp.where(mask, scores, -jnp.inf)
    top = jnp.max(e, axis=-1, keepdims=True)
    top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0))
    w = jnp.where(mask, jnp.exp(jnp.where(mask, scores, 0) - top), 0)
    total = jnp.sum(w, axis=-1, keepdims=True)
    return w / jnp.where(total > 0, total, 1)


def source_mask(lengths: jax.Array, S: int) -> jax.Array:
    """``(..., S)`` booleans, True at positions ``j < lengths``."""
    return jnp.arange(S) < jnp.asarray(lengths)[..., None]


def attend(att: Attention, params: Any, query: jax.Array, memory: jax.Array,
           values: jax.Array, mask: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """``(context (..., D), weights (..., S))`` of one query against a prepared source:
    ``memory = att.prepare(params, keys)``, ``values`` the states averaged (usually the keys),
    ``mask (..., S)`` the valid positions (None: all)."""
    weights = masked_softmax(att.score(params, query, memory), mask)
    if mask is not None:   # padding states never reach the context, NaN included
        values = jnp.where(jnp.asarray(mask)[..., None], values, 0)
    return jnp.einsum("...s,...sd->...d", weights, values), weights
