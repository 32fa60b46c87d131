"""Weight initialisers, all with the ``jax.nn.initializers`` signature ``init(key, shape, dtype)``.

Cells apply an initialiser to each gate's ``(H, in)`` block separately (see
:func:`per_gate`), so ``orthogonal()`` gives every gate its own orthogonal recurrent matrix.

* :func:`orthogonal`, :func:`glorot_uniform`, :func:`normal`, :func:`zeros` are
  ``jax.nn.initializers``.
* :func:`identity` — ``W_hh = scale * I`` (IRNN; Le, Jaitly & Hinton 2015, arXiv 1504.00941).
* :func:`pytorch_uniform` — ``U(-1/sqrt(H), 1/sqrt(H))``, PyTorch's default for every RNN tensor.
* :func:`random_rotation` — ``W = expm(A)`` with ``A`` block-diagonal skew-symmetric made of
  2x2 blocks ``[[0, θ], [-θ, 0]]``, ``θ ~ U[-π, π]`` (Henaff, Szlam & LeCun 2016,
  arXiv 1602.06662). The exponential of such a block is the rotation by ``θ``, so the matrix is
  built in closed form; its eigenvalues are ``exp(±iθ)``, all of modulus 1.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]

orthogonal = jax.nn.initializers.orthogonal
glorot_uniform = jax.nn.initializers.glorot_uniform
normal = jax.nn.initializers.normal
zeros = jax.nn.initializers.zeros


def _square(shape, name: str) -> int:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} initialiser needs a square matrix shape, got {tuple(shape)}")
    return shape[0]


def identity(scale: float = 1.0) -> Initializer:
    """``scale * I`` for a square matrix."""

    def init(key, shape, dtype=jnp.float32):
        del key
        return scale * jnp.eye(_square(shape, "identity"), dtype=dtype)

    return init


def pytorch_uniform(hidden_size: int) -> Initializer:
    """``U(-k, k)`` with ``k = 1/sqrt(hidden_size)``, as ``torch.nn.RNN/LSTM/GRU``."""
    bound = 1.0 / math.sqrt(hidden_size)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def random_rotation() -> Initializer:
    """A random orthogonal matrix ``expm(A)``, ``A`` block-diagonal skew-symmetric (see module doc)."""

    def init(key, shape, dtype=jnp.float32):
        n = _square(shape, "random_rotation")
        theta = jax.random.uniform(key, (n // 2,), dtype, -math.pi, math.pi)
        c, s = jnp.cos(theta), jnp.sin(theta)
        idx = jnp.arange(n // 2) * 2
        w = jnp.eye(n, dtype=dtype)
        w = w.at[idx, idx].set(c).at[idx + 1, idx + 1].set(c)
        return w.at[idx, idx + 1].set(s).at[idx + 1, idx].set(-s)

    return init


def per_gate(init: Initializer, key: jax.Array, gates: int, shape, dtype) -> jax.Array:
    """Initialises a ``(gates*H, in)`` matrix one ``(H, in)`` block at a time."""
    rows, cols = shape
    keys = jax.random.split(key, gates)
    return jnp.concatenate([init(k, (rows // gates, cols), dtype) for k in keys], axis=0)
