"""Weights in and out of other frameworks, exactly: PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU``
and Flax linen's recurrent cells.

Public re-exports of ``rnn_jax._src.interop``. PyTorch is imported only by ``to_torch`` with
``module=True`` (``from_torch`` also takes a plain state dict of arrays); Flax not at all (its
params are plain dicts).
"""

from rnn_jax._src.interop.flax import (carry_from_flax, carry_to_flax,  # noqa: F401
                                       from_flax, to_flax)
from rnn_jax._src.interop.torch import (TorchSpec, from_torch, network, spec_of,  # noqa: F401
                                        to_torch)

__all__ = ["TorchSpec", "carry_from_flax", "carry_to_flax", "from_flax", "from_torch",
           "network", "spec_of", "to_flax", "to_torch"]
