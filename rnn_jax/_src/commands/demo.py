"""``rnn-jax demo``: an end-to-end tour on random data that checks itself as it goes.

For every cell it runs a padded batch under ``jit``, compares each padded sequence with the same
sequence run alone, and takes ``jax.grad`` of the summed cross-entropy through a readout. Exits
non-zero if any check fails.
"""

from __future__ import annotations

import argparse
import zlib

import jax
import jax.numpy as jnp
import numpy as np

import rnn_jax

from rnn_jax._src.commands._args import nonnegative_int, positive_int

NAME = "demo"
HELP = "run every cell over a padded batch, check padding and gradients, print a table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=positive_int, default=16, help="hidden size")
    parser.add_argument("--length", type=positive_int, default=12, help="sequence length T")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed")


def _cells(I: int, H: int):
    return {
        "elman tanh": rnn_jax.elman(I, H),
        "elman relu": rnn_jax.elman(I, H, activation="relu"),
        "irnn": rnn_jax.irnn(I, H),
        "jordan": rnn_jax.jordan(I, H, 5),
        "lstm": rnn_jax.lstm(I, H),
        "lstm peephole+proj": rnn_jax.lstm(I, H, peephole=True, proj_size=H // 2),
        "gru after": rnn_jax.gru(I, H),
        "gru before": rnn_jax.gru(I, H, reset="before"),
    }


def main(args: argparse.Namespace) -> int:
    I, V, B, T = 8, 10, 4, args.length
    key = jax.random.key(args.seed)
    kx, ky, kp = jax.random.split(key, 3)
    xs = jax.random.normal(kx, (B, T, I))
    labels = jax.random.randint(ky, (B, T), 0, V)
    lengths = jnp.array([T, T // 2, 1, 0][:B])
    failures = 0
    print(f"{'cell':<20} {'params':>7} {'padded==alone':>14} {'loss':>9} {'|grad|':>9}")
    for name, cell in _cells(I, args.hidden).items():
        k1, k2 = jax.random.split(jax.random.fold_in(kp, zlib.crc32(name.encode())))
        params, readout = cell.init(k1), rnn_jax.dense(cell.output_size, V)
        rparams = readout.init(k2)

        def loss(p, r):
            _, ys = rnn_jax.run(cell, p, xs, lengths=lengths)
            return rnn_jax.sequence_cross_entropy(readout.apply(r, ys), labels, lengths,
                                                  reduction="mean")

        value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, rparams)
        _, ys = jax.jit(lambda p: rnn_jax.run(cell, p, xs, lengths=lengths))(params)
        same = all(
            np.allclose(ys[b, : int(lengths[b])],
                        rnn_jax.run(cell, params, xs[b, : int(lengths[b])])[1], atol=1e-5)
            for b in range(B) if int(lengths[b]) > 0
        )
        gnorm = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))))
        ok = same and np.isfinite(float(value)) and np.isfinite(gnorm) and gnorm > 0
        failures += not ok
        n = sum(x.size for x in jax.tree.leaves(params))
        print(f"{name:<20} {n:>7} {str(same):>14} {float(value):>9.4f} {gnorm:>9.4f}"
              + ("" if ok else "   FAILED"))
    print("all checks passed" if failures == 0 else f"{failures} cell(s) FAILED")
    return 1 if failures else 0
