"""Named activations, resolved once when a cell is built."""

from __future__ import annotations

from typing import Callable, Union

import jax
import jax.numpy as jnp

Activation = Union[str, Callable[[jax.Array], jax.Array]]


def _identity(x: jax.Array) -> jax.Array:
    return x


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "identity": _identity,
    "linear": _identity,
    "sigmoid": jax.nn.sigmoid,
}


def resolve(
    activation: Activation, argname: str
) -> tuple[Activation, Callable[[jax.Array], jax.Array]]:
    """Returns ``(name, fn)`` for a name in :data:`ACTIVATIONS`, ``(fn, fn)`` for a callable.

    The first element is what a cell records in ``cell.options``: the canonical name, or the
    callable itself, so that a hand-written backward pass (``rnn_jax.ManualBPTT``) can
    differentiate a custom activation.

    Raises:
      ValueError: an unknown name; TypeError: neither a string nor a callable.
    """
    if isinstance(activation, str):
        try:
            fn = ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(
                f"{argname}={activation!r} is not a known activation; "
                f"choose one of {sorted(ACTIVATIONS)} or pass a callable"
            ) from None
        return ("identity" if activation == "linear" else activation), fn
    if callable(activation):
        return activation, activation
    raise TypeError(f"{argname} must be a string or a callable, got {type(activation).__name__}")
