"""Evaluating a nonlinear RNN in parallel over time by Newton's method (DEER, quasi-DEER).

A run of one sequence is the solution ``c_{0…T-1}`` (carries flattened to vectors of size ``n``
with ``ravel_pytree``, steps ``s`` in scan order) of the triangular system

    c_s = F_s(c_{s-1}),   c_{-1} = c0,   (c_s, y_s) = step_s(c_{s-1}),

where ``step_s`` is the runner's masked step (:func:`rnn_jax._src.scan.loop`): a reset zeroes
the incoming carry (``∂F_s/∂c = 0``), an invalid step keeps it (``F_s = identity``, ``y_s = 0``).
Newton's method linearises every step at the current guess ``c⁽ⁱ⁾`` and solves the resulting
LINEAR recurrence for the whole trajectory at once (Lim et al. 2024, DEER)::

    Δ_s = J_s Δ_{s-1} + r_s,   Δ_{-1} = 0,   c⁽ⁱ⁺¹⁾ = c⁽ⁱ⁾ + Δ,
    J_s = ∂F_s/∂c (c⁽ⁱ⁾_{s-1}),   r_s = F_s(c⁽ⁱ⁾_{s-1}) − c⁽ⁱ⁾_s        (the residual),

with ``linear_recurrence`` (:mod:`rnn_jax._src.parallel_scan`) (``associative_scan``: ``O(log T)``
depth). ``jacobian="full"`` keeps ``J_s`` (``(n, n)``: ``O(T n³)`` work per iteration);
``"diagonal"`` keeps ``diag J_s`` (quasi-DEER, Gonzalez et al. 2024: the scan is ``O(T n)``,
though reading the diagonal off a generic cell still costs ``n`` JVPs per step). Any choice of
``J`` leaves the solution a fixed point, and since ``c_s`` depends only on earlier steps, after
``k`` iterations the first ``k`` steps are exact: undamped iterations converge in at most ``T``.
Full Newton converges quadratically near the solution; contractive dynamics (negative largest
Lyapunov exponent: products of ``J_s`` shrink) converge in a few iterations, chaotic or
expansive ones slowly (the scan's products grow), up to ``T``.

Damping ``λ ≥ 0`` (motivated by ELK, Gonzalez et al. 2024, which adds a trust region
``λ Σ_s |c_s − c⁽ⁱ⁾_s|²`` to the Newton step and solves it with a Kalman smoother): each step of
the linear solve is the trust-region (Kalman filter) update given the already-updated past,
``c_s = argmin |c − J_s c_{s-1} − b_s|² + λ |c − c⁽ⁱ⁾_s|²``, i.e.
``Δ_s = (J_s Δ_{s-1} + r_s) / (1 + λ)``. ``λ = 0`` is Newton; large ``λ`` takes short, stable
steps (the propagated products shrink by ``(1+λ)^-k``); the fixed points are unchanged, but the
``T``-iteration guarantee is lost.

Stopping: after ``i`` iterations the residual ``ρ = max_s |r_s|_∞`` of ``c⁽ⁱ⁾`` is checked;
converged when ``ρ ≤ tol · max(1, max_s |c_s|_∞)``, and the returned carries and outputs are
those of one evaluation of all steps at ``c⁽ⁱ⁾`` (``F_s(c⁽ⁱ⁾_{s-1})``, ``y_s``). Not converged
after ``max_iters``: the sequential ``lax.scan`` (``on_failure="sequential"``, inside ``jit``
by ``lax.cond``, taken when any sequence failed) or NaNs for the failed sequences (``"nan"``).

Backward (``jax.custom_vjp``), at the returned trajectory: with ``λ_s = ∂L/∂c_s``,
``λ_{T-1} = ∂L/∂c_final`` and ``λ_{s-1} = J_sᵀ λ_s + (∂y_s/∂c_{s-1})ᵀ ∂L/∂y_s``, the adjoint
recurrence is linear and solved by a reverse ``associative_scan`` with the FULL Jacobians (their
diagonals would give a different, wrong gradient), ``∂L/∂c0 = λ_{-1}``; then the parameter and
input gradients are one pullback of the step mapped over all steps and sequences with cotangents
``(λ_s, ∂L/∂y_s)``.

References: Lim et al. 2024, "Parallelizing non-linear sequential models over the sequence
length" (ICLR); Gonzalez et al. 2024, "Towards scalable and stable parallelization of nonlinear
RNNs" (NeurIPS); Danieli et al. 2025, "ParaRNN".
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnn_jax._src import validate as v
from rnn_jax._src.cell import Cell, check_real, check_size
from rnn_jax._src.compiled import compiled_when_concrete
from rnn_jax._src.gradients import GradientMethod, gradient_method
from rnn_jax._src.parallel_scan import linear_recurrence
from rnn_jax._src.runner import flatten, unflatten
from rnn_jax._src.scan import loop, masked_step


class ParallelInfo(NamedTuple):
    """What the Newton solve did, per sequence (arrays of the batch shape).

    Attributes:
      iterations: Newton iterations taken (int32).
      residual: ``max_s |F_s(c_{s-1}) − c_s|_∞`` of the last iterate.
      converged: whether ``residual ≤ tol · max(1, max |c|)`` within ``max_iters``. Where False
        the outputs are the sequential scan's or NaNs (``on_failure``), never the iterate.
    """

    iterations: jax.Array
    residual: jax.Array
    converged: jax.Array


@gradient_method
class ParallelInTime(GradientMethod):
    """A run evaluated by Newton iterations over the whole sequence (DEER / quasi-DEER).

    Forward: :mod:`rnn_jax._src.parallel_time` (module docstring: the maths, costs and when it
    converges); backward: the adjoint linear recurrence by a reverse parallel scan with the
    full Jacobians, exact at the returned trajectory. Reverse mode only. Works for every cell.

    Attributes:
      jacobian: ``"full"`` (Newton, ``O(T n³)`` per iteration) or ``"diagonal"`` (quasi-Newton).
      tol: convergence threshold on the residual relative to ``max(1, max |c|)``; None:
        ``eps^(3/4)`` of the carry's dtype (about ``2e-12`` in float64, ``6e-6`` in float32).
      max_iters: at most this many iterations; None: ``T`` (undamped Newton is exact by then).
      damping: ``λ ≥ 0``, the trust-region damping ``Δ_s = (J_s Δ_{s-1} + r_s) / (1 + λ)``.
      on_failure: ``"sequential"``: not converged, run the sequential scan instead;
        ``"nan"``: return NaNs for the sequences that did not converge.
    """

    jacobian: str = "full"
    tol: Optional[float] = None
    max_iters: Optional[int] = None
    damping: float = 0.0
    on_failure: str = "sequential"

    def __post_init__(self) -> None:
        name = type(self).__name__
        for arg, allowed in (("jacobian", ("full", "diagonal")),
                             ("on_failure", ("sequential", "nan"))):
            value = getattr(self, arg)
            if not isinstance(value, str):
                raise TypeError(f"{name}: {arg} must be a string, one of {list(allowed)}, "
                                f"got {value!r}")
            v.check_choice(value, allowed, f"{name}: {arg}")
        if self.tol is not None and check_real(self.tol, f"{name}: tol") <= 0:
            raise ValueError(f"{name}: tol must be a positive number or None, got {self.tol!r}")
        if self.max_iters is not None:
            check_size(self.max_iters, f"{name}: max_iters")
        if check_real(self.damping, f"{name}: damping") < 0:
            raise ValueError(f"{name}: damping must be a number >= 0, got {self.damping!r}")

    def scan(self, cell, params, xs, carry, valid, resets, *, reverse, plan):
        final, ys, _ = solve(self, cell, params, xs, carry, valid, resets, reverse=reverse)
        return final, ys


def default_tol(dtype: Any) -> float:
    """``eps^(3/4)`` of ``dtype``: between its rounding floor and ``sqrt(eps)``."""
    return float(jnp.finfo(dtype).eps) ** 0.75


def _masked_step(cell: Cell, unravel):
    """The runner's masked step on flat carries: ``(params, c, x, valid, reset) -> (c, y)``."""
    one = masked_step(cell)

    def step(params, c_flat, x, valid, reset):
        new, y = one(params, unravel(c_flat), x, valid, reset)
        return ravel_pytree(new)[0].astype(c_flat.dtype), y
    return step


def _over_time(fn):
    """``fn(params, c, x, valid, reset)`` mapped over the steps of one sequence."""
    return jax.vmap(fn, in_axes=(None, 0, 0, 0, 0))


def _previous(c0: jax.Array, cs: jax.Array) -> jax.Array:
    """The carry each step reads, ``(c0, c_0, …, c_{T-2})``: ``(T, n)``."""
    return jnp.concatenate([c0[None], cs[:-1]])


def _jacobians(step, params, prev, xs, valid, resets) -> jax.Array:
    """``∂F_s/∂c`` at every step of one sequence: ``(T, n, n)``."""
    jac = jax.jacfwd(lambda p, c, x, vv, r: step(p, c, x, vv, r)[0], argnums=1)
    return _over_time(jac)(params, prev, xs, valid, resets)


def _newton(method: ParallelInTime, step, params, c0, xs, valid, resets):
    """Newton iterations for a batch: ``(cs (B, T, n), ys (B, T, O), info)``, scan order."""
    T, dtype = xs.shape[1], c0.dtype
    tol = default_tol(dtype) if method.tol is None else method.tol
    max_iters = T if method.max_iters is None else method.max_iters
    shrink = 1.0 / (1.0 + method.damping)
    diagonal = method.jacobian == "diagonal"
    steps = _over_time(step)

    def one(c0, xs, valid, resets):                     # one sequence; vmapped over the batch
        def evaluate(cs):
            f, ys = steps(params, _previous(c0, cs), xs, valid, resets)
            return f, ys, jnp.max(jnp.abs(f - cs))

        def done(cs, res):
            return res <= tol * jnp.maximum(1.0, jnp.max(jnp.abs(cs)))

        def body(state):
            k, cs, f, _, _ = state
            jac = _jacobians(step, params, _previous(c0, cs), xs, valid, resets)
            a = jnp.diagonal(jac, axis1=-2, axis2=-1) if diagonal else jac
            if method.damping:
                a = a * shrink
            delta = linear_recurrence(a, (f - cs) * shrink if method.damping else f - cs,
                                      jnp.zeros_like(c0), diagonal=diagonal)
            cs = cs + delta
            return (k + 1, cs, *evaluate(cs))

        cs = jnp.broadcast_to(c0, (T, c0.shape[0]))      # the initial carry, broadcast
        state = (jnp.zeros((), jnp.int32), cs, *evaluate(cs))
        k, cs, f, ys, res = jax.lax.while_loop(
            lambda s: (s[0] < max_iters) & ~done(s[1], s[4]), body, state)
        return f, ys, ParallelInfo(k, res, done(cs, res))

    return jax.vmap(one)(c0, xs, valid, resets)


def _sequential(step, params, c0, xs, valid, resets):
    """The sequential scan of a batch (scan order): ``(cs (B, T, n), ys (B, T, O))``."""
    def body(c, inp):
        new, y = jax.vmap(step, in_axes=(None, 0, 0, 0, 0))(params, c, *inp)
        return new, (new, y)

    tm = (jnp.moveaxis(a, 1, 0) for a in (xs, valid, resets))
    _, (cs, ys) = jax.lax.scan(body, c0, tuple(tm))
    return jnp.moveaxis(cs, 0, 1), jnp.moveaxis(ys, 0, 1)


def _forward(method, step, params, c0, xs, valid, resets):
    cs, ys, info = _newton(method, step, params, c0, xs, valid, resets)
    if method.on_failure == "sequential":
        cs, ys = jax.lax.cond(jnp.all(info.converged), lambda: (cs, ys),
                              lambda: _sequential(step, params, c0, xs, valid, resets))
    else:
        bad = ~info.converged[:, None, None]
        cs, ys = (jnp.where(bad, jnp.full((), jnp.nan, a.dtype), a) for a in (cs, ys))
    return cs, ys, info


def solve(method: ParallelInTime, cell: Cell, params: Any, xs: jax.Array, carry: Any,
          valid: Optional[jax.Array], resets: Optional[jax.Array], *, reverse: bool):
    """The runner's interface (time-major ``xs (T, B, I)``, carry leaves ``(B, ...)``, masks
    ``(T, B)`` or None): ``(final (B, ...), ys (T, B, O), info)``, differentiable."""
    T, B = xs.shape[:2]
    if T == 0 or B == 0:                      # nothing to solve
        final, ys = loop(cell, params, xs, carry, valid, resets, reverse=reverse, unroll=1)
        return final, ys, ParallelInfo(jnp.zeros((B,), jnp.int32), jnp.zeros((B,), xs.dtype),
                                       jnp.ones((B,), bool))
    unravel = ravel_pytree(jax.tree.map(lambda a: a[0], carry))[1]
    step = _masked_step(cell, unravel)
    c0 = jax.vmap(lambda c: ravel_pytree(c)[0])(carry)                       # (B, n)

    def scan_order(a, fill):                  # (T, B, ...) -> (B, T, ...) in scan order
        a = jnp.full((T, B), fill) if a is None else a
        return jnp.moveaxis(a[::-1] if reverse else a, 0, 1)

    def time_order(a):                        # (B, T, ...) in scan order -> (T, B, ...)
        a = jnp.moveaxis(a, 1, 0)
        return a[::-1] if reverse else a

    @jax.custom_vjp
    def solved(params, xs, c0, valid, resets):
        cs, ys, info = _forward(method, step, params, c0, xs, valid, resets)
        return cs[:, -1], ys, info

    def fwd(params, xs, c0, valid, resets):
        cs, ys, info = _forward(method, step, params, c0, xs, valid, resets)
        return (cs[:, -1], ys, info), (params, xs, c0, cs, valid, resets)

    def bwd(res, cotangents):
        params, xs, c0, cs, valid, resets = res
        dfinal, dys, _ = cotangents
        prev = jax.vmap(_previous)(c0, cs)
        steps = jax.vmap(_over_time(step), in_axes=(None, 0, 0, 0, 0))   # all (B, T) steps
        _, pull = jax.vjp(lambda p, c, x: steps(p, c, x, valid, resets), params, prev, xs)
        _, g, _ = pull((jnp.zeros_like(cs), dys))          # (∂y_s/∂c_{s-1})ᵀ ∂L/∂y_s
        jac = jax.vmap(_jacobians, in_axes=(None, None, 0, 0, 0, 0))(
            step, params, prev, xs, valid, resets)
        jac_t = jnp.swapaxes(jac, -1, -2)
        z = jax.vmap(lambda a, b, z0: linear_recurrence(a, b, z0, diagonal=False,
                                                        reverse=True))(jac_t, g, dfinal)
        lam = jnp.concatenate([z[:, 1:], dfinal[:, None]], axis=1)   # ∂L/∂c_s
        dparams, _, dxs = pull((lam, dys))
        return dparams, dxs, z[:, 0], None, None

    solved.defvjp(fwd, bwd)
    final, ys, info = solved(params, scan_order(xs, 0), c0, scan_order(valid, True),
                          scan_order(resets, False))
    return (jax.vmap(unravel)(final), time_order(ys), info)


def parallel_in_time(cell: Cell, params: Any, xs: jax.Array, initial_carry: Any = None, *,
                     lengths: Optional[jax.Array] = None, resets: Optional[jax.Array] = None,
                     reverse: bool = False, jacobian: str = "full", tol: Optional[float] = None,
                     max_iters: Optional[int] = None, damping: float = 0.0,
                     on_failure: str = "sequential") -> tuple[Any, jax.Array, ParallelInfo]:
    """:func:`rnn_jax.run` (batch-first ``xs (*batch, T, I)``) evaluated by Newton iterations,
    with a report: ``(final_carry, ys, info)``, ``info`` a :class:`ParallelInfo` of arrays of
    the batch shape. The options are :class:`ParallelInTime`'s; ``run(..., grad=
    ParallelInTime(...))`` gives the same values and gradients without ``info``. Under
    ``jax.jit`` pass ``cell`` and the options as static."""
    method = ParallelInTime(jacobian, tol, max_iters, damping, on_failure)
    v.check_cell(cell)
    if not isinstance(reverse, bool):
        raise TypeError(f"reverse must be True or False, got {reverse!r}")
    xs, _, _, lengths, resets = v.check_sequences(cell, xs, lengths, resets, False)
    return _parallel(cell, params, xs, initial_carry, lengths, resets, reverse, method)


def _parallel_in_time(cell: Cell, params: Any, xs: jax.Array, initial_carry: Any,
                      lengths: Any, resets: Any, reverse: bool, method: ParallelInTime):
    flat = flatten(cell, params, xs, initial_carry, lengths, resets, False)
    final, ys, info = solve(method, cell, params, flat.xs, flat.carry, flat.valid, flat.resets,
                            reverse=reverse)
    final, ys = unflatten(flat, final, ys, False)
    return final, ys, jax.tree.map(lambda a: a.reshape(flat.batch_shape), info)


_parallel = compiled_when_concrete(_parallel_in_time, static_argnums=(0, 6, 7))
