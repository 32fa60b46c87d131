"""Vocabulary, ids with the "other" id, 1-of-N vectors and embeddings."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax


def test_vocabulary_ids_and_one_of_n():
    sents = [["leave", "taipei", "on", "monday"], ["arrive", "taipei", "on", "friday"]]
    vocab = rnn_jax.build_vocabulary(sents)
    assert vocab[:2] == ("on", "taipei") and len(vocab) == 6
    assert rnn_jax.build_vocabulary(sents, min_count=2) == ("on", "taipei")
    assert rnn_jax.build_vocabulary(sents, max_size=3) == ("on", "taipei", "arrive")
    ids = rnn_jax.word_ids(["leave", "boston", "on", "monday"], vocab)
    assert ids.tolist() == [vocab.index("leave"), 6, 0, vocab.index("monday")]
    x = rnn_jax.one_of_n(jnp.asarray(ids), len(vocab))
    assert x.shape == (4, 7) and float(x[1, 6]) == 1.0 and float(x.sum()) == 4.0


def test_embedding_looks_up_rows():
    emb = rnn_jax.embedding(7, 3)
    table = emb.init(jax.random.key(0))
    assert table.shape == (7, 3)
    ids = jnp.array([[0, 6], [2, 2]])
    np.testing.assert_array_equal(emb.apply(table, ids), table[ids])
    g = jax.grad(lambda t: emb.apply(t, ids).sum())(table)
    np.testing.assert_array_equal(g[:, 0], [1, 0, 2, 0, 0, 0, 1])


def test_bad_sizes():
    with pytest.raises(ValueError, match="min_count"):
        rnn_jax.build_vocabulary([["a"]], min_count=0)
    with pytest.raises(TypeError, match="vocabulary_size"):
        rnn_jax.one_of_n(jnp.zeros(2, int), 2.5)
