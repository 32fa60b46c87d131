"""The whole-sequence backward pass: one reverse ``lax.scan`` over the per-cell backward steps.

Forward convention (:func:`rnn_jax._src.scan.scan_steps`): the scan reads the time steps in
*scan order* ``s = 0 … T-1`` (``t = s``, or ``t = T-1-s`` with ``reverse=True``); where
``valid[t]`` is False the step keeps the carry and outputs zeros. The backward scan runs in the
opposite order and carries only ``δc``, the gradient of the carry; at an invalid step ``δc``
passes through unchanged and ``∂L/∂y_t`` is ignored. It emits ``δxp_t`` and the cell's small
``local`` arrays; the weight gradients are then a few large contractions over all ``(t, b)``.

Truncation (``truncate=k``): Williams & Peng 1990's BPTT(h; h') with ``h = h' = k``, the
"epochwise" form where the sequence is cut into chunks of ``k`` scan steps, ``s ∈ [jk, (j+1)k)``,
and no gradient crosses a chunk boundary: it is exactly ``jax.grad`` of a forward pass that
applies ``stop_gradient`` to the carry entering scan step ``s`` whenever ``s > 0`` and
``s % k == 0``. The loss at scan step ``s`` therefore reaches back ``s % k + 1 ≤ k`` steps; the
initial carry receives gradient from the first chunk only, and the final carry's gradient
reaches the last chunk only. Chunks count scan steps from ``s = 0`` (the start of every sequence
for forward runs; with ``reverse=True`` and ``lengths``, from ``t = T-1``, so a shorter sequence's
first chunk is shortened by its padding).

Clipping (``clip=c``): the gradient of the carry entering each scan step (what flows from step
``s`` back to step ``s-1``, and to the initial carry) is clipped elementwise to ``[-c, c]``:
``jax.grad`` of a forward pass whose carry goes through an identity with a clipping backward.
min-char-rnn (Karpathy 2015) clips the final parameter gradients to ``[-5, 5]`` instead; that is
``optax.clip(5.0)`` after any gradient method. Clipping the recurrent gradient per step, as
Graves 2013 clips LSTM derivatives, is the part only a hand-written backward can do: it bounds
the gradient before it compounds across steps.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.bptt.common import CellBackward
from rnn_jax._src.cell import Cell
from rnn_jax._src.scan import reset_to_zeros


def _where(keep, a, b):
    return jax.tree.map(lambda x, y: jnp.where(keep, x, y), a, b)


def sequence_backward(
    cell: Cell,
    bwd: CellBackward,
    params: Any,
    xs: jax.Array,
    carries: Any,
    dys: jax.Array,
    dcarry: Any,
    valid: Optional[jax.Array],
    *,
    reverse: bool,
    truncate: Optional[int] = None,
    clip: Optional[float] = None,
    unroll: int = 1,
    hoist: bool = False,
    accumulate: bool = False,
    resets: Optional[jax.Array] = None,
    pres: Any = None,
) -> tuple[Any, Any, jax.Array]:
    """Gradients ``(dparams, dcarry0, dxs)`` of a time-major forward pass.

    Args:
      cell, bwd: the cell and its :class:`CellBackward`.
      xs: ``(T, *batch, I)`` inputs. carries: the carry *entering* each step, ``(T, *batch, …)``
        (saved by the forward pass). dys: ``(T, *batch, O)`` upstream gradients of the outputs.
      dcarry: upstream gradient of the final carry. valid: ``(T, *batch)`` or None.
      reverse: the forward scan's direction. truncate, clip: see the module docstring.
      hoist: recompute ``xp = cell.project(params, xs)`` for all steps at once (one large
        matmul, a ``(T, *batch, G)`` buffer) instead of inside each backward step.
      accumulate: add each step's parameter gradients into the scan's carry (small matmuls
        per step, memory independent of ``T``) instead of emitting ``δxp_t`` and contracting
        over all steps after the scan (one large matmul, a ``(T, *batch, G)`` buffer).
      resets: ``(T, *batch)`` or None: where True the forward step started from a zero carry,
        so the step is recomputed from zeros and no gradient reaches the carry before it.
      pres: ``bwd.preact`` of every step, ``(T, *batch, …)``, saved by the forward pass; None
        to recompute them in each backward step (one more matmul with the carry per step).
    """
    T = xs.shape[0]
    carries = reset_to_zeros(carries, resets)  # the carries the steps actually read
    xps = cell.project(params, xs) if hoist else None  # (T, *batch, G): one large matmul

    def body(state, inp):
        dc, acc = state if accumulate else (state, None)
        carry, x, xp, dy, v, s, r, pre = inp
        if xp is None:
            xp = cell.project(params, x)                   # (*batch, G), recomputed
        if v is not None:
            keep = v[..., None]
            dy = jnp.where(keep, dy, jnp.zeros_like(dy))
            dc_in = _where(keep, dc, jax.tree.map(jnp.zeros_like, dc))
        else:
            dc_in = dc
        dc_prev, dxp, local = bwd.step(params, carry, xp, dc_in, dy, pre)
        dc_prev = reset_to_zeros(dc_prev, r)      # a reset cuts the path to the older carry
        if v is not None:
            dc_prev = _where(keep, dc_prev, dc)   # invalid step: the carry passed through
        if clip is not None:
            dc_prev = jax.tree.map(lambda d: jnp.clip(d, -clip, clip), dc_prev)
        if truncate is not None:
            cut = (s % truncate == 0) & (s > 0)
            dc_prev = jax.tree.map(lambda d: jnp.where(cut, jnp.zeros_like(d), d), dc_prev)
        if not accumulate:
            return dc_prev, (dxp, local)
        d_proj, dx = bwd.project_grads(params, x, dxp)
        acc = jax.tree.map(lambda a, b, c: a + b + c, acc, d_proj,
                           bwd.recur_grads(params, carry, dxp, local))
        return (dc_prev, acc), dx

    s = (T - 1 - jnp.arange(T)) if reverse else jnp.arange(T)  # scan step of time t
    inputs = (carries, xs, xps, dys, valid, s if truncate is not None else None, resets, pres)
    if accumulate:
        zeros = jax.tree.map(jnp.zeros_like, params)
        (dcarry0, dparams), dxs = jax.lax.scan(body, (dcarry, zeros), inputs,
                                               reverse=not reverse, unroll=unroll)
        return dparams, dcarry0, dxs
    dcarry0, (dxps, local) = jax.lax.scan(body, dcarry, inputs, reverse=not reverse,
                                          unroll=unroll)
    d_rec = bwd.recur_grads(params, carries, dxps, local)
    d_proj, dxs = bwd.project_grads(params, xs, dxps)
    return jax.tree.map(jnp.add, d_rec, d_proj), dcarry0, dxs
