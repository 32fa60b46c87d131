"""Chunked arithmetic of the persistent kernels (:mod:`rnn_jax._src.persistent.kernels`).

Every array a kernel program holds is a ``(bt, hc)`` chunk: ``bt`` sequences, ``hc`` of the
``H`` units. A product with a weight block is then a sum of ``(bt, hc) x (hc, hc)`` products
read straight from the weight reference (a Pallas/Triton kernel cannot slice a value it holds,
only a reference): :func:`matmul_chunks`. With float16 weights the operands are scaled by
powers of two so that nothing overflows float16's range (:func:`operands`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl


def chunks(H: int, hc: int) -> list:
    return [pl.ds(j * hc, hc) for j in range(H // hc)]


def compute_dtype(dtype) -> Any:
    """float32, or the inputs' dtype if wider (float64 in tests)."""
    return jnp.promote_types(jnp.float32, dtype)


def operands(vs: Sequence[jax.Array], w_dtype, pre=None, rows: bool = True) -> tuple:
    """The chunks of ``v`` as matmul operands of ``w_dtype``, and the factor (or None) to
    multiply the product by. For float16 weights, ``v`` is scaled so that nothing overflows
    float16's range: each row by a power of two to a largest entry of at most 1 (``rows``),
    or else by ``pre`` (a ``(1, hc)`` power of two, for a carry bounded in advance; None: a
    carry within ±1). The product then carries float16's 11-bit significands, as TF32 does."""
    if jnp.dtype(w_dtype) != jnp.float16:
        return [v.astype(w_dtype) for v in vs], None
    if not rows:
        return [(v if pre is None else v * pre).astype(jnp.float16) for v in vs], None
    m = vs[0].dtype.type(0)
    for v in vs:
        m = jnp.maximum(m, jnp.max(jnp.abs(v), axis=1, keepdims=True))   # (bt, 1)
    e = jnp.ceil(jnp.log2(jnp.maximum(m, 1e-30)))
    return [(v * jnp.exp2(-e)).astype(jnp.float16) for v in vs], jnp.exp2(e)


def matmul_chunks(vs: Sequence[jax.Array], w_ref, k: int, cols: list, held=None,
                   scale=None) -> list:
    """``[Σ_i vs[i] @ w[k, i, j] for j]``: the chunks of ``v @ w[k]`` (``vs`` from
    :func:`operands`, times ``scale`` when given)."""
    out = []
    for j in range(len(cols)):
        total = None
        for i in range(len(cols)):
            blk = held[k][i][j] if held is not None else w_ref[k, cols[i], cols[j]]
            term = jnp.dot(vs[i], blk, preferred_element_type=compute_dtype(blk.dtype))
            total = term if total is None else total + term
        out.append(total if scale is None else total * scale)
    return out


def product_scale(row, w_scale):
    """The factor undoing the operands' scales: the rows' (or None) times ``w_scale`` (the
    weights' and a fixed carry scale's, a ``(1, hc)`` chunk, or None)."""
    if row is None or w_scale is None:
        return w_scale if row is None else row
    return row * w_scale


def matmuls(vs, w_ref, G: int, cols: list, held, w_scale, pre=None, rows=True) -> list:
    """``[chunks of v @ w[k] for k < G]`` (the forward's: one ``v`` for every gate)."""
    ops, row = operands(vs, w_ref.dtype, pre, rows)
    scale = product_scale(row, w_scale)
    return [matmul_chunks(ops, w_ref, k, cols, held, scale) for k in range(G)]


def hold(w_ref, G: int, cols: list):
    """Every weight chunk, loaded once (``stream=False``)."""
    return [[[w_ref[k, cols[i], cols[j]] for j in range(len(cols))] for i in range(len(cols))]
            for k in range(G)]


def step_time(s, T: int, reverse: bool):
    return T - 1 - s if reverse else s


def pipelined(T: int, load: Callable, body: Callable, init, start: int = 0):
    """``fori_loop`` over scan steps ``start <= s < T`` in which step ``s`` issues the loads of
    step ``s + 1`` before its own arithmetic, so that their latency hides behind it."""

    def step(s, carry):
        state, inputs = carry
        ahead = load(jnp.minimum(s + 1, T - 1))
        return body(s, state, inputs), ahead

    return lax.fori_loop(start, T, step, (init, load(start)))[0]
