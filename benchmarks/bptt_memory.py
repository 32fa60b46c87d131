"""Compiled memory of one gradient evaluation for each gradient method (no execution).

    python benchmarks/bptt_memory.py [--T 500 5000] [--batch 16] [--size 128] [--cell lstm]

For ``jax.grad`` of ``sum(ys)`` over an LSTM layer (float32, B=16, I=H=128 by default) it
prints XLA's ``memory_analysis()`` of the compiled function: ``temp`` is the scratch memory
the gradient needs beyond its arguments and outputs (activations saved for the backward pass,
the backward scan's buffers). Only compiles, so T=5000 is cheap.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

import rnn_jax

METHODS = {
    "default": None,
    "autodiff": rnn_jax.Autodiff(),
    "autodiff hoist": rnn_jax.Autodiff(hoist=True),
    "checkpointed": rnn_jax.Checkpointed(),
    "manual": rnn_jax.ManualBPTT(),
    "manual hoist": rnn_jax.ManualBPTT(hoist=True),
    "manual accumulate": rnn_jax.ManualBPTT(accumulate=True),
    "manual recompute": rnn_jax.ManualBPTT(recompute=True),
    "manual recompute accumulate": rnn_jax.ManualBPTT(recompute=True, accumulate=True),
}


def measure(cell, method, B: int, T: int) -> dict:
    params = jax.eval_shape(cell.init, jax.random.key(0))
    xs = jax.ShapeDtypeStruct((B, T, cell.input_size), jnp.float32)

    def loss(p, x):
        return jnp.sum(rnn_jax.run(cell, p, x, grad=method)[1])

    mem = jax.jit(jax.grad(loss)).lower(params, xs).compile().memory_analysis()
    return {"temp": mem.temp_size_in_bytes, "args": mem.argument_size_in_bytes,
            "out": mem.output_size_in_bytes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, nargs="+", default=[500, 5000])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru", "elman"])
    a = ap.parse_args()
    cell = getattr(rnn_jax, a.cell)(a.size, a.size)
    print(f"{a.cell} B={a.batch} I=H={a.size} float32, jax.grad of sum(ys); "
          f"XLA temp memory in MiB ({jax.devices()[0].platform})")
    print(f"{'method':<28}" + "".join(f"{f'T={T}':>12}" for T in a.T))
    for name, method in METHODS.items():
        row = [measure(cell, method, a.batch, T)["temp"] / 2**20 for T in a.T]
        print(f"{name:<28}" + "".join(f"{m:>12.1f}" for m in row))
    carry = a.batch * (2 * a.size) * 4 / 2**20
    print("reference: carries (h, c) per step "
          + ", ".join(f"T={T}: {carry * T:.1f}" for T in a.T)
          + "; one (T, B, 4H) float32 array: "
          + ", ".join(f"T={T}: {2 * carry * T:.1f}" for T in a.T))


if __name__ == "__main__":
    main()
