"""UORO: unbiased online recurrent optimisation (Tallec & Ollivier 2017, arXiv 1702.05043).

Write one step of a cell on flat vectors, the carry ``c ∈ R^n`` and the parameters ``θ ∈ R^P``
(``jax.flatten_util.ravel_pytree``), as ``(c_t, y_t) = F(c_{t-1}, x_t, θ)``
(``cell.project`` then ``cell.recur``). Forward-mode RTRL carries the sensitivity
``G_t = dc_t/dθ`` (``n × P``), ``G_t = J_t G_{t-1} + ∂F/∂θ`` with ``J_t = ∂F/∂c``; UORO keeps
instead a random rank-one estimate ``G_t ≈ s̃_t θ̃_tᵀ`` with ``E[s̃_t θ̃_tᵀ] = G_t``. With
independent random signs ``ν_t ∈ {±1}^n`` (``E[ν νᵀ] = I``) each step (Algorithm 1 of the paper)

.. math::

    s̃_t = ρ_0 J_t s̃_{t-1} + ρ_1 ν_t, \\qquad
    θ̃_t = θ̃_{t-1} / ρ_0 + (ν_tᵀ ∂F/∂θ) / ρ_1,

    ρ_0 = \\sqrt{(‖θ̃_{t-1}‖ + ε) / (‖J_t s̃_{t-1}‖ + ε)}, \\qquad
    ρ_1 = \\sqrt{(‖ν_tᵀ ∂F/∂θ‖ + ε) / (‖ν_t‖ + ε)},

the scalings that minimise the variance by balancing the norms of the two factors of each
rank-one term. The cross terms have mean zero because ``ν_t`` is independent of the past and
``ρ_1`` is even in ``ν_t``, so ``E[s̃_t θ̃_tᵀ] = J_t G_{t-1} + ∂F/∂θ = G_t`` by induction from
``s̃_0 = 0, θ̃_0 = 0`` (the initial carry does not depend on ``θ``). ``J_t s̃`` is one
``jax.jvp`` of the step and ``νᵀ ∂F/∂θ`` one ``jax.vjp``; memory is ``O(n + P)`` per sequence,
independent of the length.

The loss ``L = Σ_t ℓ_t(y_t)`` (``ℓ_t(y) = <dys_t, y>`` in :func:`rnn_jax.uoro`, the cotangent
convention of ``rnn_jax.bptt``) has ``dL/dθ = Σ_t ȳ_t (∂y_t/∂c_{t-1} G_{t-1} + ∂y_t/∂θ)``,
``ȳ_t = ∂ℓ_t/∂y_t``, estimated online without bias by

.. math::  ĝ = Σ_t (ȳ_t · ∂y_t/∂c_{t-1}\\, s̃_{t-1})\\, θ̃_{t-1} + ȳ_tᵀ ∂y_t/∂θ,

where the first scalar comes from the same ``jax.jvp`` (its output tangent) and the second term
(the exact dependence through step ``t``) from the same ``jax.vjp``. The output is read through
the step that produces it, so that every cell, whatever its output, is handled alike, and with
``T = 1`` the estimate is exact.

Sequences: ``xs (*batch, T, I)`` (batch first, any batch rank); each sequence keeps its own
``(s̃, θ̃)`` and its own key (``jax.random.split(key, B)`` over the flattened batch, the key
itself for one sequence); ``ν`` of a sequence's ``k``-th valid step is drawn from
``fold_in(key, k)``. ``lengths``: steps ``t ≥ lengths`` keep the carry, ``s̃``, ``θ̃`` and the
step count, output zeros and add nothing (padding is never read). The :class:`UOROState` can
be carried across chunks of a stream (truncation-free online learning): the estimate for the
concatenated stream equals the sum of the chunks' estimates when the same key is passed.
Not supported: ``resets`` and ``reverse``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnn_jax._src import validate as v
from rnn_jax._src.cell import Cell, check_real
from rnn_jax._src.compiled import compiled_when_concrete


class UOROState(NamedTuple):
    """What UORO carries from one chunk of a stream to the next.

    Attributes:
      carry: the cell's carry, leaves ``(*batch, ...)``.
      s: ``s̃``, shape ``(*batch, n)`` (``n`` the size of the flattened carry).
      theta: ``θ̃``, shape ``(*batch, P)`` (``P`` the number of parameters).
      step: valid steps read so far, int32 ``(*batch,)`` (indexes the random signs).
    """

    carry: Any
    s: jax.Array
    theta: jax.Array
    step: jax.Array


def uoro_state(cell: Cell, params: Any, batch_shape: tuple = (), initial_carry: Any = None,
               dtype: Any = None) -> UOROState:
    """The state at the start of a stream: ``initial_carry`` (zeros by default), ``s̃ = 0``,
    ``θ̃ = 0``, no steps; dtype that of ``params`` (or ``dtype``) unless a carry is given."""
    v.check_cell(cell)
    v.check_params(cell, params)
    batch_shape = tuple(batch_shape)
    dtype = v.param_dtype(params) if dtype is None else dtype
    if initial_carry is None:
        initial_carry = cell.initial_carry(batch_shape, dtype)
    else:
        v.check_carry(cell, initial_carry, batch_shape)
    carry = jax.tree.map(lambda c: jnp.asarray(c, jnp.result_type(c, dtype)), initial_carry)
    leaves = jax.tree.leaves(carry)
    n = sum(math.prod(c.shape[len(batch_shape):]) for c in leaves)
    theta = ravel_pytree(params)[0]
    return UOROState(carry, jnp.zeros((*batch_shape, n), jnp.result_type(*leaves)),
                     jnp.zeros((*batch_shape, theta.size), theta.dtype),
                     jnp.zeros(batch_shape, jnp.int32))


def _signs(key: jax.Array, step: jax.Array, n: int, dtype: Any) -> jax.Array:
    """``ν``: ``n`` independent random signs for the ``step``-th step of a sequence."""
    return jax.random.rademacher(jax.random.fold_in(key, step), (n,), dtype)


def _combine(js: jax.Array, theta: jax.Array, nu: jax.Array, dtheta: jax.Array,
             eps: float) -> tuple[jax.Array, jax.Array]:
    """``(s̃_t, θ̃_t)`` from ``J s̃_{t-1}``, ``θ̃_{t-1}``, ``ν`` and ``νᵀ ∂F/∂θ``."""
    norm = jnp.linalg.norm
    rho0 = jnp.sqrt((norm(theta) + eps) / (norm(js) + eps))
    rho1 = jnp.sqrt((norm(dtheta) + eps) / (norm(nu) + eps))
    return rho0 * js + rho1 * nu, theta / rho0 + dtheta / rho1


def _sequence(cell: Cell, params: Any, xs, aux, valid, key, state: UOROState,
              cotangent: Callable, eps: float):
    """UORO over one sequence: ``(g (P,), loss, ys (T, O), state)``."""
    theta0, unravel_p = ravel_pytree(params)
    c0, unravel_c = ravel_pytree(state.carry)

    def step_fn(th, c, x):
        p = unravel_p(th)
        carry, y = cell.recur(p, unravel_c(c), cell.project(p, x))
        return ravel_pytree(carry)[0].astype(c.dtype), y

    def body(acc, inp):
        c, s, th, k, g, loss = acc
        x, a, ok = inp
        x = jnp.where(ok, x, jnp.zeros((), x.dtype))            # padding is never read
        a = jax.tree.map(lambda z: jnp.where(ok, z, jnp.zeros((), z.dtype)), a)
        (c_new, y), (js, dy_s) = jax.jvp(lambda cc: step_fn(theta0, cc, x), (c,), (s,))
        _, pullback = jax.vjp(lambda t: step_fn(t, c, x), theta0)
        l_t, ybar = cotangent(y, a)
        ybar = jnp.where(ok, ybar, jnp.zeros((), ybar.dtype))
        nu = _signs(key, k, c.size, c.dtype)
        dtheta, direct = jax.vmap(lambda dc, dy: pullback((dc, dy))[0])(
            jnp.stack([nu, jnp.zeros_like(nu)]), jnp.stack([jnp.zeros_like(ybar), ybar]))
        g = (g + jnp.vdot(ybar, dy_s) * th + direct).astype(g.dtype)
        s_new, th_new = _combine(js, th, nu, dtheta, eps)
        keep = lambda new, old: jnp.where(ok, new, old).astype(old.dtype)   # the state's dtypes
        acc = (keep(c_new, c), keep(s_new, s), keep(th_new, th), k + ok.astype(k.dtype), g,
               loss + jnp.where(ok, l_t, jnp.zeros((), l_t.dtype)))
        return acc, jnp.where(ok, y, jnp.zeros((), y.dtype))

    loss0 = jnp.zeros((), jnp.result_type(theta0.dtype, xs.dtype))
    acc0 = (c0, state.s, state.theta, state.step, jnp.zeros_like(theta0), loss0)
    (c, s, th, k, g, loss), ys = jax.lax.scan(body, acc0, (xs, aux, valid))
    return g, loss, ys, UOROState(unravel_c(c), s, th, k)


def _check_key(key: Any) -> jax.Array:
    if isinstance(key, jax.Array) and (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
                                       or (key.dtype == jnp.uint32 and key.shape == (2,))):
        return key
    raise TypeError(f"key must be a JAX PRNG key (jax.random.key(seed)), got {key!r}")


def _run(cell, params, xs, key, aux, cotangent, initial_carry, lengths, state, eps,
         compiled=False):
    v.check_cell(cell)
    xs, T, batch = v.check_inputs(cell, xs, False)
    v.check_params(cell, params)
    key = _check_key(key)
    eps = check_real(eps, "eps")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    lengths = v.check_lengths(lengths, T, batch)
    for leaf in jax.tree.leaves(aux):
        if tuple(leaf.shape[:len(batch) + 1]) != (*batch, T):
            raise ValueError(f"per-step arrays must start with the shape {(*batch, T)} of the "
                             f"inputs' batch and time, got {tuple(leaf.shape)}")
    dtype = jnp.result_type(v.param_dtype(params), xs.dtype)
    if state is None:
        state = uoro_state(cell, params, batch, initial_carry, dtype)
    elif initial_carry is not None:
        raise ValueError("pass either initial_carry or state, not both")
    elif not isinstance(state, UOROState):
        raise TypeError(f"state must be a UOROState (rnn_jax.uoro_state), got {type(state)}")
    else:
        want = jax.eval_shape(lambda: uoro_state(cell, params, batch, None, dtype))
        v.check_tree(want, state, "state", f"the UORO state for batch shape {batch}")
    run = _sequences if compiled else _all_sequences
    return run(cell, params, xs, aux, key, lengths, state, cotangent, eps)


def _all_sequences(cell, params, xs, aux, key, lengths, state, cotangent, eps):
    *batch, T, _ = xs.shape
    batch = tuple(batch)
    valid = (jnp.ones((*batch, T), bool) if lengths is None
             else jnp.moveaxis(v.valid_mask(lengths, T), 0, -1))
    B = math.prod(batch)
    flat = lambda t, k: jax.tree.map(lambda a: a.reshape(B, *a.shape[k:]), t)
    fn = lambda x, a, ok, kk, st: _sequence(cell, params, x, a, ok, kk, st,
                                            cotangent, eps)
    if not batch:
        g, loss, ys, state = fn(xs, aux, valid, key, state)
    else:
        g, loss, ys, state = jax.vmap(fn)(flat(xs, len(batch)), flat(aux, len(batch)),
                                          flat(valid, len(batch)), jax.random.split(key, B),
                                          flat(state, len(batch)))
        g, loss = g.sum(0), loss.sum(0)
        ys, state = jax.tree.map(lambda a: a.reshape(*batch, *a.shape[1:]), (ys, state))
    return ravel_pytree(params)[1](g), loss, ys, state


_sequences = compiled_when_concrete(_all_sequences, static_argnums=(0, 7, 8))


def _pairing(y: jax.Array, d: jax.Array):
    """``uoro``'s per-step loss ``<d, y>`` and its cotangent ``d``."""
    return jnp.vdot(d, y), d.astype(y.dtype)


def uoro(cell: Cell, params: Any, xs: jax.Array, key: jax.Array, dys: jax.Array, *,
         initial_carry: Any = None, lengths: Optional[jax.Array] = None,
         state: Optional[UOROState] = None, eps: float = 1e-7):
    """An unbiased online estimate of the gradient of ``L = Σ_t <dys_t, y_t>``.

    Args:
      cell, params: an rnn_jax cell and its parameters.
      xs: inputs ``(*batch, T, I)`` (batch first, any batch rank, none for one sequence).
      key: a PRNG key; the random signs of every step are drawn from it.
      dys: ``∂L/∂y``, shape ``(*batch, T, O)``, as in ``rnn_jax.bptt``.
      initial_carry: the carry at ``t = 0`` (zeros by default), held constant in ``θ``.
      lengths: int ``(*batch,)``; steps ``t ≥ lengths`` are padding (never read).
      state: a :class:`UOROState` to continue a stream from (instead of ``initial_carry``).
      eps: the ``ε > 0`` of the scalings ``ρ_0, ρ_1``.

    Returns:
      ``(dparams, ys, state)``: the estimate shaped as ``params`` (summed over the batch; its
      mean over keys is ``rnn_jax.bptt``'s ``dparams``), the exact outputs ``(*batch, T, O)``,
      and the :class:`UOROState` after the last valid step.
    """
    dys = jnp.asarray(dys)
    if dys.ndim < 1 or dys.shape[-1] != cell.output_size:
        raise ValueError(f"dys must have shape (*batch, T, {cell.output_size}), got {dys.shape}")
    g, _, ys, state = _run(cell, params, xs, key, dys, _pairing, initial_carry, lengths, state,
                           eps, compiled=True)
    return g, ys, state


def uoro_loss_grad(cell: Cell, params: Any, xs: jax.Array, targets: Any, key: jax.Array,
                   step_loss: Callable[[jax.Array, Any], jax.Array], *,
                   initial_carry: Any = None, lengths: Optional[jax.Array] = None,
                   state: Optional[UOROState] = None, eps: float = 1e-7):
    """The loss ``Σ_t step_loss(y_t, targets_t)`` and an unbiased estimate of its gradient,
    both computed online in one forward scan (use the gradient with ``optax``).

    Args:
      targets: a pytree of arrays with leading dims ``(*batch, T)``; padding may hold anything.
      step_loss: ``step_loss(y, target) -> scalar`` for one sequence at one step, ``y`` of
        shape ``(O,)``; it is summed over the valid steps and the batch (scale it for a mean).
      cell, params, xs, key, initial_carry, lengths, state, eps: as :func:`rnn_jax.uoro`.

    Returns:
      ``(loss, dparams, state)``. Pass ``state`` (and a new key, or the same one: the step
      count continues) to the next chunk of a stream.
    """
    if not callable(step_loss):
        raise TypeError(f"step_loss must be a function (y, target) -> scalar, got {step_loss!r}")

    def cotangent(y, target):
        loss, pullback = jax.vjp(lambda yy: jnp.asarray(step_loss(yy, target)), y)
        if loss.shape != () or not jnp.issubdtype(loss.dtype, jnp.floating):
            raise ValueError(f"step_loss must return a real scalar, got {loss.dtype}"
                             f"{list(loss.shape)}")
        return loss, pullback(jnp.ones_like(loss))[0]

    g, loss, _, state = _run(cell, params, xs, key, targets, cotangent, initial_carry,
                             lengths, state, eps)
    return loss, g, state
