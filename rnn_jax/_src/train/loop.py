"""The training loop: progress bar, JSON-lines metrics, periodic checkpoints, resume.

The batch of step ``s`` must be a pure function of ``s`` (and of the carried
state in the :class:`TrainState`), so that a run restored from a checkpoint
continues exactly as if it had never stopped.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Optional

import jax
import numpy as np
from tqdm.auto import tqdm

from rnn_jax._src.train import checkpoint as ckpt
from rnn_jax._src.train.step import TrainState

METRICS = "metrics.jsonl"


def _plain(x: Any) -> Any:
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x.tolist()


def read_metrics(path: str) -> list[dict]:
    """All records of a JSON-lines metrics file."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate_metrics(path: str, step: int) -> None:
    """Drops records logged after ``step`` (by a run killed after its last checkpoint)."""
    records = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def train_loop(
    state: TrainState,
    train_step: Callable[[TrainState, Any], tuple[TrainState, dict]],
    batch_fn: Callable[[int], Any],
    num_steps: int,
    *,
    out_dir: Optional[str] = None,
    checkpoint_every: int = 500,
    log_every: int = 50,
    eval_fn: Optional[Callable[[Any], dict]] = None,
    eval_every: int = 0,
    items_per_step: int = 1,
    progress: bool = True,
    stop_after: Optional[int] = None,
) -> tuple[TrainState, list[dict]]:
    """Runs ``train_step`` from ``state.step`` up to ``num_steps``.

    Args:
      batch_fn: ``batch_fn(step) -> batch``, deterministic in ``step``.
      out_dir: where checkpoints and ``metrics.jsonl`` go (nothing is written if None).
      checkpoint_every: save every this many steps, and at the end.
      log_every: average the step metrics over this many steps into one record.
      eval_fn: ``eval_fn(params) -> dict`` of metrics, run every ``eval_every`` steps and
        at the end (prefixed ``eval_``).
      items_per_step: sequences or characters per step, for the throughput figure.
      stop_after: stop (as if killed) once the state reaches this step, without the final
        checkpoint or evaluation; for testing resumption.

    Returns:
      The final state and the list of records logged by this call.
    """
    metrics_path = os.path.join(out_dir, METRICS) if out_dir else None
    start = int(state.step)
    if metrics_path:
        os.makedirs(out_dir, exist_ok=True)
        truncate_metrics(metrics_path, start)
    records, window, t0 = [], [], time.perf_counter()

    def emit(record):
        records.append(record)
        if metrics_path:
            with open(metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    bar = tqdm(total=num_steps, initial=start, disable=not progress, dynamic_ncols=True,
               unit="step")
    step = start
    while step < num_steps:
        state, metrics = train_step(state, batch_fn(step))
        step += 1
        window.append(metrics)
        if step % log_every == 0 or step == num_steps:
            mean = jax.tree.map(lambda *xs: float(np.mean([np.asarray(x) for x in xs])), *window)
            dt = time.perf_counter() - t0
            rate = len(window) * items_per_step / max(dt, 1e-9)
            record = {"step": step, **{k: _plain(v) for k, v in mean.items()},
                      "items_per_s": rate, "time": time.time()}
            if eval_fn is not None and eval_every and step % eval_every == 0 and step != num_steps:
                record.update({f"eval_{k}": _plain(v) for k, v in eval_fn(state.params).items()})
            emit(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}", rate=f"{rate:,.0f}/s")
            window, t0 = [], time.perf_counter()
        bar.update(1)
        if stop_after is not None and step >= stop_after:
            bar.close()
            return state, records
        if out_dir and (step % checkpoint_every == 0 or step == num_steps):
            ckpt.save_checkpoint(out_dir, state)
    bar.close()
    if eval_fn is not None and start < num_steps == step:
        final = {"step": step, "final": True,
                 **{f"eval_{k}": _plain(v) for k, v in eval_fn(state.params).items()}}
        emit(final)
    return state, records
