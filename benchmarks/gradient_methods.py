"""The cost of every gradient method: XLA memory and time against T, and Newton over time.

    python benchmarks/gradient_methods.py [--mode memory|newton|all] [--quick] [--out DIR]

``memory`` mode. For an LSTM (``I=32, H=128, B=16``, float32, default init, inputs
``N(0, 1)``) and each ``T`` of ``--lengths``, the gradient w.r.t. the params of
``L = Σ_{b,t} |y_{b,t}|²``, ``(c_T, ys) = rnn_jax.run(cell, params, xs, grad=M)``, is compiled
ahead of time (``jax.jit(jax.grad(L)).lower(params, xs).compile()``) for ``M`` ∈ ``Autodiff``,
``Checkpointed``, ``ManualBPTT``, ``Revolve(k)`` (``k`` ∈ ``--snapshots``). Memory is XLA's
``memory_analysis().temp_size_in_bytes`` of that executable: scratch beyond the arguments and
the result, i.e. what the backward pass keeps — ``O(T·(carry + gates))`` for autodiff,
``O(T·carry)`` when each step is recomputed (``Checkpointed``), ``O(k·carry)`` for Revolve,
which pays ``revolve_steps(T, k) ≈ (r − 1)·T`` extra step evaluations,
``r ≈ (k!·T)^{1/k}`` (Griewank 1992) — plus, for every method alike, ``ys`` and its cotangent
(``2·T·B·H`` numbers) and ``O(T·B·I)`` for the inputs. So the same is also compiled for
``L = |c_T|²`` (the final carry only, no per-step outputs), whose temp bytes are closer to the
backward pass's storage alone. Time (of the first loss) is the median wall time of ``--reps``
calls after ``--warmup`` untimed ones, each blocked until the gradient is ready. RTRL
(Williams & Zipser 1989) carries ``∂c_t/∂θ``, ``n × P`` per sequence, and costs
``O(n²P) = O(H⁴)`` a step, so it is measured apart on a small Elman (``I=8, H=16, B=4``)
beside ``ManualBPTT`` on the same problem: its storage does not grow with ``T``, its time per
step is ``O(H²)`` times BPTT's.

``newton`` mode (``parallel_time.py`` beside this file has the details; float64 unless
stated): (a) tanh Elman (``I=8, H=32``, ``T=1000``, ``x ~ 0.1·N(0, I)``) with ``W_hh`` at
spectral radius ``ρ`` ∈ ``--radii``: the largest Lyapunov exponent ``λ₁`` and the
iterations of ``rnn_jax.parallel_in_time`` to converge, full and diagonal Jacobians, capped at
``--max-iters``; (b) an LSTM (``H=32``) trained ``--train-steps`` Adam steps on the adding
problem (``T=50``, batch 64), the same figures before and after training on one sequence of
``T=1000``; (c) wall time of the sequential run against ``ParallelInTime`` (full, diagonal),
forward and forward+backward, for a contractive GRU (``I=8, H=16, B=16``, float32) at each T
of ``--time-lengths``, on the default JAX device (the CPU where JAX has no other).

Every figure is from one process; every random draw from ``--seed`` by explicit keys.
``--quick`` takes tiny models and tiny defaults for the size options (about a minute on two
cores, nearly all of it compilation); its figures check the harness, not the methods
(``tests/test_bench_gradient_methods.py`` runs its memory mode, and the newton functions at
tiny sizes). Prints markdown tables; with ``--out DIR`` writes ``DIR/NAME.json``
(environment, command, options, every row) and ``DIR/NAME.md`` (the printed tables).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

import rnn_jax
from rnn_jax._src.bench.environment import environment
from rnn_jax._src.bench.jaxprep import memory_of
from rnn_jax._src.cli import _Parser
from rnn_jax._src.commands._args import (
    UsageError,
    nonnegative_int,
    positive_floats,
    positive_int,
    positive_ints,
    writable_dir,
)


def _sibling(name: str) -> Any:
    """Imports ``benchmarks/NAME.py`` (this folder is no package)."""
    key = f"_benchmarks_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


pt = _sibling("parallel_time")

# model sizes: (inputs, hidden, batch); quick sizes check the harness only.
FULL = {"lstm": (32, 128, 16), "rtrl": (8, 16, 4), "elman": (8, 32), "newton_T": 1000,
        "trained": (32, 50, 64), "gru": (8, 16, 16)}
QUICK = {"lstm": (8, 16, 4), "rtrl": (3, 4, 2), "elman": (4, 8), "newton_T": 100,
         "trained": (8, 20, 16), "gru": (4, 8, 4)}
# defaults of the options; an option given on the command line wins over both
FULL_OPTIONS = {"lengths": [100, 300, 1000, 3000], "snapshots": [4, 16, 64],
                "rtrl_lengths": [100, 300, 1000, 3000],
                "radii": [0.5, 0.7, 0.9, 1.0, 1.1, 1.3, 1.5], "max_iters": 500,
                "train_steps": 300, "time_lengths": [100, 1000, 10000], "reps": 5}
QUICK_OPTIONS = {"lengths": [200], "snapshots": [4], "rtrl_lengths": [10, 40],
                 "radii": [0.5, 1.5], "max_iters": 50, "train_steps": 20,
                 "time_lengths": [30], "reps": 1}


def methods(snapshots: Sequence[int]) -> list[tuple[str, rnn_jax.GradientMethod]]:
    """The exact reverse-mode methods compared in ``memory`` mode, with their names."""
    return ([("Autodiff", rnn_jax.Autodiff()), ("Checkpointed", rnn_jax.Checkpointed()),
             ("ManualBPTT", rnn_jax.ManualBPTT())]
            + [(f"Revolve({k})", rnn_jax.Revolve(k)) for k in snapshots])


def grad_cost(cell: rnn_jax.Cell, params: Any, xs: jax.Array, method: rnn_jax.GradientMethod,
              reps: int, warmup: int) -> dict[str, Any]:
    """XLA temp bytes and median ms of the compiled gradient w.r.t. ``params`` of
    ``Σ_t |y_t|²``, and the temp bytes of that of ``|c_T|²`` (the final carry only)."""
    def outputs(p: Any, x: jax.Array) -> jax.Array:
        ys = rnn_jax.run(cell, p, x, grad=method)[1]
        return jnp.sum(jnp.square(ys.astype(jnp.float32)))

    def final(p: Any, x: jax.Array) -> jax.Array:
        carry = rnn_jax.run(cell, p, x, grad=method)[0]
        return sum(jnp.sum(jnp.square(c.astype(jnp.float32))) for c in jax.tree.leaves(carry))

    compiled = jax.jit(jax.grad(final)).lower(params, xs).compile()
    temp_final = (memory_of(compiled) or {}).get("temp_bytes")
    compiled = jax.jit(jax.grad(outputs)).lower(params, xs).compile()
    return {"temp_bytes": (memory_of(compiled) or {}).get("temp_bytes"),
            "temp_bytes_final": temp_final,
            "ms": pt.median_ms(compiled, (params, xs), reps, warmup)}


def memory_rows(cell: rnn_jax.Cell, named: Sequence[tuple[str, rnn_jax.GradientMethod]],
                lengths: Sequence[int], batch: int, reps: int, warmup: int,
                key: jax.Array) -> list[dict[str, Any]]:
    """One row per (T, method): temp bytes, ms and, for Revolve, ``revolve_steps(T, k)``."""
    k_cell, k_x = jax.random.split(key)
    params = jax.jit(cell.init)(k_cell)
    rows = []
    for T in lengths:
        xs = pt.normal(k_x, (batch, T, cell.input_size), jnp.float32, 1.0, T)
        for name, method in named:
            advances = (rnn_jax.revolve_steps(T, method.snapshots)
                        if isinstance(method, rnn_jax.Revolve) else None)
            rows.append({"T": T, "method": name, "B": batch, "H": cell.hidden_size,
                         "advances": advances,
                         **grad_cost(cell, params, xs, method, reps, warmup)})
    return rows


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2 ** 20:.3g}"


def _ratio(a: int | None, b: int | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.3f}"


def memory_report(rows: list[dict[str, Any]], title: str) -> str:
    """One block of rows per T: temp MiB of both losses, each ÷ the first method's, ms and
    Revolve's extra steps."""
    first = {r["T"]: r for r in reversed(rows)}
    revolve = any(r["advances"] is not None for r in rows)
    table = [[r["T"], r["method"], _mib(r["temp_bytes"]),
              _ratio(r["temp_bytes"], first[r["T"]]["temp_bytes"]), _mib(r["temp_bytes_final"]),
              _ratio(r["temp_bytes_final"], first[r["T"]]["temp_bytes_final"]), f"{r['ms']:.3g}"]
             + ([r["advances"] or ""] if revolve else []) for r in rows]
    ref = rows[0]["method"] if rows else ""
    return "\n".join([title, "", pt.markdown(
        ["T", "method", "temp MiB, loss Σ‖y_t‖²", f"÷ {ref}", "temp MiB, loss ‖c_T‖²",
         f"÷ {ref}", "ms (loss Σ‖y_t‖²)"] + (["extra steps (revolve_steps)"] if revolve else []),
        table), ""])


def run_memory(args: argparse.Namespace, sizes: dict[str, Any],
               key: jax.Array) -> tuple[dict[str, Any], str]:
    k_lstm, k_rtrl = jax.random.split(key)
    (i, h, b), (ri, rh, rb) = sizes["lstm"], sizes["rtrl"]
    lstm = memory_rows(rnn_jax.lstm(i, h), methods(args.snapshots), args.lengths, b,
                       args.reps, args.warmup, k_lstm)
    rtrl = memory_rows(rnn_jax.elman(ri, rh), [("RTRL", rnn_jax.RTRL()),
                                               ("ManualBPTT", rnn_jax.ManualBPTT())],
                       args.rtrl_lengths, rb, args.reps, args.warmup, k_rtrl)
    text = "\n".join([
        memory_report(lstm, f"Gradient of an LSTM (I={i}, H={h}, B={b}), float32, "
                            f"{jax.default_backend()}; median of {args.reps}"),
        memory_report(rtrl, f"RTRL against BPTT: Elman (I={ri}, H={rh}, B={rb}), float32, "
                            f"{jax.default_backend()}; median of {args.reps}")])
    return {"memory": lstm, "rtrl": rtrl}, text


def run_newton(args: argparse.Namespace, sizes: dict[str, Any],
               key: jax.Array) -> tuple[dict[str, Any], str]:
    k_sweep, k_lstm, k_time = jax.random.split(key, 3)
    (ei, eh), T = sizes["elman"], sizes["newton_T"]
    (th, ttrain, tbatch), (gi, gh, gb) = sizes["trained"], sizes["gru"]
    sweep = pt.radius_sweep(args.radii, eh, ei, T, args.max_iters, k_sweep)
    lstm = pt.trained_lstm(th, ttrain, args.train_steps, tbatch, T, args.max_iters, k_lstm)
    times = pt.wall_times(args.time_lengths, gh, gi, gb, args.reps, args.warmup, k_time)
    return ({"newton_radius": sweep, "newton_lstm": lstm, "newton_time": times},
            pt.report(sweep, lstm, times))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gradient_methods.py", description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=("memory", "newton", "all"), default="all")
    p.add_argument("--quick", action="store_true",
                   help="tiny models, and tiny defaults for the options below (a smoke test)")
    p.add_argument("--out", help="write NAME.json and NAME.md of the results here")
    p.add_argument("--name", default="gradient_methods")
    p.add_argument("--lengths", type=positive_ints, help="T of the memory mode")
    p.add_argument("--snapshots", type=positive_ints, help="Revolve's k")
    p.add_argument("--rtrl-lengths", type=positive_ints, help="T of RTRL against ManualBPTT")
    p.add_argument("--radii", type=positive_floats, help="spectral radii of the Elman sweep")
    p.add_argument("--max-iters", type=positive_int, help="Newton's cap in the sweeps")
    p.add_argument("--train-steps", type=positive_int, help="Adam steps of the trained LSTM")
    p.add_argument("--time-lengths", type=positive_ints, help="T of the wall-time table")
    p.add_argument("--reps", type=positive_int)
    p.add_argument("--warmup", type=nonnegative_int, default=1, help="untimed calls first")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the chosen modes, prints their tables, writes them with ``--out``; returns the
    result dict (``environment``, ``command``, ``options`` and the rows of each table)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.out is not None:
        writable_dir(args.out, "--out")
    if args.name != os.path.basename(args.name) or not args.name:
        raise UsageError(f"--name {args.name!r}: expected a file name without a directory")
    sizes = QUICK if args.quick else FULL
    for name, value in (QUICK_OPTIONS if args.quick else FULL_OPTIONS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    jax.config.update("jax_enable_x64", True)   # newton mode; memory mode is float32 throughout
    key = jax.random.key(args.seed)
    result: dict[str, Any] = {"environment": environment(), "command": argv,
                              "options": {k: v for k, v in vars(args).items() if k != "out"}}
    texts = []
    for i, (mode, fn) in enumerate((("memory", run_memory), ("newton", run_newton))):
        if args.mode in (mode, "all"):
            rows, text = fn(args, sizes, jax.random.fold_in(key, i))
            result.update(rows)
            texts.append(text)
            print(text, flush=True)
    if args.out is not None:
        out = Path(args.out)
        (out / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
        command = "python benchmarks/gradient_methods.py " + " ".join(argv)
        (out / f"{args.name}.md").write_text(f"`{command.strip()}`\n\n" + "\n".join(texts))
    return result


if __name__ == "__main__":
    try:
        main()
    except UsageError as err:
        print(f"gradient_methods.py: error: {err}", file=sys.stderr)
        sys.exit(2)
