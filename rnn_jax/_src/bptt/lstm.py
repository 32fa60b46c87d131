"""Backward pass of the LSTM cell, every option (peepholes, projection, activations).

Forward (:func:`rnn_jax.lstm`), gate order ``i, f, g, o``: ``a = xp + W_hh h_{t-1}`` with
``xp = W_ih x + b_ih + b_hh``; ``i = σ(a_i + w_ci ⊙ c_{t-1})``, ``f = σ(a_f + w_cf ⊙ c_{t-1})``,
``g = φ_c(a_g)``, ``c_t = f ⊙ c_{t-1} + i ⊙ g``, ``o = σ(a_o + w_co ⊙ c_t)``,
``m_t = o ⊙ φ_h(c_t)``, ``h_t = W_hr m_t`` (or ``m_t``). Peephole terms are absent without
peepholes; ``σ = σ_g``. Given ``δh_t, δc_t`` (carry) and ``∂L/∂y_t`` (``y_t = h_t``):

.. math::
   \\bar h &= δh_t + ∂L/∂y_t, \\quad δm = W_{hr}^⊤ \\bar h \\ (\\text{or } \\bar h) \\\\
   δâ_o &= σ'(â_o) ⊙ δm ⊙ φ_h(c_t), \\quad
   \\bar c = δc_t + φ_h'(c_t) ⊙ o ⊙ δm + w_{co} ⊙ δâ_o \\\\
   δâ_i &= σ'(â_i) ⊙ \\bar c ⊙ g, \\quad δâ_f = σ'(â_f) ⊙ \\bar c ⊙ c_{t-1}, \\quad
   δa_g = φ_c'(a_g) ⊙ \\bar c ⊙ i \\\\
   δc_{t-1} &= f ⊙ \\bar c + w_{ci} ⊙ δâ_i + w_{cf} ⊙ δâ_f, \\quad
   δh_{t-1} = W_{hh}^⊤ δa, \\quad δxp = δa = [δâ_i, δâ_f, δa_g, δâ_o]

(``â`` the gate pre-activation including its peephole term). Parameter gradients, summed over
time and batch after the scan: ``∂W_hh = Σ δa h_{t-1}^⊤``, ``∂W_ih = Σ δa x^⊤``,
``∂b_ih = ∂b_hh = Σ δa``, ``∂w_ci = Σ δâ_i ⊙ c_{t-1}``, ``∂w_cf = Σ δâ_f ⊙ c_{t-1}``,
``∂w_co = Σ δâ_o ⊙ c_t``, ``∂W_hr = Σ \\bar h m_t^⊤``. ``local`` carries ``c_t`` (peepholes) and
``(\\bar h, m_t)`` (projection), ``None`` otherwise.
"""

from __future__ import annotations

import jax.numpy as jnp

from rnn_jax._src.bptt.common import (CellBackward, batch_last, derivative, features_first,
                                     function, input_grad, lead_sum, matmul, outer_sum)
from rnn_jax._src.cell import (BATCH_FIRST, FEATURES_FIRST, Cell, add_linear,
                               features_first_capable, per_feature, split)
from rnn_jax._src.params import LSTMCarry, LSTMParams


def backward(cell: Cell) -> CellBackward:
    """The :class:`CellBackward` of an LSTM cell built with ``cell.options``."""
    opts = cell.options
    peephole, proj = opts["peephole"], opts["proj_size"] is not None
    sg, dsg = function(opts["gate_activation"]), derivative(opts["gate_activation"])
    phc, dphc = function(opts["cell_activation"]), derivative(opts["cell_activation"])
    phh, dphh = function(opts["output_activation"]), derivative(opts["output_activation"])

    @features_first_capable
    def preact(params: LSTMParams, carry: LSTMCarry, xp, fa: int = BATCH_FIRST):
        a = add_linear(xp, carry.h, params.w_hh, fa)     # as cell.recur
        return a if fa == FEATURES_FIRST else features_first(a)   # (4H, ...)

    def transposed(params: LSTMParams):
        """``wt`` of a features-first ``step``: the weights it multiplies by, transposed once
        before the backward scan (``W_hh^T δa`` with ``W_hh`` as stored ran 1.5x slower)."""
        return params.w_hh.T, None if params.w_hr is None else params.w_hr.T

    @features_first_capable
    def step(params: LSTMParams, carry: LSTMCarry, xp, dcarry: LSTMCarry, dy, pre=None,
             fa: int = BATCH_FIRST, wt=None):
        # The forward step from (carry, a): elementwise only once ``a`` is given.
        if pre is None:
            a = add_linear(xp, carry.h, params.w_hh, fa)
        else:
            a = pre if fa == FEATURES_FIRST else batch_last(pre)
        a_i, a_f, a_g, a_o = split(a, 4, fa)             # (..., H) each
        if peephole:
            a_i = a_i + per_feature(params.w_ci, carry.c, fa) * carry.c
            a_f = a_f + per_feature(params.w_cf, carry.c, fa) * carry.c
        i, f, g = sg(a_i), sg(a_f), phc(a_g)
        c = f * carry.c + i * g
        if peephole:
            a_o = a_o + per_feature(params.w_co, c, fa) * c
        o, tc = sg(a_o), phh(c)
        # Backward.
        if fa == FEATURES_FIRST:
            w_hh, w_hr = transposed(params) if wt is None else wt
        else:
            w_hh, w_hr = params.w_hh, params.w_hr
        dh = dcarry.h + dy                               # (..., P)
        dm = matmul(dh, w_hr, fa) if proj else dh        # (..., H)
        da_o = dsg(a_o, o, dm * tc)
        dc = dcarry.c + dphh(c, tc, dm * o)
        if peephole:
            dc = dc + per_feature(params.w_co, dc, fa) * da_o
        da_i = dsg(a_i, i, dc * g)
        da_f = dsg(a_f, f, dc * carry.c)
        da_g = dphc(a_g, g, dc * i)
        dc_prev = dc * f
        if peephole:
            dc_prev = (dc_prev + per_feature(params.w_ci, dc, fa) * da_i
                       + per_feature(params.w_cf, dc, fa) * da_f)
        da = jnp.concatenate([da_i, da_f, da_g, da_o], axis=fa)   # (..., 4H)
        local = (c if peephole else None, (dh, o * tc) if proj else None)
        return LSTMCarry(matmul(da, w_hh, fa), dc_prev), da, local

    def recur_grads(params: LSTMParams, carry: LSTMCarry, dxp, local, fa: int = BATCH_FIRST):
        c, hm = local
        z = jnp.zeros_like
        if peephole:
            da_i, da_f, _, da_o = split(dxp, 4, fa)
            peep = (lead_sum(da_i * carry.c, fa), lead_sum(da_f * carry.c, fa),
                    lead_sum(da_o * c, fa))
        else:
            peep = (None, None, None)
        w_hr = outer_sum(*hm, fa) if proj else None
        return LSTMParams(z(params.w_ih), outer_sum(dxp, carry.h, fa), z(params.b_ih),
                          z(params.b_hh), *peep, w_hr)

    def project_grads(params: LSTMParams, x, dxp, fa: int = BATCH_FIRST):
        z = lambda p: None if p is None else jnp.zeros_like(p)  # noqa: E731
        db = lead_sum(dxp, fa)
        return LSTMParams(outer_sum(dxp, x, fa), z(params.w_hh), db, db, z(params.w_ci),
                          z(params.w_cf), z(params.w_co), z(params.w_hr)), \
            input_grad(dxp, params.w_ih, fa)

    return CellBackward(step, recur_grads, project_grads, preact, saves_fused=True,
                        transposed=transposed)
