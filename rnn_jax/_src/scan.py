"""The one sequence loop. Every gradient method runs its forward pass through :func:`scan_steps`."""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.cell import Cell


def reset_to_zeros(carry: Any, reset: Optional[jax.Array]) -> Any:
    """The carry with the entries of sequences where ``reset`` (shape ``batch``) set to zero."""
    if reset is None:
        return carry
    return jax.tree.map(lambda c: jnp.where(reset[..., None], jnp.zeros((), c.dtype), c), carry)


def masked_step(
    cell: Cell, params: Any, carry: Any, xp: jax.Array, valid: Optional[jax.Array],
    reset: Optional[jax.Array] = None,
) -> tuple[Any, jax.Array]:
    """``cell.recur`` with padding and resets.

    Where ``reset`` is True the step starts from a zero carry (a new document begins); where
    ``valid`` is False the carry is kept unchanged (resets included) and ``y = 0``.
    """
    new_carry, y = cell.recur(params, reset_to_zeros(carry, reset), xp)
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
    resets: Optional[jax.Array] = None,
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

    Returns:
      ``(final_carry, ys)`` with ``ys`` of shape ``(T, *batch, output_size)``.
    """
    def step(c, inp):
        x, v, r = inp
        return masked_step(cell, params, c, x if hoist else cell.project(params, x), v, r)

    inputs = (cell.project(params, xs) if hoist else xs, valid, resets)
    if wrap_step is not None:
        step = wrap_step(step)
    return jax.lax.scan(step, carry, inputs, reverse=reverse, unroll=unroll)
