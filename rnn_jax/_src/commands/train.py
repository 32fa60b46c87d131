"""``rnn-jax train TASK``: train a model on one of the classic tasks (adding, copy, charlm,
waveform; the sequence-to-sequence tasks reverse, addition, dates, parse; the language tasks
slots, intent, autoencoder; ctc-read, ctc-listen and caption).

A run lives in its own directory (``--out``; by default a new ``runs/TASK-CELL-TIME``) and is
never replaced without ``--overwrite``. ``--resume`` continues the run saved there: its
``config.json`` wins, an option that contradicts it is refused (naming it), ``--steps`` may
only extend it. A non-finite loss or gradient stops the run, keeping its last finite state
(``--nonfinite skip`` skips such steps instead); Ctrl-C saves the last completed step and
prints the command that resumes.
"""
from __future__ import annotations

import json
import os
import sys
import time

from rnn_jax._src.commands._args import (UsageError, fraction, nonnegative_float,
                                         nonnegative_int, positive_float, positive_int,
                                         probability)

NAME = "train"
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
RUN_FILES = ("config.json", "checkpoint.msgpack", "metrics.jsonl", "summary.json")
EXIT_NONFINITE, EXIT_INTERRUPTED = 3, 130


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


def _new_out(task: str, cell: str) -> str:
    stem = os.path.join("runs", f"{task}-{cell}-{time.strftime('%Y%m%d-%H%M%S')}")
    out, n = stem, 1
    while os.path.exists(out):
        n += 1
        out = f"{stem}-{n}"
    return out


def _existing(out: str) -> list[str]:
    return [f for f in RUN_FILES if os.path.exists(os.path.join(out, f))]


def _resume_config(args) -> tuple[dict, int]:
    """The saved config with ``--steps`` applied and the saved step; refuses what cannot be
    resumed, naming why."""
    from rnn_jax._src.train import checkpoint as ckpt
    out = args.out
    if not os.path.exists(os.path.join(out, ckpt.CONFIG)):
        raise UsageError(f"--resume: {out} holds no run (no {ckpt.CONFIG})")
    cfg = ckpt.load_config(out)
    if not ckpt.has_checkpoint(out):
        raise UsageError(f"--resume: {out} has a config but no checkpoint, nothing to resume; "
                         "start it again with --overwrite")
    saved = ckpt.read_step(out)         # also checks that the checkpoint is readable
    if cfg.get("task") != args.task:
        raise UsageError(f"--resume: {out} holds a {cfg['task']} run, not {args.task}")
    clash = [f"{_flag(k)} {v} (saved: {cfg.get(k)})" for k, v in given(args).items()
             if cfg.get(k) != v and not (k == "data" and cfg.get(k) in (None, []) and not v)]
    if args.param_budget is not None:
        clash.append(f"--param-budget {args.param_budget} (saved: hidden {cfg['hidden']})")
    if clash:
        raise UsageError(f"--resume: {', '.join(clash)} contradict{'s' * (len(clash) == 1)} "
                         f"the run saved in {out}")
    if args.steps is not None:
        cfg["steps"] = args.steps
    return cfg, saved if saved is not None else 0


def main(args) -> int:
    from rnn_jax._src.train import checkpoint as ckpt
    from rnn_jax._src.train.loop import Interrupted, NonFinite

    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if args.resume:
        if args.out is None:
            raise UsageError("--resume needs --out, the run's directory")
        try:
            cfg, saved = _resume_config(args)
        except ckpt.CheckpointError as err:
            raise UsageError(str(err)) from None
        if saved >= cfg["steps"]:
            print(f"nothing to do: the run in {args.out} is at step {saved}, --steps is "
                  f"{cfg['steps']}; pass a larger --steps to continue it")
            return 0
        out = args.out
    else:
        cfg = config_from_args(args)
        out = args.out or _new_out(args.task, cfg["cell"])
        found = _existing(out)
        if found and not args.overwrite:
            raise UsageError(f"{out} already holds a run ({', '.join(found)}); pass --resume "
                             "to continue it, --overwrite to replace it, or another --out")
        for f in found:
            os.remove(os.path.join(out, f))
        if cfg.get("pretrained"):
            _check_pretrained(cfg)
        if args.param_budget:
            if args.task not in ("adding", "copy", "charlm", "waveform"):
                raise UsageError(f"--param-budget is not available for {args.task}; "
                                 "give --hidden")
            cfg["hidden"] = _hidden_for_budget(args, cfg)
    from rnn_jax._src.train.experiment import run_training
    if args.out is None:
        print(f"run directory: {out}", file=sys.stderr)
    resume_cmd = f"rnn-jax train {args.task} --resume --out {out}"
    try:
        _, summary = run_training(cfg, out, resume=args.resume, progress=not args.no_progress)
    except NonFinite as err:
        print(f"rnn-jax train: {err}; stopped. The last finite state (step {err.step - 1}) is "
              f"saved in {out}. Try a lower --lr, a --clip, or --nonfinite skip", file=sys.stderr)
        return EXIT_NONFINITE
    except Interrupted as err:
        print(f"\nrnn-jax train: interrupted; step {err.step} is saved in {out}. "
              f"Resume with: {resume_cmd}", file=sys.stderr)
        return EXIT_INTERRUPTED
    from rnn_jax._src.train import autoencoder, lang_tasks, seq_tasks
    if args.task in seq_tasks.SEQ_TASKS:   # accuracy against source length, attention heatmaps
        summary["report"] = seq_tasks.report(out)
    if args.task == "slots":               # the tags of the notes' example sentences
        summary["report"] = lang_tasks.report(out)
    if args.task == "autoencoder":         # exact match against length, or neighbours
        summary["report"] = autoencoder.report(out)
    if args.task in CTC_TASKS:             # the per-frame output probabilities of one example
        from rnn_jax._src.train import ctc_tasks
        summary["report"] = ctc_tasks.report(out)
    if args.task == "caption":             # each word's attention over a few canvases
        from rnn_jax._src.train import caption_tasks
        summary["report"] = caption_tasks.report(out)
    if args.task == "waveform":   # the target clip against this model's output
        from rnn_jax._src.train.waveform import plot_waveforms
        plot_waveforms([out], os.path.join(out, "waveform.png"))
    ckpt.atomic_write(os.path.join(out, "summary.json"),
                      json.dumps(ckpt.json_safe(summary), indent=2).encode("utf-8"))
    print(json.dumps(ckpt.json_safe(summary), indent=2))
    return 0


def _check_pretrained(cfg: dict) -> None:
    from rnn_jax._src.train import checkpoint as ckpt
    from rnn_jax._src.train.lang_tasks import pretrained_config
    path = cfg["pretrained"]
    if not (os.path.isfile(os.path.join(path, ckpt.CONFIG)) and ckpt.has_checkpoint(path)):
        raise UsageError(f"--pretrained: {path} holds no trained run")
    try:
        pretrained_config(cfg)
    except ValueError as err:
        raise UsageError(f"--pretrained: {err}") from None


def _hidden_for_budget(args, cfg: dict) -> int:
    from rnn_jax._src.train.models import hidden_for_budget
    n_in = {"adding": 2, "copy": 10, "waveform": 1}.get(args.task)
    if n_in is None:  # charlm: the vocabulary decides the sizes
        from rnn_jax._src.train import data_text as text
        print("reading the corpus for the vocabulary size...", file=sys.stderr)
        corpus = text.read_corpus(cfg)
        n_in = text.build_vocab(corpus.train, min_count=cfg["min_count"]).size
    n_out = 1 if args.task in ("adding", "waveform") else n_in
    return hidden_for_budget(dict(cell=cfg["cell"], input_size=n_in, output_size=n_out,
                                  init=cfg["init"], tokens=args.task in ("copy", "charlm"),
                                  hidden=1),
                             args.param_budget)
