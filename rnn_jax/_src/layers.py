"""Runnable layers and the combinators that build deep and bidirectional networks.

A layer is ``Layer(init, apply, input_size, output_size)`` in the spirit of ``stax``:
``init(key) -> params`` and ``apply(params, xs, *, lengths=None, initial_carry=None,
time_major=False, key=None, grad=None) -> (final_carry, ys)``. Combinators take cells or layers
and return layers, so they nest: ``stacked([bidirectional(lstm(I, H)), lstm(2 * H, H)])``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from rnn_jax._src import validate as v
from rnn_jax._src.cell import Cell, check_size, linear
from rnn_jax._src.runner import run


class Layer(NamedTuple):
    """A runnable sequence layer (see module doc)."""

    init: Callable[[jax.Array], Any]
    apply: Callable[..., tuple[Any, jax.Array]]
    input_size: int
    output_size: int


def _time_axis(time_major: bool) -> int:
    return 0 if time_major else -2


def _mask_outputs(ys, lengths, time_major):
    """Zeros outputs past each sequence's end."""
    if lengths is None:
        return ys
    T = ys.shape[_time_axis(time_major)]
    valid = v.valid_mask(lengths, T)  # (T, *batch)
    if not time_major:
        valid = jnp.moveaxis(valid, 0, -1)
    return jnp.where(valid[..., None], ys, jnp.zeros((), ys.dtype))


def layer(cell: Cell, *, reverse: bool = False, unroll: Optional[int] = None) -> Layer:
    """Wraps a cell as a layer that runs it over the whole sequence with :func:`rnn_jax.run`
    (``unroll``: as there; None picks the backend's default)."""
    v.check_cell(cell)

    def apply(params, xs, *, lengths=None, initial_carry=None, time_major=False, key=None,
              grad=None):
        del key  # a plain cell uses no randomness
        return run(cell, params, xs, initial_carry, lengths=lengths, reverse=reverse,
                   time_major=time_major, unroll=unroll, grad=grad)

    return Layer(cell.init, apply, cell.input_size, cell.output_size)


def as_layer(x: Union[Cell, Layer], argname: str) -> Layer:
    if isinstance(x, Layer):
        return x
    if isinstance(x, Cell):
        return layer(x)
    raise TypeError(f"{argname} must be a Cell or a Layer, got {type(x).__name__}")


MERGES = ("concat", "sum", "mean", "none")


def bidirectional(forward: Union[Cell, Layer], backward: Union[Cell, Layer, None] = None, *,
                  merge: str = "concat") -> Layer:
    """One cell reads each sequence forwards, another reads its valid prefix backwards.

    Schuster & Paliwal 1997. Params are ``(forward_params, backward_params)``; the final carry is
    ``(forward_carry, backward_carry)`` (the backward carry is the state after reading ``t = 0``).

    Args:
      forward: the forward cell (or a layer, run as it is).
      backward: the backward cell; by default a second cell built like ``forward``, with its own
        parameters. A cell given here is run with padding-aware reversal.
      merge: ``"concat"`` (feature axis), ``"sum"``, ``"mean"`` or ``"none"`` (return the pair).
    """
    v.check_choice(merge, MERGES, "merge")
    fwd = as_layer(forward, "forward")
    bwd_src = forward if backward is None else backward
    if isinstance(bwd_src, Cell):
        bwd = layer(bwd_src, reverse=True)
    elif isinstance(bwd_src, Layer):
        bwd = bwd_src
    else:
        raise TypeError(f"backward must be a Cell or a Layer, got {type(bwd_src).__name__}")
    if fwd.input_size != bwd.input_size:
        raise ValueError(f"forward input_size {fwd.input_size} != backward input_size {bwd.input_size}")
    if merge in ("sum", "mean") and fwd.output_size != bwd.output_size:
        raise ValueError(f"merge={merge!r} needs equal output sizes, got {fwd.output_size} "
                         f"and {bwd.output_size}")

    def init(key):
        kf, kb = jax.random.split(key)
        return (fwd.init(kf), bwd.init(kb))

    def apply(params, xs, *, lengths=None, initial_carry=None, time_major=False, key=None,
              grad=None):
        cf, cb = (None, None) if initial_carry is None else initial_carry
        kf, kb = (None, None) if key is None else jax.random.split(key)
        carry_f, y_f = fwd.apply(params[0], xs, lengths=lengths, initial_carry=cf,
                                 time_major=time_major, key=kf, grad=grad)
        carry_b, y_b = bwd.apply(params[1], xs, lengths=lengths, initial_carry=cb,
                                 time_major=time_major, key=kb, grad=grad)
        if merge == "concat":
            ys = jnp.concatenate([y_f, y_b], axis=-1)
        elif merge == "sum":
            ys = y_f + y_b
        elif merge == "mean":
            ys = 0.5 * (y_f + y_b)
        else:
            ys = (y_f, y_b)
        return (carry_f, carry_b), ys

    out = fwd.output_size + bwd.output_size if merge == "concat" else fwd.output_size
    return Layer(init, apply, fwd.input_size, out)


def stacked(layers: Sequence[Union[Cell, Layer]], *, dropout: float = 0.0,
            residual: bool = False) -> Layer:
    """A deep RNN: the output sequence of each layer is the input sequence of the next.

    Args:
      layers: cells or layers; the output size of each must equal the input size of the next.
      dropout: rate of dropout applied to the outputs of every layer but the last (as
        ``torch.nn.LSTM(dropout=...)``); active only when ``apply`` gets a ``key``.
      residual: add each layer's input to its output, for every layer after the first
        (Wu et al. 2016, GNMT); those layers need equal input and output sizes.

    Params and final carries are tuples with one entry per layer.
    """
    if isinstance(layers, (Cell, Layer)) or len(layers) == 0:
        raise ValueError("layers must be a non-empty sequence of cells or layers")
    ls = [as_layer(x, f"layers[{i}]") for i, x in enumerate(layers)]
    if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}")
    for i in range(1, len(ls)):
        if ls[i].input_size != ls[i - 1].output_size:
            raise ValueError(f"layers[{i}] has input_size {ls[i].input_size} but layers[{i - 1}] "
                             f"has output_size {ls[i - 1].output_size}")
        if residual and ls[i].input_size != ls[i].output_size:
            raise ValueError(f"residual=True needs layers[{i}] input_size == output_size, got "
                             f"{ls[i].input_size} and {ls[i].output_size}")

    def init(key):
        return tuple(l.init(k) for l, k in zip(ls, jax.random.split(key, len(ls))))

    def apply(params, xs, *, lengths=None, initial_carry=None, time_major=False, key=None,
              grad=None):
        if len(params) != len(ls):
            raise ValueError(f"params has {len(params)} entries for {len(ls)} layers")
        carries0 = (None,) * len(ls) if initial_carry is None else initial_carry
        keys = [None] * len(ls) if key is None else list(jax.random.split(key, 2 * len(ls)))
        carries, h = [], xs
        for i, (l, p) in enumerate(zip(ls, params)):
            carry, y = l.apply(p, h, lengths=lengths, initial_carry=carries0[i],
                               time_major=time_major, key=keys[i], grad=grad)
            if residual and i > 0:
                y = y + _mask_outputs(h, lengths, time_major)
            if dropout > 0.0 and key is not None and i < len(ls) - 1:
                keep = jax.random.bernoulli(keys[len(ls) + i], 1.0 - dropout, y.shape)
                y = jnp.where(keep, y / (1.0 - dropout), jnp.zeros((), y.dtype))
            carries.append(carry)
            h = y
        return tuple(carries), h

    return Layer(init, apply, ls[0].input_size, ls[-1].output_size)


class DenseParams(NamedTuple):
    w: jax.Array  # (O, I)
    b: jax.Array  # (O,)


class Dense(NamedTuple):
    """An affine readout ``y = W x + b`` applied to the last axis (``o_t = V h_t + c``)."""

    init: Callable[[jax.Array], DenseParams]
    apply: Callable[[DenseParams, jax.Array], jax.Array]
    input_size: int
    output_size: int


def dense(input_size: int, output_size: int, *, w_init=jax.nn.initializers.glorot_uniform(),
          dtype: Any = jnp.float32) -> Dense:
    """An affine readout layer, weights ``(output_size, input_size)`` as ``torch.nn.Linear``."""
    check_size(input_size, "input_size")
    check_size(output_size, "output_size")

    def init(key):
        return DenseParams(w_init(key, (output_size, input_size), dtype),
                           jnp.zeros((output_size,), dtype))

    def apply(params, x):
        if x.shape[-1] != input_size:
            raise ValueError(f"x has feature size {x.shape[-1]} (shape {x.shape}) but the dense "
                             f"layer's input_size is {input_size}")
        return linear(x, params.w) + params.b

    return Dense(init, apply, input_size, output_size)
