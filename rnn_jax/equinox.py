"""rnn_jax networks as Equinox modules (needs ``equinox``).

Public re-export of :mod:`rnn_jax._src.wrappers.equinox`.
"""

from rnn_jax._src.wrappers.equinox import RNN  # noqa: F401

__all__ = ["RNN"]
