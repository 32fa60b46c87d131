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

from rnn_jax._src.bptt.common import CellBackward, batch_last
from rnn_jax._src.cell import BATCH_FIRST, FEATURES_FIRST, Cell
from rnn_jax._src.scan import _per_sequence, reset_to_zeros


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
    fa: int = BATCH_FIRST,
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
      fa: ``FEATURES_FIRST`` when ``carries`` are ``(T, F, *batch)``, as the features-first
        forward pass saves them. With ``pres`` and a step that supports it (the LSTM's and
        GRU's) the backward scan then runs features first too. With ``accumulate`` each step
        adds its features-first parameter gradients (``recur_grads``/``project_grads`` with
        ``fa``); without, where ``δxp`` has the shape of the saved pre-activations (the
        LSTM's), each step's ``δxp`` (``(G, *batch)``) overwrites that step's pre-activations
        in the ``pres`` buffer, which needs no other ``(T, G, *batch)`` buffer (``dxps`` is read
        back from it).
    """
    T = xs.shape[0]
    ff = fa == FEATURES_FIRST
    if ff and (hoist or pres is None or not getattr(bwd.step, "features_first", False)):
        # Only the saved-pre-activation path runs features first: the others batch-first.
        carries = jax.tree.map(lambda a: jnp.moveaxis(a, 1, -1), carries)
        ff, fa = False, BATCH_FIRST
    in_place = False  # δxp written over the saved pre-activations: same shape and dtype
    if ff and not accumulate:
        g, dtype = _xp_size(cell, params, xs)
        in_place = jnp.shape(pres) == (T, g, *xs.shape[1:-1]) and jnp.result_type(pres) == dtype
    if not ff:
        carries = reset_to_zeros(carries, resets)  # the carries the steps actually read
    xps = cell.project(params, xs) if hoist else None  # (T, *batch, G): one large matmul
    kw = {"fa": fa, "wt": bwd.transposed(params)} if ff else {}
    to_ff = (lambda a: jnp.moveaxis(a, -1, 0)) if ff else (lambda a: a)

    def body(state, inp):
        dc, acc = state if accumulate or in_place else (state, None)
        carry, x, xp, dy, v, s, r, pre, t = inp
        if in_place:  # read this step's pre-activations where its dxp will go
            pre = jax.lax.dynamic_index_in_dim(acc, t, keepdims=False)
        if ff:
            carry = reset_to_zeros(carry, r, fa)
            dy = to_ff(dy)
        elif xp is None:
            xp = cell.project(params, x)                   # (*batch, G), recomputed
        if v is not None:
            keep = _per_sequence(v, fa)
            dy = jnp.where(keep, dy, jnp.zeros_like(dy))
            dc_in = _where(keep, dc, jax.tree.map(jnp.zeros_like, dc))
        else:
            dc_in = dc
        dc_prev, dxp, local = bwd.step(params, carry, xp, dc_in, dy, pre, **kw)
        dc_prev = reset_to_zeros(dc_prev, r, fa)  # a reset cuts the path to the older carry
        if v is not None:
            dc_prev = _where(keep, dc_prev, dc)   # invalid step: the carry passed through
        if clip is not None:
            dc_prev = jax.tree.map(lambda d: jnp.clip(d, -clip, clip), dc_prev)
        if truncate is not None:
            cut = (s % truncate == 0) & (s > 0)
            dc_prev = jax.tree.map(lambda d: jnp.where(cut, jnp.zeros_like(d), d), dc_prev)
        if in_place:
            return (dc_prev, jax.lax.dynamic_update_index_in_dim(acc, dxp, t, 0)), (None, local)
        if not accumulate:
            return dc_prev, (dxp, local)
        d_proj, dx = bwd.project_grads(params, x, dxp, **grads_kw)
        acc = jax.tree.map(lambda a, b, c: a + b + c, acc, d_proj,
                           bwd.recur_grads(params, carry, dxp, local, **grads_kw))
        return (dc_prev, acc), dx

    s = (T - 1 - jnp.arange(T)) if reverse else jnp.arange(T)  # scan step of time t
    grads_kw = {"fa": fa} if ff else {}
    if not ff:
        x_in = xs
    elif accumulate:  # x_t features first, the forward's transpose of ``xs`` (computed once)
        x_in = jnp.moveaxis(xs, -1, 1)
    else:  # the contractions after the scan read ``xs`` itself
        x_in = None
    inputs = (carries, x_in, xps, dys, valid,
              s if truncate is not None else None, resets,
              None if in_place else pres, jnp.arange(T) if in_place else None)
    if accumulate:
        zeros = jax.tree.map(jnp.zeros_like, params)
        (dcarry0, dparams), dxs = jax.lax.scan(body, (jax.tree.map(to_ff, dcarry), zeros),
                                               inputs, reverse=not reverse, unroll=unroll)
        return dparams, (jax.tree.map(batch_last, dcarry0) if ff else dcarry0), dxs
    init = jax.tree.map(to_ff, dcarry)
    if in_place:
        (dcarry0, dxps), (_, local) = jax.lax.scan(body, (init, pres), inputs,
                                                   reverse=not reverse, unroll=unroll)
    else:
        dcarry0, (dxps, local) = jax.lax.scan(body, init, inputs, reverse=not reverse,
                                              unroll=unroll)
    if ff:  # (T, F, *batch) -> (T, *batch, F); XLA folds these into the contractions' copies
        dxps, local, carries = jax.tree.map(lambda a: jnp.moveaxis(a, 1, -1),
                                            (dxps, local, carries))
        dcarry0 = jax.tree.map(batch_last, dcarry0)
        carries = reset_to_zeros(carries, resets)
    d_rec = bwd.recur_grads(params, carries, dxps, local)
    d_proj, dxs = bwd.project_grads(params, xs, dxps)
    return jax.tree.map(jnp.add, d_rec, d_proj), dcarry0, dxs


def _xp_size(cell: Cell, params: Any, xs: jax.Array) -> tuple[int, Any]:
    """``(G, dtype)`` of ``cell.project``'s output for one step."""
    out = jax.eval_shape(cell.project, params, jax.ShapeDtypeStruct(xs.shape[1:], xs.dtype))
    return out.shape[-1], out.dtype
