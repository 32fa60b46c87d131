"""SCRN, the Structurally Constrained Recurrent Network, with its hand-written backward step.

.. math::
   s_t &= (1 - α) ⊙ B x_t + α ⊙ s_{t-1} \\\\
   h_t &= σ(P s_t + A x_t + R h_{t-1} + b) \\\\
   y_t &= [h_t; s_t]

Mikolov, Joulin, Chopra, Mathieu & Ranzato 2014, "Learning longer memory in recurrent neural
networks", arXiv 1412.7753. The context units ``s`` have their recurrent matrix fixed to
``α I``, so they change slowly and keep information over long spans; the paper fixes
``α = 0.95`` (``alpha=0.95``, the default) and reports that learning it did not help;
``learn_alpha=True`` learns one ``α`` per context unit (initialised to ``alpha``). The paper's
output layer ``softmax(U h_t + V s_t)`` is a dense readout of this cell's output
``y_t = [h_t; s_t]`` (size ``H + S``): ``rnn_jax.dense(H + S, V)``. Carry ``(h, s)``.

Backward, with ``a_t`` the hidden pre-activation and ``(δh, δs)`` the carry's gradient from
the future, ``∂L/∂y_t = [g_h; g_s]``:

.. math::
   δa_t = σ'(a_t) ⊙ (δh_t + g_h), \\quad δs_t' = δs_t + g_s + P^⊤ δa_t, \\\\
   δh_{t-1} = R^⊤ δa_t, \\quad δs_{t-1} = α ⊙ δs_t', \\quad δ(B x_t) = (1-α) ⊙ δs_t', \\\\
   ∂L/∂P = Σ_t δa_t s_t^⊤, \\ ∂L/∂R = Σ_t δa_t h_{t-1}^⊤, \\ ∂L/∂A = Σ_t δa_t x_t^⊤, \\
   ∂L/∂B = Σ_t δ(B x_t) x_t^⊤, \\ ∂L/∂α = Σ_t δs_t' ⊙ (s_{t-1} - B x_t)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits
from rnn_jax._src.activations import Activation, derivative, resolve
from rnn_jax._src.cell import (Backward, Cell, Options, affine, check_bool, check_real,
                               check_size, col, col_sum, linear, linear_t, outer_sum)
from rnn_jax._src.params import SCRNCarry, SCRNParams


def scrn(
    input_size: int,
    hidden_size: int,
    context_size: int,
    *,
    alpha: float = 0.95,
    learn_alpha: bool = False,
    activation: Activation = "sigmoid",
    w_init: inits.Initializer = inits.glorot_uniform(),
    w_hh_init: inits.Initializer = inits.orthogonal(),
    bias_init: inits.Initializer = inits.zeros,
    dtype: Any = jnp.float32,
) -> Cell:
    """An SCRN cell: ``H`` hidden units and ``S`` slow context units (``context_size``).

    Args:
      alpha: the context units' self-connection, in ``[0, 1)`` (default 0.95, the paper's).
      learn_alpha: learn one ``α`` per context unit (a parameter ``alpha``, initialised to
        ``alpha``) instead of fixing it.
      activation: of the hidden layer, ``"sigmoid"`` (the paper's, default) or any other.
      w_init: initialiser of ``B``, ``A`` and ``P``; ``w_hh_init`` of ``R``; ``bias_init`` of
        ``b``.
    """
    check_size(input_size, "input_size")
    H, S = check_size(hidden_size, "hidden_size"), check_size(context_size, "context_size")
    alpha = check_real(alpha, "alpha")
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    check_bool(learn_alpha, "learn_alpha")
    act_name, act = resolve(activation, "activation")
    dact = derivative(act_name)

    def init(key: jax.Array) -> SCRNParams:
        k = jax.random.split(key, 5)
        return SCRNParams(w_init(k[0], (S, input_size), dtype),
                          w_init(k[1], (H, input_size), dtype), w_init(k[2], (H, S), dtype),
                          w_hh_init(k[3], (H, H), dtype), bias_init(k[4], (H,), dtype),
                          jnp.full((S,), alpha, dtype) if learn_alpha else None)

    def initial_carry(batch_shape=(), dtype=jnp.float32) -> SCRNCarry:
        batch_shape = tuple(batch_shape)
        return SCRNCarry(jnp.zeros((*batch_shape, H), dtype), jnp.zeros((*batch_shape, S), dtype))

    def rate(p: SCRNParams, like: jax.Array):
        return col(p.alpha, like) if learn_alpha else alpha

    def project(p: SCRNParams, x: jax.Array) -> jax.Array:
        return jnp.concatenate([linear(p.w_xs, x), affine(p.w_xh, x, p.b_h)])   # [Bx; Ax + b]

    def recur(p: SCRNParams, carry: SCRNCarry, xp: jax.Array):
        return finish(p, carry, preact(p, carry, xp))

    def preact(p: SCRNParams, carry: SCRNCarry, xp):
        """``[a_t; s_t]``: the hidden pre-activation and the new context."""
        a_s = rate(p, carry.s)
        s = (1 - a_s) * xp[:S] + a_s * carry.s
        return jnp.concatenate([affine(p.w_hh, carry.h, affine(p.w_sh, s, xp[S:])), s])

    def finish(p: SCRNParams, carry: SCRNCarry, pre):
        h, s = act(pre[:H]), pre[H:]
        return SCRNCarry(h, s), jnp.concatenate([h, s])

    def step(p: SCRNParams, carry: SCRNCarry, pre, dcarry: SCRNCarry, dy):
        a, s = pre[:H], pre[H:]
        da = dact(a, act(a), dcarry.h + dy[:H])
        ds = dcarry.s + dy[H:] + linear_t(p.w_sh, da)
        a_s = rate(p, carry.s)
        dxp = jnp.concatenate([(1 - a_s) * ds, da])
        return SCRNCarry(linear_t(p.w_hh, da), a_s * ds), dxp, (s, ds)

    def grads(p: SCRNParams, xs, carries: SCRNCarry, dxp, local):
        s, ds = local
        dxs_, da = dxp[:S], dxp[S:]
        d_alpha = None
        if learn_alpha:   # ∂s_t/∂α = s_{t-1} - B x_t
            d_alpha = col_sum(ds * (carries.s - jnp.tensordot(p.w_xs, xs, axes=1)))
        return (SCRNParams(outer_sum(dxs_, xs), outer_sum(da, xs), outer_sum(da, s),
                           outer_sum(da, carries.h), col_sum(da), d_alpha),
                linear_t(p.w_xs, dxs_) + linear_t(p.w_xh, da))

    options = Options(context_size=S, alpha=alpha, learn_alpha=learn_alpha, activation=act_name)
    return Cell("scrn", input_size, H, H + S, options, init, initial_carry, project, recur,
                Backward(preact, finish, step, grads, project, recur))
