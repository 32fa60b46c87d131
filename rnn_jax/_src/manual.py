"""``ManualBPTT``: backpropagation through time by hand, behind a ``jax.custom_vjp``.

The forward pass is the runner's one loop (:func:`rnn_jax._src.scan.loop`) with ``save=True``:
it also emits the carry entering each step and each step's ``pre`` (the cell's
``Backward.preact``: its gate pre-activations, computed once for the step and the backward
pass). The backward pass is one reverse ``lax.scan`` of the cell's hand-written backward step,
elementwise but for the one matmul ``δa W_hh`` per step. The parameter gradients
(``Backward.grads``, ``dW_hh = Σ_t δa_t h_{t-1}ᵀ``) are, in the layout the planner chose, a
few large contractions over all steps and sequences after the loop (batch mapped), or added up
in the loop, one product over the batch per step (columns).

Scan order: the forward scan reads time steps ``s = 0 … T-1`` (``t = s``, or ``t = T-1-s`` with
``reverse=True``); where ``valid[t]`` is False the step keeps the carry and outputs zeros. The
backward scan runs in the opposite order and carries ``δc``, the carry's gradient; at an
invalid step ``δc`` passes through unchanged and ``∂L/∂y_t`` is ignored.

Truncation (``truncate=k``): Williams & Peng 1990's BPTT(k; k), the "epochwise" form: the
sequence is cut into chunks of ``k`` scan steps, ``s ∈ [jk, (j+1)k)``, and no gradient crosses a
chunk boundary. It is exactly ``jax.grad`` of a forward pass that applies ``stop_gradient`` to
the carry entering scan step ``s`` whenever ``s > 0`` and ``s % k == 0``. Chunks count scan
steps from ``s = 0`` (the start of every sequence for forward runs; with ``reverse=True`` and
``lengths``, from ``t = T-1``, so a shorter sequence's first chunk is shortened by its padding).

Clipping (``clip=c``): the gradient of the carry entering each scan step is clipped elementwise
to ``[-c, c]`` (Graves 2013 clips LSTM derivatives so): it bounds the gradient before it
compounds across steps. Clipping the final parameter gradients instead is
``optax.clip(c)`` after any gradient method.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.cell import Cell, backward_of
from rnn_jax._src.gradients import GradientMethod, gradient_method
from rnn_jax._src.scan import loop, to_columns, to_rows, transposed, where_tree, zeros_where


@gradient_method
class ManualBPTT(GradientMethod):
    """Hand-written backpropagation through time; the default for every rnn_jax cell.

    The forward pass stores the carry entering each step and the step's gate pre-activations;
    the backward pass is one reverse scan of the cell's backward step (its module's
    ``Backward.step``); the weight gradients are summed in float32, by a few large contractions
    after it or one product over the batch per step inside it (the planner's layout). Without
    ``truncate`` and ``clip`` the gradients equal :class:`rnn_jax.Autodiff`'s to rounding.
    Reverse mode only (``jax.grad``, ``jax.vjp``, ``jax.jacrev``); for ``jax.jvp`` use
    ``grad=rnn_jax.Autodiff()``. A cell without a hand-written backward step (a cell of your
    own, or one whose ``project`` or ``recur`` was replaced) is refused with a ``ValueError``.

    Attributes:
      truncate: ``k``: truncated BPTT, no gradient crosses a boundary every ``k`` scan steps.
      clip: ``c > 0``: clip the carry's gradient elementwise to ``[-c, c]`` at every step.
    """

    truncate: Optional[int] = None
    clip: Optional[float] = None

    def __post_init__(self) -> None:
        t, c = self.truncate, self.clip
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t <= 0):
            raise ValueError(f"ManualBPTT: truncate must be a positive int or None, got {t!r}")
        if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float))
                              or not math.isfinite(c) or c <= 0):
            raise ValueError(f"ManualBPTT: clip must be a positive number or None, got {c!r}")

    def scan(self, cell, params, xs, carry, valid, resets, *, reverse, plan):
        b, unroll, ff = backward_of(cell), plan.unroll, plan.features_first
        if b is None:
            raise ValueError(
                f"grad=ManualBPTT(): the {cell.name!r} cell has no hand-written backward step "
                "(a cell of your own, or one whose project or recur was replaced); use "
                "grad=rnn_jax.Autodiff()")

        @jax.custom_vjp
        def run(params, xs, carry, valid, resets):   # not differentiated: the forward layout
            return loop(cell, params, xs, carry, valid, resets, reverse=reverse, unroll=unroll,
                        fuse=plan.fuse, features_first=plan.forward_features_first)

        def fwd(params, xs, carry, valid, resets):
            final, ys, carries, pres = loop(cell, params, xs, carry, valid, resets,
                                            reverse=reverse, unroll=unroll, save=True,
                                            fuse=plan.fuse, features_first=ff)
            return (final, ys), (params, xs, carries, pres, valid, resets)

        def bwd(res, cotangents):
            params, xs, carries, pres, valid, resets = res
            dparams, dcarry0, dxs = self.backward(cell, params, xs, carries, pres, cotangents,
                                                  valid, resets, reverse=reverse, unroll=unroll,
                                                  features_first=ff)
            return dparams, dxs, dcarry0, None, None

        run.defvjp(fwd, bwd)
        return run(params, xs, carry, valid, resets)

    def backward(self, cell: Cell, params: Any, xs: jax.Array, carries: Any, pres: Any,
                 cotangents: tuple[Any, jax.Array], valid: Optional[jax.Array],
                 resets: Optional[jax.Array], *, reverse: bool, unroll: int,
                 features_first: bool = False):
        """``(dparams, dcarry0, dxs)`` of a forward pass that saved ``carries`` and ``pres``
        (``(T, B, ...)``, or ``(T, F, B)`` with ``features_first``: the backward step then runs
        on columns too), given the cotangents ``(dfinal, dys)``.

        The parameter gradients are the cell's ``Backward.grads`` of every step's columns,
        summed. On columns (``features_first``) the loop adds each step's into its carry:
        products that contract the batch, ``(G, B) (B, H)``, and no ``(T, G, B)`` buffer of
        ``δxp``; XLA CPU ran LSTM and GRU forward+backward 3-20% faster so from 32 sequences
        (benchmarks/README.md). Mapped over fewer sequences, each step's ``δxp`` is kept and
        ``grads`` runs once after the loop, over all ``(F, T, B)`` columns: one large
        contraction instead of many thin ones."""
        b = backward_of(cell)
        dfinal, dys = cotangents
        T = xs.shape[0]
        clip = self.clip   # chunks of T steps or more have no boundary: the full gradient
        trunc = self.truncate if self.truncate is not None and self.truncate < T else None

        def one(p, dc, carry, pre, dy, v, r, s):    # one sequence (or the columns) at one step
            if v is not None:
                dy = jnp.where(v, dy, jnp.zeros((), dy.dtype))
                dc_in = zeros_where(~v, dc)
            else:
                dc_in = dc
            dc_prev, dxp, local = b.step(p, carry, pre, dc_in, dy)
            dc_prev = zeros_where(r, dc_prev)      # a reset cuts the path to the older carry
            if v is not None:
                dc_prev = where_tree(v, dc_prev, dc)   # invalid step: the carry passes through
            if clip is not None:
                dc_prev = jax.tree.map(lambda d: jnp.clip(d, -clip, clip), dc_prev)
            if trunc is not None:
                dc_prev = zeros_where((s % trunc == 0) & (s > 0), dc_prev)
            return dc_prev, (dxp, local)

        steps = (T - 1 - jnp.arange(T)) if reverse else jnp.arange(T)   # scan step of time t
        xs_cols = to_columns(xs, 1)                                      # (T, I, B)
        if features_first:
            def body(state, inp):   # the step's parameter gradients added into the carry
                dc, p_t, acc = state
                p = transposed(p_t)
                x, carry, *rest = inp
                dc, (dxp, local) = one(p, dc, carry, *rest)
                dp, dx = b.grads(p, x, carry, dxp, local)
                return (dc, p_t, jax.tree.map(lambda a, d: a + d.astype(a.dtype), acc, dp)), dx

            # summed in float32 at least: bfloat16 sums of 1000s of steps lose their precision
            zeros = jax.tree.map(
                lambda a: jnp.zeros(a.shape, jnp.promote_types(a.dtype, jnp.float32)), params)
            # the matrices enter the loop transposed and are transposed back in it: XLA then
            # computes a step's Wᵀ D from the stored Wᵀ instead of reading W column-wise, which
            # ran the GRU's backward loop 10% slower (mapped, linear_t reads W as stored)
            (dcarry0, _, dparams), dxs = jax.lax.scan(
                body, (to_columns(dfinal, 0), transposed(params), zeros),
                (xs_cols, carries, pres, to_columns(dys, 1), valid, resets, steps),
                reverse=not reverse, unroll=unroll)
            dcarry0, dxs = to_rows(dcarry0), to_rows(dxs, 1)
        else:   # each step's (dxp, local) kept as columns (F, B); grads once after the loop
            axes = (0, 0, 0, 0, None if valid is None else 0, None if resets is None else 0, None)
            step = jax.vmap(partial(one, params), in_axes=axes, out_axes=(0, 1))
            dcarry0, (dxps, locals_) = jax.lax.scan(
                lambda dc, inp: step(dc, *inp), dfinal, (carries, pres, dys, valid, resets, steps),
                reverse=not reverse, unroll=unroll)
            cols = (xs_cols, to_columns(carries, 1), dxps, locals_)          # (T, F, B)
            dparams, dxs = b.grads(params, *jax.tree.map(lambda a: jnp.moveaxis(a, 1, 0), cols))
            dxs = jnp.moveaxis(dxs, 0, -1)
        dparams = jax.tree.map(lambda g, p: g.astype(p.dtype), dparams, params)
        return dparams, dcarry0, dxs.astype(xs.dtype)

