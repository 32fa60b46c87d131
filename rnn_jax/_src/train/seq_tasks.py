"""The sequence-to-sequence experiments: ``rnn-jax train reverse|addition|dates|parse``.

An encoder-decoder (:func:`rnn_jax.seq2seq`, the same cell on both sides) is trained with
teacher forcing on a task's fixed training set (:mod:`rnn_jax._src.train.seq_data`) and scored
by exact match of greedy and beam-search outputs on the test set and on the longer-source
``test_long`` set. :func:`report` adds accuracy against source length, attention heatmaps of a
few test examples and, for ``reverse``, how much attention falls on the anti-diagonal.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import rnn_jax
from rnn_jax._src.train import seq_data as sd
from rnn_jax._src.train.models import make_cell

SEQ_TASKS = sd.TASKS
ATTENTIONS = ("none", "additive", "dot", "general")
SEQ_DEFAULTS = dict(hidden=128, length=0, batch=64, lr=3e-3, optimizer="adam", clip=1.0)
SEQ_OPTIONS = dict(embed=32, attention="none", reverse_source=False, beam=5)


class Seq2SeqModel(NamedTuple):
    """What the training loop needs of a model: its ``config``, ``init``, and ``cell`` (None:
    no single cell), with the encoder-decoder ``s2s``."""

    config: dict
    cell: Any
    init: Any
    s2s: Any


def build(cfg: dict) -> Seq2SeqModel:
    """The encoder-decoder of a run config."""
    E, H = cfg["embed"], cfg["hidden"]
    att = None if cfg["attention"] == "none" else cfg["attention"]
    s2s = rnn_jax.seq2seq(sd.SEQ_VOCAB, sd.SEQ_VOCAB, make_cell(cfg["cell"], E, H),
                          make_cell(cfg["cell"], E, H), embed_size=E, attention=att,
                          reverse_source=bool(cfg["reverse_source"]))
    config = {k: cfg[k] for k in ("task", "cell", "hidden", "embed", "attention",
                                  "reverse_source")}
    return Seq2SeqModel(config, None, s2s.init, s2s)


def decode_all(s2s, params, arrays: dict, max_len: int, beam: int = 1) -> np.ndarray:
    """Decoded token ids ``(N, max_len)`` of every source in ``arrays`` (greedy for beam 1)."""
    return np.asarray(_decoder(s2s, max_len, beam)(params, arrays["src"], arrays["src_len"]))


@functools.lru_cache(maxsize=16)
def _decoder(s2s, max_len: int, beam: int):
    """One jitted decoder per model and setting: evaluations reuse its compilation."""

    def decode(params, src, src_len):
        def one(mem):
            step = lambda s, t: s2s.step(params, mem, s, t)   # noqa: E731
            if beam == 1:
                return rnn_jax.decoding.greedy(step, s2s.start(mem), bos=sd.SEQ_BOS,
                                               eos=sd.SEQ_EOS, max_len=max_len).tokens
            return rnn_jax.decoding.beam_search(step, s2s.start(mem), bos=sd.SEQ_BOS,
                                                eos=sd.SEQ_EOS, max_len=max_len, beam=beam,
                                                length_penalty=1.0).tokens[0]

        return jax.vmap(one)(s2s.encode(params, src, src_len))

    return jax.jit(decode)


def exact_match(tokens: np.ndarray, pairs: sd.Pairs) -> np.ndarray:
    """Per example: whether the decoded string equals the target."""
    return np.array([sd.ids_to_text(t) == want for t, want in zip(tokens, pairs.targets)])


def setup_seq2seq(cfg: dict):
    from rnn_jax._src.train.tasks import Setup, _no_carry

    data = sd.make_task(cfg["task"], cfg["seed"])
    S, T = sd.max_lengths(data)
    model = build(cfg)
    s2s = model.s2s
    arrays = {name: sd.batch_arrays(getattr(data, name), np.arange(len(getattr(data, name)[0])),
                                    S, T) for name in ("test", "test_long")}

    def loss(params, batch):
        logits, _ = s2s.apply(params, batch["src"], batch["src_len"], batch["tgt_in"],
                              batch["tgt_len"])
        return rnn_jax.sequence_cross_entropy(logits, batch["tgt_out"], batch["tgt_len"],
                                              reduction="mean")

    def batch_fn(step: int) -> dict:
        r = np.random.default_rng((cfg["seed"], step))
        idx = r.integers(0, len(data.train.sources), cfg["batch"])
        return {k: jnp.asarray(v) for k, v in sd.batch_arrays(data.train, idx, S, T).items()}

    def evaluate(params) -> dict:
        out = {}
        for name, a in arrays.items():
            out[f"{name}_exact"] = float(exact_match(decode_all(s2s, params, a, T),
                                                     getattr(data, name)).mean())
            if cfg["beam"] > 1:
                out[f"{name}_beam_exact"] = float(exact_match(
                    decode_all(s2s, params, a, T, cfg["beam"]), getattr(data, name)).mean())
        return out

    return Setup(model, _no_carry(loss), batch_fn, evaluate, None, {}, cfg["batch"],
                 {"max_source": S, "max_target": T})


def load(run_dir: str) -> tuple[Any, Any, dict]:
    """``(seq2seq, params, config)`` of a trained run."""
    from rnn_jax._src.train.experiment import load_run
    cfg, model, params = load_run(run_dir, build)
    return model.s2s, params, cfg


def report(run_dir: str, examples: int = 4) -> dict:
    """Writes ``by_length.json`` (greedy exact match against source length, test and
    test_long) and, with attention, ``attention.png`` (heatmaps of ``examples`` test pairs);
    returns the numbers, with ``anti_diagonal`` for ``reverse``: the mean attention weight that
    target step ``t`` puts on source position ``len - 1 - t``."""
    s2s, params, cfg = load(run_dir)
    data = sd.make_task(cfg["task"], cfg["seed"])
    S, T = sd.max_lengths(data)
    result: dict = {"by_length": {}}
    for name in ("test", "test_long"):
        pairs = getattr(data, name)
        a = sd.batch_arrays(pairs, np.arange(len(pairs.sources)), S, T)
        ok = exact_match(decode_all(s2s, params, a, T), pairs)
        for n in sorted(set(a["src_len"].tolist())):
            sel = a["src_len"] == n
            result["by_length"][int(n)] = [float(ok[sel].mean()), int(sel.sum())]
        if name == "test" and cfg["attention"] != "none":
            _, w = s2s.apply(params, a["src"], a["src_len"], a["tgt_in"], a["tgt_len"])
            w = np.asarray(w)
            if cfg["task"] == "reverse":
                on = [w[b, t, a["src_len"][b] - 1 - t] for b in range(len(w))
                      for t in range(a["src_len"][b])]
                result["anti_diagonal"] = float(np.mean(on))
            _heatmaps(w, a, pairs, examples, os.path.join(run_dir, "attention.png"))
    with open(os.path.join(run_dir, "by_length.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def _heatmaps(w: np.ndarray, a: dict, pairs: sd.Pairs, k: int, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 3.2))
    for ax, b in zip(np.atleast_1d(axes), range(k)):
        n, m = int(a["src_len"][b]), int(a["tgt_len"][b])
        ax.imshow(w[b, :m, :n], cmap="Greys", vmin=0, vmax=1)
        ax.set_xticks(range(n), list(pairs.sources[b]), fontsize=7)
        ax.set_yticks(range(m), list(pairs.targets[b]) + ["</s>"], fontsize=7)
        ax.set_xlabel("source")
    np.atleast_1d(axes)[0].set_ylabel("target")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_by_length(run_dirs: list[str], path: str) -> None:
    """A PNG at ``path``: greedy exact match against source length (test and test_long) of each
    run in ``run_dirs`` (from their ``by_length.json``; seq2seq tasks or autoencoders), one
    panel per task."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rnn_jax._src.train import checkpoint as ckpt
    runs = [(ckpt.load_config(r), json.load(open(os.path.join(r, "by_length.json"))))
            for r in run_dirs]
    panel = lambda cfg: (f"autoencoder, {cfg['corpus']}"   # noqa: E731
                         if cfg["task"] == "autoencoder" else cfg["task"])
    tasks = list(dict.fromkeys(panel(cfg) for cfg, _ in runs))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for cfg, rep in runs:
            if panel(cfg) != task:
                continue
            lengths = sorted(int(n) for n in rep["by_length"])
            label = cfg.get("attention", "none") if cfg.get("attention", "none") != "none" else (
                "reversed source" if cfg["reverse_source"] else
                "forward" if cfg["task"] == "autoencoder" else "no attention")
            ax.plot(lengths, [rep["by_length"][str(n)][0] for n in lengths], "o-", ms=3,
                    label=label)
        ax.set_title(task)
        ax.set_xlabel("source length")
        ax.set_ylim(-0.03, 1.03)
    axes[0, 0].set_ylabel("exact match (greedy)")
    axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=plot_by_length.__doc__)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    plot_by_length(args.runs, args.out)
    print(json.dumps({"wrote": args.out}))
