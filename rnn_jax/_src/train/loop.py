"""The training loop: progress bar, JSON-lines metrics, periodic checkpoints, resume.

The batch of step ``s`` must be a pure function of ``s`` (and of the carried
state in the :class:`TrainState`), so that a run restored from a checkpoint
continues exactly as if it had never stopped.

Nothing is lost: a step whose loss or gradient is not finite stops the run
(:class:`NonFinite`) before its state is kept, unless the step function skips such updates
itself (``make_train_step(..., skip_nonfinite=True)``, counted in the records); Ctrl-C
(:class:`Interrupted`) saves the last completed step first. Metrics files hold strict JSON
(a non-finite value is written as ``null``) and are rewritten atomically.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, Optional

import jax
import numpy as np
from tqdm.auto import tqdm

from rnn_jax._src.train import checkpoint as ckpt
from rnn_jax._src.train.step import TrainState

METRICS = "metrics.jsonl"


class NonFinite(RuntimeError):
    """A training step gave a non-finite loss or gradient; ``step`` is that step (1-based)."""

    def __init__(self, step: int, what: str):
        super().__init__(f"non-finite {what} at step {step}")
        self.step, self.what = step, what


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``step`` is the last completed step."""

    def __init__(self, step: int):
        super().__init__(f"interrupted after step {step}")
        self.step = step


def _plain(x: Any) -> Any:
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x.tolist()


def _line(record: dict) -> str:
    return json.dumps(ckpt.json_safe(record), allow_nan=False) + "\n"


def read_metrics(path: str) -> list[dict]:
    """All records of a JSON-lines metrics file. A torn last line (a write cut short) is
    dropped with a warning on stderr; a damaged line elsewhere is a
    :class:`~rnn_jax._src.train.checkpoint.CheckpointError` naming the file and line."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if any(rest.strip() for rest in lines[n:]):
                raise ckpt.CheckpointError(f"{path}: line {n} is not JSON") from None
            print(f"warning: {path}: dropped its torn last line {n}", file=sys.stderr)
    return records


def truncate_metrics(path: str, step: int) -> None:
    """Drops records logged after ``step`` (by a run killed after its last checkpoint), and
    a torn last line; rewrites the file atomically."""
    records = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    ckpt.atomic_write(path, "".join(_line(r) for r in records).encode("utf-8"))


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

    Raises:
      NonFinite: a step's loss or gradient norm was not finite (and the step function did
        not skip it); the last good state is checkpointed first (with ``out_dir``).
      Interrupted: Ctrl-C; the last completed step is checkpointed first (with ``out_dir``).
    """
    # several processes (rnn_jax.train.initialize_distributed): process 0 writes the metrics
    metrics_path = os.path.join(out_dir, METRICS) if out_dir and jax.process_index() == 0 \
        else None
    start = int(state.step)
    if metrics_path:
        os.makedirs(out_dir, exist_ok=True)
        truncate_metrics(metrics_path, start)
    records, window, skipped, t0 = [], [], 0, time.perf_counter()

    def emit(record):
        records.append(record)
        if metrics_path:
            with open(metrics_path, "a", encoding="utf-8") as f:
                f.write(_line(record))

    bar = tqdm(total=num_steps, initial=start, disable=not progress, dynamic_ncols=True,
               unit="step")
    step = start
    try:
        while step < num_steps:
            new, metrics = train_step(state, batch_fn(step))
            metrics = dict(metrics)
            finite, skip = metrics.pop("finite", True), metrics.pop("skipped", None)
            if skip is None and not bool(finite):        # the update is not kept
                loss = float(np.asarray(metrics["loss"]))
                raise NonFinite(step + 1, "loss" if not np.isfinite(loss) else "gradient")
            skipped += 0 if skip is None else int(skip)
            state, step = new, step + 1
            window.append(metrics)
            if step % log_every == 0 or step == num_steps:
                dt = time.perf_counter() - t0
                rate = len(window) * items_per_step / max(dt, 1e-9)
                record = {"step": step, **{k: _plain(v) for k, v in _mean(window).items()},
                          "items_per_s": rate, "time": time.time()}
                if skipped:
                    record["skipped_nonfinite"] = skipped
                if eval_fn is not None and eval_every and step % eval_every == 0 \
                        and step != num_steps:
                    record.update({f"eval_{k}": _plain(v)
                                   for k, v in eval_fn(state.params).items()})
                emit(record)
                bar.set_postfix(loss=f"{record['loss']:.4f}", rate=f"{rate:,.0f}/s")
                window, t0 = [], time.perf_counter()
            bar.update(1)
            if stop_after is not None and step >= stop_after:
                bar.close()
                return state, records
            if out_dir and (step % checkpoint_every == 0 or step == num_steps):
                ckpt.save_checkpoint(out_dir, state)
    except (KeyboardInterrupt, NonFinite) as err:
        bar.close()
        if out_dir:                       # the last completed, finite step
            ckpt.save_checkpoint(out_dir, state)
        if isinstance(err, NonFinite):
            raise
        raise Interrupted(step) from None
    bar.close()
    if eval_fn is not None and start < num_steps == step:
        final = {"step": step, "final": True,
                 **{f"eval_{k}": _plain(v) for k, v in eval_fn(state.params).items()}}
        emit(final)
    return state, records


def _mean(window: list[dict]) -> dict:
    """Each metric's mean over the window's steps, over its finite values (NaN if none)."""
    def mean(*xs):
        v = np.asarray([np.asarray(x, np.float64) for x in xs])
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    return jax.tree.map(mean, *window)
