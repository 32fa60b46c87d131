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
import shutil
import sys
import time

from rnn_jax._src.commands._args import UsageError
from rnn_jax._src.commands._train_options import (  # noqa: F401  (the command's parts)
    CTC_TASKS, HELP, _flag, add_arguments, config_from_args, given)

NAME = "train"

RUN_FILES = ("config.json", "state", "checkpoint.msgpack", "metrics.jsonl", "summary.json")
EXIT_NONFINITE, EXIT_INTERRUPTED = 3, 130


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
    _join_processes(args)
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
            path = os.path.join(out, f)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
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
        _, summary = run_training(cfg, out, resume=args.resume, progress=not args.no_progress,
                                  devices=_devices(args, cfg))
    except NonFinite as err:
        print(f"rnn-jax train: {err}; stopped. The last finite state (step {err.step - 1}) is "
              f"saved in {out}. Try a lower --lr, a --clip, or --nonfinite skip", file=sys.stderr)
        return EXIT_NONFINITE
    except Interrupted as err:
        print(f"\nrnn-jax train: interrupted; step {err.step} is saved in {out}. "
              f"Resume with: {resume_cmd}", file=sys.stderr)
        return EXIT_INTERRUPTED
    import jax
    if jax.process_index() != 0:           # several processes: the first reports
        return 0
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


def _join_processes(args) -> None:
    """``--coordinator``, ``--num-processes``, ``--process-id``: all or none, then
    ``jax.distributed.initialize`` before any other JAX call."""
    given = [a for a in (args.coordinator, args.num_processes, args.process_id) if a is not None]
    if not given:
        return
    if len(given) != 3:
        raise UsageError("--coordinator, --num-processes and --process-id go together")
    if args.process_id >= args.num_processes:
        raise UsageError(f"--process-id {args.process_id} must be below --num-processes "
                         f"{args.num_processes}")
    from rnn_jax._src.train.sharding import initialize_distributed
    initialize_distributed(args.coordinator, args.num_processes, args.process_id)


def _devices(args, cfg: dict) -> int:
    """``--devices`` (default: every device of every process, as many as divide the batch),
    checked."""
    import jax
    local = len(jax.devices())
    n = local if args.devices is None else args.devices
    if n > local:
        raise UsageError(f"--devices {n}: this run has {local} device(s)")
    if jax.process_count() > 1 and n != local:
        raise UsageError(f"--devices {n}: a run over {jax.process_count()} processes uses all "
                         f"their {local} devices")
    if cfg["batch"] % n:
        if args.devices is not None:
            raise UsageError(f"--devices {n} does not divide the batch ({cfg['batch']}); "
                             "pass a --batch that it divides")
        n = max(d for d in range(1, n + 1) if cfg["batch"] % d == 0)
    return n


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
