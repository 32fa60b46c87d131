"""Training runs from a config dict: what ``rnn-jax train`` does, callable from Python.

The config is JSON-able (``rnn-jax train`` writes it to ``config.json``); see
:data:`rnn_jax._src.train.tasks.DEFAULTS` and ``rnn-jax train --help`` for its keys.
"""
from __future__ import annotations

import sys

import jax

from rnn_jax._src.train import checkpoint as ckpt
from rnn_jax._src.train.data_text import Vocab
from rnn_jax._src.train.loop import train_loop
from rnn_jax._src.train.models import count_params
from rnn_jax._src.train.step import init_state, make_optimizer, make_train_step
from rnn_jax._src.train.tasks import setup


def run_training(cfg: dict, out: str, *, resume: bool = False, progress: bool = True,
                 stop_after=None):
    """Trains from a config, resuming from the checkpoint in ``out`` if asked (temporary
    files of interrupted writes there are removed first).

    Returns ``(state, summary)``; ``stop_after`` stops early as if the run were killed.
    """
    if resume:
        ckpt.clean_temporary(out)
    vocab = Vocab(cfg["vocab"]) if resume and "vocab" in cfg else None
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    s = setup(cfg, say=say, **({"vocab": vocab} if vocab else {}))
    k_init, k_state = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(cfg["seed"]), 1))
    params = s.model.init(k_init)
    opt = make_optimizer(cfg["optimizer"], cfg["lr"], clip_norm=cfg["clip"] or None,
                         clip_value=cfg.get("clip_value"))
    state = init_state(params, opt, k_state, s.initial_carry)
    if resume and ckpt.has_checkpoint(out):
        state = ckpt.restore_checkpoint(out, state)
    full = {**cfg, **s.extra, "model": s.model.config, "params": count_params(params, s.model.cell),
            "baselines": s.baselines}
    ckpt.save_config(out, full)
    state, records = train_loop(
        state, make_train_step(s.loss_fn, opt, skip_nonfinite=cfg.get("nonfinite") == "skip"),
        s.batch_fn, cfg["steps"], out_dir=out,
        checkpoint_every=cfg["checkpoint_every"], log_every=cfg["log_every"],
        eval_fn=s.eval_fn, eval_every=cfg["eval_every"], items_per_step=s.items_per_step,
        progress=progress, stop_after=stop_after)
    final = [r for r in records if r.get("final")]
    summary = {"task": cfg["task"], "cell": cfg["cell"], "init": cfg["init"],
               "hidden": cfg["hidden"], "params": full["params"], "steps": int(state.step),
               "baselines": s.baselines, **({"final": final[-1]} if final else {})}
    return state, summary


def default_config(task: str, **overrides) -> dict:
    """A complete run config for ``task`` (``rnn-jax train``'s tasks), with ``overrides``."""
    from rnn_jax._src.train.seq_tasks import SEQ_DEFAULTS, SEQ_OPTIONS, SEQ_TASKS
    from rnn_jax._src.train.tasks import DEFAULTS
    defaults = {**DEFAULTS, **{t: SEQ_DEFAULTS for t in SEQ_TASKS}}
    if task not in defaults:
        raise ValueError(f"task {task!r} is not one of {sorted(defaults)}")
    cfg = dict(task=task, cell="lstm", init="default", seed=0, steps=1000, clip_value=None,
               eval_batch=16 if task == "charlm" else 1000, log_every=50, eval_every=500,
               checkpoint_every=500, nonfinite="stop", **defaults[task])
    if task in SEQ_TASKS:
        cfg.update(SEQ_OPTIONS)
    if task == "charlm":
        cfg.update(corpus="code", data=None, max_chars=None, valid_chars=200_000, min_count=100,
                   ngram_order=4)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}")
    cfg.update(overrides)
    return cfg
