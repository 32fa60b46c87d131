"""Reading and listening with CTC: ``rnn-jax train ctc-read|ctc-listen``.

A bidirectional LSTM reads a strip of handwritten digits column by column (``ctc-read``) or a
spoken-digit utterance frame by frame (``ctc-listen``, log-mel features) and emits, per frame,
a distribution over the blank (id 0) and the ten digits (ids 1-10), trained with
:func:`rnn_jax.ctc_loss`; data in :mod:`rnn_jax._src.train.digits`. Scored on held-out
strips (made of test images) and utterances by label error rate (edit distance over reference
length, ``editdistance``) and exact match, greedy (:func:`rnn_jax.ctc_greedy`) and prefix beam
search (:func:`rnn_jax.ctc_beam_search`, width ``beam``).

``objective="frames"`` (reading only) is the baseline with the alignment known: the same
network trained by per-frame cross-entropy against the digit under each column (blank in the
gaps), decoded the same way.
"""
from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import rnn_jax
from rnn_jax._src.train import digits as cd
from rnn_jax._src.train.models import make_cell

CTC_TASKS = ("ctc-read", "ctc-listen")
CTC_DEFAULTS = dict(hidden=64, length=0, batch=32, lr=3e-3, optimizer="adam", clip=5.0)
CTC_OPTIONS = dict(objective="ctc", beam=8)
SIZES = {"ctc-read": (10_000, 1000), "ctc-listen": (4000, 1000)}   # train, test


class CTCModel(NamedTuple):
    """``apply(params, x (B, T, F), lengths) -> logits (B, T, 11)``."""

    config: dict
    cell: Any
    init: Any
    apply: Any


def build(cfg: dict, features: int) -> CTCModel:
    net = rnn_jax.bidirectional(make_cell(cfg["cell"], features, cfg["hidden"]))
    out = rnn_jax.dense(net.output_size, 11)

    def init(key):
        k1, k2 = jax.random.split(key)
        return net.init(k1), out.init(k2)

    def apply(params, x, lengths):
        _, ys = net.apply(params[0], x, lengths=lengths)
        return out.apply(params[1], ys)

    config = {k: cfg[k] for k in ("task", "cell", "hidden", "objective")}
    return CTCModel(config, None, init, apply)


@functools.lru_cache(maxsize=4)
def data(task: str, seed: int) -> tuple[cd.CTCSet, cd.CTCSet]:
    """The task's fixed training set and its test set (test images / other draws)."""
    n_train, n_test = SIZES[task]
    make = cd.read_strips if task == "ctc-read" else cd.listen_set
    return make(seed, n_train), make(seed, n_test, test=True)


def label_error_rate(tokens, lengths, labels, label_lengths) -> tuple[float, float]:
    """``(sum of edit distances / sum of reference lengths, exact-match share)``."""
    import editdistance
    dist = exact = 0
    for t, n, y, m in zip(np.asarray(tokens), np.asarray(lengths), labels, label_lengths):
        d = editdistance.eval(t[:n].tolist(), y[:m].tolist())
        dist, exact = dist + d, exact + (d == 0)
    return dist / float(np.sum(label_lengths)), exact / len(labels)


def decoders(model: CTCModel, beam: int, max_len: int):
    """Jitted ``(greedy, beam)`` decoders of ``(params, x, lengths)`` to digit ids (0-9)."""
    def greedy(params, x, n):
        d = rnn_jax.ctc_greedy(model.apply(params, x, n), n)
        return d.tokens - 1, d.lengths

    def beams(params, x, n):
        d = rnn_jax.ctc_beam_search(model.apply(params, x, n), n, beam=beam, max_len=max_len)
        return d.tokens[:, 0] - 1, d.lengths[:, 0]

    return jax.jit(greedy), jax.jit(beams)


def setup_ctc(cfg: dict):
    from rnn_jax._src.train.tasks import Setup, _no_carry
    if cfg["objective"] not in ("ctc", "frames"):
        raise ValueError(f"objective {cfg['objective']!r} is not 'ctc' or 'frames'")
    if cfg["objective"] == "frames" and cfg["task"] != "ctc-read":
        raise ValueError("objective 'frames' needs known alignments: ctc-read only")
    train, test = data(cfg["task"], cfg["seed"])
    model = build(cfg, train.x.shape[-1])
    greedy, beams = decoders(model, cfg["beam"], test.labels.shape[1])

    def loss(params, b):
        logits = model.apply(params, b["x"], b["lengths"])
        if cfg["objective"] == "frames":
            return rnn_jax.sequence_cross_entropy(logits, b["frames"] + 1, b["lengths"],
                                                  reduction="mean")
        return rnn_jax.ctc_loss(logits, b["lengths"], b["labels"] + 1, b["label_lengths"])

    def batch_fn(step: int) -> dict:
        idx = np.random.default_rng((cfg["seed"], step)).integers(0, len(train.x), cfg["batch"])
        return {k: jnp.asarray(v[idx]) for k, v in train._asdict().items()}

    def evaluate(params) -> dict:
        out = {}
        for name, dec in (("greedy", greedy),) + ((("beam", beams),) if cfg["beam"] > 1 else ()):
            ler, exact = label_error_rate(*dec(params, test.x, test.lengths), test.labels,
                                          test.label_lengths)
            out[f"test_ler_{name}"], out[f"test_exact_{name}"] = ler, exact
        return out

    return Setup(model, _no_carry(loss), batch_fn, evaluate, None, {"ler_empty_output": 1.0},
                 cfg["batch"], {"train_items": len(train.x)})


def report(run_dir: str) -> dict:
    """Writes ``ctc_outputs.png``: the input and the per-frame probabilities of the blank and
    of each digit for the first test example (CTC's spikes); returns its decodings."""
    from rnn_jax._src.train.experiment import load_run
    cfg, model, params = load_run(
        run_dir, lambda c: build(c, data(c["task"], c["seed"])[0].x.shape[-1]))
    test = data(cfg["task"], cfg["seed"])[1]
    x, n = test.x[:1], test.lengths[:1]
    probs = np.asarray(jax.nn.softmax(model.apply(params, x, n)))[0, :n[0]]
    greedy = rnn_jax.ctc_greedy(np.log(probs[None] + 1e-30))
    _plot_spikes(x[0, :n[0]], probs, os.path.join(run_dir, "ctc_outputs.png"), cfg["task"])
    return {"example_truth": test.labels[0, :test.label_lengths[0]].tolist(),
            "example_greedy": (np.asarray(greedy.tokens[0, :greedy.lengths[0]]) - 1).tolist()}


def _plot_spikes(x: np.ndarray, probs: np.ndarray, path: str, task: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.2), sharex=True)
    top.imshow(x.T, aspect="auto", cmap="Greys" if task == "ctc-read" else "magma",
               origin="upper" if task == "ctc-read" else "lower")
    top.set_ylabel("pixel row" if task == "ctc-read" else "mel band")
    bottom.plot(probs[:, 0], color="0.7", lw=1, label="blank")
    for d in range(10):
        if probs[:, d + 1].max() > 0.3:
            bottom.plot(probs[:, d + 1], lw=1.5, label=str(d))
    bottom.set_xlabel("frame (column)" if task == "ctc-read" else "frame (16 ms)")
    bottom.set_ylabel("probability")
    bottom.legend(fontsize=7, ncol=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
