"""Weights in and out of other frameworks, exactly: PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU``
Flax's recurrent cells (linen and nnx), Keras 3's LSTM, GRU and SimpleRNN weights, and the
flat cuDNN LSTM vector of ``jax.experimental.rnn``.

Public re-exports of ``rnn_jax._src.interop``. PyTorch is imported only by ``to_torch`` with
``module=True`` (``from_torch`` also takes a plain state dict of arrays); Flax not at all (its
params are plain dicts).
"""

from rnn_jax._src.interop.cudnn import from_cudnn, to_cudnn  # noqa: F401
from rnn_jax._src.interop.keras import from_keras, to_keras  # noqa: F401
from rnn_jax._src.interop.flax import (carry_from_flax, carry_to_flax,  # noqa: F401
                                       from_flax, from_nnx, to_flax, to_nnx)
from rnn_jax._src.interop.torch import (TorchSpec, from_torch, network, spec_of,  # noqa: F401
                                        to_torch)

__all__ = ["TorchSpec", "carry_from_flax", "carry_to_flax", "from_cudnn", "from_flax",
           "from_keras", "from_nnx", "from_torch", "network", "spec_of", "to_cudnn", "to_flax",
           "to_keras", "to_nnx", "to_torch"]
