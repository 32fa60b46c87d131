"""Attention over a source sequence: additive (Bahdanau et al. 2014), dot and general (Luong et
al. 2015) scores, the source-length mask, and the context vector.

Public re-exports of :mod:`rnn_jax._src.attention`; used by :func:`rnn_jax.seq2seq`.
"""

from rnn_jax._src.attention import (  # noqa: F401
    AdditiveParams,
    Attention,
    GeneralParams,
    additive,
    attend,
    dot,
    general,
    masked_softmax,
    source_mask,
)

__all__ = ["AdditiveParams", "Attention", "GeneralParams", "additive", "attend", "dot",
           "general", "masked_softmax", "source_mask"]
