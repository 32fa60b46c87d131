"""Connectionist temporal classification: the loss and its decoders, for padded batches.

Graves, Fernández, Gomez & Schmidhuber 2006. A network emits, at each of ``T`` frames, a
distribution over the labels and one extra symbol, the blank. An alignment ``π`` (one symbol
per frame) reads as the labelling ``B(π)``: merge repeated symbols, then drop the blanks
(``a a - b b -`` → ``ab``; ``a - a`` → ``aa``). The probability of a labelling sums over its
alignments,

.. math::
   p(l \\mid x) = \\sum_{π : B(π) = l} \\prod_{t=1}^{T} y^t_{π_t},
   \\qquad \\text{loss} = -\\log p(l \\mid x),

computed by ``optax.ctc_loss``'s forward recursion (:func:`rnn_jax.ctc_loss` wraps it for
rnn_jax's ``lengths``). Decoding: :func:`rnn_jax.ctc_greedy` (best path: the most probable
symbol per frame, then ``B``) and :func:`rnn_jax.ctc_beam_search` (prefix beam search, Hannun
et al. 2014, arXiv 1408.2873: beams of labellings, each with the probability of its alignments
ending in a blank and in a symbol, merged when two alignments reach the same labelling).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from rnn_jax._src import validate as v
from rnn_jax._src.cell import check_size
from rnn_jax._src.compiled import compiled_when_concrete

REDUCTIONS = ("none", "sum", "mean")


class CTCDecoded(NamedTuple):
    """Labellings ``tokens (..., [K,] L)`` padded with -1, their ``lengths`` and ``scores``
    (log probability: of the best path for greedy, of the labelling's alignments summed over
    the beam's reach for beam search), best first."""

    tokens: jax.Array
    lengths: jax.Array
    scores: jax.Array


def _lengths(logits: jax.Array, lengths: Optional[jax.Array], argname: str) -> jax.Array:
    if logits.ndim != 3:
        raise ValueError(f"logits must be (B, T, K), got shape {logits.shape}")
    B, T, _ = logits.shape
    if lengths is None:
        return jnp.full((B,), T, jnp.int32)
    return v.check_lengths(lengths, T, (B,), argname)     # values in [0, T] where concrete


def _blank(blank: int, K: int) -> int:
    if not isinstance(blank, int) or not 0 <= blank < K:
        raise ValueError(f"blank={blank!r} must be an int in [0, {K}) (the logits' last axis)")
    return blank


def ctc_loss(logits: jax.Array, lengths: Optional[jax.Array], labels: jax.Array,
             label_lengths: jax.Array, *, blank: int = 0, reduction: str = "mean") -> jax.Array:
    """``-log p(labels | x)`` per sequence (see the module doc).

    Args:
      logits: ``(B, T, K)`` unnormalised scores, ``K`` counting the blank.
      lengths: ``(B,)`` valid frames (None: all ``T``); frames past them may hold anything.
      labels: ``(B, N)`` int labels in ``[0, K)``, not the blank, right-padded.
      label_lengths: ``(B,)`` valid labels.
      blank: the blank's index.
      reduction: ``"none"`` (``(B,)``), ``"sum"`` or ``"mean"`` over the batch.

    A labelling that no alignment of the valid frames can produce (it needs one frame per
    label plus one blank between each repeated pair) has loss ``inf`` and zero gradient.

    Raises:
      ValueError: ``lengths`` outside ``[0, T]``, ``label_lengths`` outside ``[0, N]``, or a
        valid label outside ``[0, K)`` or equal to ``blank``, where these arrays are concrete.
        Under ``jit`` they cannot be checked; there such a sequence's loss is NaN.
    """
    logits = jnp.asarray(logits)
    lengths = _lengths(logits, lengths, "lengths")
    B, T, K = logits.shape
    blank = _blank(blank, K)
    labels = jnp.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] != B:
        raise ValueError(f"labels must be (B, N) with B={B} (logits {logits.shape}), got "
                         f"{labels.shape}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if label_lengths is None:
        raise TypeError("label_lengths must be an integer array of shape (B,), got None")
    label_lengths = v.check_lengths(label_lengths, labels.shape[1], (B,), "label_lengths",
                                    size_name="N (the labels' second axis)")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {list(REDUCTIONS)}")
    frame = jnp.arange(T) < lengths[:, None]
    label_ok = jnp.arange(labels.shape[1]) < label_lengths[:, None]
    bad = label_ok & ((labels < 0) | (labels >= K) | (labels == blank))
    v.check_flagged(labels, bad, f"lie in [0, {K}) (the logits' last axis) and not be the "
                    f"blank {blank} within label_lengths")
    bad = jnp.any(bad, -1)
    safe = jnp.where(frame[..., None], logits, 0.0)         # padding reaches nothing
    safe_labels = jnp.where(label_ok, labels, (blank + 1) % K)
    loss = optax.ctc_loss(safe, (~frame).astype(safe.dtype), safe_labels,
                          (~label_ok).astype(safe.dtype), blank_id=blank)
    repeats = jnp.sum(label_ok[:, 1:] & (safe_labels[:, 1:] == safe_labels[:, :-1]), -1)
    feasible = label_lengths + repeats <= lengths
    loss = jnp.where(feasible, loss, jnp.inf)
    loss = jnp.where(bad, jnp.full((), jnp.nan, loss.dtype), loss)   # under jit: visible
    return {"none": loss, "sum": jnp.sum(loss), "mean": jnp.mean(loss)}[reduction]


def collapse(path: jax.Array, valid: jax.Array, blank: int) -> tuple[jax.Array, jax.Array]:
    """``B(path)`` of one alignment ``path (T,)`` over its ``valid (T,)`` frames: ``(labels
    (T,) padded with -1, length)``."""
    prev = jnp.concatenate([jnp.full((1,), -1, path.dtype), path[:-1]])
    keep = valid & (path != blank) & (path != prev)
    at = jnp.where(keep, jnp.cumsum(keep) - 1, path.shape[0])      # past the end: dropped
    out = jnp.full(path.shape, -1, path.dtype).at[at].set(path, mode="drop")
    return out, jnp.sum(keep)


def ctc_greedy(logits: jax.Array, lengths: Optional[jax.Array] = None, *,
               blank: int = 0) -> CTCDecoded:
    """Best-path decoding: the most probable symbol at each valid frame, repeats merged and
    blanks dropped. ``tokens (B, T)``, ``lengths (B,)``, ``scores (B,)`` the best path's log
    probability."""
    logits = jnp.asarray(logits)
    lengths = _lengths(logits, lengths, "lengths")
    blank = _blank(blank, logits.shape[-1])
    valid = jnp.arange(logits.shape[1]) < lengths[:, None]
    logp = jax.nn.log_softmax(jnp.where(valid[..., None], logits, 0.0))
    path = jnp.argmax(logp, -1)
    score = jnp.sum(jnp.where(valid, jnp.max(logp, -1), 0.0), -1)
    tokens, n = jax.vmap(lambda p, v: collapse(p, v, blank))(path, valid)
    return CTCDecoded(tokens, n, score)


def ctc_beam_search(logits: jax.Array, lengths: Optional[jax.Array] = None, *, beam: int = 8,
                    blank: int = 0, max_len: Optional[int] = None) -> CTCDecoded:
    """Prefix beam search (module doc): ``tokens (B, beam, max_len)``, ``lengths (B, beam)``,
    ``scores (B, beam)`` best first; ``max_len`` (default ``T``) bounds a labelling's length.
    With a beam as large as the number of labellings it is exact."""
    logits = jnp.asarray(logits)
    lengths = _lengths(logits, lengths, "lengths")
    B, T, K = logits.shape
    blank, beam = _blank(blank, K), check_size(beam, "beam")
    L = T if max_len is None else check_size(max_len, "max_len")
    return _beam_search(logits, lengths, beam, blank, L)


def _beam_search_all(logits: jax.Array, lengths: jax.Array, beam: int, blank: int,
                     L: int) -> CTCDecoded:
    T = logits.shape[1]
    logp = jax.nn.log_softmax(jnp.where((jnp.arange(T) < lengths[:, None])[..., None],
                                        logits, 0.0))
    return jax.vmap(lambda lp, n: _prefix_search(lp, n, beam, blank, L))(logp, lengths)


_beam_search = compiled_when_concrete(_beam_search_all, static_argnums=(2, 3, 4))


def _prefix_search(logp: jax.Array, length: jax.Array, K: int, blank: int,
                   L: int) -> CTCDecoded:
    T, V = logp.shape
    neg = jnp.array(-jnp.inf, logp.dtype)
    rows = jnp.arange(K)

    def step(state, inputs):
        tok, n, pb, pnb = state
        lp, valid = inputs
        last = jnp.where(n > 0, tok[rows, jnp.maximum(n - 1, 0)], -1)
        total = jnp.logaddexp(pb, pnb)
        # stay: the same labelling (a blank, or the last symbol repeated)
        stay_pb = total + lp[blank]
        stay_pnb = jnp.where(n > 0, pnb + lp[jnp.maximum(last, 0)], neg)
        # extend by symbol c (after a blank when c repeats the last symbol)
        c = jnp.arange(V)
        ext_pnb = jnp.where(c[None] == last[:, None], pb[:, None], total[:, None]) + lp[None]
        ext_pnb = jnp.where((c[None] == blank) | (n[:, None] >= L), neg, ext_pnb)
        ext_tok = jnp.repeat(tok[:, None], V, 1).at[rows[:, None], c[None], n[:, None]].set(
            c[None].astype(jnp.int32), mode="drop")
        cand_tok = jnp.concatenate([tok, ext_tok.reshape(K * V, L)])
        cand_n = jnp.concatenate([n, jnp.repeat(n + 1, V)])
        cand_pb = jnp.concatenate([stay_pb, jnp.full((K * V,), neg)])
        cand_pnb = jnp.concatenate([stay_pnb, ext_pnb.reshape(-1)])
        # merge candidates that are the same labelling into the first of them
        same = jnp.all(cand_tok[:, None] == cand_tok[None], -1)
        first = jnp.argmax(same, 1) == jnp.arange(same.shape[0])
        merge = lambda p: jnp.where(first, jax.nn.logsumexp(   # noqa: E731
            jnp.where(same, p[None], neg), 1), neg)
        cand_pb, cand_pnb = merge(cand_pb), merge(cand_pnb)
        _, best = jax.lax.top_k(jnp.logaddexp(cand_pb, cand_pnb), K)
        new = (cand_tok[best], cand_n[best], cand_pb[best], cand_pnb[best])
        return jax.tree.map(lambda a, b: jnp.where(valid, a, b), new, state), None

    init = (jnp.full((K, L), -1, jnp.int32), jnp.zeros((K,), jnp.int32),
            jnp.where(rows == 0, 0.0, neg).astype(logp.dtype), jnp.full((K,), neg))
    (tok, n, pb, pnb), _ = jax.lax.scan(step, init, (logp, jnp.arange(T) < length))
    score = jnp.logaddexp(pb, pnb)
    order = jnp.argsort(-score)
    return CTCDecoded(tok[order], n[order], score[order])
