"""Jordan network cell: the previous *output*, not the hidden state, is fed back.

.. math::
   h_t = \\phi(W_{ih} x_t + b_{ih} + W_{yh} y_{t-1}), \\qquad y_t = g(W_{hy} h_t + b_y)

Jordan 1986, "Serial order: a parallel distributed processing approach". The carry is
``y_{t-1}`` (size ``O``) and ``y_{-1} = 0``.

Backward, with ``a_t`` and ``b_t = W_hy h_t + b_y`` the two pre-activations, ``δy_t`` the
carry's gradient and ``∂L/∂y_t`` the output's:

.. math::
   δb_t = g'(b_t) ⊙ (δy_t + ∂L/∂y_t), \\quad δa_t = φ'(a_t) ⊙ W_{hy}^⊤ δb_t, \\quad
   δy_{t-1} = W_{yh}^⊤ δa_t \\\\
   ∂L/∂W_{hy} = Σ_t δb_t h_t^⊤, \\quad ∂L/∂b_y = Σ_t δb_t, \\quad
   ∂L/∂W_{yh} = Σ_t δa_t y_{t-1}^⊤, \\quad ∂L/∂W_{ih} = Σ_t δa_t x_t^⊤, \\quad
   ∂L/∂b_{ih} = Σ_t δa_t
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.activations import Activation, derivative, resolve
from rnn_jax._src.cell import (Backward, Cell, Options, affine, check_size, col_sum,
                               linear_t, outer_sum, zeros_carry)
from rnn_jax._src.params import JordanParams


def jordan(
    input_size: int,
    hidden_size: int,
    output_size: Optional[int] = None,
    *,
    activation: Activation = "tanh",
    output_activation: Activation = "identity",
    w_ih_init: inits.Initializer = inits.glorot_uniform(),
    w_yh_init: inits.Initializer = inits.glorot_uniform(),
    w_hy_init: inits.Initializer = inits.glorot_uniform(),
    bias_init: inits.Initializer = inits.zeros,
    dtype: Any = jnp.float32,
) -> Cell:
    """A Jordan cell; ``output_size`` defaults to ``hidden_size``.

    Args:
      activation: hidden activation ``φ`` (default tanh).
      output_activation: output activation ``g`` (default identity).
    """
    check_size(input_size, "input_size")
    check_size(hidden_size, "hidden_size")
    output_size = hidden_size if output_size is None else check_size(output_size, "output_size")
    act_name, act = resolve(activation, "activation")
    out_name, out_act = resolve(output_activation, "output_activation")
    dact, dout = derivative(act_name), derivative(out_name)

    def init(key: jax.Array) -> JordanParams:
        k = jax.random.split(key, 5)
        return JordanParams(
            w_ih=w_ih_init(k[0], (hidden_size, input_size), dtype),
            w_yh=w_yh_init(k[1], (hidden_size, output_size), dtype),
            b_ih=bias_init(k[2], (hidden_size,), dtype),
            w_hy=w_hy_init(k[3], (output_size, hidden_size), dtype),
            b_y=bias_init(k[4], (output_size,), dtype),
        )

    def project(p: JordanParams, x: jax.Array) -> jax.Array:
        return affine(p.w_ih, x, p.b_ih)

    def recur(p: JordanParams, y_prev: jax.Array, xp: jax.Array):
        return finish(p, y_prev, preact(p, y_prev, xp))

    def preact(p: JordanParams, y_prev, xp):
        a = affine(p.w_yh, y_prev, xp)
        return a, affine(p.w_hy, act(a), p.b_y)          # (a_t, b_t)

    def finish(p: JordanParams, y_prev, pre):
        y = out_act(pre[1])
        return y, y

    def step(p: JordanParams, y_prev, pre, dcarry, dy):
        a, b = pre
        h = act(a)
        db = dout(b, out_act(b), dcarry + dy)
        da = dact(a, h, linear_t(p.w_hy, db))
        return linear_t(p.w_yh, da), da, (db, h)

    def grads(p: JordanParams, xs, y_prev, da, local):
        db, h = local
        return JordanParams(outer_sum(da, xs), outer_sum(da, y_prev), col_sum(da),
                            outer_sum(db, h), col_sum(db)), linear_t(p.w_ih, da)

    options = Options(activation=act_name, output_activation=out_name)
    return Cell("jordan", input_size, hidden_size, output_size, options,
                init, zeros_carry(output_size), project, recur,
                Backward(preact, finish, step, grads, project, recur))
