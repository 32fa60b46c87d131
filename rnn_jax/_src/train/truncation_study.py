"""Truncated BPTT's bias on the adding problem and the copy task, and what it does to training.

For each task, :func:`angle_study` measures ``∠(g_k, g)``, the angle between the gradient of
truncated BPTT with truncation length ``k`` (``rnn_jax.ManualBPTT(truncate=k)``, chunks of
``k`` steps from the start of each sequence) and the full gradient,
with :func:`rnn_jax.diagnostics.truncation_angles` (its docstring has the maths), on one fixed
probe batch, at initialisation and after training the model with full BPTT. The gradient is
the whole model's (cell and readout), as the optimiser sees it. :func:`training_study` trains
the same model from the same seed for the same steps with full BPTT, ``--truncate K`` and
``--gradient uoro`` (:func:`rnn_jax._src.train.experiment.run_training`, what ``rnn-jax train``
runs) and reports the final evaluation metric.

Run as ``python -m rnn_jax._src.train.truncation_study`` (``--help``); it prints the tables
as markdown and the ``rnn-jax train`` command of every training run, and writes
``truncation_study.json`` into ``--out`` (its run directories ``TASK-angles``, ``adding-full``,
``adding-K``, ``adding-uoro``; an existing one is replaced only with ``--overwrite``).

Note on the adding problem: its loss is read at the last step only, so ``g_k`` sees only the
last chunk, of ``((T - 1) mod k) + 1`` steps; a ``T`` divisible by every ``k`` (60 for
1, 2, 5, 10, 20) makes that chunk ``k`` steps long.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any, Optional, Sequence

import jax

from rnn_jax._src.diagnostics.truncation import truncation_angles
from rnn_jax._src.train import data_tasks
from rnn_jax._src.train.experiment import default_config, run_training
from rnn_jax._src.train.tasks import setup, synthetic_loss

KS = (1, 2, 5, 10, 20)
METRIC = {"adding": "eval_mse", "copy": "eval_xent"}


def sequence_length(task: str, length: int) -> int:
    """Steps the cell reads: ``T`` (adding), ``T + 20`` (copy: 10 symbols in, 10 out)."""
    return length + 20 if task == "copy" else length


def probe_batch(task: str, length: int, n: int, seed: int):
    """The fixed batch the gradients are taken on, from its own key."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 7919)
    if task == "adding":
        return data_tasks.adding_problem(key, n, length)
    return data_tasks.copy_task(key, n, length)


def _command(task: str, cfg: dict, variant: Any, out: str) -> str:
    extra = ("--gradient uoro" if variant == "uoro" else
             "" if variant is None else f"--truncate {variant}")
    return " ".join(x for x in (
        f"rnn-jax train {task} --cell {cfg['cell']} --hidden {cfg['hidden']}",
        f"--length {cfg['length']} --batch {cfg['batch']} --lr {cfg['lr']}",
        f"--optimizer {cfg['optimizer']} --steps {cfg['steps']} --seed {cfg['seed']}",
        f"--eval-batch {cfg['eval_batch']} --eval-every {cfg['eval_every']}", extra,
        f"--out {out}") if x)


def angle_study(task: str, *, ks: Sequence[int] = KS, train_steps: int = 300,
                probe: int = 100, out: str = "runs/truncation", say=print, **overrides) -> dict:
    """Angles and relative norms of ``g_k`` against ``g`` for ``ks`` and ``k = T``, at
    initialisation and after ``train_steps`` steps of full BPTT. ``overrides``: run config
    keys (default: the task table's)."""
    cfg = default_config(task, steps=train_steps, log_every=max(1, train_steps // 4),
                         eval_every=train_steps, checkpoint_every=train_steps, **overrides)
    T = sequence_length(task, cfg["length"])
    ks = tuple(sorted(set(ks) | {T}))
    s = setup(cfg)
    loss = synthetic_loss(task, s.model)
    batch = probe_batch(task, cfg["length"], probe, cfg["seed"])
    measure = lambda p: truncation_angles(lambda q, m: loss(q, batch, m), p, ks)
    k_init, _ = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(cfg["seed"]), 1))
    result = {"task": task, "T": T, "ks": list(ks), "config": cfg}
    say(f"{task}: angles at initialisation")
    result["init"] = _record(measure(s.model.init(k_init)))   # the run's initial params
    say(f"{task}: training {train_steps} steps (full BPTT), then angles again")
    state, summary = run_training(cfg, _fresh(os.path.join(out, f"{task}-angles")),
                                  progress=False)
    result["trained"] = _record(measure(state.params))
    result["trained_metric"] = float(summary["final"][METRIC[task]])
    return result


def _fresh(path: str) -> str:
    """``path``, which must not exist yet: the study never replaces a run (``main`` removes
    its own earlier runs only when given ``--overwrite``)."""
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists; pass --overwrite to replace the study's runs")
    return path


def _record(r) -> dict:
    return {"angle_deg": [round(float(a), 3) for a in r.angles],
            "rel_norm": [round(float(x), 4) for x in r.rel_norms],
            "full_norm": float(r.full_norm)}


def training_study(task: str, *, variants: Sequence[Any] = (None, 1, 5, 20, "uoro"),
                   steps: int = 1000, out: str = "runs/truncation", say=print,
                   **overrides) -> list[dict]:
    """The final evaluation metric after ``steps`` steps of full BPTT (None), truncated BPTT
    (an int ``K``) or UORO (``"uoro"``), same model, data and seed."""
    rows = []
    for v in variants:
        kw = {"gradient": "uoro"} if v == "uoro" else {"truncate": v}
        cfg = default_config(task, steps=steps, log_every=max(1, steps // 10),
                             eval_every=steps, checkpoint_every=steps, **kw, **overrides)
        path = os.path.join(out, f"{task}-{'full' if v is None else v}")
        command = _command(task, cfg, v, path)
        say(command)
        _, summary = run_training(cfg, _fresh(path), progress=False)
        rows.append({"gradient": "full BPTT" if v is None else
                     "UORO" if v == "uoro" else f"truncate {v}",
                     "metric": METRIC[task], "value": float(summary["final"][METRIC[task]]),
                     "command": command})
    return rows


def markdown(result: dict) -> str:
    """The angle table of one :func:`angle_study` result."""
    ks = result["ks"]
    head = "| | " + " | ".join(f"k={k}" for k in ks) + " |\n|---|" + "---|" * len(ks) + "\n"
    rows = [f"| {what} | " + " | ".join(f"{x:.1f}°" if "angle" in key else f"{x:.2f}"
                                        for x in result[when][key]) + " |"
            for when in ("init", "trained")
            for key, what in (("angle_deg", f"∠(g_k, g), {when}"),
                              ("rel_norm", f"‖g_k‖/‖g‖, {when}"))]
    return head + "\n".join(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rnn_jax._src.train.truncation_study",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", choices=("adding", "copy"), default=["adding", "copy"])
    p.add_argument("--ks", nargs="+", type=int, default=list(KS))
    p.add_argument("--adding-length", type=int, default=60)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--hidden", type=int, help="(default: the task table's)")
    p.add_argument("--angle-steps", type=int, default=1000,
                   help="full-BPTT steps before the second angle measurement")
    p.add_argument("--train-steps", type=int, default=3000)
    p.add_argument("--train-tasks", nargs="*", choices=("adding", "copy"), default=["adding"])
    p.add_argument("--train-hidden", type=int, default=32)
    p.add_argument("--truncations", nargs="*", type=int, default=[1, 5, 20, 30])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/truncation")
    p.add_argument("--overwrite", action="store_true", help="replace the study's earlier runs")
    a = p.parse_args(argv)
    if os.path.isdir(a.out) and os.listdir(a.out):
        if not a.overwrite:
            p.error(f"--out {a.out} holds an earlier study; pass --overwrite to replace it")
        shutil.rmtree(a.out)
    say = lambda m: print(m, file=sys.stderr, flush=True)
    common = dict(cell=a.cell, seed=a.seed)
    length = lambda t: {"length": a.adding_length} if t == "adding" else {}
    report = {"angles": [], "training": {}}
    for task in a.tasks:
        r = angle_study(task, ks=a.ks, train_steps=a.angle_steps, out=a.out, say=say,
                        **common, **length(task),
                        **({} if a.hidden is None else {"hidden": a.hidden}))
        report["angles"].append(r)
        print(f"\n{task} (T = {r['T']} steps read, {r['config']['cell']} "
              f"{r['config']['hidden']}; after training: {METRIC[task]} "
              f"{r['trained_metric']:.4f})\n\n{markdown(r)}")
    for task in a.train_tasks:
        rows = training_study(task, variants=[None, *a.truncations, "uoro"],
                              steps=a.train_steps, out=a.out, say=say, hidden=a.train_hidden,
                              **common, **length(task))
        report["training"][task] = rows
        print(f"\n{task}: {METRIC[task]} after {a.train_steps} steps\n\n| gradient | "
              f"{METRIC[task]} |\n|---|---|\n" +
              "\n".join(f"| {r['gradient']} | {r['value']:.4f} |" for r in rows))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "truncation_study.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
