"""Every gradient method on one problem: its error against autodiff, XLA memory and time.

The problem is a cell with parameters ``θ`` (``P`` entries), inputs ``xs (B, T, I)`` and the
linear loss of fixed cotangents ``δy (B, T, O)`` (the convention of ``rnn_jax.bptt`` and
:func:`rnn_jax.uoro`):

.. math::  L(θ) = Σ_{b,t} ⟨δy_{b,t}, y_{b,t}(θ)⟩, \\qquad g = ∂L/∂θ ∈ R^P,

with ``g`` the reference computed by :class:`rnn_jax.Autodiff`. Every method ``M`` gives an
estimate ``ĝ_M``, compiled once as ``jax.jit(θ ↦ ĝ_M(θ))``, and is reported by

* ``max_rel_err = max_i |ĝ_i − g_i| / max(1e-8, |ĝ_i| + |g_i|)`` over every entry
  (:func:`rnn_jax._src.verify.rel_err`): rounding (far below ``1e-10`` in float64) for the exact
  methods (Checkpointed, ManualBPTT, Revolve, RTRL, ParallelInTime), up to 1 otherwise;
* ``norm_rel_err = ‖ĝ − g‖₂ / ‖g‖₂``, the error of an estimator: for the mean of ``N``
  independent UORO estimates (Tallec & Ollivier 2017, unbiased: ``E ĝ = g``) its root mean
  square falls as ``1/√N``, while a biased method (truncated BPTT, Williams & Peng 1990)
  keeps its bias;
* ``angle_deg = ∠(ĝ, g) = 2 atan2(‖u − v‖, ‖u + v‖)``, ``u, v`` the unit vectors of ``ĝ, g``
  (accurate near 0, unlike ``arccos``): the direction a biased gradient steps in;
* ``temp_bytes``: ``memory_analysis().temp_size_in_bytes`` of the compiled gradient, XLA's
  scratch buffers beyond arguments and outputs (the residuals the backward pass stores: ``O(T)``
  carries and gate activations for autodiff, ``k`` carries for ``Revolve(k)``); None where the
  backend reports nothing;
* ``time_ms``: the median wall time of ``repeats`` calls after one warm call (compilation
  excluded).

RTRL costs ``O(n² P)`` per step and holds ``P × P`` one-hot tangents (:mod:`rnn_jax._src.rtrl`),
so it is run only for ``P ≤ rtrl_max_params``. ParallelInTime's Newton iterations and
convergence come from :func:`rnn_jax.parallel_in_time` on the same problem.
"""

from __future__ import annotations

import csv
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnn_jax._src.cell import Cell, backward_of
from rnn_jax._src.diagnostics.truncation import gradient_angle
from rnn_jax._src.gradients import Autodiff, Checkpointed
from rnn_jax._src.manual import ManualBPTT
from rnn_jax._src.parallel_time import ParallelInTime, parallel_in_time
from rnn_jax._src.revolve import Revolve, revolve_steps
from rnn_jax._src.rtrl import RTRL
from rnn_jax._src.runner import run
from rnn_jax._src.uoro import uoro
from rnn_jax._src.verify import rel_err

FIELDS = ("method", "max_rel_err", "norm_rel_err", "angle_deg", "temp_bytes", "time_ms", "note")


class MethodRow(NamedTuple):
    """One method's row of :func:`compare_methods` (the module docstring defines the columns).

    A method that was not run (RTRL on a large problem, ManualBPTT on a cell without a
    hand-written backward) has NaN errors, None memory and time, and says why in ``note``.
    """

    method: str
    max_rel_err: float
    norm_rel_err: float
    angle_deg: float
    temp_bytes: Optional[int]
    time_ms: Optional[float]
    note: str = ""


def _measure(fn: Callable, params: Any, repeats: int) -> tuple[Any, Optional[int], float]:
    """``(fn(params), temp bytes of the compiled fn, median ms of repeats calls)``."""
    compiled = jax.jit(fn).lower(params).compile()
    analysis = compiled.memory_analysis()
    temp = None if analysis is None else int(analysis.temp_size_in_bytes)
    out = jax.block_until_ready(compiled(params))          # warm call
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(params))
        times.append(1e3 * (time.perf_counter() - start))
    return out, temp, statistics.median(times)


def _row(name: str, estimate: Any, reference: Any, temp: Optional[int], ms: float,
         note: str = "") -> MethodRow:
    e, g = ravel_pytree(estimate)[0], ravel_pytree(reference)[0]
    return MethodRow(name, rel_err(estimate, reference),
                     float(jnp.linalg.norm(e - g) / jnp.linalg.norm(g)), gradient_angle(e, g),
                     temp, ms, note)


def _skipped(name: str, note: str) -> MethodRow:
    return MethodRow(name, math.nan, math.nan, math.nan, None, None, note)


def compare_methods(cell: Cell, params: Any, xs: jax.Array, dys: jax.Array, key: jax.Array, *,
                    snapshots: Sequence[int] = (4, 16), truncate: int = 10,
                    uoro_samples: int = 100, rtrl_max_params: int = 4096,
                    repeats: int = 3) -> list[MethodRow]:
    """The gradient of ``L = Σ ⟨dys, ys⟩`` by every method, against :class:`rnn_jax.Autodiff`.

    Args:
      cell, params: any cell and its parameters (float64 for errors at rounding level).
      xs: inputs ``(B, T, I)``, batch first. dys: cotangents ``(B, T, O)``.
      key: PRNG key of UORO's random signs (one estimate, then ``uoro_samples`` others).
      snapshots: the ``k`` of each ``Revolve(k)`` row. truncate: ``ManualBPTT(truncate=k)``'s.
      uoro_samples: ``N``, the estimates averaged in the second UORO row.
      rtrl_max_params: RTRL is run only if ``P`` (the params' entries) is at most this.
      repeats: timed calls per method, after one warm call.

    Returns:
      One :class:`MethodRow` per method, in this order: Autodiff (the reference: zero error),
      Checkpointed, ManualBPTT, Revolve(k) for each k, RTRL, ParallelInTime (full Jacobians),
      ManualBPTT(truncate=k), UORO (one estimate), UORO (mean of N).
    """
    xs, dys = jnp.asarray(xs), jnp.asarray(dys)
    if xs.ndim != 3 or dys.shape != (*xs.shape[:2], cell.output_size):
        raise ValueError(f"xs must be (B, T, I) and dys (B, T, {cell.output_size}), got "
                         f"{xs.shape} and {dys.shape}")
    for value, argname in ((uoro_samples, "uoro_samples"), (repeats, "repeats"),
                           (truncate, "truncate"), *((k, "snapshots") for k in snapshots)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{argname} must be a positive int, got {value!r}")
    T = xs.shape[1]

    def by(method: Any) -> Callable:
        return jax.grad(lambda p: jnp.vdot(dys, run(cell, p, xs, grad=method)[1]))

    ref, temp, ms = _measure(by(Autodiff()), params, repeats)
    rows = [_row("Autodiff", ref, ref, temp, ms, "reference: jax.grad through lax.scan")]

    def push(name: str, fn: Callable, note: str = "") -> None:
        out, temp, ms = _measure(fn, params, repeats)
        rows.append(_row(name, out, ref, temp, ms, note))

    def push_manual(name: str, method: ManualBPTT, note: str) -> None:
        if backward_of(cell) is None:   # none, or not this cell's (its recur was replaced)
            rows.append(_skipped(name, "the cell has no hand-written backward step"))
        else:
            push(name, by(method), note)

    push("Checkpointed", by(Checkpointed()), "recomputes each step once")
    push_manual("ManualBPTT", ManualBPTT(), "hand-written backward step")
    for k in snapshots:
        push(f"Revolve({k})", by(Revolve(k)),
             f"{revolve_steps(T, k)} recomputed steps (forward pass: {T})")
    P = ravel_pytree(params)[0].size
    if P <= rtrl_max_params:
        push("RTRL", by(RTRL()), f"P = {P} sensitivities per carry entry")
    else:
        rows.append(_skipped("RTRL", f"not run: P = {P} params > {rtrl_max_params} "
                                     f"(O(n^2 P) per step, P x P tangents)"))
    info = jax.jit(lambda p: parallel_in_time(cell, p, xs)[2])(params)
    push("ParallelInTime", by(ParallelInTime()),
         f"full Jacobians: {int(jnp.max(info.iterations))} Newton iterations (most over "
         f"the batch), converged {bool(jnp.all(info.converged))}")
    push_manual(f"ManualBPTT(truncate={truncate})", ManualBPTT(truncate=truncate),
                "biased: no gradient crosses a chunk boundary" if truncate < T
                else f"truncate >= T = {T}: the full gradient")
    k_one, k_many = jax.random.split(key)
    push("UORO", lambda p: uoro(cell, p, xs, k_one, dys)[0], "one unbiased estimate")
    keys = jax.random.split(k_many, uoro_samples)

    def mean(p: Any) -> Any:
        many = jax.vmap(lambda k: uoro(cell, p, xs, k, dys)[0])(keys)
        return jax.tree.map(lambda a: a.mean(0), many)

    push(f"UORO mean of {uoro_samples}", mean, f"{uoro_samples} independent estimates")
    return rows


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def format_methods(rows: Sequence[MethodRow]) -> str:
    """A fixed-width text table of :func:`compare_methods`' rows."""
    width = max([len("method"), *(len(r.method) for r in rows)]) + 2
    head = (f"{'method':<{width}}{'max rel err':>12}{'norm rel err':>13}{'angle deg':>11}"
            f"{'temp bytes':>12}{'ms':>10}  note")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.method:<{width}}{_fmt(r.max_rel_err, '.1e'):>12}"
                     f"{_fmt(r.norm_rel_err, '.1e'):>13}{_fmt(r.angle_deg, '.3g'):>11}"
                     f"{_fmt(r.temp_bytes, 'd'):>12}{_fmt(r.time_ms, '.2f'):>10}  {r.note}")
    return "\n".join(lines)


def write_methods_csv(rows: Sequence[MethodRow], path: str) -> None:
    """The rows as CSV with the header ``FIELDS``; missing values are empty."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for r in rows:
            writer.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v))
                             else v for v in r])
