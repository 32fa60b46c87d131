"""Encoder-decoder (sequence to sequence) from any rnn_jax cells, with optional attention.

Sutskever, Vinyals & Le 2014 (arXiv 1409.3215): an encoder reads the source, its final carry
starts a decoder that emits the target until an end symbol. With attention the decoder also
looks back at every encoder state (Bahdanau et al. 2014; Luong et al. 2015, whose form this is):

.. math::
   h_t = \\text{cell}(h_{t-1}, [E y_{t-1}; \\tilde h_{t-1}]), \\quad
   c_t, α_t = \\text{attend}(h_t, k_{1..S}), \\quad
   \\tilde h_t = \\tanh(W_c [c_t; h_t] + b_c), \\quad
   p(y_t | y_{<t}, x) = \\text{softmax}(W_o \\tilde h_t + b_o)

``[E y_{t-1}; h̃_{t-1}]`` is "input feeding" (``input_feeding=True``); without it the decoder
reads ``E y_{t-1}`` alone, so under teacher forcing its whole input is known in advance and it
runs through :func:`rnn_jax.run` with any gradient method, the attention then taken at every
step at once. Input feeding needs a loop of its own (``jax.lax.scan`` of the cell's step,
differentiated by autodiff). Without attention, ``h̃_t = h_t``.

The encoder's final carry starts the decoder: as it is where both carries have the same
structure and shapes, otherwise through a learned bridge, ``tanh`` of an affine map of all its
leaves (e.g. a bidirectional or stacked encoder's). ``reverse_source=True`` reads each source's
valid prefix backwards (Sutskever et al.'s trick); attention weights are returned in the
source's own order either way.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp

from rnn_jax._src import attention as attn
from rnn_jax._src.cell import Cell, check_size
from rnn_jax._src.layers import Layer, as_layer, dense
from rnn_jax._src.runner import run

ATTENTIONS = (None, "additive", "dot", "general")


class Seq2SeqParams(NamedTuple):
    src_embed: jax.Array     # (V_src, E)
    tgt_embed: jax.Array     # (V_tgt, E)
    encoder: Any
    bridge: Any              # DenseParams, or None where the carries match
    decoder: Any
    attention: Any           # the score's params (``()`` for dot), or None
    combine: Any             # DenseParams of W_c [c; h] (attention), or None
    out: Any                 # DenseParams of the readout to V_tgt


class Memory(NamedTuple):
    """What the decoder reads of an encoded source: ``keys (..., S, D)``, their prepared
    ``memory`` for the score, ``mask (..., S)``, the decoder's initial carry, and ``order``
    (``(..., S)``: source position of each key, for reversed sources)."""

    keys: jax.Array
    memory: Any
    mask: jax.Array
    carry: Any
    order: jax.Array


class Seq2Seq(NamedTuple):
    """An encoder-decoder; see the module doc. ``init(key)``; ``encode(params, src, src_len)
    -> Memory``; ``start(memory) -> state``; ``step(params, memory, state, token) -> (state,
    logits)`` for one sequence (decoding, :mod:`rnn_jax.decoding`); ``apply(params, src,
    src_len, tgt_in, tgt_len=None, grad=None) -> (logits, weights)`` under teacher forcing
    (``weights (B, T, S)`` the attention, None without it)."""

    init: Callable
    encode: Callable
    start: Callable
    step: Callable
    apply: Callable
    src_vocab: int
    tgt_vocab: int


def reverse_valid(x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(x with each row's first lengths[b] entries reversed, the index map)`` for ``x (B, S,
    ...)``; padding stays where it is."""
    S = x.shape[1]
    j = jnp.arange(S)
    idx = jnp.where(j < lengths[:, None], lengths[:, None] - 1 - j, j)
    return jnp.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1), idx


def fill_carry(template: Any, flat: jax.Array) -> Any:
    """A carry shaped like the unbatched ``template``, its leaves cut in order from ``flat
    (..., n)`` (``n`` the template's size), with ``flat``'s leading dims as batch dims."""
    batch, leaves, at = flat.shape[:-1], [], 0
    for a in jax.tree.leaves(template):
        n = math.prod(a.shape)
        leaves.append(flat[..., at:at + n].reshape(*batch, *a.shape))
        at += n
    return jax.tree.unflatten(jax.tree.structure(template), leaves)


def _leaves_size(tree) -> int:
    return sum(math.prod(jnp.shape(a)) for a in jax.tree.leaves(tree))


def seq2seq(src_vocab: int, tgt_vocab: int, encoder: Union[Cell, Layer], decoder: Cell, *,
            embed_size: int, attention: Optional[str] = None,
            attention_size: Optional[int] = None, input_feeding: bool = False,
            reverse_source: bool = False, dtype: Any = jnp.float32) -> Seq2Seq:
    """An encoder-decoder over token ids.

    Args:
      src_vocab, tgt_vocab: vocabulary sizes (ids ``0 … V-1``; the caller chooses its
        start and end symbols among them).
      encoder: a cell or layer (``rnn_jax.stacked``, ``rnn_jax.bidirectional``) reading
        ``embed_size`` features.
      decoder: a cell reading ``embed_size`` features, plus ``decoder.output_size`` with
        ``input_feeding``.
      embed_size: size of the token embeddings (one table per side).
      attention: None, ``"additive"``, ``"dot"`` (decoder output size = encoder output size)
        or ``"general"``.
      attention_size: the additive score's hidden size (default: the decoder's output size).
      input_feeding: feed ``h̃_{t-1}`` into the decoder with the token (attention only).
      reverse_source: read each source's valid prefix backwards.
    """
    if attention not in ATTENTIONS:
        raise ValueError(f"attention={attention!r} is not one of {list(ATTENTIONS)}")
    for name, flag in (("input_feeding", input_feeding), ("reverse_source", reverse_source)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if input_feeding and attention is None:
        raise ValueError("input_feeding=True needs an attention")
    Vs, Vt, E = (check_size(src_vocab, "src_vocab"), check_size(tgt_vocab, "tgt_vocab"),
                 check_size(embed_size, "embed_size"))
    enc = as_layer(encoder, "encoder")
    if not isinstance(decoder, Cell):
        raise TypeError(f"decoder must be a Cell, got {type(decoder).__name__}")
    if enc.input_size != E:
        raise ValueError(f"the encoder reads {enc.input_size} features, embed_size is {E}")
    D, O = enc.output_size, decoder.output_size
    want = E + (O if input_feeding else 0)
    if decoder.input_size != want:
        raise ValueError(f"the decoder must read {want} features (embed_size {E}"
                         f"{f' + its output size {O}, input feeding' if input_feeding else ''})"
                         f", got input_size={decoder.input_size}")
    att = None
    if attention == "additive":
        att = attn.additive(O, D, attention_size or O, dtype=dtype)
    elif attention == "dot":
        if O != D:
            raise ValueError(f"dot attention needs the decoder's output size ({O}) to equal "
                             f"the encoder's ({D}); use 'general' or 'additive'")
        att = attn.dot(D)
    elif attention == "general":
        att = attn.general(O, D, dtype=dtype)
    combine = dense(D + O, O, dtype=dtype) if att is not None else None
    readout = dense(O, Vt, dtype=dtype)
    enc_carry = jax.eval_shape(lambda k: enc.apply(enc.init(k), jnp.zeros((1, E), dtype))[0],
                               jax.random.key(0))
    dec_carry = decoder.initial_carry((), dtype)
    same = (jax.tree.structure(enc_carry) == jax.tree.structure(dec_carry) and
            all(a.shape == b.shape for a, b in zip(jax.tree.leaves(enc_carry),
                                                   jax.tree.leaves(dec_carry))))
    bridge = None if same else dense(_leaves_size(enc_carry), _leaves_size(dec_carry),
                                     dtype=dtype)

    def init(key):
        k = jax.random.split(key, 8)
        emb = jax.nn.initializers.normal(1.0)
        return Seq2SeqParams(
            emb(k[0], (Vs, E), dtype), emb(k[1], (Vt, E), dtype), enc.init(k[2]),
            None if bridge is None else bridge.init(k[3]), decoder.init(k[4]),
            None if att is None else att.init(k[5]),
            None if combine is None else combine.init(k[6]), readout.init(k[7]))

    def start_carry(params, final):
        if bridge is None:
            return final
        batch = jax.tree.leaves(final)[0].shape[:-1]
        flat = jnp.concatenate([a.reshape(*batch, -1) for a in jax.tree.leaves(final)], -1)
        return fill_carry(dec_carry, jnp.tanh(bridge.apply(params.bridge, flat)))

    def encode(params, src, src_len, grad=None) -> Memory:
        src, src_len = jnp.asarray(src), jnp.asarray(src_len)
        order = jnp.broadcast_to(jnp.arange(src.shape[-1]), src.shape)
        if reverse_source:
            src, order = reverse_valid(src, src_len)
        final, keys = enc.apply(params.encoder, params.src_embed[src], lengths=src_len,
                                grad=grad)
        mask = attn.source_mask(src_len, src.shape[-1])
        memory = None if att is None else att.prepare(params.attention, keys)
        return Memory(keys, memory, mask, start_carry(params, final), order)

    def start(memory: Memory):
        h = jnp.zeros(memory.keys.shape[:-2] + (O,), memory.keys.dtype)
        return memory.carry, h

    def attend_out(params, memory: Memory, h):
        """``(logits, weights)`` from the decoder outputs ``h (..., O)``."""
        if att is None:
            return readout.apply(params.out, h), None
        ctx, w = attn.attend(att, params.attention, h, memory.memory, memory.keys, memory.mask)
        h_tilde = jnp.tanh(combine.apply(params.combine, jnp.concatenate([ctx, h], -1)))
        return readout.apply(params.out, h_tilde), (w, h_tilde)

    def step(params, memory: Memory, state, token):
        carry, h_tilde = state
        x = params.tgt_embed[token]
        if input_feeding:
            x = jnp.concatenate([x, h_tilde], -1)
        carry, h = decoder.step(params.decoder, carry, x)
        logits, extra = attend_out(params, memory, h)
        return (carry, h if extra is None else extra[1]), logits

    def apply(params, src, src_len, tgt_in, tgt_len=None, grad=None):
        memory = encode(params, src, src_len, grad)
        x = params.tgt_embed[jnp.asarray(tgt_in)]
        if not input_feeding:
            _, hs = run(decoder, params.decoder, x, memory.carry, lengths=tgt_len, grad=grad)
            one = memory._replace(memory=None if att is None else
                                  jax.tree.map(lambda m: m[:, None], memory.memory),
                                  keys=memory.keys[:, None], mask=memory.mask[:, None])
            logits, extra = attend_out(params, one, hs)
        else:
            def body(state, x_t):
                carry, h_tilde = state
                carry, h = jax.vmap(decoder.step, (None, 0, 0))(
                    params.decoder, carry, jnp.concatenate([x_t, h_tilde], -1))
                logits, (w, h_tilde) = attend_out(params, memory, h)
                return (carry, h_tilde), (logits, w)

            _, (logits, w) = jax.lax.scan(body, start(memory), jnp.moveaxis(x, 1, 0))
            logits, extra = jnp.moveaxis(logits, 0, 1), (jnp.moveaxis(w, 0, 1), None)
        if extra is None:
            return logits, None
        weights = extra[0]                               # (B, T, S) over the keys as read
        inverse = jnp.argsort(memory.order, axis=-1)     # back to the source's own order
        return logits, jnp.take_along_axis(weights, inverse[:, None, :], axis=-1)

    return Seq2Seq(init, encode, start, step, apply, Vs, Vt)
