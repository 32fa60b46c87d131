"""Backward pass of the Jordan cell.

Forward (:func:`rnn_jax.jordan`): ``a_t = xp_t + W_yh y_{t-1}``, ``h_t = φ(a_t)``,
``b_t = W_hy h_t + b_y``, ``y_t = g(b_t)``; the carry is ``y_t`` and ``xp_t = W_ih x_t + b_ih``.
Given ``δy_t`` (carry) and ``∂L/∂y_t`` (output):

.. math::
   δb_t = g'(b_t) ⊙ (δy_t + ∂L/∂y_t), \\quad δa_t = φ'(a_t) ⊙ W_{hy}^⊤ δb_t, \\quad
   δy_{t-1} = W_{yh}^⊤ δa_t, \\quad δxp_t = δa_t \\\\
   ∂L/∂W_{hy} = Σ_t δb_t h_t^⊤, \\quad ∂L/∂b_y = Σ_t δb_t, \\quad
   ∂L/∂W_{yh} = Σ_t δa_t y_{t-1}^⊤, \\quad ∂L/∂W_{ih} = Σ_t δa_t x_t^⊤, \\quad
   ∂L/∂b_{ih} = Σ_t δa_t

``local = (δb_t, h_t)`` feeds the ``W_hy`` and ``b_y`` sums after the scan.
"""

from __future__ import annotations

import jax.numpy as jnp

from rnn_jax._src.bptt.common import CellBackward, derivative, function, lead_sum, matmul, outer_sum
from rnn_jax._src.cell import Cell, add_linear, linear
from rnn_jax._src.params import JordanParams


def backward(cell: Cell) -> CellBackward:
    """The :class:`CellBackward` of a Jordan cell built with ``cell.options``."""
    hidden, out = cell.options["activation"], cell.options["output_activation"]
    phi, dphi = function(hidden), derivative(hidden)
    g, dg = function(out), derivative(out)

    def preact(params: JordanParams, y_prev, xp):
        a = add_linear(xp, y_prev, params.w_yh)          # (..., H), as cell.recur
        return a, linear(phi(a), params.w_hy) + params.b_y   # and b: (..., O)

    def step(params: JordanParams, y_prev, xp, dcarry, dy, pre=None):
        a, b = preact(params, y_prev, xp) if pre is None else pre
        h = phi(a)
        db = dg(b, g(b), dcarry + dy)                    # (..., O)
        da = dphi(a, h, matmul(db, params.w_hy))         # (..., H)
        return matmul(da, params.w_yh), da, (db, h)

    def recur_grads(params: JordanParams, y_prev, dxp, local):
        db, h = local
        z = jnp.zeros_like
        return JordanParams(z(params.w_ih), outer_sum(dxp, y_prev), z(params.b_ih),
                            outer_sum(db, h), lead_sum(db))

    def project_grads(params: JordanParams, x, dxp):
        z = jnp.zeros_like
        return JordanParams(outer_sum(dxp, x), z(params.w_yh), lead_sum(dxp), z(params.w_hy),
                            z(params.b_y)), matmul(dxp, params.w_ih)

    return CellBackward(step, recur_grads, project_grads, preact)
