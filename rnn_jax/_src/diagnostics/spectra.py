"""Spectra of the recurrent matrix and the Pascanu, Mikolov & Bengio (2013) bound.

For an Elman cell ``h_t = φ(a_t)``, ``a_t = W_ih x_t + W_hh h_{t-1} + b``, each step's Jacobian is
``diag(φ'(a_t)) W_hh``. With ``γ ≥ |φ'|`` (1 for tanh, ReLU and identity, 1/4 for the logistic
sigmoid) and ``λ1 = σ_max(W_hh)`` the largest singular value, submultiplicativity of the
spectral norm gives, at every lag,

.. math::  \\Big\\| \\frac{∂h_T}{∂h_k} \\Big\\|_2 \\le \\prod_{t=k+1}^{T}
           \\|\\mathrm{diag}(φ'(a_t))\\|_2 \\, \\|W_{hh}\\|_2 \\le (γ λ_1)^{T-k}.

So ``λ1 < 1/γ`` is *sufficient* for long-term gradients to vanish and ``λ1 > 1/γ`` is *necessary*
for them to explode. For a linear RNN the Jacobian is ``W_hh^{T-k}``, whose norm grows or decays
at the rate of the spectral radius ``ρ(W_hh)`` (Gelfand: ``‖W^n‖^{1/n} → ρ``).

References:
  Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks",
  ICML 2013 (arXiv 1211.5063), section 3.1.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src.cell import Cell

#: ``γ = sup |φ'|`` for the named activations.
DERIVATIVE_BOUNDS = {"tanh": 1.0, "relu": 1.0, "identity": 1.0, "sigmoid": 0.25}


def derivative_bound(activation: str) -> float:
    """``γ = sup |φ'(a)|``: 1 for tanh, ReLU and identity, 1/4 for the logistic sigmoid."""
    try:
        return DERIVATIVE_BOUNDS[activation]
    except KeyError:
        raise ValueError(f"no derivative bound known for activation {activation!r}; "
                         f"known: {sorted(DERIVATIVE_BOUNDS)}") from None


def spectral_radius(w: Any) -> float:
    """``ρ(W) = max |eig(W)|`` of a square matrix (computed by NumPy, on concrete values)."""
    w = np.asarray(w, dtype=np.float64)
    return float(np.max(np.abs(np.linalg.eigvals(w))))


def largest_singular_value(w: jax.Array) -> jax.Array:
    """``σ_max(W) = ‖W‖_2``."""
    return jnp.linalg.norm(w, ord=2)


def pascanu_bound(w: jax.Array, lags: Any, gamma: float = 1.0) -> jax.Array:
    """The upper bound ``(γ σ_max(W))^lag`` on ``‖∂h_T/∂h_{T-lag}‖_2`` for an Elman cell."""
    return (gamma * largest_singular_value(w)) ** jnp.asarray(lags, dtype=jnp.result_type(w))


def regime(w: jax.Array, gamma: float = 1.0) -> str:
    """What the Pascanu condition says about ``W``: ``"vanishing"`` when ``γ σ_max < 1``
    (sufficient), else ``"may explode"`` (the necessary condition for exploding holds)."""
    return "vanishing" if float(gamma * largest_singular_value(w)) < 1.0 else "may explode"


def recurrent_matrix(cell: Cell, params: Any) -> jax.Array:
    """The state-to-state weight matrix of a cell: ``W_hh`` (Elman), ``W_yh`` (Jordan), or the
    stacked per-gate ``W_hh`` of an LSTM / GRU (shape ``(G*H, P)``; use :func:`gate_blocks`)."""
    if cell.name == "jordan":
        return params.w_yh
    return params.w_hh


def gate_blocks(cell: Cell, params: Any) -> dict:
    """The square recurrent block of each gate, ``{"i": W_hi, ...}`` (LSTM ``i f g o``, GRU
    ``r z n``); ``{"h": W_hh}`` for an Elman cell."""
    from rnn_jax._src.params import GRU_GATES, LSTM_GATES

    gates = {"lstm": LSTM_GATES, "gru": GRU_GATES}.get(cell.name, ("h",))
    w = recurrent_matrix(cell, params)
    rows = w.shape[0] // len(gates)
    return {g: w[k * rows:(k + 1) * rows] for k, g in enumerate(gates)}


def scale_to_spectral_radius(w: jax.Array, rho: float) -> jax.Array:
    """``W`` rescaled so that ``ρ(W) = rho``."""
    return w * (rho / spectral_radius(w))


def scale_to_singular_value(w: jax.Array, s: float) -> jax.Array:
    """``W`` rescaled so that ``σ_max(W) = s``."""
    return w * (s / largest_singular_value(w))
