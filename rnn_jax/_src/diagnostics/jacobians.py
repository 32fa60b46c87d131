"""Jacobians of the state across time, ``∂h_T/∂h_k``, and per-step ``‖∂L/∂h_t‖``.

For a cell with state ``h_t = F(h_{t-1}, x_t)`` (the whole carry, flattened; for an LSTM the
pair ``(h_t, c_t)``) the chain rule gives

.. math::  \\frac{∂h_T}{∂h_k} = \\prod_{t=T}^{k+1} \\frac{∂h_t}{∂h_{t-1}}
           = J_T J_{T-1} \\cdots J_{k+1}, \\qquad J_t = \\frac{∂F}{∂h}(h_{t-1}, x_t),

which for an Elman cell is ``Π diag(φ'(a_t)) W_hh`` (Pascanu, Mikolov & Bengio 2013, eq. 5).
Two exact ways to compute the whole stack ``{∂h_T/∂h_k : k = 0..T}`` are given, and must agree:

* ``method="jacrev"``: each ``J_t`` from ``jax.jacrev`` of one step, then the products
  accumulated from ``t = T`` down to ``k + 1``;
* ``method="vjp"``: the rows of ``∂h_T/∂h_k`` are the gradients of ``e_i · h_T`` for the
  standard basis ``e_i``; they are carried backward one step at a time by the step's pullback
  (``jax.vjp``), vmapped over the basis. This is BPTT run once per basis vector.

A third, ``method="manual"``, asks the cell's hand-written backward step for the
same rows (see :func:`rnn_jax._src.diagnostics.manual.lag_jacobians_manual`).

All functions here take **one** sequence ``xs`` of shape ``(T, I)``; ``jax.vmap`` them for a
batch.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from rnn_jax._src.cell import Cell, project_all
from rnn_jax._src.diagnostics.manual import lag_jacobians_manual
from rnn_jax._src.diagnostics.states import _check_sequence, flat_step, initial_state, trajectory

METHODS = ("vjp", "jacrev", "manual")


def step_jacobians(cell: Cell, params: Any, xs: jax.Array, carry0: Any = None) -> jax.Array:
    """``J[t-1] = ∂h_t/∂h_{t-1}`` for ``t = 1..T`` by ``jax.jacrev``; shape ``(T, n, n)``."""
    states, xps = trajectory(cell, params, xs, carry0)
    f = flat_step(cell, params, carry0)
    return jax.vmap(jax.jacrev(f))(states[:-1], xps)


def _lag_jacobians_jacrev(cell, params, xs, carry0):
    js = step_jacobians(cell, params, xs, carry0)  # (T, n, n)
    eye = jnp.eye(js.shape[-1], dtype=js.dtype)

    def back(m, j):  # m = ∂h_T/∂h_t  ->  ∂h_T/∂h_{t-1} = m @ J_t
        m = m @ j
        return m, m

    _, ms = jax.lax.scan(back, eye, js, reverse=True)  # ms[t-1] = ∂h_T/∂h_{t-1}
    return jnp.concatenate([ms, eye[None]], axis=0)


def _lag_jacobians_vjp(cell, params, xs, carry0):
    states, xps = trajectory(cell, params, xs, carry0)
    f = flat_step(cell, params, carry0)
    eye = jnp.eye(states.shape[-1], dtype=states.dtype)

    def back(rows, inp):  # rows: the n cotangents e_i^T ∂h_T/∂h_t, pulled back one step
        h_prev, xp = inp
        _, pullback = jax.vjp(lambda h: f(h, xp), h_prev)
        rows = jax.vmap(lambda r: pullback(r)[0])(rows)
        return rows, rows

    _, ms = jax.lax.scan(back, eye, (states[:-1], xps), reverse=True)
    return jnp.concatenate([ms, eye[None]], axis=0)


def lag_jacobians(cell: Cell, params: Any, xs: jax.Array, carry0: Any = None, *,
                  method: str = "vjp") -> jax.Array:
    """All Jacobians ``∂h_T/∂h_k`` of the final state with respect to earlier states.

    Args:
      cell, params: an rnn_jax cell and its parameters.
      xs: one input sequence, shape ``(T, I)``.
      carry0: the state at ``t = 0`` (zeros by default).
      method: ``"vjp"`` (basis pulled back by ``jax.vjp``), ``"jacrev"`` (per-step
        ``jax.jacrev`` Jacobians multiplied together) or ``"manual"`` (the hand-written BPTT).

    Returns:
      ``(T+1, n, n)``, entry ``k`` is ``∂h_T/∂h_k`` (``k = T`` gives the identity), where ``n``
      is the size of the flattened carry (for an LSTM ``h`` first, then ``c``).
    """
    if method == "vjp":
        return _lag_jacobians_vjp(cell, params, xs, carry0)
    if method == "jacrev":
        return _lag_jacobians_jacrev(cell, params, xs, carry0)
    if method == "manual":
        return lag_jacobians_manual(cell, params, xs, carry0)
    raise ValueError(f"method={method!r} is not one of {list(METHODS)}")


def part_indices(cell: Cell, params: Any, part: Optional[str], carry0: Any = None) -> np.ndarray:
    """Positions in the flattened carry of the field ``part`` (e.g. ``"c"`` of an LSTM carry).

    ``part=None`` selects the whole carry.
    """
    carry = initial_state(cell, params, carry0)
    if part is None:
        return np.arange(ravel_pytree(carry)[0].size)
    fields = getattr(carry, "_fields", ())
    if part not in fields:
        raise ValueError(f"part={part!r}: the {cell.name} carry has fields {list(fields)}; "
                         "use part=None for a carry that is a single array")
    masks = carry._replace(**{f: np.full(np.shape(getattr(carry, f)), f == part)
                              for f in fields})
    return np.flatnonzero(np.concatenate([np.ravel(m) for m in jax.tree.leaves(masks)]))


def jacobian_norms(cell: Cell, params: Any, xs: jax.Array, carry0: Any = None, *,
                   part: Optional[str] = None, method: str = "vjp", ord: Any = 2) -> jax.Array:
    """``‖∂h_T/∂h_{T-l}‖`` indexed by the lag ``l = 0..T`` (spectral norm by default).

    Args:
      part: restrict rows and columns to one field of the carry, e.g. ``part="c"`` gives
        ``‖∂c_T/∂c_k‖`` for an LSTM (the partial derivative, other fields held fixed).
      method: see :func:`lag_jacobians`.
      ord: matrix norm order, as ``jnp.linalg.norm`` (``2`` spectral, ``"fro"`` Frobenius).

    Returns:
      shape ``(T+1,)``; entry ``l`` is the norm at lag ``l`` (entry 0 is ``‖I‖``).
    """
    js = lag_jacobians(cell, params, xs, carry0, method=method)
    idx = part_indices(cell, params, part, carry0)
    if idx.size != js.shape[-1]:
        js = js[:, idx][:, :, idx]
    return jnp.linalg.norm(js, ord=ord, axis=(-2, -1))[::-1]


def block_norms(cell: Cell, params: Any, xs: jax.Array, columns: Sequence[int],
                carry0: Any = None, *, ord: Any = 2) -> jax.Array:
    """``‖∂h_T/∂h_{T-l}[columns]‖`` by lag ``l = 0..T``: how much the final carry (all of it)
    depends on the block ``columns`` of the flattened carry ``l`` steps earlier, e.g. one
    module of a Clockwork RNN or the slow context of an SCRN (:func:`carry_blocks`)."""
    js = lag_jacobians(cell, params, xs, carry0)
    return jnp.linalg.norm(js[:, :, np.asarray(columns)], ord=ord, axis=(-2, -1))[::-1]


def carry_blocks(cell: Cell, params: Any) -> dict:
    """Named blocks of a cell's flattened carry, for :func:`block_norms`: each module of a
    Clockwork RNN (``"module k (T=p)"``, fastest first) or each field of a NamedTuple carry
    (the SCRN's ``h`` and ``s``, the LSTM's ``h`` and ``c``); ``{"carry": all}`` otherwise."""
    if cell.name == "clockwork":
        periods = cell.options["periods"]
        n = cell.hidden_size // len(periods)
        return {f"module {k + 1} (T={p})": np.arange(k * n, (k + 1) * n)
                for k, p in enumerate(periods)}
    fields = getattr(cell.initial_carry(), "_fields", ())
    if not fields:
        return {"carry": part_indices(cell, params, None)}
    return {f: part_indices(cell, params, f) for f in fields}


def state_gradients(cell: Cell, params: Any, xs: jax.Array, loss_fn: Callable[[jax.Array], Any],
                    carry0: Any = None) -> jax.Array:
    """``∂L/∂h_t`` for ``t = 1..T``, the total derivative through all later steps.

    ``L = loss_fn(ys)`` with ``ys`` the cell outputs ``(T, output_size)``. Computed by adding a
    zero perturbation ``ε_t`` to each new state and differentiating with respect to it:
    ``∂L/∂ε_t = ∂L/∂h_t``. The output ``y_t`` is read from the perturbed state: the carry itself
    for Elman, GRU and Jordan (whose carry is its output ``y_t``), ``carry.h`` for an LSTM and a
    Clockwork RNN, ``[h; s]`` for an SCRN.

    Returns:
      ``(T, n)`` gradients with respect to the flattened carries ``h_1 .. h_T``.
    """
    xs = _check_sequence(cell, xs)
    carry0 = initial_state(cell, params, carry0)
    flat0, unravel = ravel_pytree(carry0)
    outputs = {"elman": lambda c: c, "gru": lambda c: c, "jordan": lambda c: c,
               "lstm": lambda c: c.h, "clockwork": lambda c: c.h,
               "scrn": lambda c: jnp.concatenate([c.h, c.s])}
    if cell.name not in outputs:
        raise NotImplementedError(f"state_gradients does not know the output of a {cell.name} cell")
    output = outputs[cell.name]
    xps = project_all(cell, params, xs)

    def loss_of(eps):
        def step(c, inp):
            xp, e = inp
            new = unravel(ravel_pytree(cell.recur(params, c, xp)[0])[0] + e)
            return new, output(new)

        _, ys = jax.lax.scan(step, carry0, (xps, eps))
        return loss_fn(ys)

    return jax.grad(loss_of)(jnp.zeros((xs.shape[0], flat0.size), flat0.dtype))


def state_gradient_norms(cell: Cell, params: Any, xs: jax.Array,
                         loss_fn: Callable[[jax.Array], Any], carry0: Any = None) -> jax.Array:
    """``‖∂L/∂h_t‖`` (Euclidean) for ``t = 1..T``; see :func:`state_gradients`."""
    return jnp.linalg.norm(state_gradients(cell, params, xs, loss_fn, carry0), axis=-1)
