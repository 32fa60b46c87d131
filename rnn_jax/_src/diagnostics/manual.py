"""The same diagnostics from the hand-written backward steps of the cells, no autodiff.

Each cell's manual backward step ``Backward.step(params, carry, pre, δcarry, δy) -> (δcarry_prev, …)``
is the pullback of one step. Pulling the standard basis of the final state back through it,
one step at a time, gives the rows of every ``∂h_T/∂h_k`` (this is BPTT with upstream gradient
``e_i`` on ``h_T``, for every ``i`` at once); pulling back ``∂L/∂y_t`` gives ``∂L/∂h_t``.
:func:`jacobian_via_bptt` asks the public whole-sequence backward ``bptt`` instead, once per
``k``, as an end-to-end check.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnn_jax._src.cell import Cell
from rnn_jax._src.bptt import bptt
from rnn_jax._src.cell import backward_of
from rnn_jax._src.diagnostics.states import _check_sequence, initial_state, saved, trajectory


def _backward_step(cell: Cell):
    b = backward_of(cell)
    if b is None:
        raise ValueError(f"the {cell.name!r} cell has no hand-written backward step; use "
                         "method='vjp' or 'jacrev'")
    return b.step


def _output_part(cell: Cell, carry: Any) -> Any:
    """Where ``y_t`` sits in the carry (``carry.h`` for an LSTM, the carry itself otherwise)."""
    return carry.h if cell.name == "lstm" else carry


def lag_jacobians_manual(cell: Cell, params: Any, xs: jax.Array, carry0: Any = None) -> jax.Array:
    """``∂h_T/∂h_k`` for ``k = 0..T`` (shape ``(T+1, n, n)``) from the manual backward steps."""
    step = _backward_step(cell)
    carry0 = initial_state(cell, params, carry0)
    flat0, unravel = ravel_pytree(carry0)
    states, _ = trajectory(cell, params, xs, carry0)
    pres = saved(cell, params, xs, carry0)[3]
    eye = jnp.eye(flat0.size, dtype=flat0.dtype)
    dy = jnp.zeros((cell.output_size,), flat0.dtype)

    def back(rows, inp):
        h_prev, pre = inp
        carry = unravel(h_prev)
        pull = lambda r: ravel_pytree(step(params, carry, pre, unravel(r), dy)[0])[0]  # noqa: E731
        rows = jax.vmap(pull)(rows)
        return rows, rows

    _, ms = jax.lax.scan(back, eye, (states[:-1], pres), reverse=True)
    return jnp.concatenate([ms, eye[None]], axis=0)


def state_gradients_manual(cell: Cell, params: Any, xs: jax.Array,
                           loss_fn: Callable[[jax.Array], Any], carry0: Any = None) -> jax.Array:
    """``∂L/∂h_t`` for ``t = 1..T`` (shape ``(T, n)``) by the manual backward recursion.

    ``∂L/∂y_t`` comes from ``jax.grad(loss_fn)`` (the loss is not part of the RNN); the
    recursion ``δh_{t-1} = (∂h_t/∂h_{t-1})^T (δh_t + ∂L/∂y_t)`` is the hand-written one.
    """
    step = _backward_step(cell)
    carry0 = initial_state(cell, params, carry0)
    _, unravel = ravel_pytree(carry0)
    states, _ = trajectory(cell, params, xs, carry0)
    pres = saved(cell, params, xs, carry0)[3]
    ys = jax.vmap(lambda s: _output_part(cell, unravel(s)))(states[1:])
    dys = jax.grad(loss_fn)(ys)

    def total(dc, dy):  # ∂L/∂h_t: the carry's gradient plus the output's, flattened
        if cell.name == "lstm":
            dc = dc._replace(h=dc.h + dy)
        else:
            dc = dc + dy
        return ravel_pytree(dc)[0]

    def back(dc, inp):
        h_prev, pre, dy = inp
        out = total(dc, dy)
        dc_prev = step(params, unravel(h_prev), pre, dc, dy)[0]
        return dc_prev, out

    dc_T = jax.tree.map(jnp.zeros_like, carry0)
    _, grads = jax.lax.scan(back, dc_T, (states[:-1], pres, dys), reverse=True)
    return grads


def jacobian_via_bptt(cell: Cell, params: Any, xs: jax.Array, k: int, carry0: Any = None):
    """``∂h_T/∂h_k`` (shape ``(n, n)``) from the public sequence backward ``bptt``.

    Row ``i`` is ``bptt``'s gradient of the initial carry when the sequence ``xs[k:]`` starts
    from ``h_k`` and the upstream gradient is ``e_i`` on the final carry and zero on the outputs.
    """
    xs = _check_sequence(cell, xs)
    carry0 = initial_state(cell, params, carry0)
    flat0, unravel = ravel_pytree(carry0)
    states, _ = trajectory(cell, params, xs, carry0)
    suffix = xs[k:]
    dys = jnp.zeros((suffix.shape[0], cell.output_size), flat0.dtype)
    h_k = unravel(states[k])

    def row(e):
        return ravel_pytree(bptt(cell, params, suffix, dys, unravel(e), h_k)[1])[0]

    return jax.vmap(row)(jnp.eye(flat0.size, dtype=flat0.dtype))
