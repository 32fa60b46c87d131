"""Lyapunov exponents of the driven dynamics ``h_t = F(h_{t-1}, x_t)`` along one trajectory.

With ``J_t = ∂F/∂h (h_{t-1}, x_t)`` the step Jacobians (the whole carry, flattened; as in
:mod:`rnn_jax._src.diagnostics.jacobians`), the ``k`` largest Lyapunov exponents are the growth
rates of ``k``-dimensional volumes under the products ``J_T ⋯ J_1``. The standard QR method
(Shimada & Nagashima 1979; Benettin, Galgani, Giorgilli & Strelcyn 1980) propagates an
orthonormal frame ``Q_0 ∈ R^{n×k}`` and re-orthonormalises it every step:

.. math::  J_t Q_{t-1} = Q_t R_t \\quad (\\text{thin QR}), \\qquad
           λ_i = \\frac{1}{T - d} \\sum_{t=d+1}^{T} \\log |(R_t)_{ii}|, \\quad i = 1..k,

``d`` the number of discarded (transient) steps, over which the frame still turns towards the
most expanding directions. Exponents are in natural log per time step; ``J_t Q`` is ``k``
``jax.jvp``\\s of the step, so no ``n × n`` Jacobian is formed. The exponents are the
finite-time estimates, in the order of the frame's columns (largest first once the frame has
converged). For a linear cell ``h_t = W h_{t-1} + …`` with a normal ``W`` they are
``log |λ_i(W)|``, sorted. A zero diagonal of ``R`` (e.g. all units of a ReLU cell off)
gives ``-inf``.

One sequence ``xs (T, I)``; ``jax.vmap`` for a batch.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnn_jax._src.cell import Cell
from rnn_jax._src.diagnostics.states import (
    _check_sequence,
    flat_step,
    initial_state,
    trajectory,
)


def _check_int(value: Any, argname: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argname} must be a Python int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{argname} must lie in [{low}, {high}], got {value}")
    return value


def lyapunov_exponent(cell: Cell, params: Any, xs: jax.Array, carry0: Any = None, *,
                      k: int = 1, discard: int = 0,
                      key: Optional[jax.Array] = None) -> jax.Array:
    """The ``k`` largest Lyapunov exponents of the cell driven by ``xs``, by the QR method.

    Args:
      cell, params: an rnn_jax cell and its parameters.
      xs: one input sequence, shape ``(T, I)``.
      carry0: the state at ``t = 0`` (zeros by default).
      k: how many exponents, ``1 ≤ k ≤ n`` (``n`` the size of the flattened carry).
      discard: the first ``discard`` steps (``0 ≤ discard < T``) only align the frame; the
        exponents average ``log |diag R_t|`` over the remaining ``T - discard`` steps.
      key: the random initial orthonormal frame (``jax.random.key(0)`` by default); the
        first ``j`` columns of the frame for ``k`` are those for ``j < k``.

    Returns:
      ``(k,)`` exponents (natural log per step), largest first once converged.
    """
    xs = _check_sequence(cell, xs)
    T = xs.shape[0]
    if T == 0:
        raise ValueError("xs must have at least one time step")
    carry0 = initial_state(cell, params, carry0)
    n = ravel_pytree(carry0)[0].size
    k = _check_int(k, "k", 1, n)
    discard = _check_int(discard, "discard", 0, T - 1)
    key = jax.random.key(0) if key is None else key
    states, xps = trajectory(cell, params, xs, carry0)
    f = flat_step(cell, params, carry0)
    dtype = states.dtype
    q0, _ = jnp.linalg.qr(jax.random.normal(key, (n, n), dtype)[:, :k])

    def body(q, inp):
        h, xp = inp
        jq = jax.vmap(lambda u: jax.jvp(lambda hh: f(hh, xp), (h,), (u,))[1],
                      in_axes=1, out_axes=1)(q)
        q, r = jnp.linalg.qr(jq)
        return q, jnp.log(jnp.abs(jnp.diagonal(r)))

    _, logs = jax.lax.scan(body, q0, (states[:-1], xps))      # (T, k)
    return jnp.mean(logs[discard:], axis=0)
