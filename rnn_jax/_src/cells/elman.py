"""Elman (vanilla) RNN cell and IRNN.

.. math::  h_t = \\phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \\qquad y_t = h_t

Elman 1990, "Finding structure in time". IRNN: ReLU, ``W_hh = I`` and zero bias at init
(Le, Jaitly & Hinton 2015, arXiv 1504.00941). Same layout as ``torch.nn.RNN``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.activations import Activation, resolve
from rnn_jax._src.cell import (BATCH_FIRST, Cell, Options, add_linear, affine, check_size,
                               features_first_capable, gate_weights, zeros_carry)
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

    def init(key: jax.Array) -> ElmanParams:
        return ElmanParams(*gate_weights(key, 1, hidden_size, input_size, hidden_size,
                                         w_ih_init, w_hh_init, bias_init, dtype))

    @features_first_capable
    def project(params: ElmanParams, x: jax.Array, fa: int = BATCH_FIRST) -> jax.Array:
        return affine(x, params.w_ih, params.b_ih + params.b_hh, fa)

    @features_first_capable
    def recur(params: ElmanParams, h: jax.Array, xp: jax.Array, fa: int = BATCH_FIRST):
        h = act(add_linear(xp, h, params.w_hh, fa))
        return h, h

    return Cell("elman", input_size, hidden_size, hidden_size, Options(activation=act_name),
                init, zeros_carry(hidden_size), project, recur)


def irnn(input_size: int, hidden_size: int, *, scale: float = 1.0, dtype: Any = jnp.float32) -> Cell:
    """IRNN: ReLU Elman cell with ``W_hh = scale * I`` and zero biases at init."""
    return elman(input_size, hidden_size, activation="relu", w_hh_init=inits.identity(scale),
                 w_ih_init=jax.nn.initializers.normal(0.001), dtype=dtype)
