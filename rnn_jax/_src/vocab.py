"""Words to network inputs: a vocabulary, ids with an "other" id, 1-of-N vectors, embeddings.

The source notes' encoding (slot filling): each word is a 1-of-N vector over the vocabulary
plus one more dimension, "other", shared by every word not in it, so that words never seen in
training (a new city) still have an input. The alternative is an embedding table, one learned
vector per id (:func:`rnn_jax.embedding`). Small pure functions; the vocabulary is a plain tuple.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Iterable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src.cell import check_size


def build_vocabulary(sentences: Iterable[Sequence[str]], *, min_count: int = 1,
                     max_size: Optional[int] = None) -> tuple[str, ...]:
    """The words seen at least ``min_count`` times, most frequent first (ties in alphabetical
    order), at most ``max_size`` of them."""
    check_size(min_count, "min_count")
    counts = collections.Counter(w for s in sentences for w in s)
    words = sorted((w for w, c in counts.items() if c >= min_count),
                   key=lambda w: (-counts[w], w))
    return tuple(words if max_size is None else words[:check_size(max_size, "max_size")])


def word_ids(words: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    """The id of each word: its index in ``vocabulary``, or ``len(vocabulary)`` (the "other"
    id) for a word not in it. int32 ``(len(words),)``."""
    index = {w: i for i, w in enumerate(vocabulary)}
    other = len(vocabulary)
    return np.array([index.get(w, other) for w in words], np.int32)


def one_of_n(ids: jax.Array, vocabulary_size: int, dtype: Any = jnp.float32) -> jax.Array:
    """1-of-N vectors ``(..., vocabulary_size + 1)`` of ``ids``; the last dimension is "other"."""
    return jax.nn.one_hot(ids, check_size(vocabulary_size, "vocabulary_size") + 1, dtype=dtype)


class Embedding(NamedTuple):
    """``init(key) -> table (num_ids, size)``; ``apply(table, ids) -> (..., size)``."""

    init: Callable[[jax.Array], jax.Array]
    apply: Callable[[jax.Array, jax.Array], jax.Array]
    num_ids: int
    size: int


def embedding(num_ids: int, size: int, *, stddev: float = 1.0,
              dtype: Any = jnp.float32) -> Embedding:
    """A learned vector per id, ``N(0, stddev²)`` at init; ``num_ids`` counts the "other" id
    too (``len(vocabulary) + 1``)."""
    n, d = check_size(num_ids, "num_ids"), check_size(size, "size")
    return Embedding(lambda key: stddev * jax.random.normal(key, (n, d), dtype),
                     lambda table, ids: jnp.take(table, jnp.asarray(ids), axis=0), n, d)
