"""Defaults that ``rnn_jax.run`` picks per backend, each from a measurement.

The backend is :func:`jax.default_backend` when a run is traced (``"cpu"``, ``"gpu"``,
``"tpu"``); a backend with no measurements of its own gets the CPU's choices. Passing
``unroll=`` or ``grad=`` to :func:`rnn_jax.run` overrides both.

``UNROLL``: time steps per ``lax.scan`` iteration.

* CPU, 1: an iteration costs little there, and unrolling made forward+backward slower almost
  everywhere on the 2-core reference machine (benchmarks/README.md).
* GPU, 8: XLA runs each iteration of a while loop as separately launched kernels plus a trip
  to the host for the loop condition. A nearly empty scan (``h = h/2 + x_t``, B=64, H=256)
  took 8.8 µs per step at unroll 1 and 1.3 µs at unroll 8 on an H100 (jax 0.11.2), more than
  the arithmetic of an LSTM step at every benchmark shape. Unrolling 4 and 16 times made
  LSTM/GRU forward+backward 1.2-2.5x faster than unroll 1 there; 8 sits between them in
  compile time (``benchmarks/gpu_anatomy.py``).

``MANUAL_BELOW``: per cell kind, the batch size below which the hand-written backward
(:class:`rnn_jax.ManualBPTT`) is the default gradient; larger batches use autodiff.

* CPU: the GRU's backward is faster up to B=16 and slower at B=64 (326 against 264 ms, T=500,
  I=H=128), where autodiff's per-step weight-gradient products beat the large contractions;
  the LSTM's, Elman's and Jordan's are faster at every size.
* GPU: every cell's backward is faster at every size measured (GRU at B=64, T=100,
  I=H=256: 1.73 against 2.70 ms at unroll 16; at B=256, T=50, I=H=512: 2.75 against 3.80).

``MANUAL_HOIST_BELOW``: per backend and cell kind, the batch size below which the default
``ManualBPTT`` hoists the input projection out of the scan that saves for the backward pass
(``ManualBPTT(hoist=True)``; the forward pass alone, not differentiated, never hoists).

* CPU, GRU (same process, forward+backward): B=16, T=100, I=128, H=128 11.3 against 13.6-14.3
  ms; at H=256 26.5 against 27.1; B=1, T=100, I=64, H=128 1.3 against 1.4. At B=8, T=2000,
  I=64, H=128 level (170-175 against 163-171). At B=64 it was 1.2x slower (T=100, I=H=256 and
  T=500, I=H=128), which matters where a low-precision dtype makes ``ManualBPTT`` the default
  there. Forward alone hoisted was 1.4-1.9x slower, hence never in the plain forward.

``FEATURES_FIRST_FROM``: per backend and cell kind, the batch size and hidden size from which
the cell is scanned features first (``rnn_jax._src.scan``: ``(H, B)`` carries and gates); the
Elman and Jordan cells gain nothing from it and never are.

* LSTM, every backend, from 32 sequences (CPU): the forward is faster from B=32 (B=32, T=100,
  I=128, H=256: 23.8 against 28.1 ms; B=256, T=50, I=H=512: 372 against 474 ms) and autodiff
  through it no slower, but at B=16 autodiff is slower (57 against 43 ms).
* GRU, CPU, from 32 sequences of 256 features: there it is also differentiated by default by
  ``ManualBPTT(accumulate=True)`` (``ACCUMULATE_FEATURES_FIRST``), whose backward scan runs
  features first too and adds each step's ``δa hᵀ`` and ``δa xᵀ`` into the weight gradients
  (products that contract the batch axis of two features-first operands, which XLA CPU ran at
  174 GFLOP/s against 150 for autodiff's per-step products of batch-first operands at B=256,
  H=512, ``benchmarks/weight_grad_layouts.py``; ``ManualBPTT()``'s contractions after the
  scan, which need the saved buffers transposed, gained less in the layer). The GRU's forward
  alone gains at H=128 too, but autodiff through it lost 9-14% at B=64, T=500, I=H=128, where
  autodiff stays its default gradient. Same process, forward+backward against the previous
  default (batch-first autodiff): B=32, T=100, I=H=256 58.5 against 79.2 ms (flax 100);
  B=64, T=100, I=H=256 120 against 137 (flax 174); B=64, T=100, I=H=512 385 against 436
  (flax 472); B=256, T=50, I=H=256 225 against 246 (flax 246); B=256, T=50, I=H=512 697
  against 767 (flax 760). Forward alone,
  features first: 0.81-0.96 of the batch-first time at those shapes. At H=128 (B=64, T=500)
  it was 1.13x slower and at B=16 (T=100, I=128, H=256) 1.14x, hence the bounds; batches of
  17-31 sequences keep their per-sequence step (``cells.gru.PER_SEQUENCE_BATCHES``).
* GPU: the LSTM as on the CPU (session 5); the GRU not measured, so batch first.

``ACCUMULATE_FEATURES_FIRST``: per backend, the cells whose default gradient is
``ManualBPTT(accumulate=True)`` where they are scanned features first (above).

``PERSISTENT``: backends where :class:`rnn_jax.Persistent` (the whole recurrence in one Pallas
kernel per direction) is the default, for the cells and sizes it covers with ``W_hh`` on chip
(:func:`rnn_jax._src.persistent.method.fits_on_chip`) and runs without ``resets``.

* GPU: at H=128 it was faster than the scan at every shape measured on an H100, float32 and
  bfloat16, forward and forward+backward. At B=64, T=500, I=128, float32: forward LSTM 1.94
  against 3.35 ms, GRU 1.49 against 2.75 (``benchmarks/persistent_sweep.py``); forward+backward
  LSTM 4.88 against 7.32, GRU 3.82 against 5.64 (``rnn-jax bench``); at B=1, T=100, I=64 and
  B=8, T=2000, I=64 1.1-1.6x. Records: ``benchmarks/results/gpu_h100_*_s6.*`` and
  ``gpu_h100_persistent*.jsonl``. Reading ``W_hh`` from memory at every step (needed where it
  does not fit on chip, H >= 256) was 1.7-15x slower than the scan, so the scan stays there.
"""

from __future__ import annotations

import math
from typing import Optional

import jax

UNROLL: dict[str, int] = {"cpu": 1, "gpu": 8}
PERSISTENT: dict[str, bool] = {"cpu": False, "gpu": True}
FEATURES_FIRST_FROM: dict[str, dict[str, tuple[float, float]]] = {
    "cpu": {"lstm": (32, 0), "gru": (32, 256)}, "gpu": {"lstm": (32, 0)}}
ACCUMULATE_FEATURES_FIRST: dict[str, frozenset[str]] = {"cpu": frozenset({"gru"}),
                                                        "gpu": frozenset()}
_EVERY = {"elman": math.inf, "jordan": math.inf, "lstm": math.inf, "gru": math.inf}
MANUAL_BELOW: dict[str, dict[str, float]] = {"cpu": {**_EVERY, "gru": 17}, "gpu": _EVERY}
MANUAL_HOIST_BELOW: dict[str, dict[str, float]] = {"cpu": {"gru": 17}, "gpu": {}}


def backend(name: Optional[str] = None) -> str:
    """``name``, or the backend JAX compiles for by default, as a key of the tables above."""
    name = jax.default_backend() if name is None else name
    return name if name in UNROLL else "cpu"


def default_unroll(on: Optional[str] = None) -> int:
    """``unroll`` when the caller gives none, for backend ``on`` (default: JAX's)."""
    return UNROLL[backend(on)]


def manual_below(cell_name: str, on: Optional[str] = None) -> float:
    """The batch size from which autodiff replaces the hand-written backward for ``cell_name``
    (0 for cells without one)."""
    return MANUAL_BELOW[backend(on)].get(cell_name, 0)


def manual_hoist(cell_name: str, batch_size: int, on: Optional[str] = None) -> bool:
    """Whether the default ``ManualBPTT`` of ``cell_name`` hoists the input projection for a
    batch of ``batch_size`` sequences."""
    return batch_size < MANUAL_HOIST_BELOW[backend(on)].get(cell_name, 0)


def features_first(cell_name: str, batch_size: int, hidden_size: int,
                   on: Optional[str] = None) -> bool:
    """Whether ``cell_name`` over ``batch_size`` sequences of ``hidden_size`` features is scanned
    features first by default on backend ``on`` (:data:`FEATURES_FIRST_FROM`)."""
    rule = FEATURES_FIRST_FROM[backend(on)].get(cell_name)
    return rule is not None and batch_size >= rule[0] and hidden_size >= rule[1]


def accumulate_default(cell_name: str, batch_size: int, hidden_size: int,
                       on: Optional[str] = None) -> bool:
    """Whether the default gradient of that run is ``ManualBPTT(accumulate=True)``
    (:data:`ACCUMULATE_FEATURES_FIRST`, where :func:`features_first`)."""
    return (cell_name in ACCUMULATE_FEATURES_FIRST[backend(on)]
            and features_first(cell_name, batch_size, hidden_size, on))


def persistent_default(on: Optional[str] = None) -> bool:
    """Whether :class:`rnn_jax.Persistent` may be the default on backend ``on``: where it was
    measured faster, and while float32 matmuls may run at TF32 precision (its float32
    operands are float16; ``jax_default_matmul_precision="highest"`` keeps the scan)."""
    precise = jax.config.jax_default_matmul_precision in ("highest", "float32")
    return PERSISTENT[backend(on)] and not precise
