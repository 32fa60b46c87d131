"""The one sequence loop: a ``lax.scan`` over time of the cell's step over the batch.

Inputs are time-major with one flat batch axis: ``xs (T, B, I)``, the carry ``(B, ...)``,
``valid`` and ``resets`` ``(T, B)`` booleans or None. The step runs in one of two layouts (the
planner's choice, :mod:`rnn_jax._src.plan`): mapped over ``B`` with ``jax.vmap`` (batch first:
rows ``(B, F)``, products ``X Wᵀ`` with ``Wᵀ`` formed once before the loop), or on the batch as
columns, ``x_t`` of shape ``(I, B)`` and a carry ``(H, B)`` (features first, products ``W X``;
cells are written so that the same code serves, :mod:`rnn_jax._src.cell`). Either way a step's
matmul is one contraction over the whole batch.

Every gradient method runs its forward pass through :func:`loop`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.cell import Cell, backward_of


def where_tree(keep: jax.Array, a: Any, b: Any) -> Any:
    """``a`` where ``keep``, else ``b``, leaf by leaf (``keep`` a scalar per sequence)."""
    return jax.tree.map(lambda x, y: jnp.where(keep, x, y), a, b)


def zeros_where(cut: Optional[jax.Array], tree: Any) -> Any:
    """``tree`` with zeros where ``cut`` (a reset), unchanged where ``cut`` is None."""
    if cut is None:
        return tree
    return jax.tree.map(lambda x: jnp.where(cut, jnp.zeros((), x.dtype), x), tree)


def cell_step(cell: Cell, save: bool = False, fuse: bool = False) -> tuple[Callable, Callable]:
    """``(pre, finish)``: one step from its raw input as ``finish(p, c, pre(p, c, x))``.

    With ``save`` the step is split as the cell's :class:`~rnn_jax._src.cell.Backward` splits
    it, so that ``pre`` is what its backward step reads; with ``fuse`` (and a ``fused`` form)
    ``pre`` takes the products with ``x`` and the carry as one. Otherwise ``project`` and
    ``recur``."""
    b = backward_of(cell)
    if b is not None and fuse and b.fused is not None:
        return b.fused, b.finish
    if b is not None and save:
        return (lambda p, c, x: b.preact(p, c, cell.project(p, x))), b.finish
    return (lambda p, c, x: cell.project(p, x)), cell.recur


def masked_step(cell: Cell) -> Callable:
    """``step(params, c, x, v, r) -> (c_new, y)``: one sequence at one step as :func:`loop`
    takes it: the carry zeroed where ``r`` (a reset), kept with ``y = 0`` where not ``v``
    (padding); ``v``, ``r`` scalars or None. The step that the gradient methods which
    differentiate one step at a time (RTRL, Revolve, ParallelInTime) differentiate."""
    pre, finish = cell_step(cell)

    def step(params, c, x, v, r):
        c_in = zeros_where(r, c)
        new, y = finish(params, c_in, pre(params, c_in, x))
        if v is not None:
            new, y = where_tree(v, new, c), jnp.where(v, y, jnp.zeros((), y.dtype))
        return new, y

    return step


def in_scan_order(reverse: bool) -> Callable:
    """``f(a)``: a time-major array (or None) in the order the scan reads it, ``a[::-1]`` for a
    reversed run; its own inverse. Methods that differentiate step by step in scan order
    (Revolve, RTRL) flip their inputs with it and their input gradients back."""
    if not reverse:
        return lambda a: a
    return lambda a: None if a is None else a[::-1]


def to_columns(tree: Any, axis: int = -1) -> Any:
    """Every leaf with its feature axis moved from last to ``axis`` (features first)."""
    return jax.tree.map(lambda a: jnp.moveaxis(a, -1, axis), tree)


def to_rows(tree: Any, axis: int = 0) -> Any:
    """The inverse of :func:`to_columns`: the feature axis from ``axis`` back to last."""
    return jax.tree.map(lambda a: jnp.moveaxis(a, axis, -1), tree)


def transposed(params: Any) -> Any:
    """Every matrix of ``params`` transposed (its own inverse)."""
    return jax.tree.map(lambda a: a.T if jnp.ndim(a) == 2 else a, params)


def loop(cell: Cell, params: Any, xs: jax.Array, carry: Any, valid: Optional[jax.Array],
         resets: Optional[jax.Array], *, reverse: bool, unroll: int,
         checkpoint: bool = False, save: bool = False, fuse: bool = False,
         features_first: bool = False):
    """Runs ``cell`` over ``xs``; returns ``(final_carry, ys)``, and with ``save=True``
    ``(final_carry, ys, carries, pres)``: the carry each step read (after its reset) and each
    step's ``pre`` (what the hand-written backward step reads).

    Where ``resets`` is True the step starts from a zero carry; where ``valid`` is False the
    carry is kept unchanged and ``y = 0``. Scanning with ``reverse=True`` then starts each
    sequence at its own last valid step, which is what makes reversal padding-aware.
    ``checkpoint``: recompute each step in the backward pass (``jax.checkpoint``).
    ``fuse``: take the step's products as one where the cell's ``Backward`` has a ``fused``
    form (:func:`cell_step`). ``features_first``: run the step on the batch as columns; the saved
    ``carries`` and ``pres`` are then ``(T, F, B)`` (the final carry and ``ys`` are batch first
    either way). Mapped over more than one sequence, the weights enter the loop transposed and
    are transposed back in the step, so that XLA computes ``X Wᵀ`` from a stored ``Wᵀ``
    (row-major, as its fast matmul kernels take it; reading ``W`` across its rows ran the Elman
    forward pass up to 20% slower at 8 and 16 sequences). A single sequence's products are
    matrix-vector products, which XLA computes from ``W`` as stored: with ``Wᵀ`` it copied
    ``W`` back every step, several times slower.
    """
    preact, finish = cell_step(cell, save, fuse)

    def one(params, c, x, v, r):             # one sequence at one step
        c_in = zeros_where(r, c)
        pre = preact(params, c_in, x)
        new, y = finish(params, c_in, pre)
        if v is not None:
            new, y = where_tree(v, new, c), jnp.where(v, y, jnp.zeros((), y.dtype))
        return new, ((y, c_in, pre) if save else y)

    if features_first:   # columns: (F, B) arrays, per-sequence masks (B,) broadcast along F
        xs, carry = to_columns(xs, 1), to_columns(carry, 0)
        scan_body = (lambda c, inp: one(params, c, *inp))
    else:                # rows (B, F): the step mapped over the batch
        mapped = jax.vmap(one, in_axes=(None, 0, 0, None if valid is None else 0,
                                        None if resets is None else 0))
        tr = transposed if xs.shape[1] > 1 else (lambda a: a)
        params_t = tr(params)
        scan_body = (lambda c, inp: mapped(tr(params_t), c, *inp))
    if checkpoint:
        scan_body = jax.checkpoint(scan_body, prevent_cse=False)
    final, out = jax.lax.scan(scan_body, carry, (xs, valid, resets), reverse=reverse,
                              unroll=unroll)
    if features_first:
        final = to_rows(final)
        out = (to_rows(out[0], 1), *out[1:]) if save else to_rows(out, 1)
    return (final, *out) if save else (final, out)

