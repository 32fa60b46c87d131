"""The planner: how :func:`rnn_jax.run` executes a cell, decided once per run from one table.

Every run is time-major with one flat batch axis (:mod:`rnn_jax._src.scan`). What the planner
decides changes speed only, never results:

* ``unroll``: time steps per ``lax.scan`` iteration. On a CPU an iteration costs little, and
  unrolling made forward+backward slower almost everywhere; on a GPU each iteration of a while
  loop is a chain of kernel launches plus a trip to the host for the loop condition, several
  microseconds, more than the arithmetic of an LSTM step at every benchmarked shape, and
  unrolling 8 steps amortises it.
* ``fuse``: whether a step takes its products with ``x`` and with the carry as one, where
  the cell's ``Backward`` has that ``fused`` form (the LSTM's: one matmul over ``[x; h]``),
  or apart, ``W_ih x`` then ``W_hh h``. One contraction over ``I + H`` beat two up to
  ``H = 128`` and lost beyond, where each is already large and the concatenation costs more.
  On a CPU the mapped layout's fused form lost to two products at 16 sequences and below, so
  there a step fuses from 32 sequences.
* ``features_first_from``: the layout of a step over a batch of ``B`` sequences. Below it the
  step of one sequence is mapped over the batch with ``jax.vmap``: its arrays are rows
  ``(B, F)`` and its products ``X Wᵀ`` (:func:`rnn_jax._src.cell.affine`), with ``Wᵀ`` formed
  once before the loop (:func:`rnn_jax._src.scan.loop`), the program flax's cells compile to.
  From it the step runs on the batch as columns (``(F, B)`` arrays, products ``W X``: gate
  blocks are contiguous rows, and no transpose is needed between steps). The layout also
  shapes :class:`rnn_jax.ManualBPTT`'s weight gradients: on columns its backward loop adds one
  product over the batch per step (3-20% faster for the LSTM and GRU from 32 sequences than
  contracting a ``(G, T, B)`` buffer after the loop, which stays the mapped batch's way).
  A run that is not differentiated (the forward pass alone) has its own threshold,
  ``forward_features_first_from``: on a CPU rows ran the forward pass as fast as columns or
  faster up to 64 sequences (the Elman cell 1.1-1.2x faster at 8 to 64 sequences, the LSTM
  1.1x at 16); columns were as fast at 128 sequences and about 1.1x faster at 256.
  Columns need a cell written with :func:`rnn_jax._src.cell.affine` and
  :func:`rnn_jax._src.cell.col`, as rnn_jax's are; a cell without a hand-written backward
  step (a cell of your own) always runs mapped.
* the default gradient method: :class:`rnn_jax.ManualBPTT` for every cell that has a
  hand-written backward step (faster than autodiff at every benchmarked CPU and GPU shape, and
  the accurate one in 16-bit dtypes, whose weight gradients it sums in single contractions);
  :class:`rnn_jax.Autodiff` for other cells; on a GPU, :class:`rnn_jax.Persistent` (the
  recurrence as one kernel) for the LSTM and GRU sizes it runs with ``W_hh`` on chip, in runs
  without ``resets``, while float32 matmuls may run at TF32 precision.

The measurements behind the table are in ``benchmarks/README.md``. A backend without a row gets
the CPU's. ``run(..., unroll=..., grad=...)`` overrides the planner.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.cell import Cell, backward_of
from rnn_jax._src.gradients import Autodiff, GradientMethod
from rnn_jax._src.manual import ManualBPTT
from rnn_jax._src.persistent.method import Persistent, fits_on_chip
from rnn_jax._src.platform import default_platform


class Row(NamedTuple):
    """One backend's choices."""

    unroll: int        # time steps per scan iteration
    fuse_up_to: int    # hidden sizes up to which a step takes its two products as one
    fuse_from: int     # batches from which it does
    features_first_from: int  # batches from which the step runs on the batch as columns
    forward_features_first_from: int  # the same for a run that is not differentiated
    persistent: bool   # rnn_jax.Persistent may be the default gradient method


TABLE: dict[str, Row] = {
    "cpu": Row(unroll=1, fuse_up_to=128, fuse_from=32, features_first_from=32,
               forward_features_first_from=128,
               persistent=False),
    "gpu": Row(unroll=8, fuse_up_to=128, fuse_from=1, features_first_from=32,
               forward_features_first_from=32,
               persistent=True),
}


class Plan(NamedTuple):
    """How one run executes: ``unroll``, ``fuse``, the gradient method ``grad``, and the layout
    (``features_first``; ``forward_features_first`` where the run is not differentiated and the
    gradient method can tell, as :class:`rnn_jax.ManualBPTT` can)."""

    unroll: int
    fuse: bool
    grad: GradientMethod
    features_first: bool = False
    forward_features_first: bool = False


def backend(name: Optional[str] = None) -> str:
    """``name``, or the platform JAX computes on by default (that of ``jax.default_device``
    where it is set, else JAX's default backend), as a key of :data:`TABLE`."""
    name = default_platform(name)
    return name if name in TABLE else "cpu"


def plan(cell: Cell, dtype: Any = jnp.float32, *, batch: int = 1, resets: bool = False,
         on: Optional[str] = None) -> Plan:
    """The plan of a run of ``cell`` over ``batch`` sequences computing in ``dtype`` on backend
    ``on`` (default: the default device's platform, that of ``jax.default_device`` where it is
    set); ``resets``: whether the run has resets."""
    row = TABLE[backend(on)]
    b = backward_of(cell)
    ours = b is not None   # columns need a cell written with affine and col, as rnn_jax's are
    ff = ours and batch >= row.features_first_from
    fwd_ff = ours and batch >= row.forward_features_first_from
    fuse = (ours and b.fused is not None and cell.hidden_size <= row.fuse_up_to
            and batch >= row.fuse_from)
    if row.persistent and not resets and _persistent_fits(cell, dtype):
        return Plan(row.unroll, fuse, Persistent(), ff, fwd_ff)
    grad = ManualBPTT() if b is not None else Autodiff()
    return Plan(row.unroll, fuse, grad, ff, fwd_ff)


def _persistent_fits(cell: Cell, dtype: Any) -> bool:
    """Whether the persistent kernel runs ``cell`` with ``W_hh`` on chip, and float32 matmuls
    may be computed at TF32 precision (``jax_default_matmul_precision="highest"`` keeps the
    scan, whose float32 matmuls then are exact)."""
    precise = jax.config.jax_default_matmul_precision in ("highest", "float32")
    return not precise and fits_on_chip(cell, dtype)
