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

import math
from typing import Any

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.cell import (BATCH_FIRST, FEATURES_FIRST, Cell, Options, affine,
                               check_options, check_size, features_first_capable, gate_weights,
                               linear, per_feature, split, with_invariants, zeros_carry)
from rnn_jax._src.params import GRUParams
from rnn_jax._src.tuning import backend

RESETS = ("after", "before")

# Batches of at most this many sequences (batch first) multiply the carry by ``W_hhᵀ``
# transposed once before the scan (:func:`invariants`) instead of transposing it inside every
# step (:func:`rnn_jax._src.cell.linear`) or running the step per sequence. CPU, XLA 0.10, same
# process, ManualBPTT forward+backward: B=8, T=2000, I=64, H=128 163-171 against 191 ms; B=16,
# T=100, I=128, H=256 26.5 against 28.3 (with the projection hoisted); forward at B=8 55 against
# 74 ms. From 32 sequences on it gained nothing under autodiff (B=64, T=500, I=H=128: 283
# against 264 ms), so larger batches keep the other forms.
INVARIANTS_UP_TO = 16

# Batches of this many sequences run the batch-first step as ``jax.vmap`` of the
# single-sequence step (Equinox's formulation), which XLA compiles to other layouts: on CPU,
# at B=16, T=100, I=128, H=256, forward 11.4 against 14.3 ms and autodiff forward+backward
# 29.6 against 32.3 ms (same process; 4.1 against 5.2 and 14.0 against 15.2 ms at H=128).
# From B=32 autodiff through it was slower (68 against 65 ms); up to 16 sequences the step
# multiplies by a pre-transposed ``W_hh`` instead (:data:`INVARIANTS_UP_TO`).
PER_SEQUENCE_BATCHES = range(INVARIANTS_UP_TO + 1, 32)


def per_sequence(h: jax.Array) -> bool:
    """Whether a batch-first GRU step on the carry ``h`` runs per sequence, vmapped."""
    return h.ndim == 2 and h.shape[0] in PER_SEQUENCE_BATCHES


def preactivations(params: GRUParams, h: jax.Array, xp: jax.Array, reset: str,
                   fa: int = BATCH_FIRST, inv: Any = None) -> tuple[jax.Array, ...]:
    """The parts of a GRU step that involve a matmul with the carry.

    ``reset="after"``: ``(a_r, a_z, x_n, W_hn h)``; ``"before"``: ``(a_r, a_z, a_n)`` with
    ``a_n = x_n + W_hn (r ⊙ h)``; ``a_r = x_r + W_hr h``, ``a_z = x_z + W_hz h``. Shared by
    the cell's step and its hand-written backward (which saves them), so that XLA computes the
    matmuls once. ``inv``: :func:`invariants` (batch first), the transposed weights.
    """
    H = params.w_hh.shape[-1]
    x_r, x_z, x_n = split(xp, 3, fa)
    if inv is not None:
        mm = [lambda v, w=w: product(v, w) for w in inv]
    else:
        blocks = [params.w_hh] if reset == "after" else [params.w_hh[:2 * H], params.w_hh[2 * H:]]
        mm = [lambda v, w=w: linear(v, w, fa) for w in blocks]
    if reset == "after":
        h_r, h_z, h_n = split(mm[0](h), 3, fa)
        return x_r + h_r, x_z + h_z, x_n, h_n
    h_r, h_z = split(mm[0](h), 2, fa)
    a_r = x_r + h_r
    return a_r, x_z + h_z, x_n + mm[1](jax.nn.sigmoid(a_r) * h)


# With ``h`` of at most this many features, ``h @ W_hhᵀ`` is computed from a materialised
# ``hᵀ`` (see :func:`product`). CPU, a scan of the product alone, T=100: at B=16, H=256 4.9
# against 6.8 ms (B=8: 3.2 against 4.1); at H=512 24 against 20 ms.
TRANSPOSED_CARRY_UP_TO = 256


def product(h: jax.Array, w_t: jax.Array) -> jax.Array:
    """``h @ w_t`` for a batch-first carry ``h`` and a weight transposed before the scan.

    For a ``(B, H)`` carry with ``H <= TRANSPOSED_CARRY_UP_TO`` the product is taken as
    ``(hᵀ)ᵀ w_t`` with ``hᵀ`` kept (an optimization barrier stops XLA from folding the
    transpose back into the product): XLA CPU then hands it to a different matmul routine,
    measured faster there at small batches (:data:`TRANSPOSED_CARRY_UP_TO`); CPU only, as
    the measurement is. Same values.
    """
    h = h.astype(jnp.result_type(h, w_t))
    if h.ndim == 2 and h.shape[-1] <= TRANSPOSED_CARRY_UP_TO and backend() == "cpu":
        h_t = jax.lax.optimization_barrier(h.T)
        return jax.lax.dot_general(h_t, w_t.astype(h.dtype), (((0,), (0,)), ((), ())))
    return jnp.matmul(h, w_t)


def invariants(params: GRUParams, batch_shape: tuple, reset: str):
    """The GRU step's loop invariants (:func:`rnn_jax._src.cell.with_invariants`) for a
    batch-first run of at most :data:`INVARIANTS_UP_TO` sequences: ``W_hh`` transposed
    (``reset="after"``), or its ``r, z`` and ``n`` blocks transposed apart (``"before"``);
    None for larger batches."""
    if math.prod(batch_shape) > INVARIANTS_UP_TO:
        return None
    H = params.w_hh.shape[-1]
    w = params.w_hh
    return (w.T,) if reset == "after" else (w[:2 * H].T, w[2 * H:].T)


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
    @with_invariants(lambda params, batch_shape: invariants(params, batch_shape, reset))
    def recur(params: GRUParams, h: jax.Array, xp: jax.Array, fa: int = BATCH_FIRST,
              inv: Any = None):
        if fa == BATCH_FIRST and inv is None and per_sequence(h):  # per sequence, vmapped
            return jax.vmap(lambda h1, x1: recur(params, h1, x1, FEATURES_FIRST))(h, xp)
        pre = preactivations(params, h, xp, reset, fa, inv)
        r, z = jax.nn.sigmoid(pre[0]), jax.nn.sigmoid(pre[1])
        if reset == "after":
            x_n, h_n = pre[2:]
            n = jnp.tanh(x_n + r * (h_n + per_feature(params.b_hh[2 * H:], h_n, fa)))
        else:
            n = jnp.tanh(pre[2])
        h = (1 - z) * n + z * h
        return h, h

    return Cell("gru", input_size, H, H, Options(reset=reset), init, zeros_carry(H), project, recur)
