"""The one sequence loop. Every gradient method runs its forward pass through :func:`scan_steps`."""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.cell import Cell


def masked_step(
    cell: Cell, params: Any, carry: Any, xp: jax.Array, valid: Optional[jax.Array]
) -> tuple[Any, jax.Array]:
    """``cell.recur`` with padding: where ``valid`` is False the carry is kept and ``y = 0``."""
    new_carry, y = cell.recur(params, carry, xp)
    if valid is None:
        return new_carry, y
    keep = valid[..., None]
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
) -> tuple[Any, jax.Array]:
    """Runs ``cell`` over time-major ``xs`` of shape ``(T, *batch, I)``.

    Args:
      valid: ``(T, *batch)`` booleans or None. Invalid steps leave the carry unchanged and
        output zeros; scanning with ``reverse=True`` then starts each sequence at its own last
        valid step, which is what makes reversal padding-aware.
      hoist: compute ``cell.project`` for all steps before the scan (one large matmul) instead
        of inside each step.
      wrap_step: a transformation of the step function, e.g. ``jax.checkpoint``.

    Returns:
      ``(final_carry, ys)`` with ``ys`` of shape ``(T, *batch, output_size)``.
    """
    if hoist:
        def step(c, inp):
            xp, v = inp
            return masked_step(cell, params, c, xp, v)

        inputs = (cell.project(params, xs), valid)
    else:
        def step(c, inp):
            x, v = inp
            return masked_step(cell, params, c, cell.project(params, x), v)

        inputs = (xs, valid)
    if wrap_step is not None:
        step = wrap_step(step)
    return jax.lax.scan(step, carry, inputs, reverse=reverse, unroll=unroll)
