"""Sequence losses over padded batches, built on optax.

The notes' definition: cross-entropy at every time step, summed over time and over the batch,
``L = -Σ_b Σ_{t < len_b} log p(y_{b,t} | x_{b,≤t})``.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import optax

from rnn_jax._src import validate as v

REDUCTIONS = ("sum", "mean", "none")


def _mask(shape_bt: tuple, lengths, time_major: bool):
    """Float mask of shape ``shape_bt`` = (*batch, T) (or (T, *batch))."""
    if time_major:
        T, batch = shape_bt[0], tuple(shape_bt[1:])
    else:
        T, batch = shape_bt[-1], tuple(shape_bt[:-1])
    lengths = v.check_lengths(lengths, T, batch)
    if lengths is None:
        return None
    m = v.valid_mask(lengths, T)
    return m if time_major else jnp.moveaxis(m, 0, -1)


def _reduce(per_step, mask, reduction):
    v.check_choice(reduction, REDUCTIONS, "reduction")
    if mask is not None:
        per_step = jnp.where(mask, per_step, jnp.zeros((), per_step.dtype))
    if reduction == "none":
        return per_step
    total = jnp.sum(per_step)
    if reduction == "sum":
        return total
    count = per_step.size if mask is None else jnp.sum(mask)
    return total / jnp.maximum(count, 1)


def sequence_cross_entropy(logits: jax.Array, labels: jax.Array,
                           lengths: Optional[jax.Array] = None, *, time_major: bool = False,
                           reduction: str = "sum") -> jax.Array:
    """Per-step softmax cross-entropy over valid steps.

    Args:
      logits: ``(*batch, T, V)``; labels: integer ``(*batch, T)``.
      lengths: ``batch``-shaped valid lengths; steps past the end count for nothing.
      reduction: ``"sum"`` over time and batch (default), ``"mean"`` over valid steps, or
        ``"none"`` (the per-step losses, zero past the end).
    """
    if logits.ndim < 2 or labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels shape {labels.shape} must equal logits shape {logits.shape} "
                         f"without its last (class) axis")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    per_step = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return _reduce(per_step, _mask(labels.shape, lengths, time_major), reduction)


def masked_mse(pred: jax.Array, target: jax.Array, lengths: Optional[jax.Array] = None, *,
               time_major: bool = False, reduction: str = "mean") -> jax.Array:
    """Squared error over valid steps of ``(*batch, T, D)`` predictions.

    ``"mean"`` averages over valid steps and the ``D`` features; ``"sum"`` adds them up.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} != target shape {target.shape}")
    per_step = jnp.sum(optax.squared_error(pred, target), axis=-1)
    mask = None if lengths is None else _mask(pred.shape[:-1], lengths, time_major)
    out = _reduce(per_step, mask, reduction)
    return out / pred.shape[-1] if reduction == "mean" else out
