"""Describing an image with attention: Show, Attend and Tell (Xu et al. 2015, arXiv 1502.03044).

A CNN turns the image into ``S`` annotation vectors ``a_1..a_S`` of size ``D``, one per grid
location (any encoder: the experiments use a small Flax CNN). A decoder cell emits the caption
word by word; before each word it looks at the image:

.. math::
   h_0, c_0 = \\tanh(W_{init} \\bar a), \\quad
   α_t = \\text{softmax}_i\\, f_{att}(h_{t-1}, a_i), \\quad
   h_t = \\text{cell}(h_{t-1}, [E y_{t-1}; z_t]), \\quad
   p(y_t) = \\text{softmax}(W_o \\tanh(W_c [z_t; h_t]))

with ``f_att`` :func:`rnn_jax.attention.additive` and the context ``z_t``:

* **soft** attention: ``z_t = Σ_i α_{t,i} a_i``, deterministic, trained by backprop;
* **hard** attention: ``z_t = a_{s_t}``, ``s_t ~ Categorical(α_t)``, trained by
  :func:`rnn_jax.reinforce_loss` (the paper's eq. 11-12: the REINFORCE estimator with a moving-average
  baseline and an entropy bonus). As in the paper (§4.1), during training each step uses the
  expected context (the soft one) instead of a sample with probability ``soft_mix`` (0.5);
  those steps add nothing to ``log p(s)``. When decoding, hard attention takes the most
  probable location, ``s_t = argmax_i α_{t,i}``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnn_jax._src import attention as attn
from rnn_jax._src.cell import Cell, check_size
from rnn_jax._src.layers import dense
from rnn_jax._src.losses import sequence_cross_entropy
from rnn_jax._src.seq2seq import fill_carry

ATTENTIONS = ("soft", "hard")


class CaptionerParams(NamedTuple):
    embed: jax.Array      # (V, E)
    init: Any             # DenseParams: mean annotation -> the decoder's initial carry
    decoder: Any
    attention: Any        # the additive score's params
    combine: Any          # DenseParams of W_c [z; h]
    out: Any              # DenseParams of the readout


class Captioned(NamedTuple):
    """Teacher-forced outputs: ``logits (B, T, V)``, ``weights (B, T, S)`` (``α``),
    ``log_p_locations (B,)`` (hard: log probability of the sampled locations over the valid
    steps; soft: zeros) and ``entropy (B,)`` (of ``α``, summed over the valid steps)."""

    logits: jax.Array
    weights: jax.Array
    log_p_locations: jax.Array
    entropy: jax.Array


class Captioner(NamedTuple):
    """``init(key)``; ``apply(params, feats (B, S, D), tgt_in (B, T), tgt_len=None, key=None)
    -> Captioned`` (``key`` samples hard attention's locations and its soft steps); ``start(params, feats (S, D))
    -> state`` and ``step(params, feats, state, token) -> (state, logits)`` for one image
    (:mod:`rnn_jax.decoding`); ``look(params, feats, state) -> α (S,)``."""

    init: Callable
    apply: Callable
    start: Callable
    step: Callable
    look: Callable
    vocab: int


def captioner(feature_size: int, vocab_size: int, decoder: Cell, *, embed_size: int,
              attention: str = "soft", attention_size: Optional[int] = None,
              soft_mix: float = 0.5, dtype: Any = jnp.float32) -> Captioner:
    """A captioning decoder over ``feature_size``-d annotation vectors (see the module doc).

    ``decoder`` reads ``embed_size + feature_size`` features (the word and the context);
    ``soft_mix``: hard attention's share of training steps that read the expected context.
    """
    if attention not in ATTENTIONS:
        raise ValueError(f"attention={attention!r} is not one of {list(ATTENTIONS)}")
    D, V, E = (check_size(feature_size, "feature_size"), check_size(vocab_size, "vocab_size"),
               check_size(embed_size, "embed_size"))
    if not isinstance(decoder, Cell):
        raise TypeError(f"decoder must be a Cell, got {type(decoder).__name__}")
    if not 0 <= soft_mix < 1:
        raise ValueError(f"soft_mix={soft_mix!r} must lie in [0, 1)")
    if decoder.input_size != E + D:
        raise ValueError(f"the decoder must read embed_size + feature_size = {E + D} features, "
                         f"got input_size={decoder.input_size}")
    O = decoder.output_size
    carry0 = decoder.initial_carry((), dtype)
    n_carry = sum(math.prod(a.shape) for a in jax.tree.leaves(carry0))
    init_map, combine, readout = dense(D, n_carry, dtype=dtype), dense(D + O, O, dtype=dtype), \
        dense(O, V, dtype=dtype)
    score = attn.additive(O, D, attention_size or O, dtype=dtype)
    hard = attention == "hard"

    def init(key):
        k = jax.random.split(key, 6)
        return CaptionerParams(jax.nn.initializers.normal(1.0)(k[0], (V, E), dtype),
                               init_map.init(k[1]), decoder.init(k[2]), score.init(k[3]),
                               combine.init(k[4]), readout.init(k[5]))

    def check(feats):
        feats = jnp.asarray(feats)
        if feats.ndim < 2 or feats.shape[-1] != D:
            raise ValueError(f"feats must be (..., S, {D}) annotation vectors, got shape "
                             f"{feats.shape}")
        return feats

    def start(params, feats):
        feats = check(feats)
        carry = fill_carry(carry0, jnp.tanh(init_map.apply(params.init, feats.mean(-2))))
        return carry, jnp.zeros(feats.shape[:-2] + (O,), feats.dtype)   # (carry, h_{t-1})

    def weights(params, memory, h):
        return jax.nn.softmax(score.score(params.attention, h, memory), axis=-1)

    def advance(params, feats, state, token, alpha, pick, soft):
        """One word: context from ``alpha`` (soft) or location ``pick`` (hard; where
        ``soft``, from ``alpha``)."""
        carry, _ = state
        z = jnp.einsum("...s,...sd->...d", alpha, feats)
        if hard:
            z = jnp.where(soft[..., None], z,
                          jnp.take_along_axis(feats, pick[..., None, None], -2)[..., 0, :])
        x = jnp.concatenate([params.embed[token], z], -1)
        carry, h = decoder.step(params.decoder, carry, x)
        out = jnp.tanh(combine.apply(params.combine, jnp.concatenate([z, h], -1)))
        return (carry, h), readout.apply(params.out, out)

    def look(params, feats, state):
        return weights(params, score.prepare(params.attention, check(feats)), state[1])

    def step(params, feats, state, token):
        alpha = look(params, feats, state)
        return advance(params, feats, state, token, alpha, jnp.argmax(alpha, -1),
                       jnp.zeros(alpha.shape[:-1], bool))

    def apply(params, feats, tgt_in, tgt_len=None, key=None):
        feats, tgt_in = check(feats), jnp.asarray(tgt_in)
        B, T = tgt_in.shape
        if hard and key is None:
            raise ValueError("hard attention samples locations: pass key=")
        keys = jax.random.split(key if key is not None else jax.random.key(0), T)
        valid = jnp.ones((B, T), bool) if tgt_len is None else \
            jnp.arange(T) < jnp.asarray(tgt_len)[:, None]

        memory = score.prepare(params.attention, feats)

        def body(state, inputs):
            token, k = inputs
            alpha = weights(params, memory, state[1])
            logits_a = jnp.log(alpha + 1e-30)
            k1, k2 = jax.random.split(k)
            pick = jax.random.categorical(k1, logits_a) if hard else jnp.argmax(alpha, -1)
            soft = jax.random.bernoulli(k2, soft_mix, pick.shape)
            state, logits = advance(params, feats, state, token, alpha, pick, soft)
            log_p = jnp.where(soft, 0.0, jnp.take_along_axis(logits_a, pick[:, None], -1)[:, 0])
            entropy = -jnp.sum(alpha * logits_a, -1)
            return state, (logits, alpha, log_p, entropy)

        _, (logits, alpha, log_p, ent) = jax.lax.scan(body, start(params, feats),
                                                      (tgt_in.T, keys))
        log_p = jnp.sum(jnp.where(valid, log_p.T, 0.0), -1) if hard else jnp.zeros((B,))
        return Captioned(jnp.moveaxis(logits, 0, 1), jnp.moveaxis(alpha, 0, 1), log_p,
                         jnp.sum(jnp.where(valid, ent.T, 0.0), -1))

    return Captioner(init, apply, start, step, look, V)


def reinforce_loss(out: Captioned, targets: jax.Array, lengths: jax.Array,
                   baseline: jax.Array, *, decay: float = 0.9, reinforce_weight: float = 1.0,
                   entropy_weight: float = 0.01) -> tuple[jax.Array, jax.Array]:
    """Hard attention's loss and the baseline's next value (Xu et al. 2015, eq. 11-12).

    With ``log p(y | s, a)`` the caption's log-likelihood given the sampled locations ``s``,
    the gradient of ``-mean[log p(y|s,a) + λ_r stop(log p(y|s,a) - b) log p(s|a) + λ_e H(α)]``
    is the paper's estimate (``λ_r`` ``reinforce_weight``, ``λ_e`` ``entropy_weight``); ``b``
    is a moving average of ``log p(y|s,a)``: ``b ← decay·b + (1 - decay)·mean(log p(y|s,a))``.
    Returns ``(loss, new baseline)``.
    """
    nll = jnp.sum(sequence_cross_entropy(out.logits, targets, lengths, reduction="none"), -1)
    reward = jax.lax.stop_gradient(-nll - baseline)
    loss = jnp.mean(nll - reinforce_weight * reward * out.log_p_locations
                    - entropy_weight * out.entropy)
    return loss, decay * baseline + (1 - decay) * jax.lax.stop_gradient(jnp.mean(-nll))
