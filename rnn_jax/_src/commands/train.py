"""``rnn-jax train adding|copy|charlm``: train a model on one of the classic tasks."""
from __future__ import annotations

import json
import os

NAME = "train"
HELP = "train an RNN on the adding problem, the copy task or a character-level corpus"


def add_arguments(parser) -> None:
    from rnn_jax._src.train.models import CELLS, INITS
    from rnn_jax._src.train.step import OPTIMIZERS
    parser.add_argument("task", choices=("adding", "copy", "charlm"))
    parser.add_argument("--cell", choices=CELLS, default="lstm")
    parser.add_argument("--hidden", type=int, help="hidden size (task default if omitted)")
    parser.add_argument("--param-budget", type=int,
                        help="choose the hidden size whose model has about this many parameters")
    parser.add_argument("--length", type=int,
                        help="T of the adding/copy task, or the truncated-BPTT chunk of charlm")
    parser.add_argument("--steps", type=int,
                        help="train until this step (default 1000; with --resume: as saved)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS))
    parser.add_argument("--clip", type=float, help="clip gradients by global norm (0: off)")
    parser.add_argument("--clip-value", type=float, help="clip gradients elementwise to [-X, X]")
    parser.add_argument("--init", choices=INITS, default="default",
                        help="initialiser of the recurrent weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/latest", help="checkpoint and metrics directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run saved in --out (its config.json wins)")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--eval-batch", type=int, help="test sequences (adding/copy) or "
                        "validation streams (charlm)")
    parser.add_argument("--data", nargs="*", help="charlm: text files (default: the Python "
                        "standard library's .py files)")
    parser.add_argument("--max-chars", type=int, help="charlm: read at most this many characters")
    parser.add_argument("--valid-chars", type=int, default=200_000,
                        help="charlm: validation characters scored")
    parser.add_argument("--min-count", type=int, default=100,
                        help="charlm: rarer characters share one UNK id")
    parser.add_argument("--ngram-order", type=int, default=4,
                        help="charlm: order of the n-gram baseline (0: none)")
    parser.add_argument("--no-progress", action="store_true")


def config_from_args(args) -> dict:
    from rnn_jax._src.train.experiment import default_config
    keys = ("cell", "init", "seed", "steps", "clip_value", "eval_batch", "log_every",
            "eval_every", "checkpoint_every", "hidden", "length", "batch", "lr", "optimizer",
            "clip")
    if args.task == "charlm":
        keys += ("data", "max_chars", "valid_chars", "min_count", "ngram_order")
    given = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    return default_config(args.task, **given)


def main(args) -> int:
    from rnn_jax._src.train import checkpoint as ckpt
    from rnn_jax._src.train.models import hidden_for_budget
    if args.resume:
        if not os.path.exists(os.path.join(args.out, ckpt.CONFIG)):
            print(f"nothing to resume in {args.out}")
            return 1
        cfg = ckpt.load_config(args.out)
        if args.steps is not None:
            cfg["steps"] = args.steps
    else:
        cfg = config_from_args(args)
        if args.param_budget:
            n_in = {"adding": 2, "copy": 10}.get(args.task)
            if n_in is None:  # charlm: the vocabulary decides the sizes
                from rnn_jax._src.train import data_text as text
                corpus = text.load_corpus(cfg["data"] or None, max_chars=cfg["max_chars"])
                n_in = text.build_vocab(corpus.train, min_count=cfg["min_count"]).size
            n_out = 1 if args.task == "adding" else n_in
            cfg["hidden"] = hidden_for_budget(
                dict(cell=cfg["cell"], input_size=n_in, output_size=n_out, init=cfg["init"],
                     tokens=args.task != "adding", hidden=1), args.param_budget)
    from rnn_jax._src.train.experiment import run_training
    _, summary = run_training(cfg, args.out, resume=args.resume,
                              progress=not args.no_progress)
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    return 0
