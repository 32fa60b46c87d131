"""Loading a trained run back, and sampling text from a character-level model."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnn_jax._src.train import checkpoint as ckpt
from rnn_jax._src.train.data_text import SEP, Vocab
from rnn_jax._src.train.models import Model, build_model
from rnn_jax._src.train.step import init_state, make_optimizer


def load_trained(directory: str) -> tuple[Model, Any, dict]:
    """``(model, params, config)`` of the checkpoint in ``directory``."""
    cfg = ckpt.load_config(directory)
    model = build_model(cfg["model"])
    params = model.init(jax.random.PRNGKey(0))
    opt = make_optimizer(cfg["optimizer"], cfg["lr"], clip_norm=cfg["clip"] or None,
                         clip_value=cfg.get("clip_value"))
    carry = model.initial_carry((cfg["batch"],)) if cfg["task"] == "charlm" else None
    template = init_state(params, opt, jax.random.PRNGKey(0), carry)
    return model, ckpt.restore_checkpoint(directory, template).params, cfg


def sample(model: Model, params: Any, vocab: Vocab, key: jax.Array, *, prime: str = "",
           length: int = 500, temperature: float = 1.0) -> str:
    """Reads ``SEP + prime``, then draws ``length`` characters from ``softmax(logits / T)``.

    ``temperature -> 0`` approaches greedy decoding; higher values give more varied text.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    prefix = jnp.concatenate([jnp.array([SEP], jnp.int32), jnp.asarray(vocab.encode(prime))])
    carry, logits = model.apply(params, prefix[None], model.initial_carry((1,)))
    V = model.config["input_size"]

    def body(state, k):
        carry, logits = state
        tok = jax.random.categorical(k, logits / temperature)          # (1,)
        h_carry, y = model.cell.step(params.cell, carry, jax.nn.one_hot(tok, V, dtype=logits.dtype))
        return (h_carry, model.readout.apply(params.readout, y)), tok[0]

    @jax.jit
    def generate(carry, logits, key):
        return jax.lax.scan(body, (carry, logits), jax.random.split(key, length))[1]

    toks = generate(carry, logits[:, -1], key)
    return prime + vocab.decode(toks)
