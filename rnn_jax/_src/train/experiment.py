"""Training runs from a config dict: what ``rnn-jax train`` does, callable from Python.

The config is JSON-able (``rnn-jax train`` writes it to ``config.json``); see
:data:`rnn_jax._src.train.tasks.DEFAULTS` and ``rnn-jax train --help`` for its keys.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Optional

import jax

from rnn_jax._src.train import checkpoint as ckpt
from rnn_jax._src.train.data_text import Vocab
from rnn_jax._src.train.loop import train_loop
from rnn_jax._src.train.models import count_params
from rnn_jax._src.train.sharding import data_parallel, shard_state, sharded_batches
from rnn_jax._src.train.step import init_state, make_optimizer, make_train_step
from rnn_jax._src.train.tasks import setup


def run_training(cfg: dict, out: str, *, resume: bool = False, progress: bool = True,
                 stop_after=None, devices: Optional[int] = 1):
    """Trains from a config, resuming from the checkpoint in ``out`` if asked (temporary
    files of interrupted writes there are removed first).

    ``devices``: data-parallel over this many local devices (None: all of them;
    :func:`rnn_jax.train.data_parallel`); the batch must divide by it. A run may resume on
    another number of devices. Returns ``(state, summary)``; ``stop_after`` stops early as if
    the run were killed.
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
    batch_fn = s.batch_fn
    dp = data_parallel(devices)
    if dp.size > 1:
        if cfg["batch"] % dp.size:
            raise ValueError(f"batch {cfg['batch']} does not divide over {dp.size} devices")
        state, batch_fn = shard_state(dp, state), sharded_batches(dp, s.batch_fn)
    if resume and ckpt.has_checkpoint(out):   # onto this run's shardings, whatever saved it
        state = ckpt.restore_checkpoint(out, state)
    full = {**cfg, **s.extra, "model": s.model.config, "params": count_params(params, s.model.cell),
            "baselines": s.baselines}
    if jax.process_index() == 0:   # several processes: the first writes the run's files
        ckpt.save_config(out, full)
    state, records = train_loop(
        state, make_train_step(s.loss_fn, opt, skip_nonfinite=cfg.get("nonfinite") == "skip"),
        batch_fn, cfg["steps"], out_dir=out,
        checkpoint_every=cfg["checkpoint_every"], log_every=cfg["log_every"],
        eval_fn=s.eval_fn, eval_every=cfg["eval_every"], items_per_step=s.items_per_step,
        progress=progress, stop_after=stop_after)
    final = [r for r in records if r.get("final")]
    summary = {"task": cfg["task"], "cell": cfg["cell"], "init": cfg["init"],
               "hidden": cfg["hidden"], "params": full["params"], "steps": int(state.step),
               "baselines": s.baselines, "devices": dp.size,
               **({"final": final[-1]} if final else {})}
    return state, summary


def load_run(run_dir: str, build: Callable[[dict], Any],
             carry: Any = None) -> tuple[dict, Any, Any]:
    """``(config, model, params)`` of the run saved in ``run_dir``; ``build(config)`` makes
    the model (anything with ``init(key)``) whose params the checkpoint holds, ``carry`` is
    the shape of the training state's carry."""
    cfg = ckpt.load_config(run_dir)
    model = build(cfg)
    opt = make_optimizer(cfg["optimizer"], cfg["lr"], clip_norm=cfg["clip"] or None,
                         clip_value=cfg.get("clip_value"))
    template = init_state(model.init(jax.random.PRNGKey(0)), opt, jax.random.PRNGKey(0), carry)
    return cfg, model, ckpt.restore_checkpoint(run_dir, template).params


CHARLM_OPTIONS = dict(corpus="code", data=None, max_chars=None, valid_chars=200_000,
                      min_count=100, ngram_order=4)
# adding, copy: truncated BPTT within each sequence (None: full), or UORO's online estimate
SYNTHETIC_OPTIONS = dict(truncate=None, gradient="bptt")


def task_table() -> dict[str, tuple[dict, dict]]:
    """Per task: ``(defaults of the common keys, the task's own options with defaults)``."""
    from rnn_jax._src.train.autoencoder import AE_DEFAULTS, AE_OPTIONS
    from rnn_jax._src.train.caption_tasks import CAPTION_DEFAULTS, CAPTION_OPTIONS
    from rnn_jax._src.train.ctc_tasks import CTC_DEFAULTS, CTC_OPTIONS, CTC_TASKS
    from rnn_jax._src.train.lang_tasks import INTENT_OPTIONS, LANG_DEFAULTS, TAG_OPTIONS
    from rnn_jax._src.train.seq_tasks import SEQ_DEFAULTS, SEQ_OPTIONS, SEQ_TASKS
    from rnn_jax._src.train.tasks import DEFAULTS
    own = {"charlm": CHARLM_OPTIONS, "adding": SYNTHETIC_OPTIONS, "copy": SYNTHETIC_OPTIONS}
    table = {t: (d, own.get(t, {})) for t, d in DEFAULTS.items()}
    table.update({t: (SEQ_DEFAULTS, SEQ_OPTIONS) for t in SEQ_TASKS})
    table.update(slots=(LANG_DEFAULTS, TAG_OPTIONS),
                 intent=(LANG_DEFAULTS, {**TAG_OPTIONS, **INTENT_OPTIONS}),
                 autoencoder=(AE_DEFAULTS, AE_OPTIONS))
    table.update({t: (CTC_DEFAULTS, CTC_OPTIONS) for t in CTC_TASKS})
    table["caption"] = (CAPTION_DEFAULTS, CAPTION_OPTIONS)
    return table


def default_config(task: str, **overrides) -> dict:
    """A complete run config for ``task`` (``rnn-jax train``'s tasks), with ``overrides``."""
    table = task_table()
    if task not in table:
        raise ValueError(f"task {task!r} is not one of {sorted(table)}")
    defaults, options = table[task]
    cfg = dict(task=task, cell="lstm", init="default", seed=0, steps=1000, clip_value=None,
               eval_batch=16 if task == "charlm" else 1000, log_every=50, eval_every=500,
               checkpoint_every=500, nonfinite="stop", **defaults, **options)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}")
    cfg.update(overrides)
    return cfg
