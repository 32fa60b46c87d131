"""Trace-time checks that turn bad input into a ValueError/TypeError naming the argument.

All checks use only shapes and dtypes (and, for concrete ``lengths``, their values), so they run
while JAX traces, before XLA compiles anything.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src.cell import Cell


def check_cell(cell: Any, argname: str = "cell") -> Cell:
    if not isinstance(cell, Cell):
        raise TypeError(f"{argname} must be an rnn_jax Cell (e.g. rnn_jax.lstm(I, H)), "
                        f"got {type(cell).__name__}")
    return cell


def check_inputs(cell: Cell, xs: Any, time_major: bool, argname: str = "xs"):
    """Returns ``(xs, T, batch_shape)``."""
    xs = jnp.asarray(xs) if not isinstance(xs, jax.Array) else xs
    layout = "(T, *batch, I)" if time_major else "(*batch, T, I)"
    if not jnp.issubdtype(xs.dtype, jnp.floating):
        raise TypeError(f"{argname} must be a floating-point array, got dtype {xs.dtype}")
    if xs.ndim < 2:
        raise ValueError(f"{argname} must have shape {layout} with I={cell.input_size}, "
                         f"got rank {xs.ndim} shape {xs.shape}")
    if xs.shape[-1] != cell.input_size:
        raise ValueError(f"{argname} has feature size {xs.shape[-1]} (shape {xs.shape}) but the "
                         f"{cell.name} cell's input_size is {cell.input_size}")
    if time_major:
        return xs, xs.shape[0], tuple(xs.shape[1:-1])
    return xs, xs.shape[-2], tuple(xs.shape[:-2])


def check_lengths(lengths: Any, T: int, batch_shape: tuple, argname: str = "lengths",
                  size_name: str = "T"):
    """Integer array of shape ``batch_shape`` with values in ``[0, T]`` (values checked when
    concrete); ``size_name`` names ``T`` in the message."""
    if lengths is None:
        return None
    if isinstance(lengths, (bool, float)) or not hasattr(lengths, "dtype") and not isinstance(
            lengths, (int, list, tuple)):
        raise TypeError(f"{argname} must be an integer array of shape {batch_shape}, got {lengths!r}")
    arr = lengths if isinstance(lengths, jax.Array) else np.asarray(lengths)
    if not (jnp.issubdtype(arr.dtype, jnp.integer)):
        raise TypeError(f"{argname} must have an integer dtype, got {arr.dtype}")
    if tuple(arr.shape) != batch_shape:
        raise ValueError(f"{argname} has shape {tuple(arr.shape)} but the batch shape of the "
                         f"inputs is {batch_shape}")
    if not isinstance(arr, jax.core.Tracer):
        values = np.asarray(arr)
        if values.size and (values.min() < 0 or values.max() > T):
            raise ValueError(f"{argname} must lie in [0, {size_name}={T}], got min {values.min()} "
                             f"and max {values.max()}")
    return jnp.asarray(arr)


def check_flagged(values: Any, bad: Any, requirement: str, argname: str = "labels") -> None:
    """ValueError naming the first entry of ``values`` where the mask ``bad`` holds, its index
    and how many there are: ``"{argname} must {requirement}, got ..."``. Nothing where either
    array is traced (its values are unknown until run)."""
    if isinstance(values, jax.core.Tracer) or isinstance(bad, jax.core.Tracer):
        return
    bad = np.asarray(bad)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{argname} must {requirement}, got {np.asarray(values)[idx]} at index "
                         f"{idx} ({int(bad.sum())} such {argname})")


def check_sequences(cell: Cell, xs: Any, lengths: Any, resets: Any, time_major: bool):
    """:func:`check_inputs`, :func:`check_lengths` (values too, where concrete) and
    :func:`check_resets` of one call: ``(xs, T, batch_shape, lengths, resets)``."""
    xs, T, batch_shape = check_inputs(cell, xs, time_major)
    lengths = check_lengths(lengths, T, batch_shape)
    resets = check_resets(resets, T, batch_shape, time_major)
    return xs, T, batch_shape, lengths, resets


def check_resets(resets: Any, T: int, batch_shape: tuple, time_major: bool,
                 argname: str = "resets"):
    """Boolean array of shape ``(*batch, T)`` (or ``(T, *batch)`` time-major), or None."""
    if resets is None:
        return None
    arr = resets if isinstance(resets, jax.Array) else np.asarray(resets)
    if arr.dtype != np.bool_:
        raise TypeError(f"{argname} must be a boolean array, got dtype {arr.dtype}")
    want = (T, *batch_shape) if time_major else (*batch_shape, T)
    if tuple(arr.shape) != want:
        raise ValueError(f"{argname} has shape {tuple(arr.shape)} but the inputs need {want}")
    return jnp.asarray(arr)


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


def check_tree(expected: Any, got: Any, argname: str, what: str) -> None:
    """Same pytree structure and leaf shapes as ``expected`` (a tree of ShapeDtypeStructs)."""
    exp_def, got_def = jax.tree.structure(expected), jax.tree.structure(got)
    if exp_def != got_def:
        raise ValueError(f"{argname} does not have the structure of {what}: "
                         f"expected {exp_def}, got {got_def}")
    exp, have = jax.tree.leaves(_shapes(expected), is_leaf=lambda x: isinstance(x, tuple)), \
        jax.tree.leaves(_shapes(got), is_leaf=lambda x: isinstance(x, tuple))
    if exp != have:
        raise ValueError(f"{argname} shapes {have} do not match {what} shapes {exp}")


def check_params(cell: Cell, params: Any, argname: str = "params") -> None:
    expected = jax.eval_shape(cell.init, jax.random.key(0))
    check_tree(expected, params, argname, f"the {cell.name} cell's parameters "
               f"(input_size={cell.input_size}, hidden_size={cell.hidden_size})")
    for leaf in jax.tree.leaves(params):
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(f"{argname} must hold floating-point arrays, got dtype {leaf.dtype}")


def check_carry(cell: Cell, carry: Any, batch_shape: tuple, argname: str = "initial_carry") -> None:
    expected = jax.eval_shape(lambda: cell.initial_carry(batch_shape))
    check_tree(expected, carry, argname, f"the {cell.name} cell's carry for batch shape {batch_shape}")


def check_choice(value: Any, allowed, argname: str) -> None:
    if value not in allowed:
        raise ValueError(f"{argname}={value!r} is not one of {list(allowed)}")


def check_unroll(unroll: Any) -> int:
    if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
        raise ValueError(f"unroll must be a positive int, got {unroll!r}")
    return unroll


def param_dtype(params: Any):
    leaves = jax.tree.leaves(params)
    return jnp.result_type(*leaves) if leaves else jnp.float32


def valid_mask(lengths: Optional[jax.Array], T: int) -> Optional[jax.Array]:
    """``(T, *batch)`` booleans ``t < lengths`` (time-major), or None."""
    if lengths is None:
        return None
    t = jnp.arange(T).reshape((T,) + (1,) * lengths.ndim)
    return t < lengths[None]
