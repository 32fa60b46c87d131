"""``Persistent``: the runner's recurrence as one GPU kernel per direction, a gradient method.

Forward: ``xp = cell.project(params, xs)`` for all steps (one matmul), then the persistent
kernel (:mod:`rnn_jax._src.persistent.kernels`) runs the T steps and saves the carries and
pre-activations. Backward (a ``jax.custom_vjp``): the reverse kernel yields ``δxp`` per step,
then the cell's hand-written weight gradients (``Backward.grads``) are the same large
contractions :class:`rnn_jax.ManualBPTT` does after its backward scan. Gradients therefore
equal ``ManualBPTT``'s and autodiff's to rounding.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.cell import Cell, backward_of, project_all
from rnn_jax._src.gradients import GradientMethod, gradient_method
from rnn_jax._src.persistent import cells as pc
from rnn_jax._src.persistent.kernels import Config, backward, carry_scaled, forward, weights
from rnn_jax._src.platform import default_platform
from rnn_jax._src.scan import to_columns


OPERANDS = (None, "float16", "native")
ON_CHIP_BYTES = 128 * 1024   # W_hh kept on chip up to this size (the measured bfloat16 H=128 LSTM)


def fits_on_chip(cell: Cell, dtype: Any) -> bool:
    """Whether ``Persistent()`` runs ``cell`` in ``dtype`` with ``W_hh`` kept on chip (the
    layout measured faster than the scan); False for a cell it does not cover."""
    if pc.unsupported(cell) is not None or not jnp.issubdtype(dtype, jnp.floating):
        return False
    return not Persistent(interpret=False).config(cell, dtype).stream


@gradient_method
class Persistent(GradientMethod):
    """All T steps of the recurrence in one Pallas kernel (forward) and one for the backward
    pass: nothing is launched per time step. rnn_jax's default on a GPU wherever ``W_hh`` fits
    on chip (H <= 128; faster than the scan at every shape measured there, 1.04-2.5x on an
    H200, benchmarks/README.md). The idea is Diamos et al. 2016, "Persistent RNNs:
    stashing recurrent weights on-chip" (ICML), which cuDNN's persistent kernels also follow.

    Covers rnn_jax's LSTM (no peepholes or projection; named activations) and GRU
    (``reset="after"``) with a power-of-two ``hidden_size`` of at least 16, with or without
    ``lengths``, forward or reverse, without ``resets``; anything else raises ``ValueError``
    at trace time (use :class:`rnn_jax.ManualBPTT`). Reverse mode only, as ``ManualBPTT``.
    The batch is padded to a multiple of ``block`` sequences.

    Attributes:
      block: sequences per kernel program (at least 16, a power of two).
      chunk: width of the pieces of ``H`` a program computes with (None: ``min(H, 128)``
        on chip, ``min(H, 64)`` streamed).
      stream: re-read ``W_hh`` from memory at every step instead of keeping it on chip for
        all steps (None: when its ``G·H²`` matmul operands take more than 128 KiB, e.g. an
        LSTM with H=256).
      operands: the matmuls' operand dtype. None: float16 for float32 runs, scaled by powers
        of two (:func:`rnn_jax._src.persistent.kernels.weights`; the precision of TF32, which
        XLA's and cuDNN's float32 matmuls use on a GPU by default), so that an H=128 LSTM's
        ``W_hh`` fits on chip; the inputs' dtype otherwise. ``"native"``: the inputs' dtype.
      warps: warps per program (Triton's ``num_warps``).
      interpret: run the kernels in Pallas's interpreter, slowly, on any backend (None: unless
        the default device, ``jax.default_device`` or JAX's default backend, is a GPU, where the
        kernels compile with Triton).
    """

    block: int = 16
    chunk: Optional[int] = None
    stream: Optional[bool] = None
    operands: Optional[str] = None
    warps: int = 8
    interpret: Optional[bool] = None

    def config(self, cell: Cell, dtype: Any) -> Config:
        """The kernels' :class:`Config` for ``cell`` computing in ``dtype``."""
        H = cell.hidden_size
        for name, value in (("block", self.block), ("chunk", self.chunk)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 16 or value & (value - 1)):
                raise ValueError(f"Persistent.{name} must be a power of two >= 16, got {value!r}")
        if self.operands not in OPERANDS:
            raise ValueError(f"Persistent.operands={self.operands!r} is not one of {OPERANDS}")
        dtype = jnp.dtype(dtype)
        operands = self.operands or ("float16" if dtype == jnp.float32 else "native")
        itemsize = 2 if operands == "float16" else dtype.itemsize
        G = pc.kernel_for(cell).gates
        stream = (G * H * H * itemsize > ON_CHIP_BYTES if self.stream is None
                  else bool(self.stream))
        hc = min(H, 64 if stream else 128) if self.chunk is None else self.chunk
        if H % hc:
            raise ValueError(f"Persistent.chunk={hc} does not divide hidden_size={H}")
        interpret = default_platform() != "gpu" if self.interpret is None else self.interpret
        return Config(bt=self.block, hc=hc, stream=stream, num_warps=self.warps,
                      interpret=bool(interpret),
                      operands="float16" if operands == "float16" else None)

    def scan(self, cell: Cell, params: Any, xs: jax.Array, carry: Any,
             valid: Optional[jax.Array], resets: Optional[jax.Array], *, reverse: bool,
             plan: Any):
        del plan  # no loop is unrolled: the kernel has no per-step launch to save
        why = pc.unsupported(cell) or (resets is not None and "resets")
        if why:
            raise ValueError(f"grad=Persistent() does not support {why}; use "
                             "rnn_jax.ManualBPTT() or rnn_jax.Autodiff()")
        T, batch_shape = xs.shape[0], xs.shape[1:-1]
        B = math.prod(batch_shape)
        xs2 = xs.reshape(T, B, xs.shape[-1])
        carry2 = jax.tree.map(lambda c: c.reshape(B, c.shape[-1]), carry)
        valid2 = None if valid is None else valid.reshape(T, B)
        cfg = self.config(cell, jnp.result_type(xs, *jax.tree.leaves(params)))
        final, ys = _layer(cell, cfg, reverse, params, xs2, carry2, valid2)
        final = jax.tree.map(lambda c: c.reshape(*batch_shape, c.shape[-1]), final)
        return final, ys.reshape(T, *batch_shape, ys.shape[-1])


def _layer(cell: Cell, cfg: Config, reverse: bool, params, xs, carry, valid):
    """``(final, ys)`` of the run over ``xs (T, B, I)``, the batch padded to ``cfg.bt``;
    ``valid``: None or ``(T, B)`` booleans (``lengths``: past a sequence's end its carry is
    kept and its outputs are zero, and in reverse runs the steps before its end come first,
    as in :func:`rnn_jax._src.scan.loop`)."""
    kern, bwd_cell = pc.kernel_for(cell), backward_of(cell)
    T, B, _ = xs.shape
    H, G = cell.hidden_size, kern.gates
    pad = -B % cfg.bt
    Bp = B + pad

    def padded(a):
        return jnp.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, pad), (0, 0)]) if pad else a

    def project(params, xs):  # (T, G, Bp, H)
        xp = project_all(cell, params, padded(xs))
        return jnp.swapaxes(xp.reshape(T, Bp, G, H), 1, 2)

    def masks(valid, dtype):  # (T, Bp, 1), 0 past each sequence's end and for padding
        return None if valid is None else padded(valid[..., None].astype(dtype))

    def run_kernel(params, xs, carry, valid, save):
        xp = project(params, xs)
        init = [padded(c) for c in pc.to_list(cell, carry)]
        w = weights(params.w_hh.reshape(G, H, H), xp.dtype, cfg)  # W_hk, (out, in)
        w_t = (jnp.swapaxes(w[0], 1, 2), *w[1:])                   # W_hk^T
        if kern.bounded == "initial":
            w_t = carry_scaled(w_t, init[0])
        vecs = [v.astype(xp.dtype) for v in pc.vectors(cell, params)]
        ys, seqs, pre, final = forward(kern, xp, w_t, init, vecs, cfg=cfg, reverse=reverse,
                                       save=save, mask=masks(valid, xp.dtype))
        return xp, w, init, vecs, ys, seqs, pre, final

    def out(ys, final, valid):  # ys holds the carries: zero the outputs past the ends
        ys = ys[:, :B]
        if valid is not None:
            ys = jnp.where(valid[..., None], ys, jnp.zeros((), ys.dtype))
        return pc.from_list(cell, [f[:B] for f in final]), ys

    @jax.custom_vjp
    def layer(params, xs, carry, valid):
        _, _, _, _, ys, _, _, final = run_kernel(params, xs, carry, valid, False)
        return out(ys, final, valid)

    def layer_fwd(params, xs, carry, valid):
        xp, w, init, vecs, ys, seqs, pre, final = run_kernel(params, xs, carry, valid, True)
        return out(ys, final, valid), (params, xs, xp, w, init, vecs, [ys, *seqs], pre, valid)

    def layer_bwd(res, cotangents):
        params, xs, xp, w, init, vecs, after, pre, valid = res
        dfinal, dys = cotangents
        # the carry entering each step: the initial one, then the one after the step before
        if reverse:
            prev = [jnp.concatenate([a[1:], c[None]]) for a, c in zip(after, init)]
        else:
            prev = [jnp.concatenate([c[None], a[:-1]]) for a, c in zip(after, init)]
        dfin = [padded(d.astype(c.dtype)) for d, c in zip(pc.to_list(cell, dfinal), init)]
        dxp, dm, d0 = backward(kern, pre, xp, w, prev, padded(dys.astype(xp.dtype)), dfin,
                               vecs, cfg=cfg, reverse=reverse, mask=masks(valid, xp.dtype))

        def batch_first(a):  # (T, G, Bp, H) -> (T, B, G·H)
            return jnp.swapaxes(a, 1, 2)[:, :B].reshape(T, B, G * H)

        dxps = batch_first(dxp)
        local = pc.local(cell, batch_first(dm))
        carries = pc.from_list(cell, [p[:, :B] for p in prev])
        dparams, dxs = bwd_cell.grads(params, *to_columns((xs, carries, dxps, local), 0))
        dxs = jnp.moveaxis(dxs, 0, -1)
        dcarry = pc.from_list(cell, [d[:B] for d in d0])
        return dparams, dxs.astype(xs.dtype), dcarry, None

    layer.defvjp(layer_fwd, layer_bwd)
    return layer(params, xs, carry, valid)
