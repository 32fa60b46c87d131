"""An rnn_jax cell or layer as a Flax linen module.

``RNN(network)`` holds the network's params as one Flax param (``"rnn"``, the same pytree
``network.init`` makes) and calls ``network.apply``: lengths, reverse, resets (for a cell),
gradient methods and the planner's choices stay rnn_jax's. It trains with Flax's usual loop
(``model.init``, ``model.apply``, optax), and rnn_jax's converters read its params
(``variables["params"]["rnn"]``).
"""
from __future__ import annotations

from typing import Any, Optional, Union

import flax.linen as nn
import jax

from rnn_jax._src.cell import Cell
from rnn_jax._src.layers import Layer, as_layer


class RNN(nn.Module):
    """``RNN(network, grad=None)(xs, lengths=None, initial_carry=None) -> (carry, ys)``;
    ``network`` a cell or a layer (``rnn_jax.stacked``, ``rnn_jax.bidirectional``), ``grad``
    the gradient method (None: the planner's default). With ``dropout`` in a stacked network,
    pass ``rngs={"dropout": key}`` to ``apply`` and ``deterministic=False``."""

    network: Union[Cell, Layer]
    grad: Any = None

    @nn.compact
    def __call__(self, xs: jax.Array, lengths: Optional[jax.Array] = None,
                 initial_carry: Any = None, deterministic: bool = True):
        net = as_layer(self.network, "network")
        params = self.param("rnn", net.init)
        key = None if deterministic else self.make_rng("dropout")
        return net.apply(params, xs, lengths=lengths, initial_carry=initial_carry, key=key,
                         grad=self.grad)
