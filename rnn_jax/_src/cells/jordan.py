"""Jordan network cell: the previous *output*, not the hidden state, is fed back.

.. math::
   h_t = \\phi(W_{ih} x_t + b_{ih} + W_{yh} y_{t-1}), \\qquad y_t = g(W_{hy} h_t + b_y)

Jordan 1986, "Serial order: a parallel distributed processing approach". The carry is
``y_{t-1}`` (size ``O``) and ``y_{-1} = 0``.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.activations import Activation, resolve
from rnn_jax._src.cell import (BATCH_FIRST, Cell, Options, add_linear, affine, check_size,
                               features_first_capable, linear, per_feature, zeros_carry)
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

    def init(key: jax.Array) -> JordanParams:
        k = jax.random.split(key, 5)
        return JordanParams(
            w_ih=w_ih_init(k[0], (hidden_size, input_size), dtype),
            w_yh=w_yh_init(k[1], (hidden_size, output_size), dtype),
            b_ih=bias_init(k[2], (hidden_size,), dtype),
            w_hy=w_hy_init(k[3], (output_size, hidden_size), dtype),
            b_y=bias_init(k[4], (output_size,), dtype),
        )

    @features_first_capable
    def project(params: JordanParams, x: jax.Array, fa: int = BATCH_FIRST) -> jax.Array:
        return affine(x, params.w_ih, params.b_ih, fa)

    @features_first_capable
    def recur(params: JordanParams, y_prev: jax.Array, xp: jax.Array, fa: int = BATCH_FIRST):
        h = act(add_linear(xp, y_prev, params.w_yh, fa))
        b = linear(h, params.w_hy, fa)
        y = out_act(b + per_feature(params.b_y, b, fa))
        return y, y

    options = Options(activation=act_name, output_activation=out_name)
    return Cell("jordan", input_size, hidden_size, output_size, options,
                init, zeros_carry(output_size), project, recur)
