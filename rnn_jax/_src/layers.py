"""Runnable layers and the combinators that build deep and bidirectional networks.

A layer is ``Layer(init, apply, input_size, output_size)`` in the spirit of ``stax``:
``init(key) -> params`` and ``apply(params, xs, *, lengths=None, initial_carry=None,
time_major=False, key=None, grad=None) -> (final_carry, ys)``. Combinators take cells or layers
and return layers, so they nest: ``stacked([bidirectional(lstm(I, H)), lstm(2 * H, H)])``.

``Layer.structure`` says how a layer was built, for tools that read a network rather than run
it (the weight converters of :mod:`rnn_jax.interop`): ``("layer", cell, reverse)``,
``("bidirectional", forward structure, backward structure, merge)``, ``("stacked", (structure,
...), dropout, residual)``, or None for a layer made by hand.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src import validate as v
from rnn_jax._src.cell import Cell, check_size
from rnn_jax._src.runner import run


class Layer(NamedTuple):
    """A runnable sequence layer (see module doc)."""

    init: Callable[[jax.Array], Any]
    apply: Callable[..., tuple[Any, jax.Array]]
    input_size: int
    output_size: int
    structure: Any = None


def _check_bool(value: Any, argname: str) -> bool:
    """``value`` itself if it is a bool; TypeError for truthy stand-ins such as ``"no"`` or 1."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argname} must be a bool, got {value!r}")
    return bool(value)


def _is_plain_sequence(x: Any) -> bool:
    """A tuple or list that is not a NamedTuple (a cell's params or carry, e.g. ``LSTMCarry``)."""
    return isinstance(x, (tuple, list)) and not hasattr(x, "_fields")


def _describe(x: Any) -> str:
    """Short description of a params/carry argument for error messages."""
    if _is_plain_sequence(x):
        return f"a {type(x).__name__} of length {len(x)}"
    return f"a {type(x).__name__}"


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
    (``unroll``: as there; None picks the backend's default; ``reverse``: read each valid
    prefix backwards)."""
    v.check_cell(cell)
    _check_bool(reverse, "reverse")

    def apply(params, xs, *, lengths=None, initial_carry=None, time_major=False, key=None,
              grad=None):
        del key  # a plain cell uses no randomness
        _check_bool(time_major, "time_major")
        return run(cell, params, xs, initial_carry, lengths=lengths, reverse=reverse,
                   time_major=time_major, unroll=unroll, grad=grad)

    return Layer(cell.init, apply, cell.input_size, cell.output_size,
                 ("layer", cell, reverse))


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
        _check_bool(time_major, "time_major")
        if not (_is_plain_sequence(params) and len(params) == 2):
            raise ValueError(f"params of a bidirectional layer must be a pair (forward_params, "
                             f"backward_params), got {_describe(params)}")
        if initial_carry is not None and not (_is_plain_sequence(initial_carry)
                                              and len(initial_carry) == 2):
            raise ValueError(f"initial_carry of a bidirectional layer must be None or a pair "
                             f"(forward_carry, backward_carry), got {_describe(initial_carry)}")
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
    return Layer(init, apply, fwd.input_size, out,
                 ("bidirectional", fwd.structure, bwd.structure, merge))


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
    if isinstance(dropout, (bool, np.bool_)) or not isinstance(dropout, numbers.Real):
        raise TypeError(f"dropout must be a rate in [0, 1) (a float), got {dropout!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}")
    dropout = float(dropout)
    _check_bool(residual, "residual")
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
        _check_bool(time_major, "time_major")
        n = len(ls)
        if not _is_plain_sequence(params):
            raise ValueError(f"params must be a tuple with one entry per layer ({n} layers), "
                             f"got {_describe(params)}")
        if len(params) != n:
            raise ValueError(f"params has {len(params)} entries for {n} layers")
        if initial_carry is not None and not _is_plain_sequence(initial_carry):
            raise ValueError(f"initial_carry must be None or a tuple with one carry per layer "
                             f"({n} layers), got {_describe(initial_carry)}")
        if initial_carry is not None and len(initial_carry) != n:
            raise ValueError(f"initial_carry must have one carry per layer (None for the "
                             f"default): {n} layers but {len(initial_carry)} carries")
        carries0 = (None,) * n if initial_carry is None else initial_carry
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

    return Layer(init, apply, ls[0].input_size, ls[-1].output_size,
                 ("stacked", tuple(l.structure for l in ls), dropout, residual))


class DenseParams(NamedTuple):
    w: jax.Array  # (O, I)
    b: jax.Array  # (O,)


class Dense(NamedTuple):
    """An affine readout ``y = W x + b`` applied to the last axis (``o_t = V h_t + c``):
    ``apply(params, x)`` maps ``(..., input_size)`` to ``(..., output_size)``."""

    init: Callable[[jax.Array], DenseParams]
    apply: Callable[[DenseParams, jax.Array], jax.Array]
    input_size: int
    output_size: int


def dense(input_size: int, output_size: int, *, w_init=jax.nn.initializers.glorot_uniform(),
          dtype: Any = jnp.float32) -> Dense:
    """An affine readout layer ``y = x Wᵀ + b``, weights ``W`` of shape
    ``(output_size, input_size)`` and bias ``(output_size,)`` as ``torch.nn.Linear``; ``x`` may
    have any leading dims."""
    check_size(input_size, "input_size")
    check_size(output_size, "output_size")

    def init(key):
        return DenseParams(w_init(key, (output_size, input_size), dtype),
                           jnp.zeros((output_size,), dtype))

    def apply(params, x):
        x = jnp.asarray(x)
        if x.ndim == 0 or x.shape[-1] != input_size:
            raise ValueError(f"x must have shape (..., {input_size}) (the dense layer's "
                             f"input_size), got shape {x.shape}")
        # Contracts the last axis of x with the ``in`` axis of w directly (no transposed copy).
        return jnp.tensordot(x, params.w, axes=((x.ndim - 1,), (1,))) + params.b

    return Dense(init, apply, input_size, output_size)
