"""``rnn-jax verify``: the hand-written BPTT of every cell and option against autodiff and
finite differences, in float64, on random problems (see :mod:`rnn_jax._src.verify`).

Prints a table, or with ``--json`` a JSON list of records with the keys ``cell``, ``options``,
``max_rel_err_autodiff``, ``max_rel_err_fd`` (null for truncated/clipped rows, whose gradient
is not a derivative of the loss) and ``passed``. Exits 1 if any row fails.
"""

from __future__ import annotations

import argparse
import json

import jax

from rnn_jax._src.commands._args import nonnegative_int, positive_int

NAME = "verify"
HELP = ("check the manual BPTT of every cell and option against jax.grad and finite "
        "differences (float64); exit non-zero on any failure")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the records as a JSON list")
    parser.add_argument("--seed", type=nonnegative_int, default=0,
                        help="seed of the random problems")
    parser.add_argument("--workers", type=positive_int, default=2, help="cases compiled at once")


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2e}"


def main(args: argparse.Namespace) -> int:
    jax.config.update("jax_enable_x64", True)
    from rnn_jax._src import verify as v  # after x64 is on

    if args.json:
        records = v.verify_all(seed=args.seed, workers=args.workers)
        print(json.dumps(records, indent=1))
        return 0 if all(r["passed"] for r in records) else 1
    print(f"manual BPTT vs jax.grad (tol {v.AUTODIFF_TOL:g}) and central finite differences "
          f"(tol {v.FD_TOL:g}), float64; max |a-b| / max(1e-8, |a|+|b|); {len(v.CASES)} cases, "
          "each row as it finishes", flush=True)
    print(f"{'cell':<7} {'options':<46} {'vs autodiff':>11} {'vs FD':>9}  result", flush=True)
    failed = 0
    for r in v.verify_each(seed=args.seed, workers=args.workers):
        failed += not r["passed"]
        print(f"{r['cell']:<7} {r['options']:<46} {_fmt(r['max_rel_err_autodiff']):>11} "
              f"{_fmt(r['max_rel_err_fd']):>9}  {'pass' if r['passed'] else 'FAIL'}", flush=True)
    print("all passed" if not failed else f"{failed} FAILED")
    return 0 if not failed else 1
