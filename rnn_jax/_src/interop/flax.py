"""Flax's recurrent cells (linen and nnx) in and out of rnn_jax.

Flax stores each gate's kernel apart, ``(in, out)``, where rnn_jax (PyTorch's layout) stacks
the gates ``(out, in)``; the conversion transposes and stacks, in rnn_jax's gate order:

* ``OptimizedLSTMCell`` and ``LSTMCell`` (same params): ``i, f, g, o`` from ``ii/if/ig/io``
  (input kernels, no bias) and ``hi/hf/hg/ho`` (hidden kernels with the gates' one bias,
  rnn_jax's ``b_hh``; ``b_ih`` is zero). Flax's carry is ``(c, h)``, rnn_jax's
  ``LSTMCarry(h, c)``: :func:`rnn_jax.interop.carry_from_flax`.
* ``GRUCell``: ``r, z, n`` from ``ir/iz/in`` (kernels and biases) and ``hr/hz`` (no bias) and
  ``hn`` (kernel and bias, inside the reset as in rnn_jax's ``reset="after"``).
* ``SimpleCell``: ``i`` (kernel, bias), ``h`` (kernel).

Flax has one bias where rnn_jax has two (LSTM; the GRU's r and z gates):
:func:`rnn_jax.interop.to_flax` adds them. So flax → rnn_jax → flax is bit exact, and rnn_jax →
flax gives the same outputs with those biases summed (exact to float rounding).
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

import rnn_jax
from rnn_jax._src.cell import Cell
from rnn_jax._src.params import ElmanParams, GRUParams, LSTMCarry, LSTMParams

KINDS = ("OptimizedLSTMCell", "LSTMCell", "GRUCell", "SimpleCell")
_LSTM = ("i", "f", "g", "o")
_GRU = ("r", "z", "n")


def _kind(cell_or_kind: Any) -> str:
    kind = cell_or_kind if isinstance(cell_or_kind, str) else type(cell_or_kind).__name__
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not one of flax's {list(KINDS)}")
    return kind


def from_flax(flax_cell: Any, params: dict) -> tuple[Cell, Any]:
    """``(cell, params)`` of rnn_jax computing what the flax cell (an instance, or its class
    name) computes with ``params`` (its ``variables["params"]``, or an ``nn.RNN``'s
    ``["cell"]``)."""
    kind = _kind(flax_cell)
    p = params.get("params", params)
    p = p.get("cell", p)
    if kind in ("OptimizedLSTMCell", "LSTMCell"):
        I, H = p["ii"]["kernel"].shape
        w_ih = jnp.concatenate([p[f"i{g}"]["kernel"].T for g in _LSTM])
        w_hh = jnp.concatenate([p[f"h{g}"]["kernel"].T for g in _LSTM])
        b_hh = jnp.concatenate([p[f"h{g}"]["bias"] for g in _LSTM])
        return rnn_jax.lstm(I, H, dtype=w_ih.dtype), LSTMParams(w_ih, w_hh, jnp.zeros_like(b_hh),
                                                                b_hh)
    if kind == "GRUCell":
        I, H = p["ir"]["kernel"].shape
        w_ih = jnp.concatenate([p[f"i{g}"]["kernel"].T for g in _GRU])
        w_hh = jnp.concatenate([p[f"h{g}"]["kernel"].T for g in _GRU])
        b_ih = jnp.concatenate([p[f"i{g}"]["bias"] for g in _GRU])
        zeros = jnp.zeros((H,), w_ih.dtype)
        b_hh = jnp.concatenate([zeros, zeros, p["hn"]["bias"]])
        return rnn_jax.gru(I, H, reset="after", dtype=w_ih.dtype), GRUParams(w_ih, w_hh, b_ih,
                                                                             b_hh)
    I, H = p["i"]["kernel"].shape
    w_ih = p["i"]["kernel"].T
    return rnn_jax.elman(I, H, dtype=w_ih.dtype), ElmanParams(
        w_ih, p["h"]["kernel"].T, p["i"]["bias"], jnp.zeros((H,), w_ih.dtype))


def to_flax(cell: Cell, params: Any, kind: str = "OptimizedLSTMCell") -> dict:
    """The params dict of flax's ``kind`` cell for rnn_jax ``cell``'s ``params`` (biases that
    flax holds once are summed)."""
    kind = _kind(kind)
    want = {"OptimizedLSTMCell": "lstm", "LSTMCell": "lstm", "GRUCell": "gru",
            "SimpleCell": "elman"}[kind]
    opts = dict(cell.options)
    plain = {"lstm": not opts.get("peephole") and not opts.get("proj_size") and all(
                 opts.get(k) == v for k, v in (("gate_activation", "sigmoid"),
                                               ("cell_activation", "tanh"),
                                               ("output_activation", "tanh"))),
             "gru": opts.get("reset") == "after", "elman": opts.get("activation") == "tanh"}
    if cell.name != want or not plain.get(want, False):
        raise ValueError(f"flax's {kind} has no place for rnn_jax's {cell.name} with {opts}")
    H = cell.hidden_size
    split = lambda a: [a[k * H:(k + 1) * H] for k in range(a.shape[0] // H)]   # noqa: E731
    if want == "lstm":
        out = {}
        for g, wi, wh, bi, bh in zip(_LSTM, split(params.w_ih), split(params.w_hh),
                                     split(params.b_ih), split(params.b_hh)):
            out[f"i{g}"] = {"kernel": wi.T}
            out[f"h{g}"] = {"kernel": wh.T, "bias": bi + bh}
        return out
    if want == "gru":
        wi, wh, bi, bh = (split(a) for a in (params.w_ih, params.w_hh, params.b_ih,
                                             params.b_hh))
        return {"ir": {"kernel": wi[0].T, "bias": bi[0] + bh[0]},
                "iz": {"kernel": wi[1].T, "bias": bi[1] + bh[1]},
                "in": {"kernel": wi[2].T, "bias": bi[2]},
                "hr": {"kernel": wh[0].T}, "hz": {"kernel": wh[1].T},
                "hn": {"kernel": wh[2].T, "bias": bh[2]}}
    return {"i": {"kernel": params.w_ih.T, "bias": params.b_ih + params.b_hh},
            "h": {"kernel": params.w_hh.T}}


def carry_from_flax(carry: Any, kind: str = "OptimizedLSTMCell") -> Any:
    """rnn_jax's carry from flax's (an LSTM's ``(c, h)`` becomes ``LSTMCarry(h, c)``)."""
    if _kind(kind) in ("OptimizedLSTMCell", "LSTMCell"):
        c, h = carry
        return LSTMCarry(h, c)
    return carry


def carry_to_flax(carry: Any) -> Any:
    """Flax's carry from rnn_jax's (``LSTMCarry(h, c)`` becomes ``(c, h)``)."""
    return (carry.c, carry.h) if isinstance(carry, LSTMCarry) else carry


NNX_KINDS = ("OptimizedLSTMCell", "LSTMCell", "GRUCell", "SimpleCell")


def from_nnx(module: Any) -> tuple[Cell, Any]:
    """``(cell, params)`` of rnn_jax computing what a Flax nnx cell computes.

    nnx's ``LSTMCell`` stores its params as linen's (``if_`` for ``if``); its
    ``OptimizedLSTMCell``, ``GRUCell`` and ``SimpleCell`` hold two dense layers, ``dense_i``
    (with the bias) and ``dense_h`` (the LSTM's bias is there instead), gates along the
    columns in rnn_jax's order. nnx's GRU has no ``b_hn``: rnn_jax's is zero.
    """
    from flax import nnx
    kind = _kind(type(module).__name__)
    p = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    if kind == "LSTMCell":
        return from_flax(kind, {("if" if k == "if_" else k): v for k, v in p.items()})
    wi, wh = p["dense_i"]["kernel"].T, p["dense_h"]["kernel"].T
    I, H = wi.shape[1], wh.shape[1]
    zeros = jnp.zeros((wi.shape[0],), wi.dtype)
    if kind == "OptimizedLSTMCell":
        return rnn_jax.lstm(I, H, dtype=wi.dtype), LSTMParams(wi, wh, zeros,
                                                              p["dense_h"]["bias"])
    if kind == "GRUCell":
        return rnn_jax.gru(I, H, reset="after", dtype=wi.dtype), GRUParams(
            wi, wh, p["dense_i"]["bias"], zeros)
    return rnn_jax.elman(I, H, dtype=wi.dtype), ElmanParams(wi, wh, p["dense_i"]["bias"],
                                                            zeros)


def to_nnx(cell: Cell, params: Any, module: Any) -> Any:
    """``module`` (an nnx cell of the matching kind and sizes) with rnn_jax's ``params``
    written into it (in place; returned). Two biases are summed where nnx holds one; a GRU
    whose ``b_hh`` has a non-zero ``n`` part is refused (nnx's GRU has no ``b_hn``)."""
    from flax import nnx
    kind = _kind(type(module).__name__)
    if kind == "LSTMCell":
        linen = to_flax(cell, params, kind)
        new = {("if_" if k == "if" else k): v for k, v in linen.items()}
    else:
        to_flax(cell, params, kind)                     # checks that the cell fits
        H = cell.hidden_size
        if kind == "GRUCell" and bool(jnp.any(params.b_hh[2 * H:] != 0)):
            raise ValueError("nnx's GRUCell has no b_hn (the candidate's hidden bias); "
                             "this GRU's b_hh[2H:] is not zero")
        bias_i = params.b_ih + params.b_hh
        new = {"dense_i": {"kernel": params.w_ih.T}, "dense_h": {"kernel": params.w_hh.T}}
        if kind == "OptimizedLSTMCell":
            new["dense_h"]["bias"] = params.b_ih + params.b_hh
        else:
            new["dense_i"]["bias"] = bias_i
    state = nnx.state(module, nnx.Param)
    nnx.replace_by_pure_dict(state, new)
    nnx.update(module, state)
    return module
