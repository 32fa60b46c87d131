"""Two checkouts of rnn_jax side by side in one process: forward and fwd+bwd times, interleaved.

    git worktree add /tmp/before HEAD~1
    python benchmarks/commit_ab.py /tmp/before . --shape 64x500x128x128 --cell lstm --reps 10

Each checkout's package is imported in turn (``sys.modules`` cleared between them), its
functions compiled, and both run round-robin so that machine drift hits them alike. Prints the
medians and the largest difference between the two checkouts' outputs and gradients.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time


def load(path: str):
    """``rnn_jax`` imported from the checkout at ``path``."""
    for name in [m for m in sys.modules if m == "rnn_jax" or m.startswith("rnn_jax.")]:
        del sys.modules[name]
    sys.path.insert(0, path)
    try:
        return importlib.import_module("rnn_jax")
    finally:
        sys.path.pop(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--shape", default="64x500x128x128", help="BxTxIxH")
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    import jax
    import jax.numpy as jnp

    B, T, I, H = (int(v) for v in args.shape.split("x"))
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    fns, outs = {}, {}
    for tag, path in (("a", args.a), ("b", args.b)):
        rnn = load(path)
        cell = getattr(rnn, args.cell)(I, H)
        params = cell.init(jax.random.key(0))
        fwd = jax.jit(lambda p, x, r=rnn, c=cell: r.run(c, p, x)[1])
        grad = jax.jit(jax.grad(lambda p, x, r=rnn, c=cell: jnp.sum(r.run(c, p, x)[1])))
        for name, f in (("fwd", fwd), ("fwdbwd", grad)):
            compiled = f.lower(params, xs).compile()
            fns[f"{tag} {name}"] = (compiled, params)
            outs[f"{tag} {name}"] = compiled(params, xs)
    for name in ("fwd", "fwdbwd"):
        diff = max(float(jnp.max(jnp.abs(x - y))) for x, y in
                   zip(jax.tree.leaves(outs[f"a {name}"]), jax.tree.leaves(outs[f"b {name}"])))
        print(f"{name}: max |a - b| = {diff:.3g}")
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.reps):
        for key, (f, params) in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(f(params, xs))
            times[key].append(time.perf_counter() - start)
    print(args.cell, args.shape, "  ".join(
        f"{k} {statistics.median(v) * 1e3:.1f} ms" for k, v in times.items()))


if __name__ == "__main__":
    main()
