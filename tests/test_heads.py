"""Tagging and classification heads: pooled summaries against NumPy, and every head of a
padded batch against each sequence run alone, unpadded; padding (NaN included) never reaches a
value or a gradient."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

F64 = jnp.float64


@pytest.mark.parametrize("how", rnn_jax.POOLS)
def test_pool_against_numpy_and_nan_padding(how):
    r = np.random.default_rng(0)
    ys = r.normal(size=(4, 6, 3))
    lengths = np.array([6, 2, 0, 1])
    padded = ys.copy()
    for b, n in enumerate(lengths):
        padded[b, n:] = np.nan
    got = rnn_jax.pool(jnp.asarray(padded), jnp.asarray(lengths), how)
    for b, n in enumerate(lengths):
        want = np.zeros(3) if n == 0 else {"last": ys[b, n - 1], "mean": ys[b, :n].mean(0),
                                           "max": ys[b, :n].max(0)}[how]
        np.testing.assert_allclose(got[b], want, rtol=1e-12)
    g = jax.grad(lambda y: jnp.sum(rnn_jax.pool(y, jnp.asarray(lengths), how) ** 2))(
        jnp.asarray(padded))
    assert bool(jnp.isfinite(g).all())
    assert float(jnp.abs(g[1, 2:]).max()) == 0.0 and float(jnp.abs(g[2]).max()) == 0.0


@pytest.mark.parametrize("how", rnn_jax.POOLS)
def test_classifier_equals_each_sequence_alone(how):
    net = rnn_jax.bidirectional(rnn_jax.gru(3, 4, dtype=F64))
    head = rnn_jax.classifier(net, 5, pool_by=how)
    p = head.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (3, 7, 3), F64)
    lengths = jnp.array([7, 3, 5])
    batch = head.apply(p, xs.at[1, 3:].set(jnp.nan), lengths)
    for b in range(3):
        n = int(lengths[b])
        alone = head.apply(p, xs[b:b + 1, :n])
        np.testing.assert_allclose(batch[b], alone[0], rtol=1e-10)
    assert batch.shape == (3, 5)


def test_tagger_labels_every_valid_step_as_alone():
    head = rnn_jax.tagger(rnn_jax.stacked([rnn_jax.jordan(3, 4, 2, dtype=F64),
                                           rnn_jax.lstm(2, 4, dtype=F64)]), 6)
    p = head.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3), F64)
    lengths = jnp.array([5, 2])
    logits = head.apply(p, xs, lengths)
    assert logits.shape == (2, 5, 6)
    np.testing.assert_allclose(logits[1, :2], head.apply(p, xs[1:, :2])[0], rtol=1e-10)
    labels = jnp.array([[0, 1, 2, 3, 4], [5, 5, -1, 99, 7]])        # junk past the end
    loss = rnn_jax.sequence_cross_entropy(logits, labels, lengths)
    assert bool(jnp.isfinite(loss))


def test_bad_arguments():
    with pytest.raises(ValueError, match="how='median'"):
        rnn_jax.pool(jnp.zeros((2, 3, 4)), None, "median")
    with pytest.raises(ValueError, match="lengths must have shape"):
        rnn_jax.pool(jnp.zeros((2, 3, 4)), jnp.array([1, 2, 3]))
    with pytest.raises(ValueError, match="pool_by"):
        rnn_jax.classifier(rnn_jax.gru(3, 4), 2, pool_by="sum")
