"""Per-step weight-gradient products in the layouts a backward scan can hold them, timed alone.

The backward pass of an RNN layer adds ``dW += δa_tᵀ h_t`` (``(G, B)ᵀ·(B, H)``) at every step,
or contracts all steps at once after the scan. Which layout the operands have decides which
routine XLA CPU hands the product to; this measures each over ``T`` steps, interleaved, after
checking that all give the same sum. The measurement behind
the GRU's rule in ``rnn_jax._src.tuning.FEATURES_FIRST_FROM`` (benchmarks/README.md, "CPU, session 9"):

* ``batch_first``: ``δa (B, G)`` and ``h (B, H)``, per step, contracting the batch axis (what
  autodiff through a batch-first scan adds, and ``ManualBPTT(accumulate=True)`` batch first);
* ``features_first``: ``δa (G, B)`` and ``h (H, B)`` per step (the features-first backward scan);
* ``after_scan``: one contraction of ``(T·B, G)`` with ``(T·B, H)`` after the scan (``ManualBPTT()``).

    python benchmarks/weight_grad_layouts.py --shape 256x50x512 --gates 3
"""

from __future__ import annotations

import argparse
import statistics

import jax
import jax.numpy as jnp

from rnn_jax._src.bench.harness import time_interleaved
from rnn_jax._src.bench.spec import Prepared

CONTRACT_BATCH_FIRST = (((0,), (0,)), ((), ()))
CONTRACT_FEATURES_FIRST = (((1,), (1,)), ((), ()))


def forms(G: int, H: int):
    """``name -> (f(da, h), layout)``: each form's weight gradient ``(G, H)`` from time-major
    ``da`` and ``h`` in the layout named (``"bf"``: ``(T, B, F)``, ``"ff"``: ``(T, F, B)``)."""
    def per_step(dims):
        def f(da, h):
            def step(w, inp):
                return w + jax.lax.dot_general(inp[0], inp[1], dims), None
            return jax.lax.scan(step, jnp.zeros((G, H), da.dtype), (da, h))[0]
        return f

    def after_scan(da, h):
        return jax.lax.dot_general(da.reshape(-1, G), h.reshape(-1, H), CONTRACT_BATCH_FIRST)

    return {"batch_first": (per_step(CONTRACT_BATCH_FIRST), "bf"),
            "features_first": (per_step(CONTRACT_FEATURES_FIRST), "ff"),
            "after_scan": (after_scan, "bf")}


def operands(T: int, B: int, G: int, H: int, dtype=jnp.float32):
    """Random ``{"bf": (da, h), "ff": (da, h)}``, the same numbers in both layouts."""
    k1, k2 = jax.random.split(jax.random.key(0))
    da = jax.random.normal(k1, (T, B, G), dtype)
    h = jax.random.normal(k2, (T, B, H), dtype)
    return {"bf": (da, h), "ff": (jnp.swapaxes(da, 1, 2), jnp.swapaxes(h, 1, 2))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="256x50x512", help="BxTxH")
    ap.add_argument("--gates", type=int, default=3, help="G = gates·H (GRU 3, LSTM 4)")
    ap.add_argument("--reps", type=int, default=11)
    args = ap.parse_args()
    B, T, H = (int(s) for s in args.shape.split("x"))
    G = args.gates * H
    ops = operands(T, B, G, H)
    fns = {n: (jax.jit(f), ops[lay]) for n, (f, lay) in forms(G, H).items()}
    ref = fns["after_scan"][0](*fns["after_scan"][1])
    for name, (f, a) in fns.items():
        err = float(jnp.max(jnp.abs(f(*a) - ref)) / jnp.max(jnp.abs(ref)))
        assert err < 1e-5, f"{name} differs from after_scan by {err:.1e}"
    def runner(f, a):
        return lambda: jax.block_until_ready(f(*a))

    times = time_interleaved([Prepared(name, runner(f, a), 0.0, None, lambda: (None, None))
                              for name, (f, a) in fns.items()], args.reps)
    flop = 2 * T * B * G * H
    print(f"dW ({G}x{H}) over T={T}, B={B}: median of {args.reps} (ms, GFLOP/s)")
    medians = {name: statistics.median(t) for name, t in times.items()}
    print("\n".join(f"  {name:15s} {m:8.2f} {flop / m / 1e6:6.1f}" for name, m in medians.items()))

if __name__ == "__main__":
    main()
