"""The one sequence loop. Every gradient method runs its forward pass through :func:`scan_steps`."""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.cell import BATCH_FIRST, FEATURES_FIRST, Cell, bound_recur, fused_recur
from rnn_jax._src import tuning

# The features-first scan runs a cell's fused step (one matmul over ``[x; h]``, see
# rnn_jax._src.cell.Fused) while ``h`` has at most this many features. LSTM on CPU, same
# process: B=64, T=500, I=H=128 forward 89 against 119 ms, fwd+bwd 252 against 286 ms;
# H=128 with I=256 forward 25 against 28 ms; at H=256 and H=512 it gained nothing (0-4% slower).
FUSED_UP_TO = 128


def fused_step(cell: Cell):
    """The cell's :class:`~rnn_jax._src.cell.Fused` step if the features-first scan uses it
    (:data:`FUSED_UP_TO`), else None."""
    fused = fused_recur(cell)
    return fused if fused is not None and cell.output_size <= FUSED_UP_TO else None


def _per_sequence(mask: jax.Array, fa: int) -> jax.Array:
    """A ``(*batch)`` mask shaped to broadcast against ``(*batch, F)`` or ``(F, *batch)``."""
    return mask[..., None] if fa == BATCH_FIRST else mask


def reset_to_zeros(carry: Any, reset: Optional[jax.Array], fa: int = BATCH_FIRST) -> Any:
    """The carry with the entries of sequences where ``reset`` (shape ``batch``) set to zero."""
    if reset is None:
        return carry
    r = _per_sequence(reset, fa)
    return jax.tree.map(lambda c: jnp.where(r, jnp.zeros((), c.dtype), c), carry)


def masked_step(
    cell: Cell, params: Any, carry: Any, xp: jax.Array, valid: Optional[jax.Array],
    reset: Optional[jax.Array] = None, fa: int = BATCH_FIRST,
    recur: Optional[Callable] = None,
) -> tuple[Any, jax.Array]:
    """``cell.recur`` with padding and resets.

    Where ``reset`` is True the step starts from a zero carry (a new document begins); where
    ``valid`` is False the carry is kept unchanged (resets included) and ``y = 0``. ``fa``: the
    feature axis of ``carry``, ``xp`` and ``y`` (``BATCH_FIRST`` or ``FEATURES_FIRST``).
    ``recur``: a step to call instead of ``cell.recur`` (the cell's fused step, which takes
    ``x`` in place of ``xp``; :func:`rnn_jax._src.cell.fused_recur`).
    """
    carry_in = reset_to_zeros(carry, reset, fa)
    recur = cell.recur if recur is None else recur
    new_carry, y = (recur(params, carry_in, xp) if fa == BATCH_FIRST
                    else recur(params, carry_in, xp, fa=fa))
    if valid is None:
        return new_carry, y
    keep = _per_sequence(valid, fa)
    new_carry = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new_carry, carry)
    return new_carry, jnp.where(keep, y, jnp.zeros((), y.dtype))


def scan_steps(
    cell: Cell,
    params: Any,
    xs: jax.Array,
    carry: Any,
    valid: Optional[jax.Array],
    *,
    reverse: bool = False,
    unroll: int = 1,
    hoist: bool = False,
    wrap_step: Optional[Callable[[Callable], Callable]] = None,
    resets: Optional[jax.Array] = None,
    features_first: Optional[bool] = None,
    invariants: Any = None,
) -> tuple[Any, jax.Array]:
    """Runs ``cell`` over time-major ``xs`` of shape ``(T, *batch, I)``.

    Args:
      valid: ``(T, *batch)`` booleans or None. Invalid steps leave the carry unchanged and
        output zeros; scanning with ``reverse=True`` then starts each sequence at its own last
        valid step, which is what makes reversal padding-aware.
      hoist: compute ``cell.project`` for all steps before the scan (one large matmul) instead
        of inside each step.
      wrap_step: a transformation of the step function, e.g. ``jax.checkpoint``.
      resets: ``(T, *batch)`` booleans or None: the carry is set to zeros before the step.
      features_first: scan with the feature axis first in every step (same results, another
        memory layout; :func:`_scan_features_first`; ``wrap_step`` then wraps a step whose
        arrays are features first). None: :func:`features_first_by_default` when there is no
        ``wrap_step``, else False.
      invariants: the loop invariants of ``cell.recur``
        (:func:`rnn_jax._src.cell.with_invariants`) if the caller computed them (for a
        ``wrap_step`` that uses them too); None: computed here, batch first.

    Returns:
      ``(final_carry, ys)`` with ``ys`` of shape ``(T, *batch, output_size)``.
    """
    if features_first is None:
        features_first = wrap_step is None and features_first_by_default(cell, xs, hoist)
    if features_first:
        if hoist:
            raise ValueError("hoist=True is not supported with features_first=True")
        return _scan_features_first(cell, params, xs, carry, valid, reverse, unroll, resets,
                                    wrap_step)

    recur = bound_recur(cell, params, xs.shape[1:-1], invariants)  # computed once

    def step(c, inp):
        x, v, r = inp
        return masked_step(cell, params, c, x if hoist else cell.project(params, x), v, r,
                           recur=recur)

    inputs = (cell.project(params, xs) if hoist else xs, valid, resets)
    if wrap_step is not None:
        step = wrap_step(step)
    return jax.lax.scan(step, carry, inputs, reverse=reverse, unroll=unroll)


def features_first_by_default(cell: Cell, xs: jax.Array, hoist: bool = False) -> bool:
    """The default of ``scan_steps(features_first=None)`` for time-major ``xs``: the cell
    supports it, ``hoist`` is off and the batch is one that runs features first on this backend
    (:func:`rnn_jax._src.tuning.features_first`, measured there)."""
    return (not hoist and can_scan_features_first(cell)
            and tuning.features_first(cell.name, math.prod(xs.shape[1:-1]), cell.hidden_size))


def can_scan_features_first(cell: Cell) -> bool:
    """Whether ``cell.project`` and ``cell.recur`` accept ``fa=FEATURES_FIRST`` (rnn_jax's own
    cells do; a cell with a replaced ``recur`` does not, unless that one is marked too)."""
    return all(getattr(f, "features_first", False) for f in (cell.project, cell.recur))


def _scan_features_first(cell, params, xs, carry, valid, reverse, unroll, resets,
                         wrap_step=None):
    """:func:`scan_steps` with every per-step array features first: ``x_t`` ``(I, *batch)``,
    the carry ``(H, *batch)``. The step's matmuls are then ``W h`` with ``h`` contiguous along
    the contraction, and its gates contiguous row blocks of ``W h``: LSTM forward at B=64,
    T=500, I=H=128 on CPU 133 ms against 163 ms batch-first (same process); no faster at B=16
    and slower under autodiff there, hence ``tuning.FEATURES_FIRST_FROM``.

    A cell with a fused step (:func:`fused_step`: the LSTM's, up to :data:`FUSED_UP_TO`) runs
    that instead of ``recur(project(x))``. The final carry comes back batch-first, as do the
    outputs; with ``wrap_step`` the stacked per-step outputs are returned as the wrapped step
    emits them (features first).
    """
    fused = fused_step(cell)

    def step(c, inp):
        x, v, r = inp
        if fused is not None:
            return masked_step(cell, params, c, x, v, r, fa=FEATURES_FIRST, recur=fused)
        return masked_step(cell, params, c, cell.project(params, x, fa=FEATURES_FIRST), v, r,
                           fa=FEATURES_FIRST)

    if wrap_step is not None:
        step = wrap_step(step)
    final, outs = jax.lax.scan(step, jax.tree.map(lambda a: jnp.moveaxis(a, -1, 0), carry),
                               (jnp.moveaxis(xs, -1, 1), valid, resets),
                               reverse=reverse, unroll=unroll)
    final = jax.tree.map(lambda a: jnp.moveaxis(a, 0, -1), final)
    return final, (outs if wrap_step is not None else jnp.moveaxis(outs, 1, -1))
