"""The sequence runner: checks a run's arguments, plans it, and runs the one loop."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src import validate as v
from rnn_jax._src.cell import Cell
from rnn_jax._src.compiled import compiled_when_concrete
from rnn_jax._src.gradients import GradientMethod
from rnn_jax._src.plan import plan

JIT_HINT = ("under jax.jit pass it as static: jax.jit(rnn_jax.run, static_argnums=0, "
            "static_argnames=('reverse', 'time_major', 'unroll'))")


def _static_bool(value: Any, argname: str) -> bool:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"{argname} must be a Python bool, got a traced value; {JIT_HINT}")
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argname} must be True or False, got {value!r}")
    return bool(value)


def _check_grad(grad: Any) -> Optional[GradientMethod]:
    if grad is None or isinstance(grad, GradientMethod):
        return grad
    if isinstance(grad, type) and issubclass(grad, GradientMethod):
        raise TypeError(f"grad must be a gradient method instance: pass grad=rnn_jax."
                        f"{grad.__name__}(), not the class")
    raise TypeError("grad must be a gradient method such as rnn_jax.ManualBPTT(), "
                    "rnn_jax.Autodiff(), rnn_jax.Checkpointed(), rnn_jax.Revolve(k), "
                    f"rnn_jax.RTRL() or rnn_jax.ParallelInTime(), got {grad!r}")


def run(
    cell: Cell,
    params: Any,
    xs: jax.Array,
    initial_carry: Any = None,
    *,
    lengths: Optional[jax.Array] = None,
    resets: Optional[jax.Array] = None,
    reverse: bool = False,
    time_major: bool = False,
    unroll: Optional[int] = None,
    grad: Optional[GradientMethod] = None,
) -> tuple[Any, jax.Array]:
    """Runs ``cell`` over a (padded) batch of sequences.

    Args:
      cell: an rnn_jax cell, e.g. ``rnn_jax.lstm(I, H)``.
      params: the cell's parameters (``cell.init(key)``).
      xs: inputs of shape ``(*batch, T, I)``, or ``(T, *batch, I)`` with ``time_major=True``;
        any number of batch dimensions, including none.
      initial_carry: the carry at ``t = 0``; zeros (``cell.initial_carry``) by default.
      lengths: integer array of shape ``batch``: sequence ``b`` is valid for ``t < lengths[b]``.
        Its carry is frozen after the last valid step (a zero-length sequence returns the
        initial carry) and its outputs past the end are zero. Inputs past the end are never
        read (NaN padding is harmless, in values and gradients). Under ``jit`` the values
        cannot be range-checked; steps with ``t >= lengths`` are treated as padding.
      resets: booleans of shape ``(*batch, T)`` (``(T, *batch)`` time-major): where True, the
        carry is set to zeros before step ``t`` is read, e.g. where a new document starts in a
        stream; no gradient flows back across a reset.
      reverse: read each sequence backwards, from its last valid step to ``t = 0``. Only the
        valid prefix is reversed; outputs come back in the original time order.
      time_major: layout of ``xs`` and of the outputs.
      unroll: time steps per ``lax.scan`` iteration (speed only). None: the planner's
        (:func:`rnn_jax.plan`).
      grad: the gradient method, :class:`rnn_jax.ManualBPTT`, :class:`rnn_jax.Autodiff`,
        :class:`rnn_jax.Checkpointed`, :class:`rnn_jax.Revolve`, :class:`rnn_jax.RTRL`,
        :class:`rnn_jax.ParallelInTime` or :class:`rnn_jax.Persistent`. None: the planner's
        (``ManualBPTT()`` for rnn_jax's cells, ``Autodiff()`` for others, ``Persistent()``
        on a GPU where it runs).

    Under ``jax.jit``, pass the cell as static (``static_argnums=0``) and, if given,
    ``reverse``, ``time_major`` and ``unroll`` (``static_argnames``); gradient methods are
    static data and need nothing. Called outside ``jit``, ``run`` compiles itself once per
    cell, shapes, dtypes and static options and reuses that program for new values (a cell
    that cannot be hashed, e.g. with a plain dict of options, runs op by op).

    Returns:
      ``(final_carry, ys)``: the carry after each sequence's last valid step, and the outputs,
      ``(*batch, T, output_size)`` (or time-major).

    Raises:
      TypeError: at trace time, for an argument of the wrong type (options, gradient method).
      ValueError: at trace time, for inputs of the wrong rank, size or dtype, lengths of the
        wrong shape, dtype or range, a carry or params not matching the cell.
    """
    v.check_cell(cell)
    reverse = _static_bool(reverse, "reverse")
    time_major = _static_bool(time_major, "time_major")
    if isinstance(unroll, jax.core.Tracer):
        raise TypeError(f"unroll must be a Python int, got a traced value; {JIT_HINT}")
    if unroll is not None:
        unroll = v.check_unroll(unroll)
    grad = _check_grad(grad)
    xs, _, _, lengths, resets = v.check_sequences(cell, xs, lengths, resets, time_major)
    return _compiled(cell, params, xs, initial_carry, lengths, resets, reverse, time_major,
                     unroll, grad)


def _run(cell: Cell, params: Any, xs: jax.Array, initial_carry: Any, lengths: Any, resets: Any,
         reverse: bool, time_major: bool, unroll: Optional[int],
         grad: Optional[GradientMethod]) -> tuple[Any, jax.Array]:
    flat = flatten(cell, params, xs, initial_carry, lengths, resets, time_major)
    chosen = plan(cell, flat.dtype, batch=flat.xs.shape[1], resets=flat.resets is not None)
    if unroll is not None:
        chosen = chosen._replace(unroll=unroll)
    method = chosen.grad if grad is None else grad
    final, ys = method.scan(cell, params, flat.xs, flat.carry, flat.valid, flat.resets,
                            reverse=reverse, plan=chosen)
    return unflatten(flat, final, ys, time_major)


_compiled = compiled_when_concrete(_run, static_argnums=(0, 6, 7, 8, 9))


class Flat(NamedTuple):
    """A run's arguments, checked, in the one layout every gradient method takes: time-major
    with one flat batch axis ``B``: ``xs (T, B, I)`` (zeros at padding), the carry's leaves
    ``(B, ...)``, ``valid`` and ``resets`` ``(T, B)`` or None; the caller's batch shape."""

    xs: jax.Array
    carry: Any
    valid: Optional[jax.Array]
    resets: Optional[jax.Array]
    batch_shape: tuple
    dtype: Any        # the computation's: the params' and inputs' promoted


def flatten(cell: Cell, params: Any, xs: jax.Array, initial_carry: Any, lengths: Any,
            resets: Any, time_major: bool) -> Flat:
    """Checks :func:`run`'s arrays (clear errors at trace time) and lays them out as
    :class:`Flat`."""
    xs, T, batch_shape, lengths, resets = v.check_sequences(cell, xs, lengths, resets,
                                                            time_major)
    v.check_params(cell, params)
    dtype = jnp.result_type(v.param_dtype(params), xs.dtype)
    if initial_carry is None:
        carry = cell.initial_carry(batch_shape, dtype)
    else:
        v.check_carry(cell, initial_carry, batch_shape)
        carry = jax.tree.map(lambda c: jnp.asarray(c, jnp.result_type(c, dtype)), initial_carry)
    B = math.prod(batch_shape)
    xs = (xs if time_major else jnp.moveaxis(xs, -2, 0)).reshape(T, B, cell.input_size)
    carry = jax.tree.map(lambda c: c.reshape(B, *c.shape[len(batch_shape):]), carry)
    valid = None if lengths is None else v.valid_mask(lengths, T).reshape(T, B)
    if resets is not None:
        resets = (resets if time_major else jnp.moveaxis(resets, -1, 0)).reshape(T, B)
    if valid is not None:  # padding is never read: neither its values nor its gradients
        xs = jnp.where(valid[..., None], xs, jnp.zeros((), xs.dtype))
    return Flat(xs, carry, valid, resets, tuple(batch_shape), dtype)


def unflatten(flat: Flat, final: Any, ys: jax.Array, time_major: bool) -> tuple[Any, jax.Array]:
    """``(final_carry, ys)`` of the flat layout back in the caller's batch shape and layout."""
    shape = flat.batch_shape
    final = jax.tree.map(lambda c: c.reshape(*shape, *c.shape[1:]), final)
    ys = ys.reshape(ys.shape[0], *shape, ys.shape[-1])
    return final, (ys if time_major else jnp.moveaxis(ys, 0, -2))
