"""GRU cell, reset gate applied after (PyTorch/cuDNN) or before (Cho et al. 2014) the matmul,
with its hand-written backward step.

Gate order ``r, z, n`` (``torch.nn.GRU``):

.. math::
   r &= σ(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\qquad z = σ(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\\\
   n &= \\tanh(W_{in} x + b_{in} + r ⊙ (W_{hn} h + b_{hn}))   \\quad (\\text{reset="after"}) \\\\
   n &= \\tanh(W_{in} x + b_{in} + W_{hn} (r ⊙ h) + b_{hn})   \\quad (\\text{reset="before"}) \\\\
   h' &= (1 - z) ⊙ n + z ⊙ h

Cho et al. 2014, arXiv 1406.1078 (reset before); the reset-after form is cuDNN's and PyTorch's
(Keras ``reset_after=True``).

Backward, with ``\\bar h = δh' + ∂L/∂y`` and ``u = W_hn h + b_hn`` (after):

.. math::
   δa_n = (1 - n^2) ⊙ (1 - z) ⊙ \\bar h, \\quad δa_z = z (1 - z) ⊙ (h - n) ⊙ \\bar h \\\\
   \\text{after:}\\ δu = r ⊙ δa_n, \\ δa_r = r(1-r) ⊙ u ⊙ δa_n, \\
   δh = z ⊙ \\bar h + W_{hh}^⊤ [δa_r, δa_z, δu] \\\\
   \\text{before:}\\ δ(rh) = W_{hn}^⊤ δa_n, \\ δa_r = r(1-r) ⊙ h ⊙ δ(rh), \\
   δh = z ⊙ \\bar h + r ⊙ δ(rh) + W_{hr,hz}^⊤ [δa_r, δa_z]

with ``δxp = [δa_r, δa_z, δa_n]``; summed over time ``∂W_ih = Σ δxp xᵀ``, ``∂b_ih = Σ δxp``;
after: ``∂W_hh = Σ [δa_r, δa_z, δu] hᵀ``, ``∂b_hh = Σ [δa_r, δa_z, δu]``; before:
``∂W_{hr,hz} = Σ [δa_r, δa_z] hᵀ``, ``∂W_hn = Σ δa_n (r ⊙ h)ᵀ``, ``∂b_hh = Σ δxp``. The forward
step saves its gate activations ``[r, z, n, u]`` (after) or ``[r, z, n]`` (before), so the
backward step needs no matmul but ``W_hhᵀ``'s and no sigmoid or tanh.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.cell import (Backward, Cell, Options, affine, check_options, check_size, col,
                               gate_weights, col_sum, linear, linear_t, outer_sum, zeros_carry)
from rnn_jax._src.params import GRUParams

RESETS = ("after", "before")


def gru(
    input_size: int,
    hidden_size: int,
    *,
    reset: str = "after",
    w_ih_init: inits.Initializer = inits.glorot_uniform(),
    w_hh_init: inits.Initializer = inits.orthogonal(),
    bias_init: inits.Initializer = inits.zeros,
    dtype: Any = jnp.float32,
) -> Cell:
    """A GRU cell; ``reset`` is ``"after"`` (default, PyTorch/cuDNN) or ``"before"`` (Cho 2014)."""
    check_size(input_size, "input_size")
    check_size(hidden_size, "hidden_size")
    check_options("reset", reset, RESETS)
    H = hidden_size
    after = reset == "after"

    def init(key: jax.Array) -> GRUParams:
        return GRUParams(*gate_weights(key, 3, H, input_size, H,
                                       w_ih_init, w_hh_init, bias_init, dtype))

    def project(p: GRUParams, x: jax.Array) -> jax.Array:
        # r and z see b_ih + b_hh; n sees b_hh inside the reset product when reset="after".
        b_hh = p.b_hh.at[2 * H:].set(0) if after else p.b_hh
        return affine(p.w_ih, x, p.b_ih + b_hh)

    def recur(p: GRUParams, h: jax.Array, xp: jax.Array):
        return finish(p, h, activations(p, h, xp))

    def activations(p: GRUParams, h, xp):
        x_r, x_z, x_n = jnp.split(xp, 3)
        if after:
            h_r, h_z, h_n = jnp.split(linear(p.w_hh, h), 3)
            r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
            u = h_n + col(p.b_hh[2 * H:], h_n)
            return jnp.concatenate([r, z, jnp.tanh(x_n + r * u), u])
        h_r, h_z = jnp.split(linear(p.w_hh[:2 * H], h), 2)
        r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
        return jnp.concatenate([r, z, jnp.tanh(affine(p.w_hh[2 * H:], r * h, x_n))])

    def finish(p: GRUParams, h, acts):
        z, n = acts[H:2 * H], acts[2 * H:3 * H]
        h = (1 - z) * n + z * h
        return h, h

    def step(p: GRUParams, h, acts, dh_new, dy):
        r, z, n = acts[:H], acts[H:2 * H], acts[2 * H:3 * H]
        dh_bar = dh_new + dy
        da_n = (1 - n * n) * ((1 - z) * dh_bar)
        da_z = z * (1 - z) * ((h - n) * dh_bar)
        dh = z * dh_bar
        if after:
            da_r = r * (1 - r) * (acts[3 * H:] * da_n)
            local = r * da_n                                   # δu
            dh = dh + linear_t(p.w_hh, jnp.concatenate([da_r, da_z, local]))
        else:
            drh = linear_t(p.w_hh[2 * H:], da_n)
            da_r = r * (1 - r) * (h * drh)
            dh = dh + r * drh + linear_t(p.w_hh[:2 * H], jnp.concatenate([da_r, da_z]))
            local = r * h
        return dh, jnp.concatenate([da_r, da_z, da_n]), local

    def grads(p: GRUParams, xs, h, dxp, local):
        db = col_sum(dxp)
        if after:  # local = δu: δ(W_hh h + b_hh) = [δa_r, δa_z, δu], one contraction
            d_hh = jnp.concatenate([dxp[:2 * H], local])
            w_hh, b_hh = outer_sum(d_hh, h), col_sum(d_hh)
        else:      # local = r ⊙ h
            w_hh = jnp.concatenate([outer_sum(dxp[:2 * H], h),
                                    outer_sum(dxp[2 * H:], local)])
            b_hh = db
        return GRUParams(outer_sum(dxp, xs), w_hh, db, b_hh), linear_t(p.w_ih, dxp)

    return Cell("gru", input_size, H, H, Options(reset=reset), init, zeros_carry(H), project,
                recur, Backward(activations, finish, step, grads, project, recur))
