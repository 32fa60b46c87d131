"""Slot filling and intent classification: ``rnn-jax train slots|intent``.

Both read the grammar's ATIS-style sentences (:mod:`rnn_jax._src.train.atis`) word by word,
each word a 1-of-N vector with one more dimension, "other", for words not in the training
vocabulary (the source notes' encoding; ``embed > 0``: a learned embedding instead). During
training a share ``unk_rate`` of the words is replaced by "other" (word dropout), so that the
"other" input means something when a test sentence names a city never seen in training.

* ``slots``: :func:`rnn_jax.tagger` over the cell (``bidirectional``: one reading each way),
  per-word cross-entropy; scored by slot F1 with ``seqeval`` (conlleval's entity-level F1) on
  ``test`` and on ``test_unseen`` (cities never in training).
* ``intent``: :func:`rnn_jax.classifier`, the sentence's summary ``pool`` (last valid state,
  mean or max); ``far``: every sentence ends in 12-24 intent-neutral words. ``labelled``
  trains on that share of the training sentences; ``pretrained`` starts the embedding and the
  cell from an ``autoencoder`` run's encoder (Dai & Le 2015), reading as it read.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import rnn_jax
from rnn_jax._src.seq2seq import reverse_valid
from rnn_jax._src.train import atis
from rnn_jax._src.train import lang_data as ld
from rnn_jax._src.train.models import make_cell

LANG_DEFAULTS = dict(hidden=100, length=0, batch=32, lr=3e-3, optimizer="adam", clip=5.0)
TAG_OPTIONS = dict(bidirectional=False, embed=0, unk_rate=0.05, labelled=1.0)
INTENT_OPTIONS = dict(pool="last", far=False, pretrained=None)
# The notes' example: the same city after "leave" and after "arrive"; then an unseen city.
EXAMPLES = ("i want to leave taipei on november 2nd", "i want to arrive taipei on november 2nd",
            "i want to leave kaohsiung on november 2nd",
            "i want to arrive kaohsiung on november 2nd", "boston to denver on monday")


class TagModel(NamedTuple):
    """``init(key)``; ``apply(params, ids (B, T), lengths) -> logits`` (``(B, T, K)`` for
    slots, ``(B, K)`` for intent); ``cell`` for the parameter count (None: bidirectional)."""

    config: dict
    cell: Any
    init: Callable
    apply: Callable


def build(cfg: dict, vocab_size: int) -> TagModel:
    """The tagger (slots) or classifier (intent) of a run config."""
    E, H, V = cfg["embed"], cfg["hidden"], vocab_size
    cell = make_cell(cfg["cell"], E or V + 1, H)
    net = rnn_jax.bidirectional(cell) if cfg["bidirectional"] else cell
    if cfg["task"] == "slots":
        head = rnn_jax.tagger(net, len(atis.SLOT_LABELS))
    else:
        head = rnn_jax.classifier(net, len(atis.INTENTS), pool_by=cfg["pool"])
    emb = rnn_jax.embedding(V + 1, E) if E else None
    reverse = bool(cfg.get("reverse_input", False))

    def init(key):
        k1, k2 = jax.random.split(key)
        return (None if emb is None else emb.init(k1)), head.init(k2)

    def apply(params, ids, lengths):
        if reverse:
            ids, _ = reverse_valid(ids, lengths)
        x = rnn_jax.one_of_n(ids, V) if emb is None else emb.apply(params[0], ids)
        return head.apply(params[1], x, lengths)

    config = {k: cfg.get(k) for k in ("task", "cell", "hidden", "embed", "bidirectional",
                                      "pool", "reverse_input")}
    return TagModel(config, None if cfg["bidirectional"] else cell, init, apply)


def from_autoencoder(params, s2s_params, vocab_size: int):
    """``params`` of an intent model with its embedding rows and cell taken from an
    autoencoder's encoder (the readout stays as initialised)."""
    rows = np.concatenate([4 + np.arange(vocab_size), [ld.OTHER_S2S]])
    return s2s_params.src_embed[rows], (s2s_params.encoder, params[1][1])


def pretrained_config(cfg: dict) -> dict:
    """``cfg`` with the cell, sizes and reading direction of its ``pretrained`` run."""
    from rnn_jax._src.train import checkpoint as ckpt
    pre = ckpt.load_config(cfg["pretrained"])
    if pre.get("task") != "autoencoder" or pre.get("corpus") != "atis" or \
            pre.get("objective") != "reconstruct":
        raise ValueError(f"{cfg['pretrained']} is not an autoencoder run on the atis corpus "
                         "(objective reconstruct)")
    if cfg.get("bidirectional"):
        raise ValueError("the autoencoder's encoder reads one way; bidirectional does not "
                         "apply with pretrained")
    for key in ("far", "seed"):     # the same sentences, so the same vocabulary
        if bool(pre.get(key)) != bool(cfg[key]) if key == "far" else pre.get(key) != cfg[key]:
            raise ValueError(f"{cfg['pretrained']} was trained with --{key} {pre[key]}, this "
                             f"run has --{key} {cfg[key]}; they must read the same corpus")
    return {**cfg, "cell": pre["cell"], "hidden": pre["hidden"], "embed": pre["embed"],
            "bidirectional": False, "reverse_input": bool(pre["reverse_source"])}


def _train_rows(cfg: dict, n: int) -> np.ndarray:
    frac = cfg["labelled"]
    if not 0 < frac <= 1:
        raise ValueError(f"labelled={frac} must lie in (0, 1]")
    return np.random.default_rng((cfg["seed"], 7)).permutation(n)[:max(1, round(frac * n))]


def setup_lang(cfg: dict):
    """The :class:`~rnn_jax._src.train.tasks.Setup` of ``slots`` and ``intent``."""
    from rnn_jax._src.train.tasks import Setup, _no_carry

    if cfg.get("pretrained"):
        cfg = pretrained_config(cfg)
    vocab, splits = ld.atis_arrays(cfg["seed"], far=bool(cfg.get("far")))
    V, slots = len(vocab), cfg["task"] == "slots"
    model = build(cfg, V)
    train = splits["train"]
    rows = _train_rows(cfg, len(train.ids))

    def loss(params, batch):
        logits = model.apply(params, batch["ids"], batch["lengths"])
        if slots:
            return rnn_jax.sequence_cross_entropy(logits, batch["labels"], batch["lengths"],
                                                  reduction="mean")
        return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits),
                                             batch["intents"][:, None], -1))

    def batch_fn(step: int) -> dict:
        r = np.random.default_rng((cfg["seed"], step))
        idx = rows[r.integers(0, len(rows), cfg["batch"])]
        ids = train.ids[idx]
        ids = np.where(r.random(ids.shape) < cfg["unk_rate"], V, ids)
        return {"ids": jnp.asarray(ids), "lengths": jnp.asarray(train.lengths[idx]),
                "labels": jnp.asarray(train.labels[idx]),
                "intents": jnp.asarray(train.intents[idx])}

    predict = jax.jit(lambda p, ids, n: jnp.argmax(model.apply(p, ids, n), -1))

    def evaluate(params) -> dict:
        out = {}
        for name in ("test", "test_unseen"):
            s = splits[name]
            pred = np.asarray(predict(params, s.ids, s.lengths))
            out.update(slot_scores(pred, s, name) if slots else
                       {f"{name}_accuracy": float((pred == s.intents).mean())})
        return out

    majority = np.bincount(train.intents).argmax()
    baselines = {} if slots else {
        "accuracy_majority": float((splits["test"].intents == majority).mean())}
    extra = {"vocab": list(vocab), "train_sentences": int(len(rows))}
    if cfg.get("pretrained"):
        extra.update(cell=cfg["cell"], hidden=cfg["hidden"], embed=cfg["embed"],
                     bidirectional=False, reverse_input=cfg["reverse_input"])
        init = _pretrained_init(model, cfg, V)
        model = model._replace(init=init)
    return Setup(model, _no_carry(loss), batch_fn, evaluate, None, baselines, cfg["batch"],
                 extra)


def _pretrained_init(model: TagModel, cfg: dict, V: int) -> Callable:
    from rnn_jax._src.train.autoencoder import load
    _, s2s_params, _ = load(cfg["pretrained"])
    return lambda key: from_autoencoder(model.init(key), s2s_params, V)


def slot_scores(pred: np.ndarray, split: ld.Tagged, name: str) -> dict:
    """Slot F1 (seqeval: conlleval's entity-level micro F1) and word accuracy of predicted
    label ids ``pred (N, T)``."""
    from seqeval.metrics import f1_score
    truth = [list(s.labels) for s in split.sentences]
    guess = [[atis.SLOT_LABELS[i] for i in pred[b, :len(t)]] for b, t in enumerate(truth)]
    valid = np.arange(pred.shape[1]) < split.lengths[:, None]
    return {f"{name}_f1": float(f1_score(truth, guess)),
            f"{name}_word_accuracy": float((pred == split.labels)[valid].mean())}


def load(run_dir: str) -> tuple[TagModel, Any, dict]:
    """``(model, params, config)`` of a trained ``slots`` or ``intent`` run."""
    from rnn_jax._src.train.experiment import load_run
    cfg, model, params = load_run(run_dir, lambda c: build(c, len(c["vocab"])))
    return model, params, cfg


def tag(model: TagModel, params, vocab, sentences: list[str]) -> list[tuple[str, ...]]:
    """Predicted slot labels of each (space-separated) sentence."""
    rows = [rnn_jax.word_ids(s.split(), vocab) for s in sentences]
    ids, n = ld.pad_ids(rows)
    pred = np.asarray(jnp.argmax(model.apply(params, ids, n), -1))
    return [tuple(atis.SLOT_LABELS[i] for i in pred[b, :n[b]]) for b in range(len(rows))]


def report(run_dir: str) -> dict:
    """Slots: the tags of :data:`EXAMPLES` (``"word/label"``, ``O`` left out)."""
    model, params, cfg = load(run_dir)
    if cfg["task"] != "slots":
        return {}
    labels = tag(model, params, cfg["vocab"], list(EXAMPLES))
    return {"examples": [atis.tagged(s, lab) for s, lab in zip(EXAMPLES, labels)]}

