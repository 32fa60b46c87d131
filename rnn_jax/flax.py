"""rnn_jax networks as Flax linen modules (needs ``flax``: the ``flax`` extra).

Public re-export of :mod:`rnn_jax._src.wrappers.linen`.
"""

from rnn_jax._src.wrappers.linen import RNN  # noqa: F401

__all__ = ["RNN"]
