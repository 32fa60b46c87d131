"""The flat cuDNN LSTM weight vector of ``jax.experimental.rnn`` in and out of rnn_jax.

``jax.experimental.rnn.lstm`` takes all weights as one flat vector: for every layer and
direction (layer-major) ``W_ih`` then ``W_hh``, then for every layer and direction ``b_ih``
then ``b_hh``, each matrix ``(4H, in)`` row-major in the gate order ``i, f, g, o``
(``jax.experimental.rnn.unpack_lstm_weights``). That is PyTorch's layout cut into one vector,
so the conversion goes through :func:`rnn_jax.interop.from_torch`'s state dict.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from rnn_jax._src.interop.torch import TorchSpec, _read, from_torch, to_torch
from rnn_jax._src.layers import Layer


def _names(num_layers: int, bidirectional: bool) -> list[str]:
    return [f"l{k}{s}" for k in range(num_layers) for s in (("", "_reverse") if bidirectional
                                                             else ("",))]


def from_cudnn(weights: Any, input_size: int, hidden_size: int, num_layers: int = 1,
               bidirectional: bool = False) -> tuple[Layer, Any]:
    """``(network, params)`` of an LSTM given as cuDNN's flat ``weights`` vector."""
    w = np.asarray(weights).reshape(-1)
    H, D = hidden_size, 2 if bidirectional else 1
    names = _names(num_layers, bidirectional)
    cols = [(input_size if i // D == 0 else D * H, H) for i in range(len(names))]
    size = sum(4 * H * (a + b) + 8 * H for a, b in cols)
    if w.size != size:
        raise ValueError(f"weights has {w.size} numbers; an LSTM of input_size={input_size}, "
                         f"hidden_size={H}, num_layers={num_layers}, bidirectional="
                         f"{bidirectional} has {size}")
    sd, at = {}, 0
    for name, (a, b) in zip(names, cols):
        for kind, n in (("weight_ih", a), ("weight_hh", b)):
            sd[f"{kind}_{name}"] = w[at:at + 4 * H * n].reshape(4 * H, n)
            at += 4 * H * n
    for name in names:
        for kind in ("bias_ih", "bias_hh"):
            sd[f"{kind}_{name}"] = w[at:at + 4 * H]
            at += 4 * H
    return from_torch(sd)


def to_cudnn(net: Layer, params: Any) -> jnp.ndarray:
    """cuDNN's flat weight vector of an rnn_jax LSTM network (as :func:`from_cudnn` builds,
    or any network :func:`rnn_jax.interop.to_torch` takes, of LSTM cells without
    projection)."""
    spec: TorchSpec = _read(net)[0]
    if spec.mode != "LSTM" or spec.proj_size:
        raise ValueError(f"cuDNN's flat layout here is for LSTMs without projection, not "
                         f"{spec.mode}{' with proj_size' if spec.proj_size else ''}")
    sd = to_torch(net, params, module=False)
    names = _names(spec.num_layers, spec.bidirectional)
    parts = [sd[f"{kind}_{n}"].reshape(-1) for n in names for kind in ("weight_ih", "weight_hh")]
    parts += [sd[f"{kind}_{n}"] for n in names for kind in ("bias_ih", "bias_hh")]
    return jnp.asarray(np.concatenate(parts))
