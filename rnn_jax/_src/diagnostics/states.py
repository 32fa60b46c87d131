"""One sequence's states over time, shared by the Jacobian and gradient diagnostics."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnn_jax._src.cell import Cell, project_all
from rnn_jax._src.scan import loop


def _check_sequence(cell: Cell, xs: jax.Array) -> jax.Array:
    xs = jnp.asarray(xs)
    if xs.ndim != 2 or xs.shape[-1] != cell.input_size:
        raise ValueError(f"xs must be one sequence of shape (T, {cell.input_size}), got "
                         f"{xs.shape}; use jax.vmap for a batch")
    return xs


def _param_dtype(params: Any):
    leaves = [x for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.floating)]
    return leaves[0].dtype if leaves else jnp.float32


def initial_state(cell: Cell, params: Any, carry0: Any = None) -> Any:
    """``carry0``, or the cell's zero carry in the dtype of ``params``."""
    return cell.initial_carry((), _param_dtype(params)) if carry0 is None else carry0


def trajectory(cell: Cell, params: Any, xs: jax.Array, carry0: Any = None):
    """The forward pass, keeping every state.

    Returns:
      ``(states, xps)``: ``states`` is the flattened carry at ``t = 0..T``, shape ``(T+1, n)``
      (``states[0]`` is ``carry0``); ``xps`` the input projections, ``(T, ...)``.
    """
    xs = _check_sequence(cell, xs)
    carry0 = initial_state(cell, params, carry0)
    flat0, _ = ravel_pytree(carry0)
    final, _, carries, _ = saved(cell, params, xs, carry0)
    states = jax.vmap(lambda c: ravel_pytree(c)[0])(carries)
    return jnp.concatenate([states, ravel_pytree(final)[0][None]], axis=0), \
        project_all(cell, params, xs)


def saved(cell: Cell, params: Any, xs: jax.Array, carry0: Any):
    """The runner's loop over one sequence with ``save=True``: ``(final, ys, carries, pres)``,
    the carry entering each step and each step's ``pre`` (``(T, ...)``)."""
    one = jax.tree.map(lambda c: c[None], carry0)
    final, ys, carries, pres = loop(cell, params, xs[:, None], one, None, None, reverse=False,
                                    unroll=1, save=True)
    first = lambda t: jax.tree.map(lambda a: a[:, 0], t)  # noqa: E731
    return jax.tree.map(lambda a: a[0], final), ys[:, 0], first(carries), first(pres)


def flat_step(cell: Cell, params: Any, carry0: Any = None) -> Callable:
    """``F(h, xp) -> h'``: one ``cell.recur`` on the flattened carry."""
    _, unravel = ravel_pytree(initial_state(cell, params, carry0))

    def f(flat: jax.Array, xp: jax.Array) -> jax.Array:
        return ravel_pytree(cell.recur(params, unravel(flat), xp)[0])[0]

    return f
