"""bfloat16 weight gradients of ManualBPTT and autodiff against float32 arithmetic.

Both methods get the same bfloat16 weights and inputs; the reference runs float32 arithmetic
on those same (rounded) numbers, so the errors printed are what the arithmetic's precision
costs. Autodiff through ``lax.scan`` sums each step's weight gradient into a bfloat16 carry;
``ManualBPTT`` sums them in single contractions after the backward scan.

    python benchmarks/bf16_gradient_accuracy.py --shape 8x2000x64x128 --cell lstm
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

import rnn_jax
from rnn_jax._src.bench.harness import max_rel_error
from rnn_jax._src.bench.ours import make_cell
from rnn_jax._src.bench.spec import make_problem, parse_shape

WEIGHTS = ("w_ih", "w_hh", "b_ih", "b_hh")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="8x2000x64x128", help="BxTxIxH")
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru", "elman"])
    args = ap.parse_args()
    problem = make_problem(args.cell, parse_shape(args.shape))
    cell, params = make_cell(rnn_jax, problem)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.bfloat16), params)
    xs = jnp.asarray(problem.xs, jnp.bfloat16)

    def grads(p, x, method):
        def loss(p, x):
            return jnp.sum(rnn_jax.run(cell, p, x, grad=method)[1].astype(jnp.float32))
        return jax.jit(jax.grad(loss))(p, x)

    ref = grads(*jax.tree.map(lambda a: a.astype(jnp.float32), (params, xs)), rnn_jax.Autodiff())
    print(f"{args.cell} {args.shape} bfloat16: max |g - g_ref| / max |g_ref| per weight")
    for name, method in (("ManualBPTT", rnn_jax.ManualBPTT()), ("Autodiff", rnn_jax.Autodiff())):
        g = grads(params, xs, method)
        errs = {k: max_rel_error(getattr(g, k), getattr(ref, k)) for k in WEIGHTS}
        print(f"  {name:10s} " + "  ".join(f"{k} {v:.1e}" for k, v in errs.items()))


if __name__ == "__main__":
    main()
