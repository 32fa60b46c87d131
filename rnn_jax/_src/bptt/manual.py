"""The ``ManualBPTT`` gradient method and :func:`bptt`, the sequence backward as a function.

The forward pass is the runner's one loop, :func:`rnn_jax._src.scan.scan_steps`, with a
``wrap_step`` that also emits the carry entering each step; those carries are the only
residuals. A ``jax.custom_vjp`` then replaces JAX's backward pass by
:func:`sequence_backward`, which recomputes the gate pre-activations from the saved carries.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src import validate as v
from rnn_jax._src.bptt.registry import backward_for
from rnn_jax._src.bptt.sequence import sequence_backward
from rnn_jax._src.cell import Cell
from rnn_jax._src.runner import prepare
from rnn_jax._src.scan import scan_steps


def _save_carry(step):
    def wrapped(carry, inp):
        new_carry, y = step(carry, inp)
        return new_carry, (y, carry)

    return wrapped


def forward_with_carries(cell: Cell, params, xs, carry, valid, *, reverse, unroll=1, hoist=False,
                         resets=None):
    """``scan_steps`` that also returns the carry entering each step: ``(final, ys, carries)``."""
    final, (ys, carries) = scan_steps(cell, params, xs, carry, valid, reverse=reverse,
                                      unroll=unroll, hoist=hoist, wrap_step=_save_carry,
                                      resets=resets)
    return final, ys, carries


class ManualBPTT(NamedTuple):
    """Hand-written backpropagation through time behind a ``jax.custom_vjp``.

    The forward pass stores only the carry entering each step (``(T, *batch, carry)``); the
    backward pass is one reverse ``lax.scan`` of the per-cell backward steps
    (``rnn_jax._src.bptt.{elman,jordan,lstm,gru}``), which recompute the gate pre-activations,
    followed by single large contractions for the weight gradients. Without ``truncate`` and
    ``clip`` the gradients equal :class:`rnn_jax.Autodiff`'s to rounding. Reverse mode only
    (``jax.grad``, ``jax.vjp``); ``jax.jvp`` of a custom-VJP function is not defined.

    Attributes:
      truncate: ``k``: truncated BPTT, no gradient crosses a boundary every ``k`` scan steps
        (Williams & Peng 1990, BPTT(k, k); see :mod:`rnn_jax._src.bptt.sequence`).
      clip: ``c``: clip the carry's gradient elementwise to ``[-c, c]`` at every step.
      hoist: compute the input projection of all steps at once (one large matmul) in the
        forward pass and again in the backward pass, instead of inside each step; faster on
        wide hardware, but it needs a ``(T, *batch, G)`` buffer of projections (``G = 4H``
        for an LSTM), twice the size of the saved carries.
      accumulate: sum the parameter gradients inside the backward scan (small matmuls per
        step; memory: the carries only) instead of emitting ``δxp_t`` and contracting over
        all steps at once after the scan (one large matmul; memory: carries plus a
        ``(T, *batch, G)`` buffer).
    """

    truncate: Optional[int] = None
    clip: Optional[float] = None
    hoist: bool = False
    accumulate: bool = False

    def scan(self, cell: Cell, params: Any, xs: jax.Array, carry: Any,
             valid: Optional[jax.Array], *, reverse: bool, unroll: int,
             resets: Optional[jax.Array] = None):
        _check_options(self.truncate, self.clip)
        bwd_cell = backward_for(cell)

        @jax.custom_vjp
        def run(params, xs, carry, valid, resets):
            return scan_steps(cell, params, xs, carry, valid, reverse=reverse, unroll=unroll,
                              hoist=self.hoist, resets=resets)

        def fwd(params, xs, carry, valid, resets):
            final, ys, carries = forward_with_carries(cell, params, xs, carry, valid,
                                                      reverse=reverse, unroll=unroll,
                                                      hoist=self.hoist, resets=resets)
            return (final, ys), (params, xs, carries, valid, resets)

        def bwd(res, cotangents):
            params, xs, carries, valid, resets = res
            dfinal, dys = cotangents
            dparams, dcarry0, dxs = sequence_backward(
                cell, bwd_cell, params, xs, carries, dys, dfinal, valid, reverse=reverse,
                truncate=self.truncate, clip=self.clip, unroll=unroll, hoist=self.hoist,
                accumulate=self.accumulate, resets=resets)
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
    unroll: int = 1,
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
    _, _, carries = forward_with_carries(cell, params, xs_tm, seq.carry, valid,
                                         reverse=reverse, unroll=unroll, resets=seq.resets)
    dparams, dcarry0, dxs = sequence_backward(
        cell, backward_for(cell), params, xs_tm, carries, dys_tm, dcarry, valid,
        reverse=reverse, truncate=truncate, clip=clip, unroll=unroll, resets=seq.resets)
    return dparams, dcarry0, (dxs if time_major else jnp.moveaxis(dxs, 0, -2))
