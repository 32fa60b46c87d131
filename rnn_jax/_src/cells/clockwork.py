"""Clockwork RNN, with its hand-written backward step.

The ``H`` hidden units are split into ``g`` modules of ``n = H / g`` units with periods
``T_1 < … < T_g`` (default ``1, 2, 4, …, 2^{g-1}``). At step ``t`` module ``k`` is active iff
``t mod T_k = 0``; an active module takes an Elman step, the others keep their state:

.. math::
   a_t = W_{ih} x_t + (M ⊙ W_{hh}) h_{t-1} + b, \\qquad
   h_t = m_t ⊙ φ(a_t) + (1 - m_t) ⊙ h_{t-1}, \\qquad y_t = h_t

with ``m_t`` the 0/1 mask of the active modules' units and ``M`` the block upper-triangular
structure: module ``i`` reads module ``j`` only if ``T_j ≥ T_i`` (from slower modules, and
itself). Koutník, Greff, Gomez & Schmidhuber 2014, "A Clockwork RNN", arXiv 1402.3511. The
zero blocks of ``W_hh`` are stored as zeros (PyTorch's ``(out, in)`` layout, one matrix, one
matmul per step) and their gradient is exactly zero, so every optimiser leaves them at zero.

The clock is part of the carry (``phase``, one value ``t mod T_k`` per module), so ``t``
counts the steps this run has read of each sequence, from ``t = 0`` at its first step (every
module is active there): with ``lengths``, padding steps do not advance it; with
``reverse=True``, ``t = 0`` is each sequence's last valid step; a reset sets it to 0 with
the state (a new sequence starts); truncated BPTT does not touch it (it only cuts gradients);
a run given the final carry of a previous run goes on counting where that one stopped.

Backward, with ``g_t = δh_t + ∂L/∂y_t`` the gradient of ``h_t``:

.. math::
   δa_t = m_t ⊙ φ'(a_t) ⊙ g_t, \\quad
   δh_{t-1} = (1 - m_t) ⊙ g_t + (M ⊙ W_{hh})^⊤ δa_t, \\\\
   ∂L/∂W_{hh} = M ⊙ Σ_t δa_t h_{t-1}^⊤, \\quad ∂L/∂W_{ih} = Σ_t δa_t x_t^⊤, \\quad
   ∂L/∂b = Σ_t δa_t, \\quad ∂L/∂x_t = W_{ih}^⊤ δa_t

An inactive module passes its gradient back unchanged; the clock gets no gradient.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src.activations import Activation, derivative, resolve
from rnn_jax._src.cell import (Backward, Cell, Options, affine, check_size, col, col_sum,
                               linear_t, outer_sum, stacked)
from rnn_jax._src import initializers as inits
from rnn_jax._src.params import ClockworkCarry, ClockworkParams


def clockwork(
    input_size: int,
    hidden_size: int,
    *,
    modules: Optional[int] = None,
    periods: Optional[Sequence[int]] = None,
    activation: Activation = "tanh",
    w_ih_init: inits.Initializer = inits.normal(0.1),
    w_hh_init: inits.Initializer = inits.normal(0.1),
    bias_init: inits.Initializer = inits.zeros,
    dtype: Any = jnp.float32,
) -> Cell:
    """A Clockwork RNN cell of ``hidden_size`` units in equal modules.

    Args:
      input_size: ``I``. hidden_size: ``H``, a multiple of the number of modules.
      modules: ``g``, the number of modules; default ``len(periods)``, or 4.
      periods: the modules' periods, strictly increasing positive ints, fastest first;
        default ``1, 2, 4, …, 2^{g-1}`` (the paper's).
      activation: ``"tanh"`` (default, the paper's) or any other.
      w_ih_init, w_hh_init, bias_init: initialisers; default ``N(0, 0.1²)`` weights (the
        paper's) and zero biases. ``W_hh`` is drawn whole and its zero blocks set to zero.
      dtype: dtype of the parameters made by ``init``.
    """
    check_size(input_size, "input_size")
    H = check_size(hidden_size, "hidden_size")
    if periods is None:
        g = 4 if modules is None else check_size(modules, "modules")
        periods = tuple(2 ** k for k in range(g))
    else:
        periods = tuple(periods)
        if not periods or any(isinstance(p, bool) or not isinstance(p, (int, np.integer))
                              or p <= 0 for p in periods):
            raise ValueError(f"periods must be positive ints, got {periods!r}")
        if any(b <= a for a, b in zip(periods, periods[1:])):
            raise ValueError(f"periods must be strictly increasing, got {periods!r}")
        if modules is not None and check_size(modules, "modules") != len(periods):
            raise ValueError(f"modules={modules} but {len(periods)} periods were given")
        periods = tuple(int(p) for p in periods)
    g = len(periods)
    if H % g:
        raise ValueError(f"hidden_size={H} must be a multiple of the number of modules ({g})")
    exact = 2 ** (jnp.finfo(dtype).nmant + 1)   # the clock counts exactly in dtype up to here
    if periods[-1] > exact:
        raise ValueError(f"the longest period {periods[-1]} exceeds {exact}, beyond which "
                         f"{jnp.dtype(dtype).name} cannot count the clock; use float32")
    n = H // g
    mask = structure(H, g)
    act_name, act = resolve(activation, "activation")
    dact = derivative(act_name)
    T = np.asarray(periods, np.float32)

    def init(key: jax.Array) -> ClockworkParams:
        k1, k2, k3 = jax.random.split(key, 3)
        w_hh = w_hh_init(k2, (H, H), dtype) * jnp.asarray(mask, dtype)
        return ClockworkParams(w_ih_init(k1, (H, input_size), dtype), w_hh,
                               bias_init(k3, (H,), dtype))

    def initial_carry(batch_shape=(), dtype=jnp.float32) -> ClockworkCarry:
        batch_shape = tuple(batch_shape)
        return ClockworkCarry(jnp.zeros((*batch_shape, H), dtype),
                              jnp.zeros((*batch_shape, g), dtype))

    def w_rec(p: ClockworkParams) -> jax.Array:
        return p.w_hh * jnp.asarray(mask, p.w_hh.dtype)      # M ⊙ W_hh

    def active(phase: jax.Array) -> jax.Array:
        return jnp.repeat(phase == 0, n, axis=0)             # m_t, per unit

    def project(p: ClockworkParams, x: jax.Array) -> jax.Array:
        return affine(p.w_ih, x, p.b)

    def recur(p: ClockworkParams, carry: ClockworkCarry, xp: jax.Array):
        return finish(p, carry, preact(p, carry, xp))

    def preact(p: ClockworkParams, carry: ClockworkCarry, xp):
        return affine(w_rec(p), carry.h, xp)                 # a_t

    def fused(p: ClockworkParams, carry: ClockworkCarry, x):
        return stacked(x, carry.h, p.w_ih, w_rec(p), p.b)    # a_t, one matmul

    def finish(p: ClockworkParams, carry: ClockworkCarry, a):
        h = jnp.where(active(carry.phase), act(a), carry.h)
        nxt = carry.phase + 1
        phase = jax.lax.stop_gradient(jnp.where(nxt >= col(T, nxt), 0, nxt).astype(nxt.dtype))
        return ClockworkCarry(h, phase), h

    def step(p: ClockworkParams, carry: ClockworkCarry, a, dcarry: ClockworkCarry, dy):
        on, gh = active(carry.phase), dcarry.h + dy
        da = jnp.where(on, dact(a, act(a), gh), 0).astype(gh.dtype)
        dh = jnp.where(on, 0, gh).astype(gh.dtype) + linear_t(w_rec(p), da)
        return ClockworkCarry(dh, jnp.zeros_like(dcarry.phase)), da, None

    def grads(p: ClockworkParams, xs, carries: ClockworkCarry, da, local):
        dw_hh = outer_sum(da, carries.h) * jnp.asarray(mask, da.dtype)
        return ClockworkParams(outer_sum(da, xs), dw_hh, col_sum(da)), linear_t(p.w_ih, da)

    options = Options(periods=periods, activation=act_name)
    return Cell("clockwork", input_size, H, H, options, init, initial_carry, project, recur,
                Backward(preact, finish, step, grads, project, recur, fused))


def structure(hidden_size: int, modules: int) -> np.ndarray:
    """``M``, the ``(H, H)`` 0/1 structure of a Clockwork ``W_hh``: ``M[u, v] = 1`` iff unit
    ``v``'s module is unit ``u``'s or a slower one (block upper triangular)."""
    k = np.arange(hidden_size) // (hidden_size // modules)
    return (k[None, :] >= k[:, None]).astype(np.float32)


def free_parameters(cell: Cell) -> int:
    """The number of trainable parameters of a Clockwork cell (the zero blocks not counted)."""
    H, g = cell.hidden_size, len(cell.options["periods"])
    n = H // g
    return H * cell.input_size + H + n * n * g * (g + 1) // 2
