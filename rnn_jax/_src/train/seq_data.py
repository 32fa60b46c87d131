"""Sequence-to-sequence tasks as data: string pairs from explicit seeds, one character vocabulary.

* ``reverse``: a string of the letters ``a``-``j`` → the same string backwards.
* ``addition``: ``"123+45"`` → ``"168"``.
* ``dates``: a date written as people write it (``"tuesday 3 march 1998"``, ``"3/3/98"``,
  ``"March 3rd, 1998"``, ``"1998 mar 03"``, …) → ``"1998-03-03"`` (dates of 1950-2049).
* ``parse``: an arithmetic expression over one-digit numbers with ``+ - *`` (``"3+4*2"``) → its
  tree in prefix form (``"+3*42"``), parsing as generation (Vinyals et al. 2014).

Each task has a fixed training set, validation and test sets drawn with other seeds and holding
no training source, and a ``test_long`` set whose sources are longer than every training one
(for ``parse``: have more operands; for ``dates``, see :func:`make_task`).
Token ids: 0 padding, 1 start, 2 end, then the characters of ``CHARS``.
"""
from __future__ import annotations

import calendar
import datetime
from typing import Callable, NamedTuple

import numpy as np

SEQ_PAD, SEQ_BOS, SEQ_EOS = 0, 1, 2   # padding, start and end symbols of the seq2seq tasks
CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-*/.,()"
SEQ_VOCAB = 3 + len(CHARS)             # their vocabulary size
_ID = {c: i + 3 for i, c in enumerate(CHARS)}
TASKS = ("reverse", "addition", "dates", "parse")


def text_to_ids(text: str) -> list[int]:
    """The token ids of ``text`` (its characters must be in ``CHARS``)."""
    return [_ID[c] for c in text]


def until_end(ids) -> list[int]:
    """The token ids of ``ids`` up to the first end symbol, padding and start dropped (the
    ids ``>= 3`` before it)."""
    out = []
    for i in np.asarray(ids).tolist():
        if i == SEQ_EOS:
            break
        if i >= 3:
            out.append(i)
    return out


def ids_to_text(ids) -> str:
    """The characters of ``ids`` up to the first end symbol (padding and start dropped)."""
    return "".join(CHARS[i - 3] for i in until_end(ids))


def pad_rows(rows, T: int | None = None, fill=0) -> np.ndarray:
    """``rows`` (arrays of any lengths and equal trailing shapes) stacked, each padded with
    ``fill`` to ``T`` (default: the longest)."""
    T = max(len(r) for r in rows) if T is None else T
    first = np.asarray(rows[0])
    out = np.full((len(rows), T) + first.shape[1:], fill, first.dtype)
    for b, r in enumerate(rows):
        out[b, :len(r)] = r
    return out


def _reverse(r: np.random.Generator, size: int) -> tuple[str, str]:
    s = "".join(r.choice(list("abcdefghij"), size))
    return s, s[::-1]


def _addition(r: np.random.Generator, size: int) -> tuple[str, str]:
    d1 = int(r.integers(1, size)) if size > 1 else 1
    a, b = (int(r.integers(10 ** (n - 1) if n > 1 else 0, 10 ** n)) for n in (d1, max(1, size - d1)))
    return f"{a}+{b}", str(a + b)


_DAY0 = datetime.date(1950, 1, 1).toordinal()
_DAYS = datetime.date(2049, 12, 31).toordinal() - _DAY0 + 1


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


DATE_FORMATS: tuple[Callable[[datetime.date], str], ...] = (
    lambda d: f"{calendar.day_name[d.weekday()].lower()} {d.day} {calendar.month_name[d.month].lower()} {d.year}",
    lambda d: f"{d.day}/{d.month}/{d.year % 100:02d}",
    lambda d: f"{calendar.month_name[d.month]} {_ordinal(d.day)}, {d.year}",
    lambda d: f"{d.year} {calendar.month_abbr[d.month].lower()} {d.day:02d}",
    lambda d: f"{d.day} {calendar.month_abbr[d.month]} {d.year}",
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    lambda d: f"{calendar.month_name[d.month].lower()} {d.day} {d.year}",
    lambda d: f"{calendar.day_abbr[d.weekday()]}, {calendar.month_abbr[d.month]} {d.day} {d.year}",
)


def _dates(r: np.random.Generator, size: int) -> tuple[str, str]:
    del size                                   # the format decides the length
    d = datetime.date.fromordinal(_DAY0 + int(r.integers(_DAYS)))
    return DATE_FORMATS[int(r.integers(len(DATE_FORMATS)))](d), d.isoformat()


def _expr(r: np.random.Generator, leaves: int) -> tuple[str, str, int]:
    """``(infix, prefix, precedence)`` of a random expression with ``leaves`` digits."""
    if leaves == 1:
        d = str(int(r.integers(10)))
        return d, d, 3
    k = int(r.integers(1, leaves))
    (li, lp, lprec), (ri, rp, rprec) = _expr(r, k), _expr(r, leaves - k)
    op = "+-*"[int(r.integers(3))]
    prec = 2 if op == "*" else 1
    li = f"({li})" if lprec < prec else li
    ri = f"({ri})" if rprec <= prec else ri   # the left-associative reading is the tree
    return f"{li}{op}{ri}", f"{op}{lp}{rp}", prec


def _parse(r: np.random.Generator, size: int) -> tuple[str, str]:
    infix, prefix, _ = _expr(r, max(1, (size + 1) // 2))
    return infix, prefix


GENERATORS = {"reverse": _reverse, "addition": _addition, "dates": _dates, "parse": _parse}
# (train size range, long-test size range) of the generator's size argument
SIZES = {"reverse": ((1, 12), (13, 20)), "addition": ((2, 7), (8, 10)),
         "dates": ((0, 0), (0, 0)), "parse": ((1, 9), (11, 15))}


class Pairs(NamedTuple):
    sources: list[str]
    targets: list[str]


class TaskData(NamedTuple):
    train: Pairs
    valid: Pairs
    test: Pairs
    test_long: Pairs


def _draw(task: str, seed: int, n: int, sizes: tuple[int, int], exclude: set,
          min_len: int = 0) -> Pairs:
    r, gen, out, seen = np.random.default_rng(seed), GENERATORS[task], Pairs([], []), set(exclude)
    for _ in range(50 * n):
        if len(out.sources) == n:
            break
        src, tgt = gen(r, int(r.integers(sizes[0], sizes[1] + 1)))
        if src not in seen and len(src) >= min_len:
            seen.add(src)
            out.sources.append(src)
            out.targets.append(tgt)
    return out


def make_task(task: str, seed: int = 0, n_train: int = 20000, n_eval: int = 1000) -> TaskData:
    """The fixed splits of ``task``. Every date format occurs in training, so the ``test_long``
    of ``dates`` holds unseen dates written at least as long as the longest 5% of the
    training sources."""
    if task not in GENERATORS:
        raise ValueError(f"task {task!r} is not one of {list(TASKS)}")
    short, long = SIZES[task]
    train = _draw(task, seed, n_train, short, set())
    seen = set(train.sources)
    valid = _draw(task, seed + 1, n_eval, short, seen)
    test = _draw(task, seed + 2, n_eval, short, seen | set(valid.sources))
    if task == "dates":
        m = int(np.percentile([len(s) for s in train.sources], 95))
        test_long = _draw(task, seed + 3, n_eval, long, seen, min_len=m)
    else:
        test_long = _draw(task, seed + 3, n_eval, long, seen)
    return TaskData(train, valid, test, test_long)


def max_lengths(data: TaskData) -> tuple[int, int]:
    """``(S, T)``: the longest source and target (with its end symbol) over every split."""
    splits = [data.train, data.valid, data.test, data.test_long]
    return (max(len(s) for p in splits for s in p.sources),
            max(len(t) for p in splits for t in p.targets) + 1)


def batch_arrays(pairs: Pairs, idx: np.ndarray, S: int, T: int) -> dict:
    """Int32 arrays of the pairs ``idx`` padded to ``S`` and ``T``: ``src (B, S)``,
    ``src_len``, ``tgt_in`` (start symbol, then the target), ``tgt_out`` (the target, then the
    end symbol), ``tgt_len``."""
    return pad_pairs([text_to_ids(pairs.sources[i]) for i in idx],
                     [text_to_ids(pairs.targets[i]) for i in idx], S, T)


def pad_pairs(srcs: list[list[int]], tgts: list[list[int]], S: int, T: int) -> dict:
    """:func:`batch_arrays` of token id lists (targets without start or end symbols)."""
    out = {k: np.zeros((len(srcs), n), np.int32) for k, n in
           (("src", S), ("tgt_in", T), ("tgt_out", T))}
    for b, (s, t) in enumerate(zip(srcs, tgts)):
        out["src"][b, :len(s)] = s
        out["tgt_in"][b, :len(t) + 1] = [SEQ_BOS] + list(t)
        out["tgt_out"][b, :len(t) + 1] = list(t) + [SEQ_EOS]
    out["src_len"] = np.array([len(s) for s in srcs], np.int32)
    out["tgt_len"] = np.array([len(t) + 1 for t in tgts], np.int32)
    return out
