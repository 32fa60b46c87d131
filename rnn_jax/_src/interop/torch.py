"""PyTorch's ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` in and out of rnn_jax, exactly.

rnn_jax's params already use PyTorch's layout (``weight_ih_l{k}`` is ``w_ih``, gates ``i, f, g,
o`` and ``r, z, n``; ``rnn_jax/_src/params.py``), and rnn_jax's GRU default (``reset="after"``)
is PyTorch's, so a conversion moves arrays by name and never changes a number. What it adds is
the network: ``num_layers`` becomes :func:`rnn_jax.stacked`, ``bidirectional=True``
:func:`rnn_jax.bidirectional` (``_reverse`` weights in the backward cell), ``proj_size`` the
LSTM's projection, ``nonlinearity="relu"`` Elman's ReLU, ``bias=False`` zero biases, and
``dropout`` the stacked network's dropout between layers (active only with a ``key``).

PyTorch reads ``(T, B, I)`` unless ``batch_first``; an rnn_jax network reads ``(B, T, I)``
(``time_major=True`` for the other). Padded batches: ``lengths=`` in rnn_jax where PyTorch
packs (``pack_padded_sequence``); both give zero outputs past each sequence's end.
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple, Optional

import jax.numpy as jnp
import numpy as np

import rnn_jax
from rnn_jax._src.layers import Layer
from rnn_jax._src.params import ElmanParams, GRUParams, LSTMParams

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")


class TorchSpec(NamedTuple):
    """What defines a PyTorch recurrent module (its constructor's arguments)."""

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    proj_size: int = 0
    bias: bool = True
    dropout: float = 0.0


def _cell(spec: TorchSpec, input_size: int, dtype):
    H = spec.hidden_size
    if spec.mode == "LSTM":
        return rnn_jax.lstm(input_size, H, proj_size=spec.proj_size or None, dtype=dtype)
    if spec.mode == "GRU":
        return rnn_jax.gru(input_size, H, reset="after", dtype=dtype)
    return rnn_jax.elman(input_size, H, activation="relu" if spec.mode == "RNN_RELU" else "tanh",
                         dtype=dtype)


def network(spec: TorchSpec, dtype: Any = jnp.float32) -> Layer:
    """The rnn_jax network that computes what a PyTorch module of ``spec`` computes."""
    if spec.mode not in MODES:
        raise ValueError(f"mode {spec.mode!r} is not one of {list(MODES)}")
    if spec.proj_size and spec.mode != "LSTM":
        raise ValueError(f"proj_size={spec.proj_size} is an LSTM option, not {spec.mode}'s")
    out = (spec.proj_size or spec.hidden_size) * (2 if spec.bidirectional else 1)
    layers = []
    for k in range(spec.num_layers):
        cell = _cell(spec, spec.input_size if k == 0 else out, dtype)
        layers.append(rnn_jax.bidirectional(cell) if spec.bidirectional else rnn_jax.layer(cell))
    return layers[0] if spec.num_layers == 1 else rnn_jax.stacked(layers, dropout=spec.dropout)


def spec_of(module_or_state_dict: Any, nonlinearity: Optional[str] = None) -> TorchSpec:
    """The :class:`TorchSpec` of a module, or read from a state dict's keys and shapes
    (``nonlinearity``: ``"tanh"`` or ``"relu"`` for an ``nn.RNN`` state dict)."""
    m = module_or_state_dict
    if hasattr(m, "state_dict") and hasattr(m, "mode"):
        return TorchSpec(m.mode, m.input_size, m.hidden_size, m.num_layers,
                         bool(m.bidirectional), int(getattr(m, "proj_size", 0)), bool(m.bias),
                         float(m.dropout))
    sd = {k: np.asarray(_numpy(v)) for k, v in m.items()}
    if "weight_ih_l0" not in sd:
        raise ValueError(f"not a state dict of nn.RNN/LSTM/GRU (no weight_ih_l0); keys: "
                         f"{sorted(sd)[:6]}")
    layers = 1 + max(int(re.match(r"weight_ih_l(\d+)", k).group(1)) for k in sd
                     if k.startswith("weight_ih_l"))
    H = sd["weight_hh_l0"].shape[1] if "weight_hr_l0" not in sd else sd["weight_hr_l0"].shape[1]
    gates = sd["weight_ih_l0"].shape[0] // H
    mode = {4: "LSTM", 3: "GRU", 1: "RNN_RELU" if nonlinearity == "relu" else "RNN_TANH"}[gates]
    proj = sd["weight_hr_l0"].shape[0] if "weight_hr_l0" in sd else 0
    return TorchSpec(mode, sd["weight_ih_l0"].shape[1], H, layers,
                     "weight_ih_l0_reverse" in sd, proj, "bias_ih_l0" in sd)


def _numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def from_torch(module_or_state_dict: Any, *, nonlinearity: Optional[str] = None,
               dtype: Any = None) -> tuple[Layer, Any]:
    """``(network, params)`` computing what ``module_or_state_dict`` (an ``nn.RNN``,
    ``nn.LSTM`` or ``nn.GRU``, or its ``state_dict()``) computes. ``dtype``: of the params
    (default: the tensors')."""
    spec = spec_of(module_or_state_dict, nonlinearity)
    m = module_or_state_dict
    sd = {k: _numpy(v) for k, v in (m.state_dict() if hasattr(m, "state_dict") else m).items()}
    dtype = dtype or sd["weight_ih_l0"].dtype
    net = network(spec, dtype)

    def cell_params(k: int, suffix: str):
        get = lambda name: jnp.asarray(sd[f"{name}_l{k}{suffix}"], dtype)   # noqa: E731
        w_ih, w_hh = get("weight_ih"), get("weight_hh")
        zeros = jnp.zeros((w_ih.shape[0],), dtype)
        b_ih, b_hh = (get("bias_ih"), get("bias_hh")) if spec.bias else (zeros, zeros)
        if spec.mode == "LSTM":
            return LSTMParams(w_ih, w_hh, b_ih, b_hh,
                              w_hr=get("weight_hr") if spec.proj_size else None)
        return (GRUParams if spec.mode == "GRU" else ElmanParams)(w_ih, w_hh, b_ih, b_hh)

    per_layer = [(cell_params(k, ""), cell_params(k, "_reverse")) if spec.bidirectional
                 else cell_params(k, "") for k in range(spec.num_layers)]
    return net, (per_layer[0] if spec.num_layers == 1 else tuple(per_layer))


def _read(net: Layer) -> tuple[TorchSpec, list]:
    """The spec of an rnn_jax network that PyTorch can hold, and its cells per layer."""
    st = net.structure if isinstance(net, Layer) else ("layer", net, False)
    layers = list(st[1]) if st and st[0] == "stacked" else [st]
    dropout = st[2] if st and st[0] == "stacked" else 0.0
    if st and st[0] == "stacked" and st[3]:
        raise ValueError("a residual stacked network has no PyTorch module")
    cells, bidirectional = [], None
    for s in layers:
        if s and s[0] == "layer" and not s[2]:
            one, bi = [s[1]], False
        elif (s and s[0] == "bidirectional" and s[3] == "concat" and s[1] and s[2]
              and s[1][0] == s[2][0] == "layer" and not s[1][2] and s[2][2]):
            one, bi = [s[1][1], s[2][1]], True
        else:
            raise ValueError(f"PyTorch holds layers of one cell, or bidirectional pairs "
                             f"concatenated; this network has {s!r:.120}")
        if bidirectional not in (None, bi):
            raise ValueError("PyTorch modules are bidirectional in every layer or in none")
        bidirectional = bi
        cells.append(one)
    c0 = cells[0][0]
    kinds = {(c.name, c.options.get("activation"), c.options.get("reset"),
              c.options.get("proj_size"), c.options.get("peephole"), c.hidden_size)
             for layer in cells for c in layer}
    if len(kinds) != 1:
        raise ValueError(f"PyTorch uses one cell type and size in every layer; found {kinds}")
    mode = {"lstm": "LSTM", "gru": "GRU"}.get(c0.name) or (
        {"tanh": "RNN_TANH", "relu": "RNN_RELU"}.get(str(c0.options.get("activation"))))
    plain_lstm = all(c0.options.get(k, v) == v for k, v in (
        ("gate_activation", "sigmoid"), ("cell_activation", "tanh"),
        ("output_activation", "tanh"), ("peephole", False)))
    if mode is None or not plain_lstm or (mode == "GRU" and c0.options.get("reset") != "after"):
        raise ValueError(f"{c0.name} with {c0.options} has no PyTorch module (nn.RNN tanh/relu, "
                         "nn.LSTM without peepholes, nn.GRU with reset after)")
    return TorchSpec(mode, c0.input_size, c0.hidden_size, len(cells), bidirectional,
                     int(c0.options.get("proj_size") or 0), True, float(dropout)), cells


def to_torch(net: Layer, params: Any, *, module: bool = True):
    """A PyTorch module (``module=False``: its state dict, numpy arrays) with the weights of
    ``params`` of ``net``, an rnn_jax network of the shapes PyTorch holds (as
    :func:`from_torch` and :func:`network` build)."""
    spec, _ = _read(net)
    per_layer = [params] if spec.num_layers == 1 else list(params)
    sd = {}
    for k, p in enumerate(per_layer):
        for suffix, q in zip(("", "_reverse"), p if spec.bidirectional else (p,)):
            names = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih",
                     "b_hh": "bias_hh", "w_hr": "weight_hr"}
            for field, name in names.items():
                value = getattr(q, field, None)
                if value is not None:
                    sd[f"{name}_l{k}{suffix}"] = np.asarray(value)
    if not module:
        return sd
    import torch
    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}.get(spec.mode, torch.nn.RNN)
    kw = dict(num_layers=spec.num_layers, bidirectional=spec.bidirectional,
              batch_first=True, dropout=spec.dropout)
    if spec.mode == "LSTM":
        kw["proj_size"] = spec.proj_size
    if spec.mode.startswith("RNN"):
        kw["nonlinearity"] = spec.mode[4:].lower()
    first = next(iter(sd.values()))
    m = cls(spec.input_size, spec.hidden_size, **kw).to(
        getattr(torch, str(first.dtype)))
    m.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()})
    return m


