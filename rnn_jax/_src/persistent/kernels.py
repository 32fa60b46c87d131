"""The persistent recurrence: all T steps of a layer in one Pallas kernel, forward and backward.

A scan launches each step's kernels one after the other, T times; on a GPU that launch chain,
not the arithmetic, sets the time of long sequences of small steps (benchmarks/README.md:
6.7 µs per LSTM step at B=64, I=H=128, of which a few hundred nanoseconds are arithmetic).
Here one program per tile of ``bt`` sequences runs the whole loop over time; only the step's
matmul with the carry and its elementwise part are inside (the input projection of all steps
is one large matmul before the kernel, and the weight gradients a few large contractions after
the backward kernel, as in :class:`rnn_jax.ManualBPTT`).

Layout. A cell with ``G`` gate blocks of width ``H`` has ``xp`` of shape ``(T, G, B, H)``.
Every array a program holds is a ``(bt, hc)`` chunk (:mod:`rnn_jax._src.persistent.chunks`):

* forward, gate ``k``, output chunk ``j``: ``hw_k[j] = Σ_i h[i] @ Wt[k, i, j]`` with
  ``Wt[k] = W_hk^T`` (``(H, H)``, ``W_hk`` the rows of ``W_hh`` for gate ``k``);
* backward, carry chunk ``i``: ``δh[i] += Σ_k Σ_j δm_k[j] @ W[k, j, i]`` with ``W[k] = W_hk``.

``stream=False`` loads the weight chunks once and keeps them on chip for all steps (what a
persistent kernel is for; possible while ``G·H²`` operands fit one SM's shared memory, e.g. an
H=128 LSTM in float16 or bfloat16, see :func:`weights`); ``stream=True`` reads them again at
every step (from L2 after the first), which fits any ``H`` but was 1.7-15x slower than the
scan on an H100 (benchmarks/README.md). Each step's loads are issued one step ahead
(:func:`pipelined`).

The cell enters as two elementwise functions on chunks (:mod:`rnn_jax._src.persistent.cells`);
the loop is written once here for every cell.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from rnn_jax._src.persistent.chunks import (chunks, compute_dtype, hold, matmul_chunks, matmuls,
                                            operands, pipelined, product_scale, step_time)


class Config(NamedTuple):
    """How the kernel is laid out on the device (speed only, never results)."""

    bt: int = 16          # sequences per program (>= 16: the smallest tensor-core tile)
    hc: int = 64          # width of a chunk of H
    stream: bool = True   # re-read the weight chunks at every step
    num_warps: int = 4
    interpret: bool = False  # run the kernel in Pallas's interpreter (any backend, slowly)
    operands: Optional[str] = None  # "float16": the matmuls' operands (see weights())


class CellKernel(NamedTuple):
    """A cell as the persistent kernels see it (all arrays ``(bt, hc)`` chunks, float32).

    * ``gates``: ``G``, the number of ``(H, H)`` blocks of ``W_hh``;
    * ``carry``: number of arrays in the carry; the first is the one multiplied by ``W_hh``;
    * ``forward(xp, hw, carry, vec) -> (carry, saved)``: ``xp``, ``hw`` lists of ``G``
      chunks (input projection, ``W_hk h``); ``vec`` the chunks of the cell's per-unit
      vectors; ``saved``: ``G`` chunks the backward reads (the pre-activations);
    * ``backward(saved, xp, carry_prev, dcarry, dy, vec) -> (dcarry_prev, dm, dxp)``:
      ``dcarry_prev`` without the matmul term, ``dm`` the ``G`` chunks multiplied by
      ``W_hk`` for the carry's gradient, ``dxp`` the ``G`` chunks of ``δxp``;
    * ``needs_xp``: whether ``backward`` reads ``xp`` (else it gets None);
    * ``bounded``: ``"unit"`` if the carry multiplied by ``W_hh`` is within ±1 after the
      first step, ``"initial"`` if it stays within ``±max(1, max|h_0|)``, None if neither
      (see :func:`weights`);
    * ``dm_is_dxp``: whether ``dm`` equals ``dxp`` (only one of them is then written).
    """

    gates: int
    carry: int
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    needs_xp: bool = False
    dm_is_dxp: bool = True
    bounded: Optional[str] = None


def _forward_kernel(*refs, cell: CellKernel, T: int, H: int, cfg: Config, reverse: bool,
                    save: bool, n_vec: int, masked: bool):
    G, C = cell.gates, cell.carry
    xp_ref, w_ref, ws_ref, hs_ref, *rest = refs
    carry_refs, rest = rest[:C], rest[C:]
    vec_refs, rest = rest[:n_vec], rest[n_vec:]
    mask_ref = rest.pop(0) if masked else None
    ys_ref, *rest = rest
    seq_refs = rest[:C - 1]          # carries other than h at every step (e.g. the LSTM's c)
    pre_ref = rest[C - 1] if save else None
    final_refs = rest[C - 1 + save:]
    cols = chunks(H, cfg.hc)
    acc = compute_dtype(xp_ref.dtype)
    vec = [[r[:, c].astype(acc) for c in cols] for r in vec_refs]   # (1, hc) chunks
    held = None if cfg.stream else hold(w_ref, G, cols)
    w_scale = ws_ref[...].astype(acc) if w_ref.dtype == jnp.float16 else None
    h_scale = hs_ref[...].astype(acc) if cell.bounded == "initial" else None

    def load(s):
        t = step_time(s, T, reverse)
        return ([[xp_ref[t, k, :, c].astype(acc) for c in cols] for k in range(G)],
                mask_ref[t] > 0 if masked else None)        # (bt, 1)

    def body(s, carry, inputs, first=False):
        t = step_time(s, T, reverse)
        xp, keep = inputs
        rows = cell.bounded is None or (first and cell.bounded == "unit")
        hw = matmuls(carry[0], w_ref, G, cols, held, w_scale, h_scale, rows)
        new = [[] for _ in range(C)]
        for j, c in enumerate(cols):
            out, saved = cell.forward([xp[k][j] for k in range(G)], [hw[k][j] for k in range(G)],
                                      [carry[m][j] for m in range(C)], [v[j] for v in vec])
            if masked:  # past a sequence's end its carry is kept
                out = [jnp.where(keep, o, carry[m][j]) for m, o in enumerate(out)]
            for m in range(C):
                new[m].append(out[m])
            ys_ref[t, :, c] = out[0].astype(ys_ref.dtype)
            for m in range(1, C):
                seq_refs[m - 1][t, :, c] = out[m].astype(seq_refs[m - 1].dtype)
            if save:
                for k in range(G):
                    pre_ref[t, k, :, c] = saved[k].astype(pre_ref.dtype)
        return new

    init = [[r[:, c].astype(acc) for c in cols] for r in carry_refs]
    if cell.bounded == "unit":  # the first step reads the initial carry, of any size
        init = body(0, init, load(0), first=True)
    final = pipelined(T, load, body, init, start=int(cell.bounded == "unit"))
    for m in range(C):
        for j, c in enumerate(cols):
            final_refs[m][:, c] = final[m][j].astype(final_refs[m].dtype)


def _backward_kernel(*refs, cell: CellKernel, T: int, H: int, cfg: Config, reverse: bool,
                     n_vec: int, masked: bool):
    G, C = cell.gates, cell.carry
    pre_ref, xp_ref, w_ref, ws_ref, _, *rest = refs
    prev_refs, rest = rest[:C], rest[C:]            # the carry entering each step, (T, bt, H)
    dys_ref, *rest = rest
    dfinal_refs, rest = rest[:C], rest[C:]
    vec_refs, rest = rest[:n_vec], rest[n_vec:]
    mask_ref = rest.pop(0) if masked else None
    dxp_ref, *rest = rest
    dm_ref = None if cell.dm_is_dxp else rest.pop(0)
    d0_refs = rest
    cols = chunks(H, cfg.hc)
    acc = compute_dtype(pre_ref.dtype)
    vec = [[r[:, c].astype(acc) for c in cols] for r in vec_refs]
    held = None if cfg.stream else hold(w_ref, G, cols)
    w_scale = ws_ref[...].astype(acc) if w_ref.dtype == jnp.float16 else None

    def time_of(s):
        return step_time(T - 1 - s, T, reverse)    # the forward's steps, last first

    def load(s):
        t = time_of(s)
        return ([[pre_ref[t, k, :, c].astype(acc) for c in cols] for k in range(G)],
                [[xp_ref[t, k, :, c].astype(acc) for c in cols] for k in range(G)]
                if cell.needs_xp else None,
                [[r[t, :, c].astype(acc) for c in cols] for r in prev_refs],
                [dys_ref[t, :, c].astype(acc) for c in cols],
                mask_ref[t] > 0 if masked else None)

    def body(s, dcarry, inputs):
        t = time_of(s)
        pre, xp, prev, dys, keep = inputs
        partial, dms = [[] for _ in range(C)], [[] for _ in range(G)]
        for j, c in enumerate(cols):
            dprev, dm, dxp = cell.backward(
                [p[j] for p in pre], None if xp is None else [x[j] for x in xp],
                [p[j] for p in prev], [d[j] for d in dcarry], dys[j], [v[j] for v in vec])
            if masked:  # past a sequence's end: the carry's gradient passes through
                zero = jnp.zeros_like(dys[j])
                dprev = [jnp.where(keep, d, dcarry[m][j]) for m, d in enumerate(dprev)]
                dm = [jnp.where(keep, d, zero) for d in dm]
                dxp = [jnp.where(keep, d, zero) for d in dxp]
            for m in range(C):
                partial[m].append(dprev[m])
            for k in range(G):
                dms[k].append(dm[k])
                dxp_ref[t, k, :, c] = dxp[k].astype(dxp_ref.dtype)
                if dm_ref is not None:
                    dm_ref[t, k, :, c] = dm[k].astype(dm_ref.dtype)
        ops, row = operands([d for dk in dms for d in dk], w_ref.dtype)
        scale = product_scale(row, w_scale)
        n = len(cols)
        for k in range(G):
            terms = matmul_chunks(ops[k * n:(k + 1) * n], w_ref, k, cols, held, scale)
            partial[0] = [a + b for a, b in zip(partial[0], terms)]
        return partial

    init = [[r[:, c].astype(acc) for c in cols] for r in dfinal_refs]
    d0 = pipelined(T, load, body, init)
    for m in range(C):
        for j, c in enumerate(cols):
            d0_refs[m][:, c] = d0[m][j].astype(d0_refs[m].dtype)


def _call(kernel, args, in_blocks, out_shapes, out_blocks, B: int, cfg: Config):
    def spec(block):
        n = len(block)
        if "b" in block:  # tiled over the batch axis, marked "b"
            at = block.index("b")
            shape = tuple(cfg.bt if d == "b" else d for d in block)
            return pl.BlockSpec(shape, lambda b, n=n, at=at: (0,) * at + (b,) + (0,) * (n - at - 1))
        return pl.BlockSpec(block, lambda b, n=n: (0,) * n)

    params = {}
    if not cfg.interpret:
        from jax.experimental.pallas import triton as pltriton
        # one stage: the loads are issued a step ahead by hand (pipelined)
        params["compiler_params"] = pltriton.CompilerParams(num_warps=cfg.num_warps,
                                                            num_stages=1)
    return pl.pallas_call(kernel, grid=(B // cfg.bt,), in_specs=[spec(b) for b in in_blocks],
                          out_specs=[spec(b) for b in out_blocks], out_shape=out_shapes,
                          interpret=cfg.interpret, **params)(*args)


def _power_of_two(m):
    """The smallest power of two at least ``m`` (for ``m`` > 0)."""
    return jnp.exp2(jnp.ceil(jnp.log2(jnp.maximum(m, 1e-30))))


def weights(w: jax.Array, dtype: Any, cfg: Config) -> tuple:
    """``(w, post, pre)``: ``w`` as the kernels multiply by it, and ``(1, hc)`` factors: the
    carry is multiplied by ``pre`` before the matmul, the product by ``post``.

    With ``cfg.operands="float16"`` (float32 runs with ``W_hh`` on chip, where float32
    weights do not fit) ``w`` is scaled by a power of two to a largest entry of at most 1 and
    stored in float16. The carry is converted as it is when ``bounded="unit"`` (after a first
    step scaled row by row), scaled by a fixed power of two when ``bounded="initial"``
    (:func:`carry_scaled`), and row by row at every step otherwise. float16 keeps 11
    significant bits, as the TF32 tensor-core arithmetic XLA and cuDNN use for float32
    matmuls on a GPU by default; with the scaling no entry leaves its range but those below
    2^-24 of the largest, whose products are below that rounding."""
    acc = compute_dtype(dtype)
    ones = jnp.ones((1, cfg.hc), acc)
    if cfg.operands != "float16":
        return w.astype(dtype), ones, ones
    sw = _power_of_two(jnp.max(jnp.abs(w)))
    return (w / sw.astype(w.dtype)).astype(jnp.float16), (ones * sw).astype(acc), ones


def carry_scaled(ws: tuple, h0: jax.Array) -> tuple:
    """:func:`weights` for a ``bounded="initial"`` cell: the carry, within ``±s`` at every
    step, is scaled by ``1/s``, ``s`` the smallest power of two at least ``max(1, max|h0|)``
    (exact for ``|h0| <= 1``; else entries below ``2^-24 s`` lose bits)."""
    w, post, pre = ws
    s = _power_of_two(jnp.maximum(jnp.max(jnp.abs(h0)), 1.0)).astype(post.dtype)
    return w, post * s, pre / s


def forward(cell: CellKernel, xp: jax.Array, w_t: tuple, carry: Sequence[jax.Array],
            vecs: Sequence[jax.Array], *, cfg: Config, reverse: bool, save: bool,
            mask: Optional[jax.Array] = None):
    """Runs the recurrence. ``xp (T, G, B, H)``, ``w_t`` :func:`weights` of ``(G, H, H)``
    (``W_hk^T``), ``carry``: C arrays ``(B, H)``, ``vecs``: ``(1, H)`` per-unit vectors,
    ``mask``: None or ``(T, B, 1)``, positive where step ``t`` of sequence ``b`` is valid
    (elsewhere its carry is kept).
    Returns ``(ys, seqs, pre, final)``: ``ys (T, B, H)`` (the first carry after each step),
    ``seqs`` the other carries after each step, ``pre (T, G, B, H)`` (None unless ``save``),
    ``final`` the C carries after step T."""
    T, G, B, H = xp.shape
    C, dt = cell.carry, xp.dtype
    seq = jax.ShapeDtypeStruct((T, B, H), dt)
    outs = [seq] * C + ([jax.ShapeDtypeStruct((T, G, B, H), dt)] if save else []) + \
        [jax.ShapeDtypeStruct((B, H), c.dtype) for c in carry]
    blocks_out = [(T, "b", H)] * C + ([(T, G, "b", H)] if save else []) + [("b", H)] * C
    masks = [] if mask is None else [mask]
    blocks_in = [(T, G, "b", H), (G, H, H), (1, cfg.hc), (1, cfg.hc)] + [("b", H)] * C + \
        [(1, H)] * len(vecs) + [(T, "b", 1)] * len(masks)
    kernel = functools.partial(_forward_kernel, cell=cell, T=T, H=H, cfg=cfg, reverse=reverse,
                               save=save, n_vec=len(vecs), masked=mask is not None)
    res = _call(kernel, (xp, *w_t, *carry, *vecs, *masks), blocks_in, outs, blocks_out, B, cfg)
    ys, seqs = res[0], res[1:C]
    pre = res[C] if save else None
    return ys, seqs, pre, res[C + save:]


def backward(cell: CellKernel, pre: jax.Array, xp: jax.Array, w: tuple,
             prev: Sequence[jax.Array], dys: jax.Array, dfinal: Sequence[jax.Array],
             vecs: Sequence[jax.Array], *, cfg: Config, reverse: bool,
             mask: Optional[jax.Array] = None):
    """The reverse recurrence. ``pre (T, G, B, H)`` from :func:`forward`, ``w`` :func:`weights`
    of ``(G, H, H)`` (``W_hk``), ``prev``: the C carries entering each step ``(T, B, H)``,
    ``dys (T, B, H)``, ``dfinal``: C arrays ``(B, H)``, ``mask`` as :func:`forward`'s.
    Returns ``(dxp, dm, d0)``: ``(T, G, B, H)`` each (``dm`` is ``dxp`` when the cell says
    they are equal) and the C gradients of the initial carry."""
    T, G, B, H = pre.shape
    C, dt = cell.carry, pre.dtype
    gsh = jax.ShapeDtypeStruct((T, G, B, H), dt)
    outs = [gsh] + ([] if cell.dm_is_dxp else [gsh]) + \
        [jax.ShapeDtypeStruct((B, H), d.dtype) for d in dfinal]
    blocks_out = [(T, G, "b", H)] * (1 + (not cell.dm_is_dxp)) + [("b", H)] * C
    xp_in = xp if cell.needs_xp else pre   # a cell that does not read xp: any such array
    masks = [] if mask is None else [mask]
    blocks_in = [(T, G, "b", H)] * 2 + [(G, H, H), (1, cfg.hc), (1, cfg.hc)] + \
        [(T, "b", H)] * (C + 1) + [("b", H)] * C + [(1, H)] * len(vecs) + \
        [(T, "b", 1)] * len(masks)
    kernel = functools.partial(_backward_kernel, cell=cell, T=T, H=H, cfg=cfg, reverse=reverse,
                               n_vec=len(vecs), masked=mask is not None)
    res = _call(kernel, (pre, xp_in, *w, *prev, dys, *dfinal, *vecs, *masks), blocks_in, outs,
                blocks_out, B, cfg)
    dxp = res[0]
    dm = dxp if cell.dm_is_dxp else res[1]
    return dxp, dm, res[2 - cell.dm_is_dxp:]
