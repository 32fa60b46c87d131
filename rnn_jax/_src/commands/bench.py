"""``rnn-jax bench``: time rnn_jax against flax, Equinox and PyTorch; write JSON and markdown.

Examples::

    rnn-jax bench                                  # every cell and shape, float32, 10 reps
    rnn-jax bench --cells lstm --shapes 16x100x128x256 --reps 20
    rnn-jax bench --shapes tiny --reps 1 --out /tmp/smoke
    git worktree add /tmp/base HEAD~1 && rnn-jax bench --baseline /tmp/base --peers ''

Peers whose package is not installed are skipped with a note. ``--baseline PATH`` adds the
variant ``baseline``: the default ``rnn_jax.run`` of the rnn_jax package in the checkout
directory ``PATH``, imported beside the current one and timed in the same round-robin.

PyTorch's OpenMP threads spin-wait between parallel regions by default; on a loaded machine
that makes ``torch.nn.LSTM`` many times slower and takes cores from the JAX variants timed
after it. Unless the caller set it, this command therefore sets ``OMP_WAIT_POLICY=PASSIVE``
before PyTorch is imported; the environment section of every report records the value.
"""

from __future__ import annotations

import argparse
import os
import shlex

from rnn_jax._src.commands._args import (UsageError, existing_dir, nonnegative_int,
                                         positive_int, writable_dir)
from rnn_jax._src.bench.spec import CELLS, DTYPES, PASSES, SHAPES, TINY_SHAPE, parse_shape

NAME = "bench"
HELP = "benchmark rnn_jax against flax, Equinox and PyTorch (forward, forward+backward)"


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cells", type=_choices(CELLS, "cell"), default=CELLS,
                        help="comma list of lstm,gru,elman")
    parser.add_argument("--shapes", default="all",
                        help="'all', 'tiny', or comma list of BxTxIxH (e.g. 16x100x128x256)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--reps", type=positive_int, default=10,
                        help="timed repetitions (median reported)")
    parser.add_argument("--warmup", type=nonnegative_int, default=1,
                        help="untimed calls per variant")
    parser.add_argument("--passes", type=_choices(PASSES, "pass"), default=PASSES,
                        help="comma list of fwd,fwdbwd")
    parser.add_argument("--peers", type=_choices(("flax", "equinox", "torch"), "peer"),
                        default=("flax", "equinox", "torch"),
                        help="comma list of flax,equinox,torch (empty string for none)")
    parser.add_argument("--impls", type=_csv, default=None,
                        help="keep only variants whose name starts with one of these prefixes")
    parser.add_argument("--baseline", default=None, metavar="PATH",
                        help="a checkout directory whose rnn_jax is timed as the variant 'baseline' "
                             "(A/B of two versions in one process)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip comparing every variant's outputs/gradients with rnn_jax's")
    parser.add_argument("--out", default="benchmarks/results",
                        help="directory for bench.json and bench.md")
    parser.add_argument("--name", default="bench", help="file stem of the outputs")


def _shapes(text: str) -> tuple[tuple[int, int, int, int], ...]:
    if text == "all":
        return SHAPES
    if text == "tiny":
        return (TINY_SHAPE,)
    try:
        shapes = tuple(parse_shape(s) for s in _csv(text))
    except ValueError:
        shapes = ()
    if not shapes:
        raise argparse.ArgumentTypeError(
            f"expected 'all', 'tiny' or a comma list of BxTxIxH (e.g. 16x100x128x256), got "
            f"{text!r}")
    return shapes


def _choices(allowed: tuple[str, ...], what: str):
    def parse(text: str) -> tuple[str, ...]:
        items = _csv(text)
        wrong = [i for i in items if i not in allowed]
        if wrong:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(wrong)}; choose from "
                                             f"{','.join(allowed)}")
        return items
    return parse


def _argv(args: argparse.Namespace) -> list[str]:
    """The options of ``args`` as command-line words, for the report's reproduce line."""
    words = ["--cells", ",".join(args.cells), "--shapes", args.shapes, "--dtype", args.dtype,
             "--reps", str(args.reps), "--passes", ",".join(args.passes),
             "--peers", ",".join(args.peers), "--out", args.out, "--name", args.name]
    if args.impls:
        words += ["--impls", ",".join(args.impls)]
    if args.baseline:
        words += ["--baseline", args.baseline]
    return words + (["--no-check"] if args.no_check else [])


def main(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read by libgomp when torch loads
    from rnn_jax._src.bench.harness import Options, run_benchmark
    from rnn_jax._src.bench.report import markdown, write_json

    try:
        shapes = _shapes(args.shapes)
    except argparse.ArgumentTypeError as err:
        raise UsageError(f"argument --shapes: {err}") from None
    if args.baseline is not None:
        existing_dir(args.baseline, "--baseline")
    writable_dir(args.out, "--out")
    options = Options(cells=args.cells, shapes=shapes, dtype=args.dtype,
                      reps=args.reps, warmup=args.warmup, passes=args.passes, peers=args.peers,
                      impls=args.impls, check=not args.no_check, baseline=args.baseline)
    result = run_benchmark(options)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, args.name)
    write_json(stem + ".json", result)
    command = "rnn-jax bench " + " ".join(shlex.quote(a) for a in _argv(args))
    with open(stem + ".md", "w", encoding="utf-8") as f:
        f.write(markdown(result, command))
    print(f"wrote {stem}.json and {stem}.md")
    return 0
