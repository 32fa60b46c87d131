"""Elman (vanilla) RNN cell and IRNN, with its hand-written backward step.

.. math::  h_t = \\phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \\qquad y_t = h_t

Elman 1990, "Finding structure in time". IRNN: ReLU, ``W_hh = I`` and zero bias at init
(Le, Jaitly & Hinton 2015, arXiv 1504.00941). Same layout as ``torch.nn.RNN``.

Backward, with ``a_t`` the pre-activation and ``δh_t = ∂L/∂h_t`` from the future:

.. math::
   δa_t = φ'(a_t) ⊙ (δh_t + ∂L/∂y_t), \\quad δh_{t-1} = W_{hh}^⊤ δa_t, \\quad
   ∂L/∂W_{hh} = Σ_t δa_t h_{t-1}^⊤, \\quad ∂L/∂W_{ih} = Σ_t δa_t x_t^⊤, \\quad
   ∂L/∂b_{ih} = ∂L/∂b_{hh} = Σ_t δa_t, \\quad ∂L/∂x_t = W_{ih}^⊤ δa_t

These are min-char-rnn's lines (``dh_raw = (1 - h²) ⊙ dh`` for tanh, Karpathy 2015).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.activations import Activation, derivative, resolve
from rnn_jax._src.cell import (Backward, Cell, Options, affine, check_size, gate_weights,
                               col_sum, linear_t, outer_sum, stacked, zeros_carry)
from rnn_jax._src.params import ElmanParams


def elman(
    input_size: int,
    hidden_size: int,
    *,
    activation: Activation = "tanh",
    w_ih_init: inits.Initializer = inits.glorot_uniform(),
    w_hh_init: inits.Initializer = inits.orthogonal(),
    bias_init: inits.Initializer = inits.zeros,
    dtype: Any = jnp.float32,
) -> Cell:
    """An Elman cell ``h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Args:
      input_size: ``I``. hidden_size: ``H``.
      activation: ``"tanh"`` (default), ``"relu"``, ``"identity"`` or any callable.
      w_ih_init, w_hh_init, bias_init: initialisers; defaults Glorot-uniform input weights,
        orthogonal recurrent weights, zero biases.
      dtype: dtype of the parameters made by ``init``.
    """
    check_size(input_size, "input_size")
    check_size(hidden_size, "hidden_size")
    act_name, act = resolve(activation, "activation")
    dact = derivative(act_name)

    def init(key: jax.Array) -> ElmanParams:
        return ElmanParams(*gate_weights(key, 1, hidden_size, input_size, hidden_size,
                                         w_ih_init, w_hh_init, bias_init, dtype))

    def project(p: ElmanParams, x: jax.Array) -> jax.Array:
        return affine(p.w_ih, x, p.b_ih + p.b_hh)

    def recur(p: ElmanParams, h: jax.Array, xp: jax.Array):
        h = act(affine(p.w_hh, h, xp))
        return h, h

    def preact(p: ElmanParams, h, xp):
        return affine(p.w_hh, h, xp)                     # a_t

    def finish(p: ElmanParams, h, a):
        h = act(a)
        return h, h

    def step(p: ElmanParams, h_prev, a, dh, dy):
        da = dact(a, act(a), dh + dy)
        return linear_t(p.w_hh, da), da, None

    def grads(p: ElmanParams, xs, h_prev, da, local):
        db = col_sum(da)
        return ElmanParams(outer_sum(da, xs), outer_sum(da, h_prev), db, db), linear_t(p.w_ih, da)

    def fused(p: ElmanParams, h, x):
        return stacked(x, h, p.w_ih, p.w_hh, p.b_ih + p.b_hh)   # a_t, one matmul

    return Cell("elman", input_size, hidden_size, hidden_size, Options(activation=act_name),
                init, zeros_carry(hidden_size), project, recur,
                Backward(preact, finish, step, grads, project, recur, fused))


def irnn(input_size: int, hidden_size: int, *, scale: float = 1.0, dtype: Any = jnp.float32) -> Cell:
    """IRNN: ReLU Elman cell with ``W_hh = scale * I`` and zero biases at init."""
    return elman(input_size, hidden_size, activation="relu", w_hh_init=inits.identity(scale),
                 w_ih_init=jax.nn.initializers.normal(0.001), dtype=dtype)
