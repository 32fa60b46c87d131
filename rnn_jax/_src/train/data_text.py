"""Character-level corpora, streams for truncated BPTT, and an n-gram baseline.

The default corpus is the Python standard library's own ``.py`` source (found
next to ``os.__file__``; ``site-packages`` and, unless asked, the ``test``
package are left out): present on every Python install, an offline stand-in
for the Linux-source corpus of Karpathy, Johnson & Fei-Fei 2015
(arXiv 1506.02078). Files are read in sorted order and split into training and
validation by a hash of their relative path, so the split is fixed.

A stream is the concatenation of documents, each preceded by the separator
token :data:`SEP`; the model resets its hidden state whenever it reads ``SEP``.
"""
from __future__ import annotations

import collections
import os
import zlib
from typing import NamedTuple, Sequence

import numpy as np

SEP = 0   # document separator: marks the first input of each document
UNK = 1   # characters too rare to get their own id
_SPECIAL = ("\x02", "\x1a")  # how SEP and UNK print


class Corpus(NamedTuple):
    train: list[str]       # training documents
    valid: list[str]       # validation documents
    train_names: list[str]
    valid_names: list[str]


class Vocab(NamedTuple):
    chars: str             # chars[i] is the character of id i (ids 0, 1: SEP, UNK)

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Character ids of ``text`` (int32), unknown characters map to ``UNK``."""
        table = {c: i for i, c in enumerate(self.chars) if i >= 2}
        return np.fromiter((table.get(c, UNK) for c in text), np.int32, len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).ravel())


def stdlib_dir() -> str:
    """Directory of the running Python's standard library."""
    return os.path.dirname(os.__file__)


def stdlib_files(root: str | None = None, *, include_tests: bool = False) -> list[str]:
    """Sorted paths (relative to ``root``) of the standard library's ``.py`` files."""
    root = stdlib_dir() if root is None else root
    skip = {"site-packages", "dist-packages", "__pycache__"}
    if not include_tests:
        skip |= {"test", "tests", "idle_test"}
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        rel = os.path.relpath(dirpath, root)
        out += [os.path.normpath(os.path.join(rel, f)) for f in filenames if f.endswith(".py")]
    return sorted(out)


def is_validation(name: str, valid_fraction: float) -> bool:
    """Fixed split: a document is held out iff a CRC32 hash of its name falls below the fraction."""
    return (zlib.crc32(name.encode("utf-8")) % 10_000) < valid_fraction * 10_000


def load_prose(valid_fraction: float = 0.1, max_chars: int | None = None) -> Corpus:
    """English prose from the standard library: the Python reference manual's topics that
    ``help()`` shows (``pydoc_data/topics.py``, about 0.46 M characters in 79 documents),
    split by topic name as :func:`load_corpus` splits files."""
    from pydoc_data.topics import topics
    split = {False: ([], []), True: ([], [])}
    for name in sorted(topics):
        split[is_validation(name, valid_fraction)][0].append(topics[name][:max_chars])
        split[is_validation(name, valid_fraction)][1].append(name)
    (train, train_names), (valid, valid_names) = split[False], split[True]
    return Corpus(train, valid, train_names, valid_names)


def read_corpus(cfg: dict) -> Corpus:
    """The corpus of a charlm config: ``corpus="prose"`` (:func:`load_prose`), or the files
    ``data`` (default: the standard library's ``.py`` files, :func:`load_corpus`)."""
    if cfg.get("corpus", "code") == "prose":
        return load_prose(max_chars=cfg.get("max_chars"))
    return load_corpus(cfg.get("data") or None, max_chars=cfg.get("max_chars"))


def load_corpus(paths: Sequence[str] | None = None, *, root: str | None = None,
                valid_fraction: float = 0.05, include_tests: bool = False,
                max_chars: int | None = None) -> Corpus:
    """Read text files into a corpus with a fixed train/validation split.

    Args:
      paths: text files to read; default: the standard library's ``.py`` files.
        A single file is split by characters instead (its last ``valid_fraction``).
      root: directory the default paths are relative to (default: the stdlib).
      valid_fraction: share of documents held out for validation.
      include_tests: include the stdlib's ``test`` packages (default paths only).
      max_chars: read about this many characters: training files until their share
        ``1 - valid_fraction`` is reached, validation files until theirs is.
    """
    if paths is None:
        root = stdlib_dir() if root is None else root
        names = stdlib_files(root, include_tests=include_tests)
        paths = [os.path.join(root, n) for n in names]
    else:
        names = [os.fspath(p) for p in paths]
    if len(paths) == 1:  # one file: hold out its tail
        with open(paths[0], encoding="utf-8", errors="replace") as f:
            text = f.read()[:max_chars]
        cut = int(len(text) * (1 - valid_fraction))
        return Corpus([text[:cut]], [text[cut:]], [names[0]], [names[0] + ":valid"])
    # Each split stops growing at its share of max_chars; the split of a file never changes.
    budget = {False: None if max_chars is None else max_chars * (1 - valid_fraction),
              True: None if max_chars is None else max_chars * valid_fraction}
    split = {False: ([], []), True: ([], [])}
    total = {False: 0, True: 0}
    for name, p in zip(names, paths):
        held_out = is_validation(name, valid_fraction)
        if budget[held_out] is not None and total[held_out] >= budget[held_out]:
            if all(total[k] >= budget[k] for k in (False, True)):
                break
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            text = f.read()
        split[held_out][0].append(text)
        split[held_out][1].append(name)
        total[held_out] += len(text)
    return Corpus(split[False][0], split[True][0], split[False][1], split[True][1])


def build_vocab(docs: Sequence[str], *, min_count: int = 1, max_size: int | None = None) -> Vocab:
    """Characters seen at least ``min_count`` times, most frequent first, after SEP and UNK."""
    counts = collections.Counter()
    for d in docs:
        counts.update(d)
    kept = sorted((c for c, n in counts.items() if n >= min_count and c not in _SPECIAL),
                  key=lambda c: (-counts[c], c))
    if max_size is not None:
        kept = kept[:max_size - 2]
    return Vocab("".join(_SPECIAL) + "".join(kept))


def encode_stream(docs: Sequence[str], vocab: Vocab) -> np.ndarray:
    """One int32 stream: every document preceded by ``SEP``."""
    parts = []
    for d in docs:
        parts += [np.array([SEP], np.int32), vocab.encode(d)]
    return np.concatenate(parts) if parts else np.zeros((0,), np.int32)


class Streams(NamedTuple):
    """``batch`` parallel streams for truncated BPTT.

    ``tokens[b, i]`` continues ``tokens[b, i - 1]``; chunk ``c`` uses inputs
    ``tokens[:, c L : (c + 1) L]`` and targets shifted by one.
    """
    tokens: np.ndarray     # (B, N + 1) int32
    chunk_len: int

    @property
    def num_chunks(self) -> int:
        return (self.tokens.shape[1] - 1) // self.chunk_len

    def chunk(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets of chunk ``c`` (modulo the number of chunks), each (B, L)."""
        c = c % self.num_chunks
        s = c * self.chunk_len
        return self.tokens[:, s:s + self.chunk_len], self.tokens[:, s + 1:s + 1 + self.chunk_len]


def make_streams(stream: np.ndarray, batch: int, chunk_len: int) -> Streams:
    """Cut one stream into ``batch`` contiguous rows (the tail that does not fit is dropped)."""
    n = (len(stream) - 1) // (batch * chunk_len) * chunk_len   # tokens per row, whole chunks
    if n <= 0:
        raise ValueError(f"stream of {len(stream)} tokens is too short for batch {batch} "
                         f"x chunk {chunk_len}")
    rows = [stream[b * n: b * n + n + 1] for b in range(batch)]
    return Streams(np.stack(rows), chunk_len)


def resets_of(inputs):
    """Reset mask (True where the hidden state must start afresh): the input is ``SEP``."""
    return inputs == SEP
