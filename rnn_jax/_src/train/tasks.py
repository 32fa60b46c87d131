"""The experiments as data: model, loss, batches, evaluation and baselines.

:func:`setup` turns a JSON-able run config (what ``rnn-jax train`` parses, and what it
saves as ``config.json``) into a :class:`Setup`. Every batch is a pure function of the
step number and the config, so resumed runs see the same data.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rnn_jax
from rnn_jax._src.train import data_tasks as tasks
from rnn_jax._src.train import data_text as text
from rnn_jax._src.train import ngram
from rnn_jax._src.train.models import Model, build_model
from rnn_jax._src.train.step import tbptt_loss

DEFAULTS = {
    "adding": dict(hidden=128, length=100, batch=20, lr=1e-3, optimizer="rmsprop", clip=1.0),
    "copy": dict(hidden=128, length=50, batch=20, lr=1e-3, optimizer="rmsprop", clip=1.0),
    "charlm": dict(hidden=256, length=64, batch=32, lr=4e-3, optimizer="adam", clip=5.0),
    "waveform": dict(hidden=24, length=320, batch=1, lr=3e-3, optimizer="adam", clip=1.0),
}


class Setup(NamedTuple):
    model: Model
    loss_fn: Callable         # (params, batch, carry, key) -> (loss, (carry, aux))
    batch_fn: Callable        # step -> batch
    eval_fn: Callable         # params -> dict of metrics
    initial_carry: Any        # carried state at step 0 (None for the synthetic tasks)
    baselines: dict           # name -> value, same units as the eval metric
    items_per_step: int       # sequences or characters, for the throughput figure
    extra: dict               # e.g. the vocabulary of charlm, saved in config.json


def _keys(seed: int):
    return jax.random.split(jax.random.PRNGKey(seed), 3)  # init, data, test


def _no_carry(loss):
    def loss_fn(params, batch, carry, key):
        del key
        return loss(params, batch), (carry, {})
    return loss_fn


@functools.lru_cache(maxsize=64)
def _measured(baseline: Callable, seed: int, length: int) -> float:
    """A measured baseline (``tasks.adding_baseline`` or ``tasks.copy_baseline``) on the test
    key of ``seed``; computed once per process (setups that differ only in how they train
    share it)."""
    return baseline(_keys(seed)[2], length=length)


def grad_method(cfg: dict) -> Any:
    """The runner's gradient method of a run: ``ManualBPTT(truncate=k)`` with ``truncate``
    (truncated BPTT within each sequence), else None (the default, full BPTT)."""
    k = cfg.get("truncate")
    return None if k is None else rnn_jax.ManualBPTT(truncate=int(k))


def _train_loss(cfg: dict, model: Model, loss, per_step, step_loss):
    """The training loss: ``loss(params, batch, grad)`` by BPTT (maybe truncated), or
    UORO's estimate with ``gradient: uoro`` (:mod:`rnn_jax._src.train.online`)."""
    if cfg.get("gradient", "bptt") == "uoro":
        from rnn_jax._src.train.online import uoro_loss
        return uoro_loss(model, per_step, step_loss)
    grad = grad_method(cfg)
    return _no_carry(lambda params, batch: loss(params, batch, grad))


def synthetic_loss(task: str, model: Model) -> Callable:
    """``loss(params, batch, grad=None)`` of the adding problem (the last step's squared error)
    or the copy task (the cross-entropy of every step), with the runner's gradient method
    ``grad``: the training loss, as :mod:`rnn_jax._src.train.truncation_study` measures it."""
    def mse(params, batch, grad=None):
        _, ys = model.apply(params, batch.inputs, grad=grad)
        return jnp.mean((ys[:, -1, 0] - batch.targets) ** 2)

    def xent(params, batch, grad=None):
        _, logits = model.apply(params, batch.inputs, grad=grad)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch.targets))

    return {"adding": mse, "copy": xent}[task]


def setup_adding(cfg: dict) -> Setup:
    model = build_model(dict(cell=cfg["cell"], input_size=2, hidden=cfg["hidden"],
                             output_size=1, init=cfg["init"]))
    _, k_data, k_test = _keys(cfg["seed"])
    T, B = cfg["length"], cfg["batch"]
    mse = synthetic_loss("adding", model)

    def per_step(batch):   # the squared error of the last step, over the batch
        n, t = batch.inputs.shape[:2]
        last = jnp.zeros((n, t), batch.inputs.dtype).at[:, -1].set(1.0 / n)
        return batch.inputs, (jnp.broadcast_to(batch.targets[:, None], (n, t)), last)

    test = tasks.adding_problem(k_test, cfg["eval_batch"], T)
    eval_mse = jax.jit(mse)
    return Setup(
        model, _train_loss(cfg, model, mse, per_step,
                           lambda y, tw: tw[1] * (y[0] - tw[0]) ** 2),
        lambda s: tasks.adding_problem(jax.random.fold_in(k_data, s), B, T),
        lambda p: {"mse": eval_mse(p, test)}, None,
        {"mse_predict_mean": tasks.ADDING_BASELINE_MSE,
         "mse_predict_mean_measured": _measured(tasks.adding_baseline, cfg["seed"], T)},
        B, {})


def setup_copy(cfg: dict) -> Setup:
    V = tasks.copy_vocab_size()
    model = build_model(dict(cell=cfg["cell"], input_size=V, hidden=cfg["hidden"],
                             output_size=V, init=cfg["init"], tokens=True))
    _, k_data, k_test = _keys(cfg["seed"])
    T, B = cfg["length"], cfg["batch"]

    xent = synthetic_loss("copy", model)

    def per_step(batch):   # every step's target, and the number of terms of the mean
        n = jnp.full(batch.targets.shape, batch.targets.size, jnp.float32)
        return batch.inputs, (batch.targets, n)

    def step_xent(logits, target_n):   # one step's share of the mean over B x T'
        target, n = target_n
        return optax.softmax_cross_entropy_with_integer_labels(logits, target) / n

    def evaluate(params, batch):
        _, logits = model.apply(params, batch.inputs)
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch.targets))
        acc = jnp.mean(jnp.argmax(logits[:, -10:], -1) == batch.targets[:, -10:])
        return {"xent": ce, "copy_accuracy": acc}

    test = tasks.copy_task(k_test, cfg["eval_batch"], T)
    eval_jit = jax.jit(evaluate)
    return Setup(
        model, _train_loss(cfg, model, xent, per_step, step_xent),
        lambda s: tasks.copy_task(jax.random.fold_in(k_data, s), B, T),
        lambda p: eval_jit(p, test), None,
        {"xent_memoryless": tasks.copy_baseline_closed_form(T),
         "xent_memoryless_measured": _measured(tasks.copy_baseline, cfg["seed"], T)},
        B, {})


def _valid_rows(cfg, vocab, corpus):
    stream = text.encode_stream(corpus.valid, vocab)[: cfg["valid_chars"] + 1]
    return text.make_streams(stream, cfg["eval_batch"], cfg["length"])


def _quiet(message: str) -> None:
    del message


def setup_charlm(cfg: dict, *, vocab: text.Vocab | None = None,
                 say: Callable[[str], None] = _quiet) -> Setup:
    """The character-level LM; ``say`` hears what the (several seconds of) preparation does."""
    prose = cfg.get("corpus", "code") == "prose"
    say("charlm: reading the corpus" + (" (the standard library's pydoc topics)" if prose else
                                        "" if cfg.get("data") else
                                        " (the standard library's .py files)"))
    corpus = text.read_corpus(cfg)
    if vocab is None:
        vocab = text.build_vocab(corpus.train, min_count=cfg["min_count"])
    V = vocab.size
    model = build_model(dict(cell=cfg["cell"], input_size=V, hidden=cfg["hidden"],
                             output_size=V, init=cfg["init"], tokens=True))
    train_tokens = text.encode_stream(corpus.train, vocab)
    streams = text.make_streams(train_tokens, cfg["batch"], cfg["length"])
    valid = _valid_rows(cfg, vocab, corpus)

    def token_loss(logits, targets):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))

    def batch_fn(s):
        x, y = streams.chunk(s)
        return jnp.asarray(x), jnp.asarray(y), jnp.asarray(text.resets_of(x))

    @jax.jit
    def eval_chunk(params, carry, x, y):
        carry, logits = model.apply(params, x, carry, text.resets_of(x))
        return carry, jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    def evaluate(params):
        carry, total = model.initial_carry((cfg["eval_batch"],)), 0.0
        for c in range(valid.num_chunks):
            carry, nll = eval_chunk(params, carry, *valid.chunk(c))
            total += float(nll)
        n = valid.num_chunks * valid.chunk_len * cfg["eval_batch"]
        return {"bpc": total / n / math.log(2)}

    baselines = {}
    if cfg.get("ngram_order", 4) > 0:
        order = cfg.get("ngram_order", 4)
        say(f"charlm: fitting the {order}-gram baseline on {len(train_tokens):,} characters")
        lm = ngram.fit_ngram(train_tokens, V, order)
        n = valid.num_chunks * valid.chunk_len
        bits = [ngram.ngram_bits_per_char(lm, row[: n + 1]) for row in valid.tokens]
        baselines[f"bpc_{order}gram_witten_bell"] = float(np.mean(bits))
        bits = [ngram.ngram_bits_per_char(lm, row[: n + 1], add_k=1.0) for row in valid.tokens]
        baselines[f"bpc_{order}gram_add_one"] = float(np.mean(bits))
    return Setup(model, tbptt_loss(model.apply, token_loss), batch_fn, evaluate,
                 model.initial_carry((cfg["batch"],)), baselines,
                 cfg["batch"] * cfg["length"],
                 {"vocab": vocab.chars, "train_chars": int(len(train_tokens)),
                  "valid_chars_used": int(valid.num_chunks * valid.chunk_len * cfg["eval_batch"])})


def setup(cfg: dict, *, say: Callable[[str], None] = _quiet, **kw) -> Setup:
    """The :class:`Setup` of ``cfg``'s task; ``say`` hears about long preparation."""
    if cfg["task"] == "charlm":
        return setup_charlm(cfg, say=say, **kw)
    from rnn_jax._src.train.autoencoder import setup_autoencoder
    from rnn_jax._src.train.caption_tasks import setup_caption
    from rnn_jax._src.train.ctc_tasks import CTC_TASKS, setup_ctc
    from rnn_jax._src.train.lang_tasks import setup_lang
    from rnn_jax._src.train.seq_tasks import SEQ_TASKS, setup_seq2seq
    from rnn_jax._src.train.waveform import setup_waveform
    if cfg["task"] in SEQ_TASKS:
        return setup_seq2seq(cfg, **kw)
    if cfg["task"] in CTC_TASKS:
        return setup_ctc(cfg, **kw)
    return {"adding": setup_adding, "copy": setup_copy, "waveform": setup_waveform,
            "slots": setup_lang, "intent": setup_lang,
            "autoencoder": setup_autoencoder, "caption": setup_caption}[cfg["task"]](cfg, **kw)
