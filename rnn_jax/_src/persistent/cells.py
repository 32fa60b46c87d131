"""rnn_jax's LSTM and GRU as the persistent kernels see them: elementwise functions on chunks.

The equations are the cells' (:func:`rnn_jax.lstm`, :func:`rnn_jax.gru`) and their backward
steps those of :mod:`rnn_jax._src.cells.lstm` and :mod:`rnn_jax._src.cells.gru`, written on
lists of gate chunks because a kernel cannot concatenate or slice the arrays it holds. Every
argument is a ``(bt, hc)`` float32 chunk (``vec`` entries ``(1, hc)``).
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src.activations import derivative, function
from rnn_jax._src.cell import Cell, backward_of
from rnn_jax._src.params import LSTMCarry
from rnn_jax._src.persistent.kernels import CellKernel


BOUNDED = ("tanh", "sigmoid")   # activations with values in [-1, 1]


def lstm_kernel(cell: Cell) -> CellKernel:
    """``a_k = xp_k + W_hk h``; ``c' = σ(a_f) c + σ(a_i) φ_c(a_g)``, ``h' = σ(a_o) φ_h(c')``;
    saves ``a``. Backward as :mod:`rnn_jax._src.cells.lstm` without peepholes or projection:
    ``δa_o = σ'(a_o) δh φ_h(c')``, ``c̄ = δc + φ_h'(c') o δh``, ``δa_i = σ'(a_i) c̄ g``,
    ``δa_f = σ'(a_f) c̄ c``, ``δa_g = φ_c'(a_g) c̄ i``, ``δc_prev = f c̄``."""
    opts = cell.options
    sg, dsg = function(opts["gate_activation"]), derivative(opts["gate_activation"])
    phc, dphc = function(opts["cell_activation"]), derivative(opts["cell_activation"])
    phh, dphh = function(opts["output_activation"]), derivative(opts["output_activation"])

    def gates(a, c_prev):
        i, f, g, o = sg(a[0]), sg(a[1]), phc(a[2]), sg(a[3])
        c = f * c_prev + i * g
        return i, f, g, o, c, phh(c)

    def forward(xp, hw, carry, vec):
        a = [x + w for x, w in zip(xp, hw)]
        _, _, _, o, c, tc = gates(a, carry[1])
        return [o * tc, c], a

    def backward(a, xp, prev, dcarry, dy, vec):
        i, f, g, o, c, tc = gates(a, prev[1])
        dh = dcarry[0] + dy
        da_o = dsg(a[3], o, dh * tc)
        dc = dcarry[1] + dphh(c, tc, dh * o)
        da = [dsg(a[0], i, dc * g), dsg(a[1], f, dc * prev[1]), dphc(a[2], g, dc * i), da_o]
        return [jnp.zeros_like(dh), dc * f], da, da

    # h' = σ(a_o) φ_h(c'): within ±1 after the first step for these activations
    unit = opts["gate_activation"] == "sigmoid" and opts["output_activation"] in BOUNDED
    return CellKernel(4, 2, forward, backward, bounded="unit" if unit else None)


def gru_kernel(cell: Cell) -> CellKernel:
    """Reset after (PyTorch/cuDNN): ``r = σ(x_r + W_hr h)``, ``z = σ(x_z + W_hz h)``,
    ``u = W_hn h + b_hn``, ``n = tanh(x_n + r u)``, ``h' = (1 - z) n + z h``; saves
    ``[a_r, a_z, W_hn h]``. Backward as :mod:`rnn_jax._src.cells.gru`: ``δa_n = (1 - n²)(1 - z)
    δh'``, ``δa_z = z(1 - z)(h - n) δh'``, ``δu = r δa_n``, ``δa_r = r(1 - r) u δa_n``; the
    carry's gradient is ``z δh' + W_hh^T [δa_r, δa_z, δu]``."""

    def parts(s, xp, vec):
        r, z = jax.nn.sigmoid(s[0]), jax.nn.sigmoid(s[1])
        u = s[2] + vec[0]
        return r, z, u, jnp.tanh(xp[2] + r * u)

    def forward(xp, hw, carry, vec):
        s = [xp[0] + hw[0], xp[1] + hw[1], hw[2]]
        _, z, _, n = parts(s, xp, vec)
        return [(1 - z) * n + z * carry[0]], s

    def backward(s, xp, prev, dcarry, dy, vec):
        r, z, u, n = parts(s, xp, vec)
        dh = dcarry[0] + dy
        da_n = (1 - n * n) * ((1 - z) * dh)
        da_z = z * (1 - z) * ((prev[0] - n) * dh)
        da_r = r * (1 - r) * (u * da_n)
        return [z * dh], [da_r, da_z, r * da_n], [da_r, da_z, da_n]

    # h' is a convex combination of h and n ∈ (-1, 1): |h_t| <= max(1, |h_0|)
    return CellKernel(3, 1, forward, backward, needs_xp=True, dm_is_dxp=False,
                      bounded="initial")


def unsupported(cell: Cell) -> Optional[str]:
    """Why ``cell`` has no persistent kernel, or None when it has one."""
    if cell.name not in KERNELS or backward_of(cell) is None:
        return (f"cell {cell.name!r}: persistent kernels exist for rnn_jax's own "
                f"{sorted(KERNELS)} cells")
    opts = cell.options
    if cell.name == "lstm" and (opts["peephole"] or opts["proj_size"] is not None):
        return "an LSTM with peepholes or a projection"
    if cell.name == "lstm" and not all(isinstance(opts[k], str) for k in
                                       ("gate_activation", "cell_activation", "output_activation")):
        return "an LSTM with a custom (callable) activation"
    if cell.name == "gru" and opts["reset"] != "after":
        return "a GRU with reset='before'"
    H = cell.hidden_size
    if H < 16 or H & (H - 1):
        return f"hidden_size={H}: the kernels need a power of two of at least 16"
    return None


def kernel_for(cell: Cell) -> CellKernel:
    return KERNELS[cell.name](cell)


def to_list(cell: Cell, carry: Any) -> list:
    """The cell's carry as the kernels' list (``W_hh``'s operand first)."""
    return [carry.h, carry.c] if cell.name == "lstm" else [carry]


def from_list(cell: Cell, arrays) -> Any:
    return LSTMCarry(*arrays) if cell.name == "lstm" else arrays[0]


def local(cell: Cell, dm: Any) -> Any:
    """The ``local`` that the cell's ``Backward.grads`` reads, from the kernel's ``dm``
    (``(T, B, G·H)``): the GRU's ``δu`` (its last block); nothing for an LSTM without peepholes
    or projection."""
    return (None, None) if cell.name == "lstm" else dm[..., 2 * cell.hidden_size:]


def vectors(cell: Cell, params: Any) -> list:
    """The per-unit vectors the kernels read, ``(1, H)`` each (the GRU's ``b_hn``)."""
    H = cell.hidden_size
    return [params.b_hh[None, 2 * H:]] if cell.name == "gru" else []


KERNELS = {"lstm": lstm_kernel, "gru": gru_kernel}
