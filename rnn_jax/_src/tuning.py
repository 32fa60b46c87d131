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

* CPU: the GRU's backward is faster at B=1, level at B=16 and slower at B=64 (338 against 263
  ms, T=500, I=H=128), where autodiff's per-step weight-gradient products beat the large
  contractions; the LSTM's, Elman's and Jordan's are faster at every size.
* GPU: every cell's backward is faster at every size measured (GRU at B=64, T=100,
  I=H=256: 1.73 against 2.70 ms at unroll 16; at B=256, T=50, I=H=512: 2.75 against 3.80).
"""

from __future__ import annotations

import math
from typing import Optional

import jax

UNROLL: dict[str, int] = {"cpu": 1, "gpu": 8}
_EVERY = {"elman": math.inf, "jordan": math.inf, "lstm": math.inf, "gru": math.inf}
MANUAL_BELOW: dict[str, dict[str, float]] = {"cpu": {**_EVERY, "gru": 16}, "gpu": _EVERY}


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
