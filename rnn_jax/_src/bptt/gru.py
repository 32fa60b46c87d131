"""Backward pass of the GRU cell, reset after (PyTorch/cuDNN) and before (Cho et al. 2014).

Forward (:func:`rnn_jax.gru`), gate order ``r, z, n``; ``xp = [x_r, x_z, x_n]`` holds
``W_ih x + b_ih`` plus ``b_hh`` for r and z (and for n too when ``reset="before"``):
``r = σ(x_r + W_hr h)``, ``z = σ(x_z + W_hz h)``, ``h' = (1 - z) ⊙ n + z ⊙ h`` with

* after:  ``u = W_hn h + b_hn``, ``n = tanh(x_n + r ⊙ u)``;
* before: ``n = tanh(x_n + W_hn (r ⊙ h))``.

Given ``\\bar h = δh' + ∂L/∂y`` (``y = h'``):

.. math::
   δa_n = (1 - n^2) ⊙ (1 - z) ⊙ \\bar h, \\quad δa_z = z (1 - z) ⊙ (h - n) ⊙ \\bar h \\\\
   \\text{after:}\\ δu = r ⊙ δa_n, \\ δa_r = r(1-r) ⊙ u ⊙ δa_n, \\
   δh = z ⊙ \\bar h + W_{hh}^⊤ [δa_r, δa_z, δu] \\\\
   \\text{before:}\\ δ(rh) = W_{hn}^⊤ δa_n, \\ δa_r = r(1-r) ⊙ h ⊙ δ(rh), \\
   δh = z ⊙ \\bar h + r ⊙ δ(rh) + W_{hr,hz}^⊤ [δa_r, δa_z]

with ``δxp = [δa_r, δa_z, δa_n]``. After the scan: ``∂W_ih = Σ δxp x^⊤``, ``∂b_ih = Σ δxp``;
after: ``∂W_hh = Σ [δa_r, δa_z, δu] h^⊤``, ``∂b_hh = Σ [δa_r, δa_z, δu]``; before:
``∂W_{hr,hz} = Σ [δa_r, δa_z] h^⊤``, ``∂W_hn = Σ δa_n (r ⊙ h)^⊤``, ``∂b_hh = Σ δxp``.
The forward pass saves ``[r, z, n, u]`` (after) or ``[r, z, n]`` (before) per step: forward+
backward at B=16, T=100, I=128, H=256 on CPU 25.7 against 27.7 ms with the pre-activations
saved (the backward step then recomputed a tanh and two sigmoids). ``local`` is
``[δa_r, δa_z, δu]``, the gradient of ``W_hh h + b_hh`` (after, so that ``∂W_hh``
is one contraction) or ``r ⊙ h`` (before).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnn_jax._src.bptt.common import CellBackward, input_grad, lead_sum, matmul, outer_sum
from rnn_jax._src.cell import (BATCH_FIRST, FEATURES_FIRST, Cell, features_first_capable,
                               per_feature, split)
from rnn_jax._src.cells.gru import per_sequence, preactivations
from rnn_jax._src.params import GRUParams


def backward(cell: Cell) -> CellBackward:
    """The :class:`CellBackward` of a GRU cell built with ``cell.options``."""
    reset = cell.options["reset"]
    after = reset == "after"
    H = cell.hidden_size

    @features_first_capable
    def preact(params: GRUParams, h, xp, inv=None, fa: int = BATCH_FIRST):
        """The step's gate activations, so that the backward step needs neither ``xp``, nor a
        matmul, nor a sigmoid or tanh: after ``[r, z, n, u]`` with ``u = W_hn h + b_hn``
        (4H features), before ``[r, z, n]`` (3H), along the feature axis ``fa``. Computed as
        the cell's step computes them (``cells.gru.preactivations``, with its loop invariants
        ``inv`` or vmapped per sequence), so that XLA shares them with the step."""
        def acts(h, xp, fa, inv=None):
            pre = preactivations(params, h, xp, reset, fa, inv)
            r, z = jax.nn.sigmoid(pre[0]), jax.nn.sigmoid(pre[1])
            if not after:
                return jnp.concatenate([r, z, jnp.tanh(pre[2])], axis=fa)
            u = pre[3] + per_feature(params.b_hh[2 * H:], pre[3], fa)
            return jnp.concatenate([r, z, jnp.tanh(pre[2] + r * u), u], axis=fa)

        if fa == FEATURES_FIRST or inv is not None:
            return acts(h, xp, fa, inv)
        if per_sequence(h):
            return jax.vmap(lambda h1, x1: acts(h1, x1, FEATURES_FIRST))(h, xp)
        return acts(h, xp, BATCH_FIRST)

    def finish(params: GRUParams, h, a, fa: int = BATCH_FIRST):
        """The step from its saved activations: ``h' = (1 - z) ⊙ n + z ⊙ h``, output ``h'``."""
        _, z, n = split(a, 4 if after else 3, fa)[:3]
        h = (1 - z) * n + z * h
        return h, h

    def transposed(params: GRUParams):
        """``wt`` of a features-first ``step``: the blocks of ``W_hh`` it multiplies by,
        transposed once before the backward scan (``(W_hhᵀ)``, or ``(W_hrzᵀ, W_hnᵀ)`` before)."""
        w = params.w_hh
        return (w.T,) if after else (w[:2 * H].T, w[2 * H:].T)

    @features_first_capable
    def step(params: GRUParams, h, xp, dcarry, dy, pre=None, fa: int = BATCH_FIRST, wt=None):
        a = preact(params, h, xp, fa=fa) if pre is None else pre
        if fa == FEATURES_FIRST:
            w = transposed(params) if wt is None else wt
        else:
            w = (params.w_hh,) if after else (params.w_hh[:2 * H], params.w_hh[2 * H:])
        dh_new = dcarry + dy
        if after:
            r, z, n, u = split(a, 4, fa)   # H features each
        else:
            r, z, n = split(a, 3, fa)
            rh = r * h
        da_n = (1 - n * n) * ((1 - z) * dh_new)
        da_z = z * (1 - z) * ((h - n) * dh_new)
        dh = z * dh_new
        if after:
            da_r = r * (1 - r) * (u * da_n)
            local = jnp.concatenate([da_r, da_z, r * da_n], axis=fa)   # δ(W_hh h + b_hh)
            dh = dh + matmul(local, w[0], fa)
        else:
            drh = matmul(da_n, w[1], fa)
            da_r = r * (1 - r) * (h * drh)
            dh = dh + r * drh + matmul(jnp.concatenate([da_r, da_z], axis=fa), w[0], fa)
            local = rh
        return dh, jnp.concatenate([da_r, da_z, da_n], axis=fa), local

    def recur_grads(params: GRUParams, h, dxp, local, fa: int = BATCH_FIRST):
        z = jnp.zeros_like
        if after:  # one contraction for all of W_hh: local = [δa_r, δa_z, δu]
            w_hh = outer_sum(local, h, fa)
            b_hh = jnp.concatenate([jnp.zeros((2 * H,), params.b_hh.dtype),
                                    lead_sum(split(local, 3, fa)[2], fa)])
        else:
            rz, n = jnp.split(dxp, [2 * H], axis=fa)
            w_hh = jnp.concatenate([outer_sum(rz, h, fa), outer_sum(n, local, fa)], axis=0)
            b_hh = z(params.b_hh)
        return GRUParams(z(params.w_ih), w_hh, z(params.b_ih), b_hh)

    def project_grads(params: GRUParams, x, dxp, fa: int = BATCH_FIRST):
        db = lead_sum(dxp, fa)
        db_hh = db if not after else jnp.concatenate([db[:2 * H], jnp.zeros((H,), db.dtype)])
        return GRUParams(outer_sum(dxp, x, fa), jnp.zeros_like(params.w_hh), db, db_hh), \
            input_grad(dxp, params.w_ih, fa)

    return CellBackward(step, recur_grads, project_grads, preact, transposed=transposed,
                        finish=finish)
