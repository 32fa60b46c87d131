"""``RTRL``: real-time recurrent learning, the exact gradient computed forward in time.

Williams & Zipser 1989, "A learning algorithm for continually running fully recurrent neural
networks", Neural Computation 1(2). Write one masked step of one sequence (the runner's, with
its reset and valid masks, :func:`rnn_jax._src.scan.loop`) as ``(c_t, y_t) = F(θ, c_{t-1},
x_t)``, with ``θ`` the params and ``c`` the carry, both raveled (``P`` and ``n`` entries,
:func:`jax.flatten_util.ravel_pytree`). RTRL carries the sensitivities of the state forward:

.. math::
   M_t = ∂c_t/∂θ = (∂F_c/∂c) M_{t-1} + ∂F_c/∂θ, \\quad M_0 = 0 \\quad (n × P), \\qquad
   N_t = ∂c_t/∂c_0 = (∂F_c/∂c) N_{t-1}, \\quad N_0 = I \\quad (n × n),

and, for ``L = Σ_t ⟨δy_t, y_t⟩ + ⟨δc_T, c_T⟩`` (any cotangents ``δy_t``, ``δc_T``),

.. math::
   ∂L/∂θ = Σ_t δy_tᵀ (∂F_y/∂c M_{t-1} + ∂F_y/∂θ) + δc_Tᵀ M_T, \\qquad
   ∂L/∂c_0 = Σ_t δy_tᵀ ∂F_y/∂c N_{t-1} + δc_Tᵀ N_T.

Each step's update is one ``jax.jvp`` of ``F`` along the ``P + n`` directions ``(e_k, M_{t-1}
e_k)`` and ``(0, N_{t-1} e_j)``, mapped with ``jax.vmap``: it returns the new columns of ``M``
and ``N`` and the directional derivatives of ``y_t``, which are contracted with ``δy_t`` at
once. Nothing runs backward in time: memory is ``O(n (P + n))`` per sequence whatever ``T``
(plus the transient one-hot tangents of ``θ``, ``P × P``), time ``O(n² P)`` per step, ``O(H⁴)``
for a dense RNN of ``H`` units, against BPTT's ``O(H²)`` per step and ``O(T H)`` memory.
A reset zeroes the carry and so its sensitivities; an invalid (padding) step keeps both and
its ``δy_t`` is ignored (its output is the constant 0).

The inputs' gradients ``∂L/∂x_t`` are no RTRL quantity (they would need ``∂c_s/∂x_t`` for all
``s ≥ t``). When ``xs`` is differentiated (a lower layer's outputs), they are computed by the
adjoint recurrence ``δc_{t-1} = (∂F_c/∂c)ᵀ δc_t + (∂F_y/∂c)ᵀ δy_t``, ``δx_t = (∂F/∂x)ᵀ
(δc_t, δy_t)``: one reverse scan of the step's pullback over the carries the forward sweep
recorded. The ``jax.custom_vjp`` is defined with ``symbolic_zeros=True``, so it sees whether
``xs`` is perturbed; when it is not (the usual case, gradients w.r.t. params and carry), no
reverse pass is traced at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnn_jax._src import validate as val
from rnn_jax._src.cell import Cell
from rnn_jax._src.compiled import compiled_when_concrete
from rnn_jax._src.gradients import GradientMethod, cotangents, gradient_method, perturbed
from rnn_jax._src.scan import in_scan_order, loop, masked_step


@gradient_method
class RTRL(GradientMethod):
    """Real-time recurrent learning (Williams & Zipser 1989): exact gradients, forward in time.

    The forward pass is the runner's loop; the backward pass (a ``jax.custom_vjp``) computes
    ``∂L/∂params`` and ``∂L/∂initial_carry`` by carrying the sensitivities ``M_t = ∂c_t/∂θ``
    (``n × P``) and ``N_t = ∂c_t/∂c_0`` (``n × n``) of each sequence forward, one ``jax.jvp``
    of the masked step along ``P + n`` directions per step (:mod:`rnn_jax._src.rtrl` has the
    equations). Memory ``O(n (P + n))`` per sequence, independent of ``T``; time ``O(n² P)``
    per step, ``O(H⁴)`` for a dense RNN of ``H`` units, so only for small networks.

    Prefer it for online learning (the gradient of every prefix of the stream is at hand at
    every step, without storing the past) and as the exact oracle for approximations of RTRL
    (UORO, KF-RTRL, SnAp). Its gradients equal :class:`rnn_jax.Autodiff`'s to rounding. The
    sensitivities are accumulated in float32 at least.

    Input gradients: when ``xs`` is differentiated (e.g. an upper layer of a stacked network)
    they come from the adjoint recurrence, a reverse scan of the step's pullback over the carries
    the forward sweep recorded (``O(T n)`` memory); when it is not, no reverse pass is traced.
    Reverse mode only (``jax.grad``, ``jax.vjp``); for ``jax.jvp`` use ``rnn_jax.Autodiff()`` or
    :func:`rtrl_sensitivities`. Works for any cell, including a cell of your own.
    """

    def scan(self, cell, params, xs, carry, valid, resets, *, reverse, plan):
        unroll = plan.unroll

        def primal(params, xs, carry, valid, resets, features_first):
            return loop(cell, params, xs, carry, valid, resets, reverse=reverse, unroll=unroll,
                        fuse=plan.fuse, features_first=features_first)

        @jax.custom_vjp
        def run(params, xs, carry, valid, resets):
            return primal(params, xs, carry, valid, resets, plan.forward_features_first)

        def fwd(params, xs, carry, valid, resets):
            wrt = (perturbed(params), perturbed(xs), perturbed(carry))
            params, xs, carry, valid, resets = jax.tree.map(
                lambda a: a.value, (params, xs, carry, valid, resets))
            out = primal(params, xs, carry, valid, resets, plan.features_first)
            return out, (params, xs, carry, valid, resets, wrt)

        def bwd(res, cts):
            params, xs, carry, valid, resets, (d_params, d_xs, d_carry) = res
            dfinal, dys = cotangents(cts)
            flip = in_scan_order(reverse)
            xs_s, valid_s, resets_s, dys_s = map(flip, (xs, valid, resets, dys))  # scan order
            sweep = forward_sweep(cell, params, unroll, wrt_params=d_params, wrt_carry=d_carry,
                                  collect_carries=d_xs)
            axes = (1, 0, None if valid is None else 1, None if resets is None else 1, 1, 0)
            per_seq = jax.vmap(sweep, in_axes=axes)
            g, carries = per_seq(xs_s, carry, valid_s, resets_s, dys_s, dfinal)
            dparams = jax.tree.map(lambda a: a.sum(0), g[0]) if d_params else None
            dcarry0 = g[1] if d_carry else None
            dxs = None
            if d_xs:
                dxs = jax.vmap(adjoint_sweep(cell, params, unroll),
                               in_axes=(0, 1, None if valid is None else 1,
                                        None if resets is None else 1, 1, 0),
                               out_axes=1)(carries, xs_s, valid_s, resets_s, dys_s, dfinal)
                dxs = flip(dxs)
            if dparams is not None:
                dparams = jax.tree.map(lambda d, p: d.astype(p.dtype), dparams, params)
            if dcarry0 is not None:
                dcarry0 = jax.tree.map(lambda d, c: d.astype(c.dtype), dcarry0, carry)
            return dparams, dxs, dcarry0, None, None

        run.defvjp(fwd, bwd, symbolic_zeros=True)
        return run(params, xs, carry, valid, resets)


def rtrl_sensitivities(cell: Cell, params: Any, xs: jax.Array,
                       initial_carry: Any = None) -> jax.Array:
    """The RTRL sensitivities ``M_t = ∂c_t/∂θ`` of one sequence, for ``t = 1 … T``.

    Args:
      cell: any cell. params: its parameters. xs: one sequence, ``(T, I)``.
      initial_carry: the carry of one sequence (no batch axis); zeros by default.

    Returns:
      ``M`` of shape ``(T, n, P)`` (float32 at least): ``n`` entries of the carry, ``P`` of
      the params, both in the order of :func:`jax.flatten_util.ravel_pytree`. ``M[t] @ v``,
      with ``v = ravel_pytree(dparams)[0]``, is the tangent of the carry after step ``t + 1``
      along ``dparams`` (``jax.jvp`` of the run), raveled the same way.
    """
    val.check_cell(cell)
    val.check_params(cell, params)
    xs = jnp.asarray(xs)
    if xs.ndim != 2 or xs.shape[1] != cell.input_size:
        raise ValueError(f"xs must have shape (T, {cell.input_size}) (one sequence), "
                         f"got {xs.shape}")
    if initial_carry is not None:
        val.check_carry(cell, initial_carry, ())
    return _sensitivities(cell, params, xs, initial_carry)


def _all_sensitivities(cell: Cell, params: Any, xs: jax.Array, initial_carry: Any) -> jax.Array:
    if initial_carry is None:
        dtype = jnp.result_type(val.param_dtype(params), xs.dtype)
        initial_carry = cell.initial_carry((), dtype)
    sens = _sens(cell, params, initial_carry, True, False)

    def body(state, x):
        c, S = state
        c, S, _ = sens.advance(c, S, x, None, None)
        return (c, S), S

    Ms = jax.lax.scan(body, (initial_carry, sens.S0), xs)[1]     # (T, P, n)
    return jnp.swapaxes(Ms, 1, 2)


_sensitivities = compiled_when_concrete(_all_sensitivities, static_argnums=(0,))


def _acc_dtype(tree: Any) -> Any:
    return jnp.promote_types(jnp.result_type(*jax.tree.leaves(tree)), jnp.float32)


class _Sens(NamedTuple):
    """The sensitivity recurrence of one sequence. The ``K`` tangent directions are the ``P``
    params (if wanted) then the ``n`` entries of the initial carry (if wanted); ``S = [M | N]ᵀ``
    is ``(K, n)``, in ``acc`` (float32 at least)."""

    S0: jax.Array
    advance: Callable   # (c, S, x, v, r) -> (c_t in the carry's dtype, S_t, Ẏ_t (K, O))
    split: Callable     # (K,) -> (dparams or None, dcarry0 or None)
    acc: Any


def _sens(cell: Cell, params: Any, carry0: Any, wrt_params: bool, wrt_carry: bool) -> _Sens:
    step = masked_step(cell)
    acc = jnp.promote_types(_acc_dtype(params), _acc_dtype(carry0))
    theta, unravel_p = ravel_pytree(_cast(params, acc))
    c0, unravel_c = ravel_pytree(_cast(carry0, acc))
    P, n = (theta.size if wrt_params else 0), (c0.size if wrt_carry else 0)
    dirs = jnp.concatenate([jnp.eye(P, theta.size, dtype=acc), jnp.zeros((n, theta.size), acc)])
    S0 = jnp.concatenate([jnp.zeros((P, c0.size), acc), jnp.eye(n, c0.size, dtype=acc)])

    def flat(theta, c, x, v, r):   # the masked step on raveled params and carry, in acc
        new, y = step(unravel_p(theta), unravel_c(c), x.astype(acc), v, r)
        return ravel_pytree(new)[0], y.astype(acc)

    def advance(c, S, x, v, r):
        new = step(params, c, x, v, r)[0]           # the forward pass's own carry
        point = (theta, ravel_pytree(_cast(c, acc))[0])
        S, Y = jax.vmap(lambda d, s: jax.jvp(lambda th, cc: flat(th, cc, x, v, r), point,
                                             (d, s))[1])(dirs, S)
        return new, S, Y

    def split(g):
        return (unravel_p(g[:P]) if wrt_params else None,
                unravel_c(g[P:]) if wrt_carry else None)

    return _Sens(S0, advance, split, acc)


def forward_sweep(cell: Cell, params: Any, unroll: int, *, wrt_params: bool, wrt_carry: bool,
                  collect_carries: bool) -> Callable:
    """``sweep(xs, carry0, valid, resets, dys, dfinal) -> ((dparams, dcarry0), carries)`` for
    one sequence in scan order: RTRL's gradient (float32 at least; None where not wanted) and,
    with ``collect_carries``, the carry entering each step (else None)."""

    def sweep(xs, carry0, valid, resets, dys, dfinal):
        sens = _sens(cell, params, carry0, wrt_params, wrt_carry)

        def body(state, inp):
            c, S, g = state
            x, v, r, dy = inp
            new, S, Y = sens.advance(c, S, x, v, r)
            return (new, S, g + Y @ dy.astype(sens.acc)), (c if collect_carries else None)

        g0 = jnp.zeros(sens.S0.shape[0], sens.acc)
        (_, S, g), carries = jax.lax.scan(body, (carry0, sens.S0, g0),
                                          (xs, valid, resets, dys), unroll=unroll)
        return sens.split(g + S @ ravel_pytree(_cast(dfinal, sens.acc))[0]), carries

    return sweep


def adjoint_sweep(cell: Cell, params: Any, unroll: int) -> Callable:
    """``adjoint(carries, xs, valid, resets, dys, dfinal) -> dxs`` for one sequence in scan
    order: the reverse scan ``(δc_{t-1}, δx_t) = pullback of the masked step at (c_{t-1}, x_t)
    applied to (δc_t, δy_t)``, from ``δc_T = dfinal``."""
    step = masked_step(cell)

    def adjoint(carries, xs, valid, resets, dys, dfinal):
        def body(dc, inp):
            c, x, v, r, dy = inp
            _, pull = jax.vjp(lambda c, x: step(params, c, x, v, r), c, x)
            return pull((dc, dy))

        dfinal = jax.tree.map(lambda d, c: d.astype(c.dtype), dfinal, carries)
        return jax.lax.scan(body, dfinal, (carries, xs, valid, resets, dys), reverse=True,
                            unroll=unroll)[1]

    return adjoint


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda a: jnp.asarray(a).astype(dtype), tree)
