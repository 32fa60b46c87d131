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


def function(act: Activation) -> Callable[[jax.Array], jax.Array]:
    """The activation recorded in ``cell.options``: a name of :data:`ACTIVATIONS` or a callable."""
    return ACTIVATIONS[act] if isinstance(act, str) else act


def derivative(act: Activation) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """``vjp(a, s, g) = g ⊙ φ'(a)`` with ``s = φ(a)``, written out for named activations.

    tanh: ``1 - s²``; sigmoid: ``s (1 - s)``; relu: ``[a > 0]`` (0 at 0, as ``jax.nn.relu``);
    identity: 1. A custom (elementwise) callable is differentiated with ``jax.vjp``.
    """
    if act == "tanh":
        return lambda a, s, g: g * (1 - s * s)
    if act == "sigmoid":
        return lambda a, s, g: g * (s * (1 - s))
    if act == "relu":
        return lambda a, s, g: jnp.where(a > 0, g, jnp.zeros_like(g))
    if act in ("identity", "linear"):
        return lambda a, s, g: g
    if isinstance(act, str):
        raise ValueError(f"no derivative for activation {act!r}")
    return lambda a, s, g: jax.vjp(act, a)[1](g)[0]
