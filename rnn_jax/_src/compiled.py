"""Compiling once where a loop-running function is called outside any transformation."""

from __future__ import annotations

from typing import Any, Callable

import jax


def compiled_when_concrete(fn: Callable, static_argnums: tuple[int, ...]) -> Callable:
    """``fn``, compiled once per static arguments, shapes and dtypes where called outside any
    transformation (every other argument concrete), instead of running op by op and tracing
    its loops anew at every call. Under a transformation ``fn`` is traced into the caller's
    program as it is (a nested jit would change that program, e.g. keep a constant cotangent
    as an array through a backward loop); with static arguments that cannot be hashed (a cell
    with a plain dict of options) it runs op by op."""
    compiled = jax.jit(fn, static_argnums=static_argnums)

    def call(*args: Any) -> Any:
        static = tuple(args[i] for i in static_argnums)
        dynamic = [a for i, a in enumerate(args) if i not in static_argnums]
        traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(dynamic))
        try:
            hash(static)
        except TypeError:
            traced = True
        return fn(*args) if traced else compiled(*args)

    return call
