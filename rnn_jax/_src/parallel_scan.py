"""A linear recurrence solved for all time steps at once with ``jax.lax.associative_scan``.

The recurrence, for steps ``s = 0 … T-1`` of one sequence::

    z_s = A_s z_{s-1} + b_s,        z_{-1} = z0,

with ``A_s`` an ``(n, n)`` matrix (``diagonal=False``) or the diagonal of one, an ``(n,)``
vector (``diagonal=True``), and ``b_s``, ``z_s`` vectors ``(n,)``. Each step is the affine map
``e_s(z) = A_s z + b_s``; ``z_s = (e_s ∘ … ∘ e_0)(z0)``, and the composition of affine maps is
associative::

    (A', b') ∘ (A, b) = (A' A, A' b + b')      (apply (A, b) first),

so all ``T`` prefixes are one ``associative_scan``: ``O(log T)`` depth, ``O(T n³)`` work for
full matrices (the products ``A' A``), ``O(T n)`` for diagonals. ``z0`` is folded into the first
element, ``b_0 ← A_0 z0 + b_0``, so that the ``b`` part of each prefix is ``z_s`` itself.
``reverse=True`` solves the recurrence backwards in time, ``z_s = A_s z_{s+1} + b_s`` with
``z_T = z0`` (the adjoint recurrence of backpropagation), by flipping the steps.

Blelloch 1990, "Prefix sums and their applications"; used for nonlinear RNNs by Lim et al.
2024 (DEER, arXiv 2309.12252) and Gonzalez et al. 2024 (quasi-DEER, ELK).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _apply(a: jax.Array, b: jax.Array, diagonal: bool) -> jax.Array:
    """``A b`` for stacked ``A (..., n, n)`` (or diagonals ``(..., n)``) and ``b (..., n)``."""
    return a * b if diagonal else jnp.einsum("...ij,...j->...i", a, b)


def _compose(earlier: tuple, later: tuple, diagonal: bool) -> tuple:
    """``later ∘ earlier`` of stacked affine maps ``(A, b)``."""
    a1, b1 = earlier
    a2, b2 = later
    a = a2 * a1 if diagonal else jnp.einsum("...ij,...jk->...ik", a2, a1)
    return a, _apply(a2, b1, diagonal) + b2


def linear_recurrence(a: jax.Array, b: jax.Array, z0: jax.Array, *, diagonal: bool,
                      reverse: bool = False) -> jax.Array:
    """All ``z_s`` (shape ``(T, n)``) of ``z_s = A_s z_{s-1} + b_s`` from ``z_{-1} = z0``.

    Args:
      a: ``(T, n, n)`` matrices, or ``(T, n)`` diagonals with ``diagonal=True``.
      b: ``(T, n)``.
      z0: ``(n,)``, the state before the first step (after the last with ``reverse``).
      diagonal: whether ``a`` holds diagonals.
      reverse: solve ``z_s = A_s z_{s+1} + b_s`` for ``s = T-1 … 0`` from ``z_T = z0``.
    """
    if b.shape[0] == 0:
        return b
    if reverse:
        return linear_recurrence(a[::-1], b[::-1], z0, diagonal=diagonal)[::-1]
    b = b.at[0].add(_apply(a[0], z0, diagonal))
    _, z = jax.lax.associative_scan(lambda e, l: _compose(e, l, diagonal), (a, b))
    return z
