"""Heads: what turns a network's output sequence into predictions, exact under padding.

* **Tagging** (many-to-many, aligned; slot filling): a label for every valid step,
  ``logits_t = W y_t + b`` (:func:`rnn_jax.tagger`), trained with
  :func:`rnn_jax.sequence_cross_entropy`.
* **Classification** (many-to-one; intent, sentiment): one label per sequence from a summary of
  its valid steps (:func:`rnn_jax.pool`, :func:`rnn_jax.classifier`): the last valid output,
  or the mean or the maximum over the valid steps.

Padding never reaches a pooled value or its gradient: a pooled summary equals that of the
sequence run alone, unpadded (``tests/test_heads.py``). A sequence of length 0 pools to zeros.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp

from rnn_jax._src.cell import Cell, check_size
from rnn_jax._src.layers import Layer, as_layer, dense

POOLS = ("last", "mean", "max")   # the summaries of pool and classifier


def pool(ys: jax.Array, lengths: Optional[jax.Array] = None, how: str = "last") -> jax.Array:
    """A summary ``(..., F)`` of each sequence's valid outputs ``ys (..., T, F)``.

    ``how``: ``"last"`` (``y`` at ``t = lengths - 1``, the state after the whole sequence for a
    forward network), ``"mean"`` or ``"max"`` over ``t < lengths``. ``lengths`` None: all ``T``
    steps are valid. Zero-length sequences give zeros.
    """
    if how not in POOLS:
        raise ValueError(f"how={how!r} is not one of {list(POOLS)}")
    ys = jnp.asarray(ys)
    T = ys.shape[-2]
    n = jnp.full(ys.shape[:-2], T) if lengths is None else jnp.asarray(lengths)
    if n.shape != ys.shape[:-2]:
        raise ValueError(f"lengths must have shape {ys.shape[:-2]} (the batch of ys "
                         f"{ys.shape}), got {n.shape}")
    valid = (jnp.arange(T) < n[..., None])[..., None]                  # (..., T, 1)
    empty = (n == 0)[..., None]
    if how == "last":
        idx = jnp.clip(n - 1, 0, T - 1)[..., None, None]
        out = jnp.take_along_axis(ys, jnp.broadcast_to(idx, ys.shape[:-2] + (1, ys.shape[-1])),
                                  axis=-2)[..., 0, :]
    elif how == "mean":
        out = jnp.sum(jnp.where(valid, ys, 0), axis=-2) / jnp.maximum(n, 1)[..., None]
    else:
        out = jnp.max(jnp.where(valid, ys, -jnp.inf), axis=-2)
    return jnp.where(empty, jnp.zeros((), ys.dtype), out)


class Head(NamedTuple):
    """A network with a readout: ``init(key)``, ``apply(params, xs, lengths=None, **kw) ->
    logits`` (``(B, T, K)`` for a tagger, ``(B, K)`` for a classifier)."""

    init: Callable[[jax.Array], Any]
    apply: Callable[..., jax.Array]
    num_labels: int


def _with_readout(network: Union[Cell, Layer], num_labels: int,
                  summary: Callable[[jax.Array, Optional[jax.Array]], jax.Array]) -> Head:
    net = as_layer(network, "network")
    K = check_size(num_labels, "num_labels")
    readout = dense(net.output_size, K)

    def init(key):
        k1, k2 = jax.random.split(key)
        return net.init(k1), readout.init(k2)

    def apply(params, xs, lengths=None, **kw):
        _, ys = net.apply(params[0], xs, lengths=lengths, **kw)
        return readout.apply(params[1], summary(ys, lengths))

    return Head(init, apply, K)


def tagger(network: Union[Cell, Layer], num_labels: int) -> Head:
    """A label for every step: ``network`` (a cell, or a layer such as ``bidirectional`` or
    ``stacked``) then a dense readout of each output. Params ``(network, readout)``; ``apply``
    takes the network's keywords (``grad``, ``key`` for dropout)."""
    return _with_readout(network, num_labels, lambda ys, lengths: ys)


def classifier(network: Union[Cell, Layer], num_labels: int, pool_by: str = "last") -> Head:
    """One label per sequence: ``network``, :func:`pool` (``pool_by``) of its valid outputs,
    then a dense readout."""
    if pool_by not in POOLS:
        raise ValueError(f"pool_by={pool_by!r} is not one of {list(POOLS)}")
    return _with_readout(network, num_labels, lambda ys, lengths: pool(ys, lengths, pool_by))
