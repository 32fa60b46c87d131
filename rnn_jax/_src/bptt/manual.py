"""The ``ManualBPTT`` gradient method and :func:`bptt`, the sequence backward as a function.

The forward pass is the runner's one loop, :func:`rnn_jax._src.scan.scan_steps`, with a
``wrap_step`` that also emits the carry entering each step and, unless ``recompute=True``, the
step's gate pre-activations (``CellBackward.preact``: the results of the matmuls with the
carry, which XLA shares with the step itself). A ``jax.custom_vjp`` then replaces JAX's
backward pass by :func:`sequence_backward`: one reverse scan whose only matmul per step is
``δa W_hh`` for the carry's gradient, and a few large contractions for the weight gradients.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src import validate as v
from rnn_jax._src.bptt.common import CellBackward
from rnn_jax._src.bptt.registry import backward_for
from rnn_jax._src.bptt.sequence import sequence_backward
from rnn_jax._src.cell import BATCH_FIRST, FEATURES_FIRST, Cell, recur_invariants
from rnn_jax._src.runner import prepare
from rnn_jax._src.scan import (features_first_by_default, fused_step, masked_step,
                               reset_to_zeros, scan_steps)
from rnn_jax._src.tuning import default_unroll


def forward_with_carries(cell: Cell, params, xs, carry, valid, *, reverse, unroll=1, hoist=False,
                         resets=None, bwd: Optional[CellBackward] = None):
    """``scan_steps`` that also returns what each step read: ``(final, ys, carries, pres, fa)``.

    ``carries`` is the carry entering each step; ``pres`` is ``bwd.preact`` of each step (None
    without ``bwd``), computed from the same operands as the step, so XLA evaluates the shared
    matmuls once. The scan runs features first where ``scan_steps`` would by default and
    ``bwd.preact`` supports it (the LSTM's); ``carries`` are then ``(T, F, *batch)`` and ``fa``
    is ``FEATURES_FIRST`` (``BATCH_FIRST`` otherwise), as :func:`sequence_backward` takes them.
    """
    fa = saved_layout(cell, xs, hoist, bwd)
    ff = fa == FEATURES_FIRST
    kw = {"fa": fa} if ff else {}
    # Features first, a cell with a fused step runs it as ``finish(preact(x))`` and saves the
    # ``a`` in between: computed once (XLA did not share the stacked weights of two calls).
    # A ``bwd.finish`` (the GRU's) likewise runs the step from the saved ``bwd.preact``.
    fused = fused_step(cell) if ff and bwd is not None and bwd.saves_fused else None
    # The step's loop invariants (batch first), passed to ``bwd.preact`` too so that its
    # matmul is the step's own and XLA computes it once.
    inv = None if ff or bwd is None else recur_invariants(cell, params, xs.shape[1:-1])
    pre_kw = {} if inv is None else {"inv": inv}

    def save(step):
        def wrapped(c, inp):
            x, v, r = inp
            if bwd is None:
                new_carry, y = step(c, inp)
                return new_carry, (y, c, None)
            c_in = reset_to_zeros(c, r, fa)
            if fused is not None:
                a, finish = fused.preact(params, c_in, x, fa), fused.finish
            else:
                xp = x if hoist else cell.project(params, x, **kw)
                a = bwd.preact(params, c_in, xp, **kw, **pre_kw)
                finish = bwd.finish if ff else None
            if finish is None:
                new_carry, y = step(c, inp)
            else:  # the step from the saved ``a``
                new_carry, y = masked_step(cell, params, c, a, v, r, fa, recur=finish)
            return new_carry, (y, c, a)

        return wrapped

    final, (ys, carries, pres) = scan_steps(cell, params, xs, carry, valid, reverse=reverse,
                                            unroll=unroll, hoist=hoist, wrap_step=save,
                                            resets=resets, features_first=ff, invariants=inv)
    if ff:  # (T, F, *batch) -> (T, *batch, F)
        ys = jnp.moveaxis(ys, 1, -1)
    return final, ys, carries, pres, fa


def saved_layout(cell: Cell, xs, hoist: bool, bwd: Optional[CellBackward]) -> int:
    """The layout :func:`forward_with_carries` saves in: ``FEATURES_FIRST`` where ``scan_steps``
    scans features first by default and ``bwd.preact`` supports it, else ``BATCH_FIRST``."""
    ff = features_first_by_default(cell, xs, hoist) and (
        bwd is None or getattr(bwd.preact, "features_first", False))
    return FEATURES_FIRST if ff else BATCH_FIRST


class ManualBPTT(NamedTuple):
    """Hand-written backpropagation through time behind a ``jax.custom_vjp``; the default for
    rnn_jax's Elman, Jordan and LSTM cells, and for GRUs but for mid-sized CPU batches.

    The forward pass stores the carry entering each step (``(T, *batch, carry)``) and the gate
    pre-activations (``T·B·G`` numbers, ``G = 4H`` for an LSTM); the backward pass is one
    reverse ``lax.scan`` of the per-cell backward steps (``rnn_jax._src.bptt.{elman,jordan,
    lstm,gru}``), elementwise but for the one matmul ``δa W_hh`` per step, followed by single
    large contractions for the weight gradients (JAX's own backward pass of the scan instead
    adds a small ``δa hᵀ`` product into each weight gradient at every step). Without
    ``truncate`` and ``clip`` the gradients equal :class:`rnn_jax.Autodiff`'s to rounding.
    Reverse mode only (``jax.grad``, ``jax.vjp``, ``jax.jacrev``); ``jax.jvp`` of a custom-VJP
    function is not defined, so use ``grad=rnn_jax.Autodiff()`` for forward mode.

    Attributes:
      truncate: ``k``: truncated BPTT, no gradient crosses a boundary every ``k`` scan steps
        (Williams & Peng 1990, BPTT(k, k); see :mod:`rnn_jax._src.bptt.sequence`).
      clip: ``c``: clip the carry's gradient elementwise to ``[-c, c]`` at every step.
      hoist: compute the input projection of all steps at once (one large matmul) in the
        forward pass that saves for the backward pass and again in the backward pass, instead
        of inside each step; it needs a ``(T, *batch, G)`` buffer of projections (``G = 4H``
        for an LSTM), twice the size of the saved carries. A forward pass that is not
        differentiated runs unhoisted: on CPU the hoisted scan was 1.4-1.9x slower there,
        while under differentiation it made the GRU's forward+backward up to 1.2x faster at
        B <= 16 (``rnn_jax._src.tuning.MANUAL_HOIST_BELOW``).
      accumulate: sum the parameter gradients inside the backward scan (small matmuls per
        step; memory: the carries only) instead of emitting ``δxp_t`` and contracting over
        all steps at once after the scan (one large matmul; memory: carries plus a
        ``(T, *batch, G)`` buffer). Where the cell is scanned features first (large LSTM and
        GRU batches) the backward scan then runs features first too; on a CPU that is the
        default for GRUs of at least 32 sequences and 256 features
        (``rnn_jax._src.tuning.FEATURES_FIRST_FROM``), where XLA runs those per-step
        products faster than the contractions after the scan.
      recompute: store only the carries and recompute the gate pre-activations in the
        backward pass (one more matmul per step). ``ManualBPTT(recompute=True,
        accumulate=True)`` keeps the backward pass's memory at the carries alone, as
        :class:`rnn_jax.Checkpointed` does.
    """

    truncate: Optional[int] = None
    clip: Optional[float] = None
    hoist: bool = False
    accumulate: bool = False
    recompute: bool = False

    def scan(self, cell: Cell, params: Any, xs: jax.Array, carry: Any,
             valid: Optional[jax.Array], *, reverse: bool, unroll: int,
             resets: Optional[jax.Array] = None):
        _check_options(self.truncate, self.clip)
        bwd_cell = backward_for(cell)

        @jax.custom_vjp
        def run(params, xs, carry, valid, resets):
            return scan_steps(cell, params, xs, carry, valid, reverse=reverse, unroll=unroll,
                              resets=resets)  # never hoisted (see ``hoist``)

        save = None if self.recompute or bwd_cell.preact is None else bwd_cell

        def fwd(params, xs, carry, valid, resets):
            final, ys, carries, pres, _ = forward_with_carries(
                cell, params, xs, carry, valid, reverse=reverse, unroll=unroll,
                hoist=self.hoist, resets=resets, bwd=save)
            return (final, ys), (params, xs, carries, pres, valid, resets)

        fa = saved_layout(cell, xs, self.hoist, save)

        def bwd(res, cotangents):
            params, xs, carries, pres, valid, resets = res
            dfinal, dys = cotangents
            dparams, dcarry0, dxs = sequence_backward(
                cell, bwd_cell, params, xs, carries, dys, dfinal, valid, reverse=reverse,
                truncate=self.truncate, clip=self.clip, unroll=unroll, hoist=self.hoist,
                accumulate=self.accumulate, resets=resets, pres=pres, fa=fa)
            return dparams, dxs, dcarry0, None, None

        run.defvjp(fwd, bwd)
        return run(params, xs, carry, valid, resets)


def _check_options(truncate, clip):
    if truncate is not None and (isinstance(truncate, bool) or not isinstance(truncate, int)
                                 or truncate <= 0):
        raise ValueError(f"truncate must be a positive int or None, got {truncate!r}")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be a positive number or None, got {clip!r}")


def bptt(
    cell: Cell,
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
    returns the vector-Jacobian product of ``(final_carry, ys)`` with ``(dcarry, dys)``.

    Args:
      cell, params, xs, initial_carry, lengths, resets, reverse, time_major, unroll: as
        :func:`rnn_jax.run`.
      dys: gradient of the outputs, the shape of ``ys`` (``(*batch, T, O)`` or time-major).
      dcarry: gradient of the final carry; zeros if None.
      truncate, clip: truncated BPTT and per-step elementwise clipping of the carry's
        gradient, as :class:`ManualBPTT`.

    Returns:
      ``(dparams, dinitial_carry, dxs)``, shaped as ``params``, the carry and ``xs``.
    """
    _check_options(truncate, clip)
    unroll = default_unroll() if unroll is None else v.check_unroll(unroll)
    seq = prepare(cell, params, xs, initial_carry, lengths, time_major, resets)
    T, batch_shape = seq.T, seq.batch_shape
    dys = jnp.asarray(dys)
    expected = (T, *batch_shape, cell.output_size) if time_major else \
        (*batch_shape, T, cell.output_size)
    if dys.shape != expected:
        raise ValueError(f"dys must have shape {expected}, got {dys.shape}")
    if dcarry is None:
        dcarry = jax.tree.map(jnp.zeros_like, seq.carry)
    else:
        v.check_carry(cell, dcarry, batch_shape, "dcarry")
    xs_tm, valid = seq.xs, seq.valid
    dys_tm = dys if time_major else jnp.moveaxis(dys, -2, 0)
    bwd = backward_for(cell)
    _, _, carries, pres, fa = forward_with_carries(cell, params, xs_tm, seq.carry, valid,
                                                   reverse=reverse, unroll=unroll,
                                                   resets=seq.resets, bwd=bwd)
    dparams, dcarry0, dxs = sequence_backward(
        cell, bwd, params, xs_tm, carries, dys_tm, dcarry, valid, reverse=reverse,
        truncate=truncate, clip=clip, unroll=unroll, resets=seq.resets, pres=pres, fa=fa)
    return dparams, dcarry0, (dxs if time_major else jnp.moveaxis(dxs, 0, -2))
