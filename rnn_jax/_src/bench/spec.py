"""What is benchmarked: cells, shapes, passes, and one problem's weights and inputs.

Weights are drawn once per problem in rnn_jax's PyTorch layout (``w_ih (G*H, I)``,
``w_hh (G*H, H)``, ``b_ih``, ``b_hh``; gate order LSTM ``i, f, g, o``, GRU ``r, z, n``) as
float32 NumPy arrays; every implementation converts them to its own layout, so all of them
compute the same function on the same inputs.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

CELLS = ("lstm", "gru", "elman")
GATES = {"lstm": 4, "gru": 3, "elman": 1}
PASSES = ("fwd", "fwdbwd")
DTYPES = ("float32", "bfloat16")

# (B, T, I, H)
SHAPES: tuple[tuple[int, int, int, int], ...] = (
    (1, 100, 64, 128),
    (16, 100, 128, 256),
    (64, 100, 256, 256),
    (64, 500, 128, 128),
    (256, 50, 512, 512),
    (8, 2000, 64, 128),
)
TINY_SHAPE = (2, 5, 3, 4)


class Problem(NamedTuple):
    """One benchmark problem: a cell kind, a shape, a dtype, weights and inputs.

    ``weights`` maps ``w_ih``, ``w_hh``, ``b_ih``, ``b_hh`` to float32 arrays in PyTorch layout;
    ``xs`` is ``(B, T, I)`` float32 (each implementation casts to ``dtype``).
    """

    cell: str
    shape: tuple[int, int, int, int]
    dtype: str
    weights: dict[str, np.ndarray]
    xs: np.ndarray


class Prepared(NamedTuple):
    """One implementation, compiled and ready to time.

    Attributes:
      impl: name shown in reports (``"rnn_jax"``, ``"flax:OptimizedLSTMCell"``, ``"torch"``...).
      call: runs the pass once and blocks until the result is ready.
      compile_s: seconds spent tracing and compiling (0 for eager PyTorch).
      memory: XLA memory analysis in bytes (JAX variants only), else ``None``.
      result: runs the pass once and returns ``(ys, grads)`` as NumPy float32: ``ys`` is
        ``(B, T, H)`` for ``fwd`` (``None`` for ``fwdbwd``), ``grads`` maps rnn_jax's weight names
        to the gradient of ``sum(ys)`` (``None`` for ``fwd``).
    """

    impl: str
    call: Callable[[], None]
    compile_s: float
    memory: Optional[dict[str, int]]
    result: Callable[[], tuple[Optional[np.ndarray], Optional[dict[str, np.ndarray]]]]


def make_problem(cell: str, shape: tuple[int, int, int, int], dtype: str = "float32",
                 seed: int = 0) -> Problem:
    """Draws weights uniform in ``±1/sqrt(H)`` (PyTorch's default) and standard normal inputs."""
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}; expected one of {CELLS}")
    b, t, i, h = shape
    g = GATES[cell] * h
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(h)

    def uniform(*dims: int) -> np.ndarray:
        return rng.uniform(-bound, bound, size=dims).astype(np.float32)

    weights = {"w_ih": uniform(g, i), "w_hh": uniform(g, h), "b_ih": uniform(g), "b_hh": uniform(g)}
    xs = rng.standard_normal((b, t, i)).astype(np.float32)
    return Problem(cell, tuple(shape), dtype, weights, xs)


def matmul_flops(cell: str, shape: tuple[int, int, int, int], pass_: str) -> float:
    """Matmul FLOPs of one layer: ``2 B T (I + H) G H`` forward, three times that with backward.

    Elementwise work is left out, so achieved GFLOP/s compares directly with matmul throughput.
    """
    b, t, i, h = shape
    fwd = 2.0 * b * t * (i + h) * GATES[cell] * h
    return fwd if pass_ == "fwd" else 3.0 * fwd


def parse_shape(text: str) -> tuple[int, int, int, int]:
    """Parses ``"BxTxIxH"`` (e.g. ``"16x100x128x256"``)."""
    parts = tuple(int(p) for p in text.lower().split("x"))
    if len(parts) != 4 or min(parts) < 1:
        raise ValueError(f"shape must be BxTxIxH with positive sizes, got {text!r}")
    return parts  # type: ignore[return-value]
