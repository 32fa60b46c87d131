"""``rnn-jax sample``: draw text from a character-level model saved by ``rnn-jax train charlm``."""
from __future__ import annotations

import os

from rnn_jax._src.commands._args import (UsageError, existing_dir, nonnegative_int,
                                         positive_float, positive_int, writable_dir)

NAME = "sample"
HELP = "sample text from a trained character-level model"


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="run directory of `rnn-jax train charlm`")
    parser.add_argument("--prime", default="", help="text the model reads before sampling")
    parser.add_argument("--temperature", type=positive_float, default=1.0,
                        help="softmax temperature: below 1 more conservative, above 1 more "
                             "varied text")
    parser.add_argument("--length", type=positive_int, default=500, help="characters to draw")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="sampling seed")
    parser.add_argument("--units-out", help="also save a heatmap PNG of the strongest hidden "
                        "units over --units-text to this directory")
    parser.add_argument("--units-text", help="text file for the unit pictures (default: the "
                        "start of the first validation file of the corpus)")
    parser.add_argument("--units", type=positive_int, default=4, help="how many units to draw")


def main(args) -> int:
    import jax

    from rnn_jax._src.train import checkpoint as ckpt
    from rnn_jax._src.train.data_text import Vocab
    from rnn_jax._src.train.sampling import load_trained, sample

    existing_dir(args.checkpoint, "--checkpoint")
    if args.units_text is not None and not os.path.isfile(args.units_text):
        raise UsageError(f"--units-text {args.units_text}: no such file")
    if args.units_out is not None:
        import matplotlib  # noqa: F401  (the pictures need it: say so before sampling)
        writable_dir(args.units_out, "--units-out")
    try:
        task = ckpt.load_config(args.checkpoint).get("task")
        if task != "charlm":
            raise UsageError(f"--checkpoint {args.checkpoint} holds a {task} model, not a "
                             "character-level one")
        model, params, cfg = load_trained(args.checkpoint)
    except ckpt.CheckpointError as err:
        raise UsageError(str(err)) from None
    text = sample(model, params, Vocab(cfg["vocab"]), jax.random.PRNGKey(args.seed),
                  prime=args.prime, length=args.length,
                  temperature=args.temperature)
    print(text)
    if args.units_out:
        from rnn_jax._src.train.units import save_unit_pictures
        if args.units_text:
            with open(args.units_text, encoding="utf-8", errors="replace") as f:
                source = f.read()
        else:
            from rnn_jax._src.train.data_text import read_corpus
            source = read_corpus(cfg).valid[0]
        paths = save_unit_pictures(model, params, Vocab(cfg["vocab"]), source[:3000],
                                   args.units_out, k=args.units)
        print("\n".join(paths))
    return 0
