"""The options of ``rnn-jax train``: the parser's arguments and which of them a task takes.

Each task's own options (and their defaults) come from
:func:`rnn_jax._src.train.experiment.task_table`; an option of another task is refused.
"""
from __future__ import annotations

from rnn_jax._src.commands._args import (UsageError, fraction, nonnegative_float,
                                         nonnegative_int, positive_float, positive_int,
                                         probability)

LANG_TASKS = ("slots", "intent", "autoencoder")
CTC_TASKS = ("ctc-read", "ctc-listen")   # as rnn_jax._src.train.ctc_tasks (imported lazily)
IMAGE_TASKS = CTC_TASKS + ("caption",)
HELP = ("train an RNN on the adding problem, the copy task, a character-level corpus, the "
        "Clockwork RNN's waveform generation, a sequence-to-sequence task, slot filling, "
        "intent classification, a sequence autoencoder, CTC reading or listening, or "
        "captioning")

# the options that make a run (saved in config.json; the command line spells them --a-b)
RUN_KEYS = ("cell", "init", "seed", "hidden", "length", "batch", "lr", "optimizer", "clip",
            "clip_value", "eval_batch", "log_every", "eval_every", "checkpoint_every",
            "nonfinite")


def _task_defaults(key: str) -> str:
    from rnn_jax._src.train.autoencoder import AE_DEFAULTS
    from rnn_jax._src.train.caption_tasks import CAPTION_DEFAULTS
    from rnn_jax._src.train.ctc_tasks import CTC_DEFAULTS
    from rnn_jax._src.train.lang_tasks import LANG_DEFAULTS
    from rnn_jax._src.train.seq_tasks import SEQ_DEFAULTS
    from rnn_jax._src.train.tasks import DEFAULTS
    return (", ".join(f"{task} {d[key]}" for task, d in DEFAULTS.items())
            + f", sequence tasks {SEQ_DEFAULTS[key]}, slots and intent {LANG_DEFAULTS[key]}"
            f", autoencoder {AE_DEFAULTS[key]}, ctc tasks {CTC_DEFAULTS[key]}, caption "
            f"{CAPTION_DEFAULTS[key]}")


def add_arguments(parser) -> None:
    from rnn_jax._src.train.models import CELLS, INITS
    from rnn_jax._src.train.step import OPTIMIZERS
    from rnn_jax._src.train.seq_tasks import ATTENTIONS, SEQ_TASKS
    from rnn_jax._src.train.autoencoder import OBJECTIVES
    from rnn_jax._src.heads import POOLS
    parser.add_argument("task", choices=("adding", "copy", "charlm", "waveform", *SEQ_TASKS,
                                         *LANG_TASKS, *IMAGE_TASKS))
    parser.add_argument("--cell", choices=CELLS, help="the recurrent cell (default: lstm)")
    parser.add_argument("--hidden", type=positive_int,
                        help=f"hidden size (default: {_task_defaults('hidden')})")
    parser.add_argument("--param-budget", type=positive_int,
                        help="choose the hidden size whose model has about this many parameters")
    parser.add_argument("--length", type=positive_int,
                        help="T of the adding/copy task, the truncated-BPTT chunk of charlm, or "
                             "the samples of the waveform clip "
                             f"(default: {_task_defaults('length')})")
    parser.add_argument("--steps", type=positive_int,
                        help="train until this step (default: 1000; with --resume: as saved, "
                             "or larger to continue)")
    parser.add_argument("--batch", type=positive_int,
                        help=f"sequences per step (default: {_task_defaults('batch')})")
    parser.add_argument("--lr", type=positive_float,
                        help=f"learning rate (default: {_task_defaults('lr')})")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS),
                        help=f"optax optimiser (default: {_task_defaults('optimizer')})")
    parser.add_argument("--clip", type=nonnegative_float,
                        help="clip gradients by global norm, 0: off "
                             f"(default: {_task_defaults('clip')})")
    parser.add_argument("--clip-value", type=positive_float,
                        help="clip gradients elementwise to [-X, X] (default: off)")
    parser.add_argument("--init", choices=INITS,
                        help="initialiser of the recurrent weights (default: default)")
    parser.add_argument("--seed", type=nonnegative_int, help="(default: 0)")
    parser.add_argument("--nonfinite", choices=("stop", "skip"),
                        help="on a non-finite loss or gradient: stop the run, keeping its last "
                             "finite state, or skip that step's update (default: stop)")
    parser.add_argument("--out", help="the run's directory (default: a new runs/TASK-CELL-TIME)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run saved in --out (its config.json wins)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run saved in --out (without it, an existing run is "
                             "never overwritten)")
    parser.add_argument("--log-every", type=positive_int, help="(default: 50)")
    parser.add_argument("--eval-every", type=positive_int, help="(default: 500)")
    parser.add_argument("--checkpoint-every", type=positive_int, help="(default: 500)")
    parser.add_argument("--eval-batch", type=positive_int,
                        help="test sequences (adding/copy, default 1000) or validation streams "
                             "(charlm, default 16)")
    parser.add_argument("--corpus", choices=("code", "prose", "atis"),
                        help="charlm: the standard library's .py files (code, default) or its "
                             "English pydoc topics (prose, pydoc_data/topics.py); autoencoder: "
                             "the grammar's flight requests (atis, default) or prose")
    parser.add_argument("--data", nargs="*", help="charlm: text files (default: the Python "
                        "standard library's .py files)")
    parser.add_argument("--max-chars", type=positive_int,
                        help="charlm: read at most this many characters (default: all)")
    parser.add_argument("--valid-chars", type=positive_int,
                        help="charlm: validation characters scored (default: 200000)")
    parser.add_argument("--min-count", type=positive_int,
                        help="charlm: rarer characters share one UNK id (default: 100)")
    parser.add_argument("--ngram-order", type=nonnegative_int,
                        help="charlm: order of the n-gram baseline, 0: none (default: 4)")
    parser.add_argument("--attention", choices=(*ATTENTIONS, "soft", "hard"),
                        help="sequence tasks: the decoder's attention (none, the default, "
                             "additive, dot, general); caption: soft (default) or hard")
    parser.add_argument("--reverse-source", action="store_true", default=None,
                        help="sequence tasks, autoencoder: read each source backwards "
                             "(Sutskever et al.)")
    parser.add_argument("--embed", type=nonnegative_int,
                        help="token embedding size (sequence tasks: default 32; autoencoder: "
                             "64; slots and intent: 0, words as 1-of-N + other)")
    parser.add_argument("--beam", type=positive_int,
                        help="sequence and CTC tasks: beam width scored beside greedy, 1: "
                             "greedy only (default: sequence tasks 5, CTC 8)")
    parser.add_argument("--bidirectional", action="store_true", default=None,
                        help="slots, intent: one cell reads each way")
    parser.add_argument("--unk-rate", type=probability,
                        help="slots, intent: share of training words replaced by 'other' "
                             "(default: 0.05)")
    parser.add_argument("--labelled", type=fraction,
                        help="slots, intent: share of the training sentences used (default: 1)")
    parser.add_argument("--pool", choices=POOLS,
                        help="intent: the sentence's summary (default: last)")
    parser.add_argument("--far", action="store_true", default=None,
                        help="intent, autoencoder on atis: sentences end in 12-24 "
                             "intent-neutral words")
    parser.add_argument("--pretrained",
                        help="intent: an autoencoder run (atis, reconstruct) whose encoder "
                             "starts the classifier (Dai & Le)")
    parser.add_argument("--objective", choices=(*OBJECTIVES, "ctc", "frames"),
                        help="autoencoder: rebuild the sentence or its neighbours (default: "
                             "reconstruct); ctc-read: ctc (default) or frames, the baseline "
                             "trained on known alignments")
    parser.add_argument("--truncate", type=positive_int, metavar="K",
                        help="adding, copy: truncated BPTT, no gradient crosses a boundary "
                             "every K steps of a sequence (default: full BPTT)")
    parser.add_argument("--gradient", choices=("bptt", "uoro"),
                        help="adding, copy: train on the BPTT gradient (default) or on UORO's "
                             "unbiased online estimate (Tallec & Ollivier 2017)")
    parser.add_argument("--devices", type=positive_int,
                        help="data-parallel over this many devices; the batch must divide by "
                             "it (default: all devices)")
    parser.add_argument("--coordinator", metavar="HOST:PORT",
                        help="several processes (hosts): process 0's address, for "
                             "jax.distributed.initialize; with --num-processes, --process-id")
    parser.add_argument("--num-processes", type=positive_int, help="several processes: how many")
    parser.add_argument("--process-id", type=nonnegative_int,
                        help="several processes: this one's index, 0 to --num-processes - 1")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def given(args) -> dict:
    """The run options given on the command line (None: not given); an option of another
    task is refused."""
    from rnn_jax._src.train.experiment import task_table
    table = task_table()
    own = set(table[args.task][1])
    other = sorted({k for _, opts in table.values() for k in opts} - own)
    wrong = [_flag(k) for k in other if getattr(args, k, None) is not None]
    if wrong:
        raise UsageError(f"{', '.join(wrong)} do{'es' * (len(wrong) == 1)} not apply to "
                         f"{args.task}")
    out = {k: getattr(args, k) for k in RUN_KEYS + tuple(sorted(own))
           if getattr(args, k) is not None}
    if args.task == "charlm" and out.get("corpus") == "atis" or \
            args.task == "autoencoder" and out.get("corpus") == "code":
        raise UsageError(f"--corpus {out['corpus']} is not a corpus of {args.task}")
    if args.task == "autoencoder":
        corpus = out.get("corpus", "atis")
        if out.get("far") and corpus != "atis":
            raise UsageError(f"--far applies to the atis corpus, not {corpus}")
        if out.get("objective") == "skip-thought" and corpus != "prose":
            raise UsageError("--objective skip-thought needs neighbouring sentences: "
                             "--corpus prose")
    if out.get("gradient") == "uoro" and out.get("truncate") is not None:
        raise UsageError("--truncate applies to --gradient bptt, not uoro (UORO does not "
                         "truncate)")
    objective = out.get("objective")
    from rnn_jax._src.train.autoencoder import OBJECTIVES
    allowed = {"autoencoder": OBJECTIVES, "ctc-read": ("ctc", "frames"), "ctc-listen": ("ctc",)}
    if objective is not None and objective not in allowed[args.task]:
        raise UsageError(f"--objective {objective} is not one of {args.task}'s: "
                         f"{', '.join(allowed[args.task])}")
    attention = out.get("attention")
    if attention is not None and (attention in ("soft", "hard")) != (args.task == "caption"):
        raise UsageError(f"--attention {attention} is not an attention of {args.task}")
    if out.get("embed") == 0 and args.task not in ("slots", "intent"):
        raise UsageError(f"--embed must be positive for {args.task}")
    return out


def config_from_args(args) -> dict:
    from rnn_jax._src.train.experiment import default_config
    opts = given(args)
    if args.steps is not None:
        opts["steps"] = args.steps
    return default_config(args.task, **opts)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")
