"""Keras 3 recurrent layers' weights (numpy lists) in and out of rnn_jax.

``layer.get_weights()`` of ``keras.layers.LSTM`` is ``[kernel (I, 4H), recurrent_kernel
(H, 4H), bias (4H,)]``, gates ``i, f, c, o`` (rnn_jax's ``i, f, g, o``); ``SimpleRNN`` is
``[kernel, recurrent_kernel, bias]``; ``GRU`` stores its gates in the order ``z, r, h``
(rnn_jax: ``r, z, n``) with

* ``reset_after=True`` (Keras's default, cuDNN's form): ``bias (2, 3H)``, the input and the
  recurrent biases: rnn_jax's ``gru(reset="after")``, ``b_ih`` and ``b_hh``;
* ``reset_after=False`` (Cho et al.): one ``bias (3H,)``: rnn_jax's ``gru(reset="before")``
  with ``b_hh = 0``; :func:`rnn_jax.interop.to_keras` folds a GRU's ``b_hh`` into it where that
  is exact (the ``r`` and ``z`` parts) and refuses a non-zero ``b_hn``, which has no place there.

The LSTM's and SimpleRNN's one bias is rnn_jax's ``b_ih`` (``b_hh = 0``; ``to_keras`` sums them).
Keras must use its default activations (tanh, sigmoid gates).
"""
from __future__ import annotations

from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

import rnn_jax
from rnn_jax._src.cell import Cell
from rnn_jax._src.params import ElmanParams, GRUParams, LSTMParams

KERAS_KINDS = ("LSTM", "GRU", "SimpleRNN")


def _gates(a: np.ndarray, order: Sequence[int], H: int) -> np.ndarray:
    """``a (..., G*H)``'s gate blocks in ``order``."""
    return np.concatenate([a[..., g * H:(g + 1) * H] for g in order], -1)


def from_keras(weights: Any, kind: str = "", *, reset_after: bool = True) -> tuple[Cell, Any]:
    """``(cell, params)`` from a Keras layer (its ``get_weights()`` and kind are read) or
    its weights list with ``kind`` ``"LSTM"``, ``"GRU"`` or ``"SimpleRNN"``."""
    if hasattr(weights, "get_weights"):
        kind = type(weights).__name__
        reset_after = bool(getattr(weights, "reset_after", reset_after))
        weights = weights.get_weights()
    if kind not in KERAS_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {list(KERAS_KINDS)}")
    kernel, recurrent, bias = (np.asarray(w) for w in weights)
    I, H = kernel.shape[0], recurrent.shape[0]
    dt = kernel.dtype
    zeros = np.zeros(kernel.shape[1], dt)
    if kind == "GRU":
        order = (1, 0, 2)                                  # z, r, h -> r, z, n
        w_ih, w_hh = _gates(kernel, order, H).T, _gates(recurrent, order, H).T
        b_ih, b_hh = (bias[0], bias[1]) if reset_after else (bias, zeros)
        cell = rnn_jax.gru(I, H, reset="after" if reset_after else "before", dtype=dt)
        return cell, GRUParams(*(jnp.asarray(a) for a in (w_ih, w_hh, _gates(b_ih, order, H),
                                                           _gates(b_hh, order, H))))
    arrays = [jnp.asarray(a) for a in (kernel.T, recurrent.T, bias, zeros)]
    if kind == "LSTM":
        return rnn_jax.lstm(I, H, dtype=dt), LSTMParams(*arrays)
    return rnn_jax.elman(I, H, dtype=dt), ElmanParams(*arrays)


def to_keras(cell: Cell, params: Any) -> list[np.ndarray]:
    """The ``set_weights`` list of the Keras layer matching ``cell`` (an LSTM without
    peepholes or projection, a GRU of either reset, a tanh Elman cell)."""
    opts = dict(cell.options)
    H = cell.hidden_size
    if cell.name == "gru":
        order = (1, 0, 2)                                  # r, z, n -> z, r, h
        kernel = _gates(np.asarray(params.w_ih).T, order, H)
        recurrent = _gates(np.asarray(params.w_hh).T, order, H)
        b_ih, b_hh = np.asarray(params.b_ih), np.asarray(params.b_hh)
        if opts.get("reset") == "after":
            return [kernel, recurrent, np.stack([_gates(b_ih, order, H), _gates(b_hh, order, H)])]
        if np.any(b_hh[2 * H:] != 0):
            raise ValueError("Keras's GRU(reset_after=False) has no b_hn; this GRU's "
                             "b_hh[2H:] is not zero")
        return [kernel, recurrent, _gates(b_ih + b_hh, order, H)]
    plain = (cell.name == "lstm" and not opts.get("peephole") and not opts.get("proj_size")
             and all(opts.get(k) == v for k, v in (("gate_activation", "sigmoid"),
                                                   ("cell_activation", "tanh"),
                                                   ("output_activation", "tanh")))
             ) or (cell.name == "elman" and opts.get("activation") == "tanh")
    if not plain:
        raise ValueError(f"Keras has no layer for rnn_jax's {cell.name} with {opts}")
    return [np.asarray(params.w_ih).T, np.asarray(params.w_hh).T,
            np.asarray(params.b_ih) + np.asarray(params.b_hh)]
