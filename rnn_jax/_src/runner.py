"""The sequence runner: one ``lax.scan`` for every cell, every gradient method."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src import validate as v
from rnn_jax._src.cell import Cell
from rnn_jax._src.gradients import Autodiff
from rnn_jax._src.tuning import default_unroll


class Prepared(NamedTuple):
    """Checked, time-major inputs of one run (see :func:`prepare`)."""

    xs: jax.Array          # (T, *batch, I)
    carry: Any             # initial carry, (*batch, ...)
    valid: Optional[jax.Array]  # (T, *batch) booleans, or None without lengths
    resets: Optional[jax.Array]  # (T, *batch) booleans, or None
    T: int
    batch_shape: tuple


def prepare(cell: Cell, params: Any, xs: Any, initial_carry: Any, lengths: Any,
            time_major: bool, resets: Any = None) -> Prepared:
    """Checks a run's arguments (trace time) and brings them to the loop's time-major form.

    The carry is made (zeros) or cast to the dtype the steps compute in, the result type of the
    params and the inputs.
    """
    v.check_cell(cell)
    xs, T, batch_shape = v.check_inputs(cell, xs, time_major)
    v.check_params(cell, params)
    lengths = v.check_lengths(lengths, T, batch_shape)
    dtype = jnp.result_type(v.param_dtype(params), xs.dtype)
    if initial_carry is None:
        initial_carry = cell.initial_carry(batch_shape, dtype)
    else:
        v.check_carry(cell, initial_carry, batch_shape)
        initial_carry = jax.tree.map(lambda c: jnp.asarray(c, jnp.result_type(c, dtype)),
                                     initial_carry)
    resets = v.check_resets(resets, T, batch_shape, time_major)
    if resets is not None and not time_major:
        resets = jnp.moveaxis(resets, -1, 0)
    xs_tm = xs if time_major else jnp.moveaxis(xs, -2, 0)
    return Prepared(xs_tm, initial_carry, v.valid_mask(lengths, T), resets, T, batch_shape)


def default_method(cell: Cell, batch_size: int = 1, on: Optional[str] = None,
                   dtype: Any = None, masked: bool = False) -> Any:
    """The gradient method ``run`` uses when ``grad`` is None: the fastest one measured, or the
    accurate one in low precision.

    :class:`rnn_jax.ManualBPTT` for rnn_jax's own cells (no matmul is redone and the weight
    gradients are a few large contractions after the backward scan: LSTM forward+backward at
    B=64, T=500, I=H=128 340 ms against 380 ms with autodiff on a 2-core CPU), except the GRU
    from 17 sequences on a CPU; :class:`rnn_jax.Autodiff` there and for cells written outside
    rnn_jax. On a CPU the GRU's ``ManualBPTT`` hoists the input projection at batch sizes
    below ``tuning.MANUAL_HOIST_BELOW``, and GRUs of at least 32 sequences and 256 features
    (``tuning.FEATURES_FIRST_FROM``) are scanned features first and get
    ``ManualBPTT(accumulate=True)`` (B=64, T=100, I=H=256: 120 against 137 ms with autodiff). ``batch_size`` is the number of sequences (1
    unbatched); ``on`` the backend (default: JAX's); the measurements are in
    :mod:`rnn_jax._src.tuning`.

    With a ``dtype`` of fewer than 32 bits (bfloat16, float16) every cell that has a
    hand-written backward gets it, whatever its speed: autodiff through ``lax.scan`` adds each
    step's weight gradient into a carry of that dtype, and over many steps the small
    increments are rounded away (bfloat16 LSTM at B=8, T=2000: bias gradients 81% off a
    float32 reference on the same inputs, against 0.3% with ``ManualBPTT``, whose weight
    gradients are single contractions after the scan).

    On a GPU, :class:`rnn_jax.Persistent` (one kernel for all T steps) replaces both for the
    LSTM and GRU sizes it runs with ``W_hh`` on chip, in runs without ``resets`` (``masked``);
    its weight gradients are ``ManualBPTT``'s contractions, so it is as accurate.
    """
    from rnn_jax._src.persistent.method import Persistent, fits_on_chip
    from rnn_jax._src.tuning import persistent_default

    if (not masked and dtype is not None and persistent_default(on)
            and fits_on_chip(cell, dtype)):
        return Persistent()
    from rnn_jax._src.bptt.manual import ManualBPTT
    from rnn_jax._src.bptt.registry import has_backward, manual_is_default

    from rnn_jax._src.tuning import accumulate_default, manual_hoist

    low = dtype is not None and jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32
    if (not low and has_backward(cell)
            and accumulate_default(cell.name, batch_size, cell.hidden_size, on)):
        return ManualBPTT(accumulate=True)
    manual = has_backward(cell) if low else manual_is_default(cell, batch_size, on)
    if not manual:
        return Autodiff()

    return ManualBPTT(hoist=manual_hoist(cell.name, batch_size, on))


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
    grad: Any = None,
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
        initial carry) and its outputs past the end are zero. Under ``jit`` the values cannot
        be checked; steps with ``t >= lengths`` are then simply treated as padding.
      resets: booleans of shape ``(*batch, T)`` (``(T, *batch)`` time-major): where True, the
        carry is set to zeros before step ``t`` is read, e.g. where a new document starts in a
        stream; no gradient flows back across a reset.
      reverse: read each sequence backwards, from its last valid step to ``t = 0``. Only the
        valid prefix is reversed; outputs come back in the original time order.
      time_major: layout of ``xs`` and of the outputs.
      unroll: time steps per ``lax.scan`` iteration (speed only, never results). None: 1 on a
        CPU, 8 on a GPU, where each loop iteration costs several microseconds
        (:mod:`rnn_jax._src.tuning`).
      grad: the gradient method: :class:`rnn_jax.ManualBPTT` (the default for rnn_jax's own
        cells, except the GRU from 17 sequences on a CPU in 32 or more bits, where it is
        ``ManualBPTT(accumulate=True)`` from 32 sequences of 256 features or more),
        :class:`rnn_jax.Autodiff` (the default for the other GRUs there and for other cells; use it for
        forward-mode ``jax.jvp`` / ``jax.jacfwd``, which a custom VJP does not support) or
        :class:`rnn_jax.Checkpointed`, or :class:`rnn_jax.Persistent` (one GPU kernel for all
        steps; the default on a GPU for LSTM/GRU layers with ``hidden_size <= 128`` without
        ``resets``; see :func:`default_method`).

    Returns:
      ``(final_carry, ys)``: the carry after each sequence's last valid step, and the outputs,
      ``(*batch, T, output_size)`` (or time-major).

    Raises:
      TypeError, ValueError: at trace time, for inputs of the wrong rank, size or dtype, lengths
      of the wrong shape, dtype or range, a carry or params not matching the cell.
    """
    unroll = default_unroll() if unroll is None else v.check_unroll(unroll)
    if not isinstance(reverse, bool):
        raise TypeError(f"reverse must be a bool, got {reverse!r}")
    v.check_cell(cell)
    if grad is not None and not callable(getattr(grad, "scan", None)):
        raise TypeError(f"grad must be a gradient method such as rnn_jax.Autodiff(), got {grad!r}")
    seq = prepare(cell, params, xs, initial_carry, lengths, time_major, resets)
    if grad is None:
        dtype = jnp.result_type(seq.xs, *jax.tree.leaves(params))
        method = default_method(cell, math.prod(seq.batch_shape), dtype=dtype,
                                masked=seq.resets is not None)
    else:
        method = grad
    kw = {} if seq.resets is None else {"resets": seq.resets}
    carry, ys = method.scan(cell, params, seq.xs, seq.carry, seq.valid,
                            reverse=reverse, unroll=unroll, **kw)
    return carry, (ys if time_major else jnp.moveaxis(ys, 0, -2))
