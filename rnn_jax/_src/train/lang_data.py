"""Word-level data of the language tasks (slots, intent, autoencoder) as padded int32 arrays.

Two sources: the grammar's ATIS-style corpus (:mod:`rnn_jax._src.train.atis`) and English
sentences of the Python reference manual's topics (``pydoc_data/topics.py`` in the standard
library), in document order so that a sentence's neighbours are known (skip-thought).

Word ids follow :func:`rnn_jax.word_ids`: ``0 … V-1`` the vocabulary, ``V`` "other". The
encoder-decoder's ids (:func:`seq2seq_ids`) shift them past its symbols: 0 padding, 1 start,
2 end, 3 "other", ``4 + i`` word ``i``.
"""
from __future__ import annotations

import re
from typing import NamedTuple, Sequence

import numpy as np

from rnn_jax._src.train import atis
from rnn_jax._src.train.seq_data import pad_rows, until_end
from rnn_jax._src.vocab import build_vocabulary, word_ids

OTHER_S2S = 3      # the encoder-decoder's id of "other"; word i is 4 + i
PROSE_VOCAB = 2000  # the prose vocabulary's size (the rest is "other")


def pad_ids(rows: Sequence[np.ndarray], T: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (N, T), lengths (N,))``, padded with 0 to ``T`` (default: the longest row)."""
    return (pad_rows([np.asarray(r, np.int32) for r in rows], T),
            np.array([len(r) for r in rows], np.int32))


class Tagged(NamedTuple):
    """One split of the ATIS-style corpus as arrays: ``ids (N, T)`` word ids, ``lengths``,
    ``labels (N, T)`` slot label ids (0 where padded), ``intents (N,)``."""

    ids: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    intents: np.ndarray
    sentences: tuple


def atis_arrays(seed: int, far: bool = False) -> tuple[tuple[str, ...], dict[str, Tagged]]:
    """The vocabulary (every word of the training split) and the splits ``train``, ``test``,
    ``test_unseen`` as :class:`Tagged`, all padded to one length."""
    corpus = atis.atis_corpus(seed, far=far)
    vocab = build_vocabulary(s.words for s in corpus.train)
    T = max(len(s.words) for split in corpus for s in split)
    label_id = {lab: i for i, lab in enumerate(atis.SLOT_LABELS)}
    out = {}
    for name, split in corpus._asdict().items():
        ids, lengths = pad_ids([word_ids(s.words, vocab) for s in split], T)
        labels, _ = pad_ids([np.array([label_id[x] for x in s.labels]) for s in split], T)
        intents = np.array([atis.INTENTS.index(s.intent) for s in split], np.int32)
        out[name] = Tagged(ids, lengths, labels, intents, split)
    return vocab, out


def seq2seq_ids(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Word ids (``vocab_size`` = "other") as the encoder-decoder's ids."""
    ids = np.asarray(ids)
    return np.where(ids == vocab_size, OTHER_S2S, ids + 4).astype(np.int32)


def words_of(s2s_ids, vocab: Sequence[str]) -> list[str]:
    """The words of encoder-decoder ids up to the end symbol ("<other>" for other)."""
    return ["<other>" if i == OTHER_S2S else vocab[i - 4] for i in until_end(s2s_ids)]


_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+|[^\sa-z\d]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def prose_documents(min_words: int = 4, max_words: int = 30) -> list[list[tuple[str, ...]]]:
    """The manual's topics, each as its sentences in order (lower-cased words and punctuation,
    ``min_words`` to ``max_words`` tokens; code blocks, grammar rules and headings dropped)."""
    from pydoc_data.topics import topics
    docs = []
    for name in sorted(topics):
        paragraphs = re.split(r"\n\s*\n", topics[name])
        sentences = []
        for para in paragraphs:
            if para.startswith((" ", "\t")) or set(para.strip()) <= set("*=-~"):
                continue
            for s in _SENTENCE_END.split(" ".join(para.split())):
                words = tuple(_TOKEN.findall(s.lower()))
                if min_words <= len(words) <= max_words:
                    sentences.append(words)
        if sentences:
            docs.append(sentences)
    return docs


class Sentences(NamedTuple):
    """Sentences as encoder-decoder ids: ``train`` and ``test`` lists of int32 rows; ``vocab``;
    for skip-thought ``train_prev``/``train_next`` (and test), the neighbours' rows (None at
    a document's edges: those sentences are left out of the triples)."""

    vocab: tuple[str, ...]
    train: list
    test: list
    triples_train: list    # (previous, sentence, next) rows
    triples_test: list


def sentences(corpus: str, seed: int, far: bool = False) -> Sentences:
    """``"atis"`` (the grammar's train and test splits, ``far`` as in :func:`atis_arrays`) or
    ``"prose"`` (the manual's sentences; every tenth document is test)."""
    if far and corpus != "atis":
        raise ValueError("far applies to the atis corpus only")
    if corpus == "atis":
        vocab, splits = atis_arrays(seed, far)
        rows = {k: [seq2seq_ids(s.ids[b, :s.lengths[b]], len(vocab)) for b in range(len(s.ids))]
                for k, s in splits.items()}
        return Sentences(vocab, rows["train"], rows["test"], [], [])
    if corpus != "prose":
        raise ValueError(f"corpus {corpus!r} is not 'atis' or 'prose'")
    docs = prose_documents()
    train_docs = [d for i, d in enumerate(docs) if i % 10 != 5]
    test_docs = [d for i, d in enumerate(docs) if i % 10 == 5]
    vocab = build_vocabulary((s for d in train_docs for s in d), max_size=PROSE_VOCAB)
    enc = lambda s: seq2seq_ids(word_ids(s, vocab), len(vocab))   # noqa: E731
    split = {}
    for name, ds in (("train", train_docs), ("test", test_docs)):
        split[name] = [enc(s) for d in ds for s in d]
        split["triples_" + name] = [(enc(d[i - 1]), enc(d[i]), enc(d[i + 1]))
                                    for d in ds for i in range(1, len(d) - 1)]
    return Sentences(vocab, split["train"], split["test"], split["triples_train"],
                     split["triples_test"])
