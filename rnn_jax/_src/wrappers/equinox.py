"""An rnn_jax cell or layer as an Equinox module.

``RNN(network, key=key)`` is a pytree whose only array leaves are the network's params (the
same pytree ``network.init`` makes; the network itself is a static field), so it trains with
``eqx.filter_grad`` / ``eqx.filter_jit`` and optax as any Equinox model, and keeps rnn_jax's
lengths, reverse, gradient methods and planner.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import equinox as eqx
import jax

from rnn_jax._src.cell import Cell
from rnn_jax._src.layers import Layer, as_layer


class RNN(eqx.Module):
    """``RNN(network, key=key)``; ``model(xs, lengths=None, initial_carry=None, key=None,
    grad=None) -> (carry, ys)`` (``key``: dropout of a stacked network)."""

    network: Layer = eqx.field(static=True)
    params: Any

    def __init__(self, network: Union[Cell, Layer], *, key: jax.Array):
        self.network = as_layer(network, "network")
        self.params = self.network.init(key)

    def __call__(self, xs: jax.Array, lengths: Optional[jax.Array] = None,
                 initial_carry: Any = None, *, key: Optional[jax.Array] = None,
                 grad: Any = None):
        return self.network.apply(self.params, xs, lengths=lengths,
                                  initial_carry=initial_carry, key=key, grad=grad)
