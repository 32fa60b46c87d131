"""Adding and copy task generators, their baselines, the char corpus and the n-gram baseline."""
import collections
import math
import os

import jax
import numpy as np
import pytest

from rnn_jax._src.train import data_tasks as tasks
from rnn_jax._src.train import data_text as text
from rnn_jax._src.train import ngram


def test_adding_problem_markers_and_targets():
    T = 11
    b = tasks.adding_problem(jax.random.PRNGKey(0), 64, T)
    x = np.asarray(b.inputs)
    assert x.shape == (64, T, 2)
    vals, marks = x[..., 0], x[..., 1]
    assert ((vals >= 0) & (vals < 1)).all()
    assert set(np.unique(marks)) <= {0.0, 1.0}
    np.testing.assert_array_equal(marks[:, : T // 2].sum(1), 1)   # one marker per half
    np.testing.assert_array_equal(marks[:, T // 2:].sum(1), 1)
    expected = np.array([vals[i][marks[i] == 1].sum() for i in range(64)])
    np.testing.assert_allclose(np.asarray(b.targets), expected, rtol=1e-6)
    again = tasks.adding_problem(jax.random.PRNGKey(0), 64, T)
    np.testing.assert_array_equal(np.asarray(again.inputs), x)        # a function of the key
    other = tasks.adding_problem(jax.random.PRNGKey(1), 64, T)
    assert not np.array_equal(np.asarray(other.inputs), x)


def test_copy_task_layout():
    T, B = 7, 16
    b = tasks.copy_task(jax.random.PRNGKey(0), B, T)
    x, y = np.asarray(b.inputs), np.asarray(b.targets)
    assert x.shape == y.shape == (B, T + 20)
    assert ((x[:, :10] >= 1) & (x[:, :10] <= 8)).all()
    assert (x[:, 10:10 + T - 1] == tasks.BLANK).all()
    assert (x[:, 10 + T - 1] == 9).all()                 # the delimiter
    assert (x[:, T + 10:] == tasks.BLANK).all()
    assert (y[:, : T + 10] == tasks.BLANK).all()
    np.testing.assert_array_equal(y[:, T + 10:], x[:, :10])
    assert tasks.copy_vocab_size() == 10


def test_adding_baseline_matches_closed_form():
    n = 20000
    got = tasks.adding_baseline(jax.random.PRNGKey(3), batch=n, length=10)
    # (S - 1)^2 with S the sum of two U[0,1]: variance 1/15 - 1/36 of one term.
    se = math.sqrt((1 / 15 - 1 / 36) / n)
    assert abs(got - 1 / 6) < 5 * se
    assert abs(tasks.ADDING_BASELINE_MSE - 0.167) < 1e-3


@pytest.mark.parametrize("T", [10, 100])
def test_copy_baseline_matches_closed_form(T):
    closed = tasks.copy_baseline_closed_form(T)
    assert closed == pytest.approx(10 * math.log(8) / (T + 20))
    got = tasks.copy_baseline(jax.random.PRNGKey(0), batch=4000, length=T)
    assert got == pytest.approx(closed, rel=0.01)
    if T == 100:
        assert closed == pytest.approx(0.173, abs=1e-3)


def test_stdlib_corpus_files_and_split():
    names = text.stdlib_files()
    assert names == sorted(names) and len(names) > 100
    assert "os.py" in names
    assert not any("site-packages" in n or n.split(os.sep)[0] == "test" for n in names)
    small = text.load_corpus(max_chars=300_000, valid_fraction=0.3)
    again = text.load_corpus(max_chars=300_000, valid_fraction=0.3)
    assert small.valid_names == again.valid_names and small.valid
    assert not set(small.train_names) & set(small.valid_names)
    assert all(text.is_validation(n, 0.3) for n in small.valid_names)


def test_single_file_corpus_vocab_and_streams(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("hello world\n" * 50 + "zz")
    c = text.load_corpus([str(p)], valid_fraction=0.1)
    assert "".join(c.train + c.valid) == p.read_text()
    vocab = text.build_vocab(c.train, min_count=2)
    assert vocab.chars[:2] == "\x02\x1a" and vocab.chars[2] == "l"   # most frequent first
    assert vocab.decode(vocab.encode("hello")) == "hello"
    assert vocab.encode("hq").tolist()[1] == text.UNK
    stream = text.encode_stream(["ab", "cde"], text.build_vocab(["abcde"]))
    assert stream.tolist()[0] == text.SEP and stream.tolist()[3] == text.SEP
    s = text.make_streams(np.arange(1, 103, dtype=np.int32), batch=2, chunk_len=5)
    assert s.tokens.shape == (2, 51) and s.num_chunks == 10
    x, y = s.chunk(1)
    np.testing.assert_array_equal(x, [[6, 7, 8, 9, 10], [56, 57, 58, 59, 60]])
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(s.chunk(11)[0], x)  # wraps around
    np.testing.assert_array_equal(text.resets_of(np.array([0, 3, 0])), [True, False, True])


def _witten_bell_reference(tokens, V, order, history, nxt):
    """Direct dictionary implementation of interpolated Witten-Bell."""
    counts = [collections.Counter(tuple(tokens[i:i + k]) for i in range(len(tokens) - k + 1))
              for k in range(order + 1)]
    p = 1.0 / V
    for k in range(1, order + 1):
        h = tuple(history[len(history) - (k - 1):]) if k > 1 else ()
        if any(t < 0 for t in h):
            continue
        c_h = sum(n for g, n in counts[k].items() if g[:-1] == h)
        if c_h == 0:
            continue
        n1 = sum(1 for g in counts[k] if g[:-1] == h)
        p = (counts[k].get(h + (nxt,), 0) + n1 * p) / (c_h + n1)
    return p


def test_ngram_matches_reference_and_normalises():
    rng = np.random.default_rng(0)
    V, order = 5, 3
    tokens = rng.integers(0, V, 300)
    tokens[::7] = 2                                   # some structure
    lm = ngram.fit_ngram(tokens, V, order)
    histories = [[-1, -1], [-1, 3], [2, 2], [0, 1], [4, 4]]
    for h in histories:
        probs = ngram.ngram_probs(lm, np.array([h] * V), np.arange(V))
        assert probs.sum() == pytest.approx(1.0, abs=1e-12)
        ref = [_witten_bell_reference(tokens, V, order, h, c) for c in range(V)]
        np.testing.assert_allclose(probs, ref, rtol=1e-12)
        laplace = ngram.add_k_probs(lm, np.array([h] * V), np.arange(V), k=0.5)
        assert laplace.sum() == pytest.approx(1.0, abs=1e-12)
    counts = collections.Counter(zip(tokens[:-2], tokens[1:-1], tokens[2:]))
    ctx = sum(n for g, n in counts.items() if g[:2] == (2, 2))
    assert ngram.add_k_probs(lm, np.array([[2, 2]]), np.array([4]), k=0.5)[0] == \
        pytest.approx((counts[(2, 2, 4)] + 0.5) / (ctx + 0.5 * V))


def test_ngram_bits_per_char():
    V = 6
    periodic = np.tile(np.arange(V), 200)
    lm = ngram.fit_ngram(periodic, V, 3)
    assert ngram.ngram_bits_per_char(lm, periodic[:100]) < 0.2     # fully predictable
    noise = np.random.default_rng(1).integers(0, V, 5000)
    lm = ngram.fit_ngram(noise, V, 2)
    bits = ngram.ngram_bits_per_char(lm, np.random.default_rng(2).integers(0, V, 2000))
    assert abs(bits - math.log2(V)) < 0.05                       # nothing to learn
