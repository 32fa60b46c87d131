"""Running the benchmark: build every variant, time them interleaved, summarise each group.

A *group* is one (cell, shape, pass). All its variants (rnn_jax, its peers and the matmul-only
references) are compiled first (compile time kept apart), warmed up, then timed round-robin:
repetition ``r`` runs every variant once, starting from a position rotated by ``r``, so that
drift of the machine hits all variants alike. Each variant's figure is its median over the
repetitions. With ``Options.baseline``, the default ``run`` of the rnn_jax package of another
checkout joins every group as the variant ``baseline`` (:func:`ours.load_checkout`).
"""

from __future__ import annotations

import importlib
import os
import statistics
import sys
import time
from types import ModuleType
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from rnn_jax._src.bench import floor, ours
from rnn_jax._src.bench.environment import environment
from rnn_jax._src.bench.spec import SHAPES, Prepared, Problem, make_problem, matmul_flops

PEERS = ("flax", "equinox", "torch")
_PEER_MODULES = {p: f"rnn_jax._src.bench.peers_{p}" for p in PEERS}
_PEER_PACKAGES = {"flax": "flax", "equinox": "equinox", "torch": "torch"}


class Options(NamedTuple):
    """What to run. ``impls``: keep only variants whose name starts with one of these (rnn_jax's
    default, the floors and the baseline are always kept). ``baseline``: a checkout directory
    whose rnn_jax package is timed as the variant ``baseline``."""

    cells: tuple[str, ...] = ("lstm", "gru", "elman")
    shapes: tuple[tuple[int, int, int, int], ...] = SHAPES
    dtype: str = "float32"
    reps: int = 10
    warmup: int = 1
    passes: tuple[str, ...] = ("fwd", "fwdbwd")
    peers: tuple[str, ...] = PEERS
    impls: Optional[tuple[str, ...]] = None
    check: bool = True
    seed: int = 0
    baseline: Optional[str] = None


def available_peers(peers: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """The peers whose package imports, and a note for each one skipped."""
    found, notes = [], []
    for peer in peers:
        try:
            importlib.import_module(_PEER_PACKAGES[peer])
        except ImportError as err:
            notes.append(f"{peer} skipped: {err}")
        else:
            found.append(peer)
    return tuple(found), notes


def build(problem: Problem, pass_: str, peers: tuple[str, ...],
          core: Optional[ModuleType] = None,
          impls: Optional[tuple[str, ...]] = None,
          baseline: Optional[ours.Checkout] = None) -> list[Prepared]:
    """Compiles every variant of one group: rnn_jax first, then the baseline, the peers and the
    floors.

    With ``impls``, rnn_jax variants and peers that no prefix can select are not compiled
    (:func:`_keep` then drops the rest of the unselected variants).
    """
    def wanted(name: str) -> bool:
        return impls is None or name.startswith(impls) or any(p.startswith(name) for p in impls)

    prepared = ours.prepare(problem, pass_, core, keep=lambda impl: impl == "rnn_jax" or wanted(impl))
    if baseline is not None:
        prepared.append(ours.prepare_baseline(problem, pass_, baseline))
    for peer in peers:
        if wanted(peer):
            prepared += importlib.import_module(_PEER_MODULES[peer]).prepare(problem, pass_)
    return prepared + floor.prepare(problem, pass_)


def time_interleaved(prepared: list[Prepared], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall-clock milliseconds of ``reps`` calls of each variant, round-robin, after warm-up."""
    for p in prepared:
        for _ in range(warmup):
            p.call()
    times: dict[str, list[float]] = {p.impl: [] for p in prepared}
    n = len(prepared)
    for r in range(reps):
        for k in range(n):
            p = prepared[(r + k) % n]
            start = time.perf_counter()
            p.call()
            times[p.impl].append((time.perf_counter() - start) * 1e3)
    return times


def max_rel_error(a: Any, b: Any) -> float:
    """``max |a - b| / max(max |b|, 1e-30)`` over arrays or dicts of arrays."""
    if isinstance(a, dict):
        return max(max_rel_error(a[k], b[k]) for k in b)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def check_against_ours(prepared: list[Prepared]) -> dict[str, float]:
    """Each variant's relative error against rnn_jax's default (outputs for fwd, grads for fwdbwd)."""
    results = {p.impl: p.result() for p in prepared if not p.impl.startswith("floor:")}
    ys_ref, grads_ref = results["rnn_jax"]
    return {impl: max_rel_error(ys, ys_ref) if grads is None else max_rel_error(grads, grads_ref)
            for impl, (ys, grads) in results.items()}


def summarise(problem: Problem, pass_: str, prepared: list[Prepared],
              times: dict[str, list[float]], errors: dict[str, float]) -> list[dict[str, Any]]:
    """One JSON record per variant of the group, with ratios to every other variant."""
    medians = {impl: statistics.median(t) for impl, t in times.items()}
    floor_ms = min(medians[f] for f in floor.FLOOR_IMPLS)
    flops = matmul_flops(problem.cell, problem.shape, pass_)
    records = []
    for p in prepared:
        median = medians[p.impl]
        records.append({
            "cell": problem.cell, "impl": p.impl, "shape": list(problem.shape), "pass": pass_,
            "dtype": problem.dtype, "median_ms": median, "min_ms": min(times[p.impl]),
            "reps": len(times[p.impl]), "compile_s": p.compile_s,
            "gflops": flops / median / 1e6, "floor_ms": floor_ms,
            "floor_fraction": floor_ms / median, "memory": p.memory,
            "rel_error_vs_rnn_jax": errors.get(p.impl),
            "ratios": {other: median / m for other, m in medians.items() if other != p.impl},
        })
    return records


def _keep(prepared: list[Prepared], impls: Optional[tuple[str, ...]]) -> list[Prepared]:
    """Filters by name prefix; rnn_jax's default, the baseline and the floors are always kept."""
    if impls is None:
        return prepared
    always = ("rnn_jax", ours.BASELINE) + floor.FLOOR_IMPLS
    return [p for p in prepared if p.impl in always or p.impl.startswith(impls)]


def run_benchmark(options: Options = Options(), core: Optional[ModuleType] = None,
                  log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> dict[str, Any]:
    """Runs every (cell, shape, pass) group of ``options``; returns the JSON-ready result."""
    peers, notes = available_peers(options.peers)
    for note in notes:
        log(note)
    baseline = None if options.baseline is None else ours.load_checkout(options.baseline)
    start, env = time.time(), environment()
    if baseline is not None:
        env["baseline"] = {"path": baseline.path, "commit": baseline.commit,
                           "version": getattr(baseline.core, "__version__", None)}
    n = floor.peak_size()
    peak = floor.peak_gflops(options.dtype, n)
    records: list[dict[str, Any]] = []
    for cell in options.cells:
        for shape in options.shapes:
            problem = make_problem(cell, shape, options.dtype, options.seed)
            for pass_ in options.passes:
                prepared = _keep(build(problem, pass_, peers, core, options.impls, baseline),
                                 options.impls)
                errors = check_against_ours(prepared) if options.check else {}
                times = time_interleaved(prepared, options.reps, options.warmup)
                group = summarise(problem, pass_, prepared, times, errors)
                for r in group:
                    r["peak_fraction"] = r["gflops"] / peak
                records += group
                log(f"{cell} {'x'.join(map(str, shape))} {pass_}: " + ", ".join(
                    f"{r['impl']} {r['median_ms']:.2f}ms" for r in group))
    peak_end = floor.peak_gflops(options.dtype, n)
    return {"environment": env, "options": options._asdict(), "notes": notes,
            "matmul": {"peak_gflops_start": peak, "peak_gflops_end": peak_end, "n": n},
            "wall_s": time.time() - start, "load_avg_end": list(os.getloadavg()),
            "records": records}
