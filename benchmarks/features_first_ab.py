"""Batch-first against features-first scans, interleaved in one process.

For one cell and shape, times the forward pass, autodiff's forward+backward and the default
gradient's forward+backward with the runner forced batch-first and forced features-first
(``rnn_jax._src.tuning.FEATURES_FIRST_FROM``; on a CPU this also switches the GRU's default
gradient from autodiff to ``ManualBPTT(accumulate=True)``), and checks that both give the
same numbers. This is the measurement behind that table (benchmarks/README.md).

    python benchmarks/features_first_ab.py --cell lstm --shape 64x500x128x128 --reps 9
    python benchmarks/features_first_ab.py --cell gru --shape 64x100x256x256 --reps 9
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import rnn_jax
from rnn_jax._src import tuning


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru", "elman", "jordan"])
    ap.add_argument("--shape", default="64x500x128x128", help="BxTxIxH")
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args()
    B, T, I, H = (int(s) for s in args.shape.split("x"))
    cell = rnn_jax.jordan(I, H, H) if args.cell == "jordan" else getattr(rnn_jax, args.cell)(I, H)
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (B, T, I))

    def loss(p, x, grad=None):
        return jnp.sum(rnn_jax.run(cell, p, x, grad=grad)[1])

    fns, outs = {}, {}
    rules = tuning.FEATURES_FIRST_FROM[tuning.backend()]
    saved = dict(rules)
    try:
        for layout, threshold in (("batch-first", 2**62), ("features-first", 1)):
            rules[cell.name] = (threshold, 0)  # read when a function is traced
            for name, fn in (("fwd", lambda p, x: rnn_jax.run(cell, p, x)[1]),
                             ("autodiff fwd+bwd",
                              jax.value_and_grad(lambda p, x: loss(p, x, rnn_jax.Autodiff()))),
                             ("default fwd+bwd", jax.value_and_grad(loss))):
                compiled = jax.jit(fn).lower(params, xs).compile()
                outs[name, layout] = jax.block_until_ready(compiled(params, xs))
                fns[name, layout] = compiled
    finally:
        rules.clear()
        rules.update(saved)
    times = {key: [] for key in fns}
    for _ in range(args.reps):
        for key, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(params, xs))
            times[key].append(time.perf_counter() - start)
    print(f"{args.cell} {args.shape}, median of {args.reps} interleaved runs")
    for name in ("fwd", "autodiff fwd+bwd", "default fwd+bwd"):
        bf, ff = (statistics.median(times[name, lay]) * 1e3
                  for lay in ("batch-first", "features-first"))
        diff = max(float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30))
                   for a, b in zip(jax.tree.leaves(outs[name, "features-first"]),
                                   jax.tree.leaves(outs[name, "batch-first"])))
        print(f"  {name:18s} batch-first {bf:9.2f} ms  features-first {ff:9.2f} ms  "
              f"(x{bf / ff:.2f}; max rel diff {diff:.1e})")


if __name__ == "__main__":
    main()
