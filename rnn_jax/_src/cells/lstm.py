"""LSTM cell with optional peepholes, output projection and configurable activations.

Gate order ``i, f, g, o`` (``torch.nn.LSTM``). With ``a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh``
split into ``a_i, a_f, a_g, a_o``:

.. math::
   i &= σ_g(a_i + w_{ci} ⊙ c_{t-1}) \\qquad f = σ_g(a_f + w_{cf} ⊙ c_{t-1}) \\qquad
   g = φ_c(a_g) \\\\
   c_t &= f ⊙ c_{t-1} + i ⊙ g \\qquad o = σ_g(a_o + w_{co} ⊙ c_t) \\\\
   h_t &= W_{hr} (o ⊙ φ_h(c_t))   \\quad (W_{hr} \\text{ only with a projection})

Hochreiter & Schmidhuber 1997; forget gate Gers, Schmidhuber & Cummins 2000; peepholes Gers &
Schmidhuber 2000; projection Sak, Senior & Beaufays 2014 (``proj_size`` in PyTorch).
``σ_g`` is ``gate_activation``, ``φ_c`` ``cell_activation``, ``φ_h`` ``output_activation``.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.activations import Activation, resolve
from rnn_jax._src.cell import (BATCH_FIRST, Cell, Options, add_linear, affine, check_size,
                               Fused, features_first_capable, fused_with, gate_weights, linear,
                               per_feature, split, stacked_linear)
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
      proj_size: if given, ``h_t = W_hr (o ⊙ φ_h(c_t))`` has this size (PyTorch ``proj_size``).
      forget_bias: added to the forget-gate slice of ``b_ih`` at init (Jozefowicz et al. 2015).
      gate_activation, cell_activation, output_activation: ``σ_g``, ``φ_c``, ``φ_h`` above.
      w_ih_init, w_hh_init, bias_init: per-gate initialisers; defaults Glorot-uniform input
        weights, orthogonal recurrent weights, zero biases.
    """
    check_size(input_size, "input_size")
    check_size(hidden_size, "hidden_size")
    if proj_size is not None:
        check_size(proj_size, "proj_size")
    if not isinstance(peephole, bool):
        raise TypeError(f"peephole must be a bool, got {peephole!r}")
    H, P = hidden_size, proj_size or hidden_size
    gname, gate = resolve(gate_activation, "gate_activation")
    cname, cact = resolve(cell_activation, "cell_activation")
    oname, oact = resolve(output_activation, "output_activation")

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

    @features_first_capable
    def project(params: LSTMParams, x: jax.Array, fa: int = BATCH_FIRST) -> jax.Array:
        return affine(x, params.w_ih, params.b_ih + params.b_hh, fa)

    def gates(params: LSTMParams, carry: LSTMCarry, a: jax.Array, fa: int):
        """The step once the pre-activations ``a`` are known: elementwise but for ``W_hr``."""
        a_i, a_f, a_g, a_o = split(a, 4, fa)
        c_prev = carry.c
        if params.w_ci is not None:
            a_i = a_i + per_feature(params.w_ci, c_prev, fa) * c_prev
            a_f = a_f + per_feature(params.w_cf, c_prev, fa) * c_prev
        c = gate(a_f) * c_prev + gate(a_i) * cact(a_g)
        if params.w_co is not None:
            a_o = a_o + per_feature(params.w_co, c, fa) * c
        h = gate(a_o) * oact(c)
        if params.w_hr is not None:
            h = linear(h, params.w_hr, fa)
        return LSTMCarry(h, c), h

    def fused_preact(params: LSTMParams, carry: LSTMCarry, x: jax.Array, fa: int):
        """``a = W_ih x + W_hh h + b_ih + b_hh`` with one matmul (the features-first scan's)."""
        a = stacked_linear(x, carry.h, params.w_ih, params.w_hh, fa)
        return a + per_feature(params.b_ih + params.b_hh, a, fa)

    @features_first_capable
    @fused_with(project, Fused(fused_preact, gates))
    def recur(params: LSTMParams, carry: LSTMCarry, xp: jax.Array, fa: int = BATCH_FIRST):
        return gates(params, carry, add_linear(xp, carry.h, params.w_hh, fa), fa)

    options = Options(peephole=peephole, proj_size=proj_size, forget_bias=forget_bias,
                      gate_activation=gname, cell_activation=cname, output_activation=oname)
    return Cell("lstm", input_size, H, P, options, init, initial_carry, project, recur)

