"""``rnn_jax.bptt``: the hand-written backward pass of a run, as a plain function.

It is the vector-Jacobian product of :func:`rnn_jax.run` with ``grad=ManualBPTT(...)``, so the
backward pass exists once (:mod:`rnn_jax._src.manual`).
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src import validate as v
from rnn_jax._src.cell import Cell
from rnn_jax._src.compiled import compiled_when_concrete
from rnn_jax._src.manual import ManualBPTT
from rnn_jax._src.runner import run


def bptt(
    cell,
    params: Any,
    xs: jax.Array,
    dys: jax.Array,
    dcarry: Any = None,
    initial_carry: Any = None,
    *,
    lengths: Optional[jax.Array] = None,
    resets: Optional[jax.Array] = None,
    reverse: bool = False,
    time_major: bool = False,
    truncate: Optional[int] = None,
    clip: Optional[float] = None,
    unroll: Optional[int] = None,
) -> tuple[Any, Any, jax.Array]:
    """Backpropagation through time by hand: gradients of a run given upstream gradients.

    Runs ``rnn_jax.run(cell, params, xs, initial_carry, lengths=..., reverse=...)`` and
    returns the vector-Jacobian product of ``(final_carry, ys)`` with ``(dcarry, dys)``,
    computed by the cell's hand-written backward step (``grad=ManualBPTT(truncate, clip)``).

    Args:
      cell, params, xs, initial_carry, lengths, resets, reverse, time_major, unroll: as
        :func:`rnn_jax.run`.
      dys: gradient of the outputs, the shape of ``ys`` (``(*batch, T, O)`` or time-major).
      dcarry: gradient of the final carry; zeros if None.
      truncate, clip: as :class:`rnn_jax.ManualBPTT`.

    Called outside ``jit`` it compiles once per cell, shapes and options, as :func:`rnn_jax.run`.

    Returns:
      ``(dparams, dinitial_carry, dxs)``, shaped as ``params``, the carry and ``xs``.
    """
    method = ManualBPTT(truncate=truncate, clip=clip)
    v.check_cell(cell)
    xs, _, _, lengths, resets = v.check_sequences(cell, xs, lengths, resets, time_major)
    return _compiled(cell, params, xs, jnp.asarray(dys), dcarry, initial_carry, lengths, resets,
                     reverse, time_major, unroll, method)


def _bptt(cell: Cell, params: Any, xs: jax.Array, dys: jax.Array, dcarry: Any, initial_carry: Any,
          lengths: Optional[jax.Array], resets: Optional[jax.Array], reverse: bool,
          time_major: bool, unroll: Optional[int],
          method: ManualBPTT) -> tuple[Any, Any, jax.Array]:
    _, _, batch_shape = v.check_inputs(cell, xs, time_major)
    dtype = jnp.result_type(v.param_dtype(params), xs.dtype)
    if initial_carry is None:
        initial_carry = cell.initial_carry(batch_shape, dtype)
    else:
        v.check_carry(cell, initial_carry, batch_shape)

    def forward(p, c, x):
        return run(cell, p, x, c, lengths=lengths, resets=resets, reverse=reverse,
                   time_major=time_major, unroll=unroll, grad=method)

    out, pullback = jax.vjp(forward, params, initial_carry, xs)
    if dys.shape != out[1].shape:
        raise ValueError(f"dys must have shape {out[1].shape} (the outputs'), got {dys.shape}")
    if dcarry is None:
        dcarry = jax.tree.map(jnp.zeros_like, out[0])
    else:
        v.check_carry(cell, dcarry, batch_shape, "dcarry")
        dcarry = jax.tree.map(lambda d, o: jnp.asarray(d, o.dtype), dcarry, out[0])
    return pullback((dcarry, dys.astype(out[1].dtype)))


_compiled = compiled_when_concrete(_bptt, static_argnums=(0, 8, 9, 10, 11))
