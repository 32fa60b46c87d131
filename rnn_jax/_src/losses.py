"""Sequence losses over padded batches, built on optax.

The notes' definition: cross-entropy at every time step, summed over time and over the batch,
``L = -Σ_b Σ_{t < len_b} log p(y_{b,t} | x_{b,≤t})``.

Padding never reaches a value or a gradient: the mask is applied with ``jnp.where`` to the
*inputs* of each per-step loss (logits, labels, predictions, targets) as well as to its result,
so NaN or Inf stored at padded steps (``t >= lengths``) leaves both the loss and its gradient
finite. Masking only the result would not do: the value would be clean, but the zero cotangent
of the discarded branch meets that branch's NaN derivative, and ``0 * NaN = NaN``.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnn_jax._src import validate as v

REDUCTIONS = ("sum", "mean", "none")


def _check_bool(value: Any, argname: str) -> bool:
    """``value`` itself if it is a bool; TypeError for truthy stand-ins such as ``"no"`` or 1."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argname} must be a bool, got {value!r}")
    return bool(value)


def _mask(shape_bt: tuple, lengths: Any, time_major: bool) -> Optional[jax.Array]:
    """Boolean mask ``t < lengths`` of shape ``shape_bt`` = (*batch, T) (or (T, *batch)); None
    when ``lengths`` is None."""
    if len(shape_bt) == 0:
        raise ValueError("the inputs need a time axis, got per-step shape ()")
    if time_major:
        T, batch = shape_bt[0], tuple(shape_bt[1:])
    else:
        T, batch = shape_bt[-1], tuple(shape_bt[:-1])
    lengths = v.check_lengths(lengths, T, batch)
    if lengths is None:
        return None
    m = v.valid_mask(lengths, T)
    return m if time_major else jnp.moveaxis(m, 0, -1)


def _reduce(per_step: jax.Array, mask: Optional[jax.Array], reduction: str) -> jax.Array:
    """Zeros ``per_step`` where ``mask`` is False, then sums, averages over the ``mask`` count
    (at least 1), or returns the masked per-step array."""
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
                           reduction: str = "sum",
                           ignore_index: Optional[int] = None) -> jax.Array:
    """Per-step softmax cross-entropy ``-log softmax(logits_{b,t})[y_{b,t}]`` over valid steps.

    A step is valid when ``t < lengths[b]`` and ``labels[b, t] != ignore_index``; other steps
    count for nothing: zero loss, zero gradient, not counted by ``"mean"``, and their logits
    and labels may hold anything (NaN logits, labels such as -1 or ``V``).

    Args:
      logits: ``(*batch, T, V)`` (``(T, *batch, V)`` with ``time_major``).
      labels: integer ``(*batch, T)`` (``(T, *batch)``), in ``[0, V)`` at valid steps.
      lengths: ``batch``-shaped valid lengths in ``[0, T]``; None: every step is valid.
      time_major: whether the time axis comes first.
      reduction: ``"sum"`` over time and batch (default), ``"mean"`` over valid steps (0 when
        there are none), or ``"none"`` (the per-step losses, zero at steps that are not valid).
      ignore_index: a label value that marks a step as not counted (as ``ignore_index`` of
        ``torch.nn.CrossEntropyLoss``); None: none is ignored.

    Raises:
      ValueError: a label outside ``[0, V)`` at a valid step, when ``labels`` (and ``lengths``)
        are concrete. Under ``jit`` the labels are tracers and cannot be checked; there such a
        step's loss is NaN instead (so it is visible in the result, never a silently chosen
        class).
    """
    _check_bool(time_major, "time_major")
    v.check_choice(reduction, REDUCTIONS, "reduction")
    if ignore_index is not None and (isinstance(ignore_index, (bool, np.bool_))
                                     or not isinstance(ignore_index, (int, np.integer))):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim < 2 or labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels shape {labels.shape} must equal logits shape {logits.shape} "
                         f"without its last (class) axis")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    num_classes = logits.shape[-1]
    valid = _mask(labels.shape, lengths, time_major)
    if ignore_index is not None:
        kept = labels != ignore_index
        valid = kept if valid is None else valid & kept
    in_range = (labels >= 0) & (labels < num_classes)
    v.check_flagged(labels, ~in_range if valid is None else valid & ~in_range,
                    f"lie in [0, {num_classes}) (the number of classes) at valid, non-ignored "
                    "steps")
    use = in_range if valid is None else valid & in_range
    safe_labels = jnp.where(use, labels, jnp.zeros((), labels.dtype))
    safe_logits = logits if valid is None else jnp.where(
        valid[..., None], logits, jnp.zeros((), logits.dtype))
    per_step = optax.softmax_cross_entropy_with_integer_labels(safe_logits, safe_labels)
    per_step = jnp.where(in_range, per_step, jnp.full((), jnp.nan, per_step.dtype))
    return _reduce(per_step, valid, reduction)


def masked_mse(pred: jax.Array, target: jax.Array, lengths: Optional[jax.Array] = None, *,
               time_major: bool = False, reduction: str = "mean") -> jax.Array:
    """Squared error ``Σ_d (pred_{b,t,d} - target_{b,t,d})²`` over valid steps.

    Args:
      pred, target: ``(*batch, T, D)`` (``(T, *batch, D)`` with ``time_major``).
      lengths: ``batch``-shaped valid lengths in ``[0, T]``; None: every step is valid. Steps
        with ``t >= lengths`` count for nothing and may hold anything (NaN, Inf).
      time_major: whether the time axis comes first.
      reduction: ``"mean"`` (default) over valid steps and the ``D`` features, ``"sum"`` of
        all of them, or ``"none"`` (per-step sums over ``D``, zero past the end).
    """
    _check_bool(time_major, "time_major")
    v.check_choice(reduction, REDUCTIONS, "reduction")
    pred, target = jnp.asarray(pred), jnp.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} != target shape {target.shape}")
    if pred.ndim < 2:
        raise ValueError(f"pred and target must have shape (*batch, T, D), got {pred.shape}")
    mask = None if lengths is None else _mask(pred.shape[:-1], lengths, time_major)
    if mask is not None:
        pred = jnp.where(mask[..., None], pred, jnp.zeros((), pred.dtype))
        target = jnp.where(mask[..., None], target, jnp.zeros((), target.dtype))
    per_step = jnp.sum(optax.squared_error(pred, target), axis=-1)
    out = _reduce(per_step, mask, reduction)
    return out / pred.shape[-1] if reduction == "mean" else out
