"""``Revolve``: exact BPTT with ``k`` stored carries and the fewest step recomputations.

Binomial checkpointing (Griewank 1992, "Achieving logarithmic growth of temporal and spatial
complexity in reverse automatic differentiation"; Griewank & Walther 2000, "Algorithm 799:
revolve"). Write the run in scan order as ``c_{t+1} = F_t(c_t)``, ``t = 0 … T-1`` (one masked
step of the runner's loop: reset, cell step, ``valid`` mask; with ``reverse=True`` the inputs
are flipped along time first). The backward pass needs each ``c_t`` to take the pullback of
``F_t``; autodiff stores all of them (``O(T·carry)`` memory, more with the gate residuals).
Revolve holds at most ``k = snapshots`` carries (``c_0`` included) and recomputes the others.

The recursion. To reverse ``L`` steps from a stored ``c_a`` with ``f`` free snapshots:

* ``f = 0``: for ``j = L-1 … 0``, advance ``j`` steps from ``c_a`` and reverse step ``a + j``
  (``L(L-1)/2`` advances);
* ``f ≥ L-1``: advance once through the segment storing every carry, then reverse;
  ``L - 1`` advances;
* otherwise advance ``m`` steps, store ``c_{a+m}``, reverse the last ``L - m`` steps with
  ``f - 1`` free snapshots, then the first ``m`` with ``f``:
  ``t(L, s) = min_m [m + t(L - m, s - 1) + t(m, s)]`` with ``s = f + 1`` snapshots.

With ``β(s, r) = C(s + r, s)`` (the most steps ``s`` snapshots reverse with every step advanced
at most ``r`` times) and ``r`` the integer with ``β(s, r-1) < T ≤ β(s, r)``, the minimum is
``t(T, s) = r·T - β(s+1, r-1)`` (Griewank 1992), reached by any split with
``β(s, r-2) ≤ m ≤ β(s, r-1)`` and ``β(s-1, r-1) ≤ T - m ≤ β(s-1, r)``; we take the
largest.
Convention: ``t`` counts the *advances*, the step evaluations of the backward pass that only
recompute a carry. It counts neither the forward pass (``T`` steps) nor the ``T`` pullbacks,
each of which evaluates its step once more to linearise it (:func:`rnn_jax.revolve_steps`). Memory of
the backward pass: ``k`` carries (plus the working carry and its cotangent), against ``T``
carries for storing everything; the price is ``≈ (r - 1)·T`` extra steps, with
``r ≈ (k!·T)^{1/k}``.

The schedule is decided in Python at trace time (``T`` is static) and run by one
``lax.fori_loop`` over its rows (restore a snapshot; advance ``n`` steps; store a snapshot;
reverse one step), so the traced program does not grow with ``T`` (traced node by node, the
recursion's leaves alone would be a number of loops growing linearly with ``T``). A reverse
step is ``jax.vjp`` of the masked step w.r.t. the carry, params and ``x``, so every cell works,
including one without a hand-written backward.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src.cell import Cell
from rnn_jax._src.gradients import GradientMethod, cotangents, gradient_method, perturbed
from rnn_jax._src.scan import in_scan_order, loop, masked_step


def beta(s: int, r: int) -> int:
    """``β(s, r) = C(s + r, s)``, 0 for ``r < 0``: how many steps ``s`` snapshots can reverse
    when no step is advanced more than ``r`` times."""
    return math.comb(s + r, s) if r >= 0 else 0


def _repetitions(L: int, s: int) -> int:
    """The smallest ``r ≥ 0`` with ``β(s, r) ≥ L`` (exponential then binary search)."""
    hi = 1
    while beta(s, hi) < L:
        hi *= 2
    lo = -1                                   # β(s, lo) < L ≤ β(s, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if beta(s, mid) >= L else (mid, hi)
    return hi


def _check_int(value: Any, argname: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argname} must be a Python int, got {value!r}")
    if value < low:
        raise ValueError(f"{argname} must be an int >= {low}, got {value!r}")
    return value


def revolve_steps(T: int, snapshots: int) -> int:
    """The advances (step recomputations) of :class:`Revolve`'s backward pass over ``T`` steps
    with ``snapshots`` stored carries: ``r·T - β(s+1, r-1)``, ``s = min(snapshots, T)``.

    Not counted: the forward pass's ``T`` steps and the one evaluation of each step inside its
    pullback (``T`` more). ``snapshots ≥ T`` gives ``T - 1``, ``snapshots = 1`` ``T(T-1)/2``."""
    T = _check_int(T, "T", 0)
    s = min(_check_int(snapshots, "snapshots", 1), max(T, 1))
    if T <= 1:
        return 0
    r = _repetitions(T, s)
    return r * T - beta(s + 1, r - 1)


def _split(L: int, f: int) -> int:
    """An optimal first advance ``m`` for ``L`` steps with ``f ≥ 1`` free snapshots."""
    s = f + 1
    r = _repetitions(L, s)
    return min(beta(s, r - 1), L - beta(s - 1, r - 1))


def schedule(T: int, snapshots: int) -> np.ndarray:
    """The backward pass as rows ``(load, t, n, store, turn)``, int32 ``(R, 5)``: restore
    snapshot ``load`` (``-1``: keep the working carry), which is ``c_t``; advance ``n`` steps;
    store the working carry in snapshot ``store`` (``-1``: none); if ``turn``, reverse step
    ``t + n``. Snapshot 0 holds ``c_0``; at most ``min(snapshots, T)`` are used."""
    ops: list[tuple] = []

    def reverse(a: int, L: int, f: int, slot: int) -> None:
        while L > 0:
            if f == 0 or L == 1:                 # only c_a: advance from it for every step
                for j in reversed(range(L)):
                    ops.extend([("load", slot, a), ("adv", a, j), ("turn", a + j)])
                return
            if f >= L - 1:                       # room for every carry of the segment
                ops.append(("load", slot, a))
                for i in range(1, L):
                    ops.extend([("adv", a + i - 1, 1), ("store", slot + i)])
                ops.append(("turn", a + L - 1))
                for j in reversed(range(L - 1)):
                    ops.extend([("load", slot + j, a + j), ("turn", a + j)])
                return
            m = _split(L, f)
            ops.extend([("load", slot, a), ("adv", a, m), ("store", slot + 1)])
            reverse(a + m, L - m, f - 1, slot + 1)
            L = m                                # then the first m steps, same snapshots

    reverse(0, T, min(snapshots, T) - 1, 0)
    order = {"load": 0, "adv": 1, "store": 2, "turn": 3}
    rows: list[list[int]] = []
    last, time = 4, -1                           # field filled last in rows[-1]; time of carry
    for op in ops:
        kind = op[0]
        if (kind == "load" and op[2] == time) or (kind == "adv" and op[2] == 0):
            continue                             # the working carry is already c_t
        if order[kind] <= last:
            rows.append([-1, time, 0, -1, 0])
        row, last = rows[-1], order[kind]
        if kind == "load":
            row[0], row[1], time = op[1], op[2], op[2]
        elif kind == "adv":
            row[2], time = op[2], time + op[2]
        elif kind == "store":
            row[3] = op[1]
        else:
            row[4] = 1
    return np.asarray(rows, np.int32).reshape(-1, 5)


def batched_step(cell: Cell, valid: bool, resets: bool) -> Callable:
    """``step(params, carry, x, v, r) -> (carry, y)`` over the batch: the runner's one masked
    step (:func:`rnn_jax._src.scan.masked_step`) mapped over ``B``; ``v``/``r`` ``(B,)`` or
    None."""
    return jax.vmap(masked_step(cell),
                    in_axes=(None, 0, 0, 0 if valid else None, 0 if resets else None))


def backward(cell: Cell, snapshots: int, params: Any, xs: jax.Array, carry0: Any,
             valid: Any, resets: Any, dfinal: Any, dys: jax.Array, with_dxs: bool = True):
    """``(dparams, dcarry0, dxs)`` of a forward scan (``t = 0 … T-1``, inputs in scan order)
    given ``(dfinal, dys)``, by the :func:`schedule`. Parameter gradients summed in float32 at
    least. Without ``with_dxs`` the inputs are not differentiated and ``dxs`` is None (no
    ``(T, B, I)`` buffer)."""
    T, B = xs.shape[0], xs.shape[1]
    step = batched_step(cell, valid is not None, resets is not None)
    acc0 = jax.tree.map(lambda a: jnp.zeros(a.shape, jnp.promote_types(a.dtype, jnp.float32)),
                        params)
    if T == 0:
        return (jax.tree.map(lambda a, p: a.astype(p.dtype), acc0, params), dfinal,
                xs if with_dxs else None)
    rows = jnp.asarray(schedule(T, snapshots))
    n_slots = min(snapshots, T) + 1              # the last one takes the rows' non-stores

    def at(a, t):
        return None if a is None else jax.lax.dynamic_index_in_dim(a, t, keepdims=False)

    def advance(t, c):
        return step(params, c, at(xs, t), at(valid, t), at(resets, t))[0]

    def turn(c, dc, t):
        v, r, x = at(valid, t), at(resets, t), at(xs, t)
        if with_dxs:
            _, pull = jax.vjp(lambda c, p, x: step(p, c, x, v, r), c, params, x)
            return pull((dc, at(dys, t)))
        _, pull = jax.vjp(lambda c, p: step(p, c, x, v, r), c, params)
        return (*pull((dc, at(dys, t))), None)

    def skip(c, dc, t):
        dx = jnp.zeros((B, xs.shape[2]), xs.dtype) if with_dxs else None
        return dc, jax.tree.map(jnp.zeros_like, params), dx

    def body(i, state):
        cur, snaps, dc, acc, dxs = state
        load, t, n, store, rev = (rows[i, j] for j in range(5))
        cur = jax.tree.map(lambda s, c: jnp.where(
            load >= 0, jax.lax.dynamic_index_in_dim(s, jnp.maximum(load, 0), keepdims=False),
            c), snaps, cur)
        cur = jax.lax.fori_loop(t, t + n, advance, cur)
        slot = jnp.where(store >= 0, store, n_slots - 1)
        snaps = jax.tree.map(lambda s, c: jax.lax.dynamic_update_index_in_dim(s, c, slot, 0),
                             snaps, cur)
        dc, dp, dx = jax.lax.cond(rev > 0, turn, skip, cur, dc, t + n)
        acc = jax.tree.map(lambda a, d: a + d.astype(a.dtype), acc, dp)
        if with_dxs:
            dxs = jax.lax.dynamic_update_index_in_dim(dxs, dx, jnp.where(rev > 0, t + n, T), 0)
        return cur, snaps, dc, acc, dxs

    snaps = jax.tree.map(lambda c: jnp.zeros((n_slots, *c.shape), c.dtype).at[0].set(c), carry0)
    dxs = jnp.zeros((T + 1, *xs.shape[1:]), xs.dtype) if with_dxs else None
    _, _, dcarry0, acc, dxs = jax.lax.fori_loop(0, rows.shape[0], body,
                                                (carry0, snaps, dfinal, acc0, dxs))
    dparams = jax.tree.map(lambda a, p: a.astype(p.dtype), acc, params)
    return dparams, dcarry0, (dxs[:T] if with_dxs else None)


@gradient_method
class Revolve(GradientMethod):
    """Exact BPTT that stores at most ``snapshots`` carries and recomputes the rest, with the
    fewest recomputations possible (binomial checkpointing, Griewank & Walther 2000).

    Its gradients equal :class:`rnn_jax.Autodiff`'s to rounding, for any cell (a cell of your
    own included: the reverse step is ``jax.vjp`` of the step). The forward pass keeps no
    residuals; the backward pass holds ``snapshots`` carries (``c_0`` counted) instead of every
    step's carry and gate activations, and evaluates :func:`rnn_jax.revolve_steps` extra steps:
    ``T - 1`` for ``snapshots ≥ T``, about ``(r - 1)·T`` with ``r ≈ (k!·T)^{1/k}`` in general,
    ``T(T-1)/2`` for ``snapshots = 1``. Use it where the sequence is too long for the
    backward pass to store a carry per step (:class:`rnn_jax.Checkpointed`'s memory) and a few
    times the forward work is affordable. Parameter gradients are summed in float32 at least.
    Reverse mode only (``jax.grad``, ``jax.vjp``); not differentiable twice.

    Attributes:
      snapshots: ``k ≥ 1``, the most carries the backward pass stores.
    """

    snapshots: int

    def __post_init__(self) -> None:
        k = self.snapshots
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"Revolve: snapshots must be a positive Python int, got {k!r}")
        if k < 1:
            raise ValueError(f"Revolve: snapshots must be a positive int, got {k!r}")

    def scan(self, cell, params, xs, carry, valid, resets, *, reverse, plan):
        def forward(params, xs, carry, valid, resets):
            return loop(cell, params, xs, carry, valid, resets, reverse=reverse,
                        unroll=plan.unroll, fuse=plan.fuse,
                        features_first=plan.forward_features_first)

        def fwd(params, xs, carry, valid, resets):
            with_dxs = perturbed(xs)
            params, xs, carry, valid, resets = jax.tree.map(
                lambda a: a.value, (params, xs, carry, valid, resets))
            out = forward(params, xs, carry, valid, resets)
            return out, (params, xs, carry, valid, resets, with_dxs)

        def bwd(res, cts):
            params, xs, carry, valid, resets, with_dxs = res
            dfinal, dys = cotangents(cts)
            flip = in_scan_order(reverse)
            dparams, dcarry0, dxs = backward(cell, self.snapshots, params, flip(xs), carry,
                                             flip(valid), flip(resets), dfinal, flip(dys),
                                             with_dxs)
            return dparams, flip(dxs), dcarry0, None, None

        run = jax.custom_vjp(forward)
        run.defvjp(fwd, bwd, symbolic_zeros=True)
        return run(params, xs, carry, valid, resets)
