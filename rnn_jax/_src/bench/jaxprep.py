"""Compiling a JAX variant ahead of time, with its compile time and XLA memory analysis."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

import numpy as np

from rnn_jax._src.bench.spec import Prepared, Problem


def jnp_dtype(name: str) -> Any:
    """The ``jax.numpy`` dtype called ``name`` (``"float32"`` or ``"bfloat16"``)."""
    import jax.numpy as jnp

    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]


def memory_of(compiled: Any) -> Optional[dict[str, int]]:
    """XLA's memory analysis of a compiled executable, in bytes (``None`` if unavailable)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return None
    if m is None:
        return None
    keys = ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes",
            "generated_code_size_in_bytes")
    return {k.replace("_size_in_bytes", "_bytes"): int(getattr(m, k, 0)) for k in keys}


def prepare_jax(impl: str, problem: Problem, pass_: str, apply: Callable[[Any, Any], Any],
                params: Any, grads_to_ours: Callable[[Any], dict[str, Any]]) -> Prepared:
    """Builds a :class:`Prepared` from ``apply(params, xs) -> ys (B, T, H)``.

    ``fwd`` compiles ``apply``; ``fwdbwd`` compiles the value and gradient of ``sum(ys)``
    (summed in float32) with respect to every leaf of ``params``. ``grads_to_ours`` maps the
    gradient pytree back to rnn_jax's weight names for the correctness checks.
    """
    import jax
    import jax.numpy as jnp

    dtype = jnp_dtype(problem.dtype)
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
    xs = jnp.asarray(problem.xs, dtype)

    if pass_ == "fwd":
        fn = apply
    else:
        def loss(p: Any, x: Any) -> Any:
            return jnp.sum(apply(p, x).astype(jnp.float32))

        fn = jax.value_and_grad(loss)

    start = time.perf_counter()
    compiled = jax.jit(fn).lower(params, xs).compile()
    compile_s = time.perf_counter() - start

    def call() -> None:
        jax.block_until_ready(compiled(params, xs))

    def result() -> tuple[Optional[np.ndarray], Optional[dict[str, np.ndarray]]]:
        out = compiled(params, xs)
        if pass_ == "fwd":
            return np.asarray(out, np.float32), None
        grads = grads_to_ours(out[1])
        return None, {k: np.asarray(v, np.float32) for k, v in grads.items()}

    return Prepared(impl, call, compile_s, memory_of(compiled), result)
