"""The machine's own matmul throughput, measured in the same run as the RNNs.

Two references per problem, timed interleaved with the RNN variants:

* ``floor:scan``: a ``lax.scan`` over T steps doing only the layer's matmuls,
  ``g = x_t W_ih^T + h W_hh^T``, with the next state the sum of ``g``'s G gate blocks
  (a cheap reduction that keeps every column of ``g`` live).
* ``floor:hoisted``: the same with the input matmul done once for all steps before the scan.

Both scan with the ``unroll`` rnn_jax's runner uses by default on the backend (1 on a CPU, 8 on
a GPU: :mod:`rnn_jax._src.plan`), so that the loop's own cost per iteration, large on a GPU,
is counted alike. The matmul-only floor of a problem is the faster of the two; an RNN's
``floor_fraction`` is floor time over its own time. With backward, both are differentiated the
same way as the RNNs.
:func:`peak_gflops` times one large square matmul outside any loop: 1024² on a CPU, 8192² on
an accelerator (a 1024² product is over in microseconds there and would measure launch time).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from rnn_jax._src.bench.jaxprep import jnp_dtype, prepare_jax
from rnn_jax._src.bench.spec import GATES, Prepared, Problem

FLOOR_IMPLS = ("floor:scan", "floor:hoisted")


def _apply(cell: str, hoisted: bool) -> Any:
    """``apply(params, xs) -> ys`` for the matmul-only scan."""
    import jax.numpy as jnp
    from jax import lax

    from rnn_jax._src.plan import TABLE, backend

    gates = GATES[cell]

    def apply(p: dict[str, Any], xs: Any) -> Any:
        batch, _, _ = xs.shape
        hidden = p["w_hh"].shape[1]
        xs_t = jnp.swapaxes(xs, 0, 1)  # (T, B, I)
        if hoisted:
            xs_t = xs_t @ p["w_ih"].T  # (T, B, G*H)

        def step(h: Any, x: Any) -> tuple[Any, Any]:
            g = h @ p["w_hh"].T + (x if hoisted else x @ p["w_ih"].T)  # (B, G*H)
            h = g.reshape(batch, gates, hidden).sum(axis=1)  # (B, H)
            return h, h

        h0 = jnp.zeros((batch, hidden), xs.dtype)
        _, ys = lax.scan(step, h0, xs_t, unroll=TABLE[backend()].unroll)
        return jnp.swapaxes(ys, 0, 1)

    return apply


def prepare(problem: Problem, pass_: str) -> list[Prepared]:
    """The two matmul-only references for ``problem``."""
    params = {k: problem.weights[k] for k in ("w_ih", "w_hh")}

    def no_grads(g: Any) -> dict[str, Any]:
        return dict(g)

    return [prepare_jax(impl, problem, pass_, _apply(problem.cell, impl.endswith("hoisted")),
                        params, no_grads) for impl in FLOOR_IMPLS]


def peak_size() -> int:
    """The side of :func:`peak_gflops`'s matmul on JAX's default backend."""
    import jax

    return 1024 if jax.default_backend() == "cpu" else 8192


def peak_gflops(dtype: str = "float32", n: int = 1024, reps: int = 10) -> float:
    """Median GFLOP/s of one jitted ``(n, n) @ (n, n)`` matmul on standard normal data."""
    import jax

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp_dtype(dtype))
    matmul = jax.jit(lambda x, y: x @ y).lower(a, a).compile()
    jax.block_until_ready(matmul(a, a))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(matmul(a, a))
        times.append(time.perf_counter() - start)
    return 2.0 * n**3 / statistics.median(times) / 1e9
