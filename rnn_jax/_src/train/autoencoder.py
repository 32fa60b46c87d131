"""Sequence autoencoders and skip-thought: ``rnn-jax train autoencoder``.

An encoder-decoder (:func:`rnn_jax.seq2seq`, no attention: everything must pass through the
encoder's final state) over words, the vocabulary's ids shifted past its symbols
(:func:`rnn_jax._src.train.lang_data.seq2seq_ids`).

* ``objective="reconstruct"`` (Dai & Le 2015, arXiv 1511.01432): the decoder rebuilds the
  sentence it was given; scored by greedy exact match on the test sentences, against length in
  :func:`report`. An ``intent`` run with ``pretrained=`` this run starts from its encoder.
* ``objective="skip-thought"`` (Kiros et al. 2015, arXiv 1506.06726): one encoder, two
  decoders, for the previous and for the next sentence of the same document (prose only);
  scored by their per-word cross-entropy on test triples; :func:`report` lists the nearest
  neighbours (cosine of the encoder's last output) of a few test sentences.

``corpus``: ``"atis"`` (the grammar's sentences; ``far``: those of the ``intent`` task's
``far`` variant) or ``"prose"`` (the Python manual's).
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

import rnn_jax
from rnn_jax._src.train import lang_data as ld
from rnn_jax._src.train.models import make_cell
from rnn_jax._src.train.seq_data import pad_pairs

AE_DEFAULTS = dict(hidden=256, length=0, batch=64, lr=3e-3, optimizer="adam", clip=5.0)
AE_OPTIONS = dict(corpus="atis", objective="reconstruct", embed=64, reverse_source=False,
                  far=False)
OBJECTIVES = ("reconstruct", "skip-thought")


class AEModel(NamedTuple):
    """``s2s`` decodes the sentence (reconstruct) or the next one; ``prev`` the previous one
    (skip-thought), its encoder and source embedding shared with ``s2s``'s."""

    config: dict
    cell: Any
    init: Callable
    s2s: Any
    prev: Optional[Any]


def build(cfg: dict, vocab_size: int) -> AEModel:
    if cfg["objective"] not in OBJECTIVES:
        raise ValueError(f"objective {cfg['objective']!r} is not one of {list(OBJECTIVES)}")
    V, E, H = vocab_size + 4, cfg["embed"], cfg["hidden"]

    def make():
        return rnn_jax.seq2seq(V, V, make_cell(cfg["cell"], E, H), make_cell(cfg["cell"], E, H),
                               embed_size=E, reverse_source=bool(cfg["reverse_source"]))

    s2s = make()
    prev = make() if cfg["objective"] == "skip-thought" else None

    def init(key):
        if prev is None:
            return s2s.init(key)
        k1, k2 = jax.random.split(key)
        return s2s.init(k1), prev.init(k2)._replace(src_embed=None, encoder=None)

    config = {k: cfg[k] for k in ("task", "cell", "hidden", "embed", "corpus", "objective",
                                  "reverse_source", "far")}
    return AEModel(config, None, init, s2s, prev)


def split_params(model: AEModel, params) -> tuple[Any, Any]:
    """``(params of s2s, params of prev or None)``, the shared parts filled in."""
    if model.prev is None:
        return params, None
    nxt, prev = params
    return nxt, prev._replace(src_embed=nxt.src_embed, encoder=nxt.encoder)


def _xent(s2s, params, a: dict) -> jax.Array:
    logits, _ = s2s.apply(params, a["src"], a["src_len"], a["tgt_in"], a["tgt_len"])
    return rnn_jax.sequence_cross_entropy(logits, a["tgt_out"], a["tgt_len"], reduction="mean")


def _arrays(pairs: list, S: int, T: int) -> dict:
    return {k: jnp.asarray(v) for k, v in pad_pairs([p[0] for p in pairs],
                                                    [p[1] for p in pairs], S, T).items()}


def setup_autoencoder(cfg: dict):
    from rnn_jax._src.train.seq_tasks import decode_all
    from rnn_jax._src.train.tasks import Setup, _no_carry

    data = ld.sentences(cfg["corpus"], cfg["seed"], bool(cfg["far"]))
    model = build(cfg, len(data.vocab))
    skip = model.prev is not None
    if skip and not data.triples_train:
        raise ValueError(f"skip-thought needs documents of consecutive sentences; corpus "
                         f"{cfg['corpus']!r} has none (use prose)")
    train = data.triples_train if skip else data.train
    L = max(len(r) for r in data.train + data.test)

    def pairs(rows: list, which: int) -> list:    # which: 0 the sentence, -1 prev, +1 next
        return [(r[1], r[1 + which]) for r in rows] if skip else [(r, r) for r in rows]

    def loss(params, batch):
        nxt, prev = split_params(model, params)
        out = _xent(model.s2s, nxt, batch[0])
        return out if prev is None else out + _xent(model.prev, prev, batch[1])

    def batch_fn(step: int):
        idx = np.random.default_rng((cfg["seed"], step)).integers(0, len(train), cfg["batch"])
        rows = [train[i] for i in idx]
        return (_arrays(pairs(rows, 1), L, L + 1),
                _arrays(pairs(rows, -1), L, L + 1) if skip else None)

    if skip:
        test = (_arrays(pairs(data.triples_test, 1), L, L + 1),
                _arrays(pairs(data.triples_test, -1), L, L + 1))
        test_loss = jax.jit(loss)
        evaluate = lambda params: {"test_xent": float(test_loss(params, test))}  # noqa: E731
    else:
        test = _arrays(pairs(data.test, 0), L, L + 1)

        def evaluate(params) -> dict:
            ok = exact(decode_all(model.s2s, params, test, L + 1), test)
            return {"test_exact": float(ok.mean())}

    return Setup(model, _no_carry(loss), batch_fn, evaluate, None, {}, cfg["batch"],
                 {"vocab": list(data.vocab), "train_items": len(train)})


def exact(tokens: np.ndarray, arrays: dict) -> np.ndarray:
    """Per sentence: whether the decoded ids (up to the end symbol) equal the target."""
    out = np.asarray(arrays["tgt_out"])
    n = np.asarray(arrays["tgt_len"])
    return np.array([np.array_equal(t[:m], o[:m]) for t, o, m in zip(tokens, out, n)])


def load(run_dir: str) -> tuple[AEModel, Any, dict]:
    """``(model, params of s2s, config)`` of a trained autoencoder run."""
    from rnn_jax._src.train.experiment import load_run
    cfg, model, params = load_run(run_dir, lambda c: build(c, len(c["vocab"])))
    return model, split_params(model, params)[0], cfg


def sentence_vectors(model: AEModel, params, rows: list) -> np.ndarray:
    """The encoder's last output for each row of ids ``(N, H)``."""
    ids, n = ld.pad_ids(rows)
    mem = jax.jit(model.s2s.encode)(params, ids, n)
    return np.asarray(rnn_jax.pool(mem.keys, jnp.asarray(n), "last"))


def report(run_dir: str, queries: int = 5, k: int = 3) -> dict:
    """Reconstruct: ``by_length.json``, greedy exact match against sentence length on the test
    sentences. Skip-thought: ``neighbours.json``, the ``k`` nearest sentences (cosine of
    :func:`sentence_vectors`, among all others) of the first ``queries`` test sentences."""
    from rnn_jax._src.train.seq_tasks import decode_all
    model, params, cfg = load(run_dir)
    data = ld.sentences(cfg["corpus"], cfg["seed"], bool(cfg["far"]))
    if model.prev is None:
        L = max(len(r) for r in data.train + data.test)
        a = _arrays([(r, r) for r in data.test], L, L + 1)
        ok = exact(decode_all(model.s2s, params, a, L + 1), a)
        lengths = np.array([len(r) for r in data.test])
        result = {"by_length": {int(n): [float(ok[lengths == n].mean()), int((lengths == n).sum())]
                                for n in sorted(set(lengths.tolist()))}}
        name = "by_length.json"
    else:
        pool = list({tuple(r): r for r in data.train + data.test}.values())
        vecs = sentence_vectors(model, params, pool)
        vecs = vecs / (np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12)
        words = [" ".join(ld.words_of(r, data.vocab)) for r in pool]
        index = {tuple(r): i for i, r in enumerate(pool)}
        result = {"neighbours": {}}
        for r in data.test[:queries * 7:7]:
            i = index[tuple(r)]
            order = [j for j in np.argsort(-vecs @ vecs[i]) if j != i][:k]
            result["neighbours"][words[i]] = [[words[j], round(float(vecs[j] @ vecs[i]), 3)]
                                              for j in order]
        name = "neighbours.json"
    with open(os.path.join(run_dir, name), "w") as f:
        json.dump(result, f, indent=1)
    return result
