"""LSTM cell with optional peepholes, output projection and configurable activations, with its
hand-written backward step.

Gate order ``i, f, g, o`` (``torch.nn.LSTM``). With ``a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh``
split into ``a_i, a_f, a_g, a_o``:

.. math::
   i &= σ_g(a_i + w_{ci} ⊙ c_{t-1}) \\qquad f = σ_g(a_f + w_{cf} ⊙ c_{t-1}) \\qquad
   g = φ_c(a_g) \\\\
   c_t &= f ⊙ c_{t-1} + i ⊙ g \\qquad o = σ_g(a_o + w_{co} ⊙ c_t) \\\\
   m_t &= o ⊙ φ_h(c_t), \\qquad h_t = W_{hr} m_t \\quad (\\text{or } m_t \\text{ without a projection})

Hochreiter & Schmidhuber 1997; forget gate Gers, Schmidhuber & Cummins 2000; peepholes Gers &
Schmidhuber 2000; projection Sak, Senior & Beaufays 2014 (``proj_size`` in PyTorch).

Backward, with ``â`` a gate's pre-activation including its peephole term and
``\\bar h = δh_t + ∂L/∂y_t``:

.. math::
   δm &= W_{hr}^⊤ \\bar h \\ (\\text{or } \\bar h), \\quad
   δâ_o = σ_g'(â_o) ⊙ δm ⊙ φ_h(c_t), \\quad
   \\bar c = δc_t + φ_h'(c_t) ⊙ o ⊙ δm + w_{co} ⊙ δâ_o \\\\
   δâ_i &= σ_g'(â_i) ⊙ \\bar c ⊙ g, \\quad δâ_f = σ_g'(â_f) ⊙ \\bar c ⊙ c_{t-1}, \\quad
   δa_g = φ_c'(a_g) ⊙ \\bar c ⊙ i \\\\
   δc_{t-1} &= f ⊙ \\bar c + w_{ci} ⊙ δâ_i + w_{cf} ⊙ δâ_f, \\quad
   δh_{t-1} = W_{hh}^⊤ δa, \\quad δa = [δâ_i, δâ_f, δa_g, δâ_o]

and, summed over time: ``∂W_hh = Σ δa h_{t-1}ᵀ``, ``∂W_ih = Σ δa xᵀ``, ``∂b_ih = ∂b_hh = Σ δa``,
``∂w_ci = Σ δâ_i ⊙ c_{t-1}``, ``∂w_cf = Σ δâ_f ⊙ c_{t-1}``, ``∂w_co = Σ δâ_o ⊙ c_t``,
``∂W_hr = Σ \\bar h m_tᵀ``.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.activations import Activation, derivative, resolve
from rnn_jax._src.cell import (Backward, Cell, Options, affine, check_bool, check_real, col,
                               check_size, gate_weights, col_sum, linear, linear_t, outer_sum,
                               stacked)
from rnn_jax._src.params import LSTMCarry, LSTMParams


def lstm(
    input_size: int,
    hidden_size: int,
    *,
    peephole: bool = False,
    proj_size: Optional[int] = None,
    forget_bias: float = 1.0,
    gate_activation: Activation = "sigmoid",
    cell_activation: Activation = "tanh",
    output_activation: Activation = "tanh",
    w_ih_init: inits.Initializer = inits.glorot_uniform(),
    w_hh_init: inits.Initializer = inits.orthogonal(),
    bias_init: inits.Initializer = inits.zeros,
    dtype: Any = jnp.float32,
) -> Cell:
    """An LSTM cell.

    Args:
      peephole: add diagonal peephole weights ``w_ci, w_cf, w_co`` (initialised to zero).
      proj_size: if given, ``h_t = W_hr (o ⊙ φ_h(c_t))`` has this size, smaller than
        ``hidden_size`` (PyTorch ``proj_size``).
      forget_bias: added to the forget-gate slice of ``b_ih`` at init (Jozefowicz et al. 2015).
      gate_activation, cell_activation, output_activation: ``σ_g``, ``φ_c``, ``φ_h`` above.
      w_ih_init, w_hh_init, bias_init: per-gate initialisers; defaults Glorot-uniform input
        weights, orthogonal recurrent weights, zero biases.
    """
    check_size(input_size, "input_size")
    check_size(hidden_size, "hidden_size")
    if proj_size is not None:
        check_size(proj_size, "proj_size")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size must be smaller than hidden_size={hidden_size}, "
                             f"got proj_size={proj_size}")
    check_bool(peephole, "peephole")
    forget_bias = check_real(forget_bias, "forget_bias")
    H, P = hidden_size, proj_size or hidden_size
    gname, sg = resolve(gate_activation, "gate_activation")
    cname, phc = resolve(cell_activation, "cell_activation")
    oname, phh = resolve(output_activation, "output_activation")
    dsg, dphc, dphh = derivative(gname), derivative(cname), derivative(oname)

    def init(key: jax.Array) -> LSTMParams:
        k_w, k_r = jax.random.split(key)
        w_ih, w_hh, b_ih, b_hh = gate_weights(k_w, 4, H, input_size, P,
                                              w_ih_init, w_hh_init, bias_init, dtype)
        b_ih = b_ih.at[H:2 * H].add(forget_bias)
        peep = [jnp.zeros((H,), dtype)] * 3 if peephole else [None] * 3
        w_hr = w_ih_init(k_r, (P, H), dtype) if proj_size else None
        return LSTMParams(w_ih, w_hh, b_ih, b_hh, *peep, w_hr)

    def initial_carry(batch_shape=(), dtype=jnp.float32) -> LSTMCarry:
        batch_shape = tuple(batch_shape)
        return LSTMCarry(jnp.zeros((*batch_shape, P), dtype), jnp.zeros((*batch_shape, H), dtype))

    def project(p: LSTMParams, x: jax.Array) -> jax.Array:
        return affine(p.w_ih, x, p.b_ih + p.b_hh)

    def recur(p: LSTMParams, carry: LSTMCarry, xp: jax.Array):
        return finish(p, carry, preact(p, carry, xp))

    def preact(p: LSTMParams, carry: LSTMCarry, xp):
        return affine(p.w_hh, carry.h, xp)              # a = W_ih x + b + W_hh h

    def fused(p: LSTMParams, carry: LSTMCarry, x):
        """``a = [W_ih, W_hh] [x; h] + b``: both matmuls as one contraction."""
        return stacked(x, carry.h, p.w_ih, p.w_hh, p.b_ih + p.b_hh)

    def gates(p: LSTMParams, c_prev, a):
        a_i, a_f, a_g, a_o = jnp.split(a, 4)
        if peephole:
            a_i, a_f = a_i + col(p.w_ci, c_prev) * c_prev, a_f + col(p.w_cf, c_prev) * c_prev
        i, f, g = sg(a_i), sg(a_f), phc(a_g)
        c = f * c_prev + i * g
        if peephole:
            a_o = a_o + col(p.w_co, c) * c
        return (a_i, a_f, a_g, a_o), (i, f, g, sg(a_o)), c

    def finish(p: LSTMParams, carry: LSTMCarry, a):
        _, (_, _, _, o), c = gates(p, carry.c, a)
        h = o * phh(c)
        if proj_size:
            h = linear(p.w_hr, h)
        return LSTMCarry(h, c), h

    def step(p: LSTMParams, carry: LSTMCarry, a, dcarry: LSTMCarry, dy):
        (a_i, a_f, a_g, a_o), (i, f, g, o), c = gates(p, carry.c, a)
        tc = phh(c)
        dh = dcarry.h + dy
        dm = linear_t(p.w_hr, dh) if proj_size else dh
        da_o = dsg(a_o, o, dm * tc)
        dc = dcarry.c + dphh(c, tc, dm * o)
        if peephole:
            dc = dc + col(p.w_co, dc) * da_o
        da_i, da_f, da_g = dsg(a_i, i, dc * g), dsg(a_f, f, dc * carry.c), dphc(a_g, g, dc * i)
        dc_prev = dc * f
        if peephole:
            dc_prev = dc_prev + col(p.w_ci, dc) * da_i + col(p.w_cf, dc) * da_f
        da = jnp.concatenate([da_i, da_f, da_g, da_o])
        local = (c if peephole else None, (dh, o * tc) if proj_size else None)
        return LSTMCarry(linear_t(p.w_hh, da), dc_prev), da, local

    def grads(p: LSTMParams, xs, carry: LSTMCarry, da, local):
        c, hm = local
        db = col_sum(da)
        peep = (None, None, None)
        if peephole:
            da_i, da_f, _, da_o = jnp.split(da, 4)
            peep = (col_sum(da_i * carry.c), col_sum(da_f * carry.c), col_sum(da_o * c))
        return LSTMParams(outer_sum(da, xs), outer_sum(da, carry.h), db, db, *peep,
                          outer_sum(*hm) if proj_size else None), linear_t(p.w_ih, da)

    options = Options(peephole=peephole, proj_size=proj_size, forget_bias=forget_bias,
                      gate_activation=gname, cell_activation=cname, output_activation=oname)
    return Cell("lstm", input_size, H, P, options, init, initial_carry, project, recur,
                Backward(preact, finish, step, grads, project, recur, fused))
