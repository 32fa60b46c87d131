"""Image captioning with attention: ``rnn-jax train caption``.

A canvas of 32×32 pixels holds 1-4 handwritten digits at random places
(:func:`rnn_jax._src.train.digits.canvases`); the caption is their words from left to right
("three one four", then the end symbol). A small Flax CNN (three 3×3 convolutions, the last
two of stride 2) turns the canvas into an 8×8 grid of annotation vectors, each over a
4×4-pixel cell: 64 features and the cell's row and column (scaled to [-1, 1]), so that the
decoder can tell left from right; :func:`rnn_jax.captioner` decodes with ``attention`` ``"soft"`` or ``"hard"``
(REINFORCE, :func:`rnn_jax.reinforce_loss` without the entropy bonus, which here kept the
attention uniform; its moving-average baseline kept in the training state's carry).

Scores on canvases made of test images: greedy and beam exact match, corpus BLEU
(``sacrebleu``) of the greedy captions, and localisation: the share of digit words whose
attention peak (teacher-forced, the true caption) lies on that digit (its cell overlaps the
digit's box).
"""
from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import rnn_jax
from rnn_jax._src.train import digits as dg
from rnn_jax._src.train.models import make_cell
from rnn_jax._src.train.seq_data import SEQ_BOS as BOS
from rnn_jax._src.train.seq_data import SEQ_EOS as EOS
from rnn_jax._src.train.seq_data import until_end

CAPTION_DEFAULTS = dict(hidden=128, length=0, batch=32, lr=3e-3, optimizer="adam", clip=5.0)
CAPTION_OPTIONS = dict(attention="soft", embed=32, beam=5)
GRID, CHANNELS = 8, 64
FEATURES = CHANNELS + 2              # the CNN's channels and the cell's row and column
VOCAB = 3 + len(dg.WORDS)
SIZES = (10_000, 1000)       # training and test canvases


# NumPy, not jnp: importing a module must not start JAX's backend (jax.distributed comes first)
_COORDS = np.stack(np.meshgrid(np.linspace(-1, 1, GRID, dtype=np.float32),
                               np.linspace(-1, 1, GRID, dtype=np.float32),
                               indexing="ij"), -1).reshape(GRID * GRID, 2)


class CaptionModel(NamedTuple):
    """``params = (cnn, captioner)``; ``features(params, images (B, 32, 32)) -> (B, 64, 66)``."""

    config: dict
    cell: Any
    init: Any
    features: Any
    cap: Any


def build(cfg: dict) -> CaptionModel:
    import flax.linen as nn

    class Encoder(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(16, (3, 3))(x[..., None]))
            x = nn.relu(nn.Conv(32, (3, 3), strides=2)(x))
            x = nn.relu(nn.Conv(CHANNELS, (3, 3), strides=2)(x))
            x = x.reshape(x.shape[0], GRID * GRID, CHANNELS)
            where = jnp.broadcast_to(_COORDS, (x.shape[0],) + _COORDS.shape)
            return jnp.concatenate([x, where.astype(x.dtype)], -1)

    cnn = Encoder()
    E = cfg["embed"]
    cap = rnn_jax.captioner(FEATURES, VOCAB, make_cell(cfg["cell"], E + FEATURES, cfg["hidden"]),
                            embed_size=E, attention=cfg["attention"])

    def init(key):
        k1, k2 = jax.random.split(key)
        return cnn.init(k1, jnp.zeros((1, 32, 32))), cap.init(k2)

    config = {k: cfg[k] for k in ("task", "cell", "hidden", "embed", "attention")}
    return CaptionModel(config, None, init, lambda p, x: cnn.apply(p[0], x), cap)


def targets(c: dg.Canvases) -> dict:
    """``tgt_in``, ``tgt_out`` ``(N, 5)`` and ``tgt_len`` of the captions."""
    n, M = c.digits.shape
    words = np.where(c.digits >= 0, c.digits + 3, 0)
    tgt_in = np.concatenate([np.full((n, 1), BOS), words], 1)[:, :M + 1]
    tgt_out = np.concatenate([words, np.zeros((n, 1), np.int64)], 1)
    tgt_out[np.arange(n), c.counts] = EOS
    return {"tgt_in": tgt_in.astype(np.int32), "tgt_out": tgt_out.astype(np.int32),
            "tgt_len": (c.counts + 1).astype(np.int32)}


@functools.lru_cache(maxsize=2)
def data(seed: int) -> tuple[dg.Canvases, dg.Canvases]:
    return dg.canvases(seed, SIZES[0]), dg.canvases(seed, SIZES[1], test=True)


def localisation(weights: np.ndarray, c: dg.Canvases) -> float:
    """Share of digit words whose attention peak ``weights (N, T, 64)`` lies on their digit:
    the peak's 4×4-pixel cell overlaps the digit's 8×8 box."""
    peak = np.asarray(weights).argmax(-1)                        # (N, T)
    T = min(peak.shape[1], c.corners.shape[1])
    top, left = 4 * (peak[:, :T] // GRID), 4 * (peak[:, :T] % GRID)
    y0, x0 = c.corners[:, :T, 0], c.corners[:, :T, 1]
    on = (top < y0 + 8) & (top + 4 > y0) & (left < x0 + 8) & (left + 4 > x0)
    return float(on[np.arange(T) < c.counts[:, None]].mean())


def caption_text(tokens) -> str:
    """The words of decoded ids up to the end symbol."""
    return " ".join(dg.WORDS[t - 3] for t in until_end(tokens))


def decoder(model: CaptionModel, beam: int):
    """Jitted ``(params, images) -> tokens (N, 5)``: greedy (beam 1) or the best beam."""
    return _decoder(model.features, model.cap, beam)


@functools.lru_cache(maxsize=8)
def _decoder(features, cap, beam: int):
    def run(params, images):
        feats = features(params, images)

        def one(f):
            step = lambda s, t: cap.step(params[1], f, s, t)     # noqa: E731
            start = cap.start(params[1], f)
            if beam == 1:
                return rnn_jax.decoding.greedy(step, start, bos=BOS, eos=EOS, max_len=5).tokens
            return rnn_jax.decoding.beam_search(step, start, bos=BOS, eos=EOS, max_len=5,
                                                beam=beam).tokens[0]
        return jax.vmap(one)(feats)
    return jax.jit(run)


def setup_caption(cfg: dict):
    from rnn_jax._src.train.tasks import Setup
    if cfg["attention"] not in ("soft", "hard"):
        raise ValueError(f"attention {cfg['attention']!r} is not 'soft' or 'hard'")
    train, test = data(cfg["seed"])
    tr, te = targets(train), targets(test)
    model = build(cfg)
    hard = cfg["attention"] == "hard"

    def loss_fn(params, batch, baseline, key):
        out = model.cap.apply(params[1], model.features(params, batch["images"]),
                              batch["tgt_in"], batch["tgt_len"], key=key)
        if hard:
            loss, baseline = rnn_jax.reinforce_loss(out, batch["tgt_out"], batch["tgt_len"],
                                                    baseline, entropy_weight=0.0)
            return loss, (baseline, {"baseline": baseline})
        return rnn_jax.sequence_cross_entropy(out.logits, batch["tgt_out"], batch["tgt_len"],
                                              reduction="mean"), (baseline, {})

    def batch_fn(step: int) -> dict:
        idx = np.random.default_rng((cfg["seed"], step)).integers(0, SIZES[0], cfg["batch"])
        return {"images": jnp.asarray(train.images[idx]),
                **{k: jnp.asarray(v[idx]) for k, v in tr.items()}}

    attend = jax.jit(lambda p, x, t, n: model.cap.apply(p[1], model.features(p, x), t, n,
                                                        key=jax.random.key(0)).weights)

    def evaluate(params) -> dict:
        import sacrebleu
        truth = [caption_text(t) for t in te["tgt_out"]]
        greedy = [caption_text(t) for t in decoder(model, 1)(params, test.images)]
        out = {"test_exact_greedy": float(np.mean([g == t for g, t in zip(greedy, truth)])),
               "test_bleu": float(sacrebleu.corpus_bleu(greedy, [truth]).score),
               "test_localisation": localisation(
                   attend(params, test.images, te["tgt_in"], te["tgt_len"]), test)}
        if cfg["beam"] > 1:
            beams = [caption_text(t) for t in decoder(model, cfg["beam"])(params, test.images)]
            out["test_exact_beam"] = float(np.mean([b == t for b, t in zip(beams, truth)]))
        return out

    return Setup(model, loss_fn, batch_fn, evaluate, jnp.zeros(()), {}, cfg["batch"],
                 {"train_items": SIZES[0]})


def report(run_dir: str, examples: int = 3) -> dict:
    """Writes ``attention.png``: for ``examples`` test canvases, each true word's attention
    over the canvas; returns their greedy captions."""
    from rnn_jax._src.train.experiment import load_run
    cfg, model, params = load_run(run_dir, build, jnp.zeros(()))
    test = data(cfg["seed"])[1]
    te = targets(test)
    k = slice(0, examples)
    w = np.asarray(model.cap.apply(params[1], model.features(params, test.images[k]),
                                   te["tgt_in"][k], te["tgt_len"][k],
                                   key=jax.random.key(0)).weights)
    greedy = [caption_text(t) for t in decoder(model, 1)(params, test.images[k])]
    _plot(test, w, greedy, os.path.join(run_dir, "attention.png"))
    return {"examples": greedy}


def _plot(test: dg.Canvases, w: np.ndarray, greedy: list, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = 1 + test.digits.shape[1]
    fig, axes = plt.subplots(len(w), cols, figsize=(1.6 * cols, 1.7 * len(w)), squeeze=False)
    for b, row in enumerate(axes):
        row[0].imshow(test.images[b], cmap="Greys")
        row[0].set_title(greedy[b] or "-", fontsize=7)
        for t, ax in enumerate(row[1:]):
            if t < test.counts[b]:
                ax.imshow(test.images[b], cmap="Greys")
                ax.imshow(np.kron(w[b, t].reshape(GRID, GRID), np.ones((4, 4))), cmap="Reds",
                          alpha=0.6)
                ax.set_title(dg.WORDS[test.digits[b, t]], fontsize=7)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
