"""GRU cell, reset gate applied after (PyTorch/cuDNN) or before (Cho et al. 2014) the matmul.

Gate order ``r, z, n`` (``torch.nn.GRU``):

.. math::
   r &= σ(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\qquad z = σ(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\\\
   n &= \\tanh(W_{in} x + b_{in} + r ⊙ (W_{hn} h + b_{hn}))   \\quad (\\text{reset="after"}) \\\\
   n &= \\tanh(W_{in} x + b_{in} + W_{hn} (r ⊙ h) + b_{hn})   \\quad (\\text{reset="before"}) \\\\
   h' &= (1 - z) ⊙ n + z ⊙ h

Cho et al. 2014, arXiv 1406.1078 (reset before); the reset-after form is cuDNN's and PyTorch's
(Keras ``reset_after=True``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.cell import (BATCH_FIRST, FEATURES_FIRST, Cell, Options, affine,
                               check_options, check_size, features_first_capable, gate_weights,
                               linear, per_feature, split, zeros_carry)
from rnn_jax._src.params import GRUParams

RESETS = ("after", "before")

# Batches of this many sequences run the batch-first step as ``jax.vmap`` of the
# single-sequence step (Equinox's formulation), which XLA compiles to other layouts: on CPU,
# at B=16, T=100, I=128, H=256, forward 11.4 against 14.3 ms and autodiff forward+backward
# 29.6 against 32.3 ms (same process; 4.1 against 5.2 and 14.0 against 15.2 ms at H=128).
# From B=32 autodiff through it was slower (68 against 65 ms), and below 16 the GRU's default
# gradient is ManualBPTT, whose saved pre-activations are computed for the whole batch.
PER_SEQUENCE_BATCHES = range(16, 32)


def per_sequence(h: jax.Array) -> bool:
    """Whether a batch-first GRU step on the carry ``h`` runs per sequence, vmapped."""
    return h.ndim == 2 and h.shape[0] in PER_SEQUENCE_BATCHES


def preactivations(params: GRUParams, h: jax.Array, xp: jax.Array, reset: str,
                   fa: int = BATCH_FIRST) -> tuple[jax.Array, ...]:
    """The parts of a GRU step that involve a matmul with the carry.

    ``reset="after"``: ``(a_r, a_z, x_n, W_hn h)``; ``"before"``: ``(a_r, a_z, a_n)`` with
    ``a_n = x_n + W_hn (r ⊙ h)``; ``a_r = x_r + W_hr h``, ``a_z = x_z + W_hz h``. Shared by
    the cell's step and its hand-written backward (which saves them), so that XLA computes the
    matmuls once.
    """
    H = params.w_hh.shape[-1]
    x_r, x_z, x_n = split(xp, 3, fa)
    if reset == "after":
        h_r, h_z, h_n = split(linear(h, params.w_hh, fa), 3, fa)
        return x_r + h_r, x_z + h_z, x_n, h_n
    h_r, h_z = split(linear(h, params.w_hh[:2 * H], fa), 2, fa)
    a_r = x_r + h_r
    return a_r, x_z + h_z, x_n + linear(jax.nn.sigmoid(a_r) * h, params.w_hh[2 * H:], fa)


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

    def init(key: jax.Array) -> GRUParams:
        return GRUParams(*gate_weights(key, 3, H, input_size, H,
                                       w_ih_init, w_hh_init, bias_init, dtype))

    @features_first_capable
    def project(params: GRUParams, x: jax.Array, fa: int = BATCH_FIRST) -> jax.Array:
        # r and z see b_ih + b_hh; n sees b_hh inside the reset product when reset="after".
        b = params.b_ih + params.b_hh
        if reset == "after":
            b = jnp.concatenate([b[:2 * H], params.b_ih[2 * H:]])
        return affine(x, params.w_ih, b, fa)

    @features_first_capable
    def recur(params: GRUParams, h: jax.Array, xp: jax.Array, fa: int = BATCH_FIRST):
        if fa == BATCH_FIRST and per_sequence(h):  # the same step on (H,) vectors, vmapped
            return jax.vmap(lambda h1, x1: recur(params, h1, x1, FEATURES_FIRST))(h, xp)
        pre = preactivations(params, h, xp, reset, fa)
        r, z = jax.nn.sigmoid(pre[0]), jax.nn.sigmoid(pre[1])
        if reset == "after":
            x_n, h_n = pre[2:]
            n = jnp.tanh(x_n + r * (h_n + per_feature(params.b_hh[2 * H:], h_n, fa)))
        else:
            n = jnp.tanh(pre[2])
        h = (1 - z) * n + z * h
        return h, h

    return Cell("gru", input_size, H, H, Options(reset=reset), init, zeros_carry(H), project, recur)
