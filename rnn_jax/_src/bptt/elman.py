"""Backward pass of the Elman cell.

Forward (:func:`rnn_jax.elman`): ``a_t = xp_t + W_hh h_{t-1}``, ``h_t = φ(a_t)``, ``y_t = h_t``,
with ``xp_t = W_ih x_t + b_ih + b_hh``. Given ``δh_t = ∂L/∂h_t`` (carry) and ``∂L/∂y_t``:

.. math::
   \\bar h_t = δh_t + ∂L/∂y_t, \\quad δa_t = φ'(a_t) ⊙ \\bar h_t, \\quad
   δh_{t-1} = W_{hh}^⊤ δa_t, \\quad δxp_t = δa_t \\\\
   ∂L/∂W_{hh} = Σ_t δa_t h_{t-1}^⊤, \\quad ∂L/∂W_{ih} = Σ_t δa_t x_t^⊤, \\quad
   ∂L/∂b_{ih} = ∂L/∂b_{hh} = Σ_t δa_t, \\quad ∂L/∂x_t = W_{ih}^⊤ δa_t

These are min-char-rnn's lines (``dh_raw = (1 - h²) ⊙ dh`` for tanh, Karpathy 2015).
"""

from __future__ import annotations

import jax.numpy as jnp

from rnn_jax._src.bptt.common import CellBackward, derivative, function, lead_sum, matmul, outer_sum
from rnn_jax._src.cell import Cell, add_linear
from rnn_jax._src.params import ElmanParams


def backward(cell: Cell) -> CellBackward:
    """The :class:`CellBackward` of an Elman cell built with ``cell.options``."""
    act = cell.options["activation"]
    phi, dphi = function(act), derivative(act)

    def preact(params: ElmanParams, h_prev, xp):
        return add_linear(xp, h_prev, params.w_hh)      # (..., H), as cell.recur

    def step(params: ElmanParams, h_prev, xp, dh, dy, pre=None):
        a = preact(params, h_prev, xp) if pre is None else pre
        da = dphi(a, phi(a), dh + dy)                    # (..., H)
        return matmul(da, params.w_hh), da, None

    def recur_grads(params: ElmanParams, h_prev, dxp, local):
        z = jnp.zeros_like
        return ElmanParams(z(params.w_ih), outer_sum(dxp, h_prev), z(params.b_ih), z(params.b_hh))

    def project_grads(params: ElmanParams, x, dxp):
        db = lead_sum(dxp)
        return ElmanParams(outer_sum(dxp, x), jnp.zeros_like(params.w_hh), db, db), \
            matmul(dxp, params.w_ih)

    return CellBackward(step, recur_grads, project_grads, preact)
