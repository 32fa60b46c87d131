"""CTC: the loss and both decoders against a brute-force sum over every alignment."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _collapse(path, blank=0):
    out, prev = [], None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return tuple(out)


def _brute(logits, length, blank=0):
    """Every labelling's probability, summing over all V**length alignments."""
    lp = np.asarray(jax.nn.log_softmax(jnp.asarray(logits[:length])))
    probs = {}
    for path in itertools.product(range(lp.shape[1]), repeat=length):
        p = np.exp(sum(lp[t, s] for t, s in enumerate(path)))
        key = _collapse(path, blank)
        probs[key] = probs.get(key, 0.0) + p
    return probs


def _batch(seed, B=3, T=5, V=3):
    r = np.random.default_rng(seed)
    logits = 1.5 * r.normal(size=(B, T, V))
    lengths = np.array([T, T - 1, T - 2])[:B]
    logits[1, T - 1:] = np.nan            # padding may hold anything
    if B > 2:
        logits[2, T - 2:] = np.inf
    return logits, lengths


@pytest.mark.parametrize("blank", [0, 2])
def test_loss_is_the_sum_over_alignments(blank):
    logits, lengths = _batch(0)
    for b in range(3):
        probs = _brute(logits[b], lengths[b], blank)
        for lab, p in sorted(probs.items(), key=lambda kv: -kv[1])[:4]:
            labels = np.array([list(lab) + [0] * (4 - len(lab))])
            loss = rnn_jax.ctc_loss(logits[b:b + 1], lengths[b:b + 1], labels,
                                    np.array([len(lab)]), blank=blank, reduction="none")
            np.testing.assert_allclose(loss, [-np.log(p)], rtol=1e-9)


def test_infeasible_labelling_is_inf_with_zero_gradient_and_padding_stays_out():
    logits, lengths = _batch(1)
    labels = np.array([[1, 1, 1, 0], [1, 2, 0, 0], [2, 2, 2, 0]])   # "111" needs 5 frames
    label_lengths = np.array([3, 2, 3])
    loss = rnn_jax.ctc_loss(logits, lengths, labels, label_lengths, reduction="none")
    assert np.isfinite(loss[:2]).all() and loss[2] == np.inf
    g = jax.jit(jax.grad(lambda x: rnn_jax.ctc_loss(x, lengths[:2], labels[:2],
                                                    label_lengths[:2], reduction="sum")))(
        jnp.asarray(
        np.nan_to_num(logits[:2], nan=0.0)))
    assert np.isfinite(g).all() and not np.any(g[1, lengths[1]:])
    safe = jnp.asarray(np.where(np.isfinite(logits), logits, 0.0))
    g3 = jax.jit(jax.grad(lambda x: rnn_jax.ctc_loss(x, lengths, labels, label_lengths,
                                                     reduction="none")[2]))(safe)
    assert not np.any(g3)


def test_beam_search_is_exact_with_a_full_beam_and_greedy_is_the_best_path():
    logits, lengths = _batch(2)
    decoded = rnn_jax.ctc_beam_search(logits, lengths, beam=32)
    greedy = rnn_jax.ctc_greedy(logits, lengths)
    for b in range(3):
        probs = sorted(_brute(logits[b], lengths[b]).items(), key=lambda kv: -kv[1])
        for k in range(5):
            n = int(decoded.lengths[b, k])
            assert tuple(np.asarray(decoded.tokens[b, k, :n])) == probs[k][0]
            np.testing.assert_allclose(np.exp(decoded.scores[b, k]), probs[k][1], rtol=1e-9)
            assert np.all(np.asarray(decoded.tokens[b, k, n:]) == -1)
        lp = np.asarray(jax.nn.log_softmax(jnp.asarray(logits[b, :lengths[b]])))
        path = lp.argmax(-1)
        n = int(greedy.lengths[b])
        assert tuple(np.asarray(greedy.tokens[b, :n])) == _collapse(path)
        np.testing.assert_allclose(greedy.scores[b], lp.max(-1).sum(), rtol=1e-12)


def test_a_small_beam_under_jit_and_vmap():
    logits, lengths = _batch(3, B=2)
    f = jax.jit(lambda x, n: rnn_jax.ctc_beam_search(x, n, beam=2, max_len=3))
    out = f(jnp.asarray(np.nan_to_num(logits)), lengths)
    assert out.tokens.shape == (2, 2, 3) and np.all(np.diff(out.scores, axis=1) <= 0)
    one = jax.vmap(lambda x, n: rnn_jax.ctc_greedy(x[None], n[None]).lengths[0])(
        jnp.asarray(np.nan_to_num(logits)), lengths)
    np.testing.assert_array_equal(one, rnn_jax.ctc_greedy(logits, lengths).lengths)


@pytest.mark.parametrize("kwargs, words", [
    (dict(logits=np.zeros((2, 3))), ["logits", "(B, T, K)"]),
    (dict(lengths=np.zeros(3, int)), ["lengths", "(2,)"]),
    (dict(lengths=np.array([5, 3])), ["lengths", "[0, T=4]"]),
    (dict(label_lengths=np.array([3, 1])), ["label_lengths", "[0, N"]),
    (dict(labels=np.array([[1, 3], [1, 9]])), ["labels", "[0, 3)", "got 3 at index (0, 1)"]),
    (dict(labels=np.array([[1, 2], [0, 9]])), ["labels", "blank 0", "got 0 at index (1, 0)"]),
    (dict(blank=3), ["blank", "[0, 3)"]),
    (dict(labels=np.zeros((3, 2), int)), ["labels", "B=2"]),
    (dict(reduction="avg"), ["reduction"]),
])
def test_bad_input_names_the_argument(kwargs, words):
    args = dict(logits=np.zeros((2, 4, 3)), lengths=np.array([4, 3]),
                labels=np.ones((2, 2), int), label_lengths=np.array([2, 1]))
    blank = kwargs.pop("blank", 0)
    reduction = kwargs.pop("reduction", "mean")
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        rnn_jax.ctc_loss(**args, blank=blank, reduction=reduction)
    assert all(w in str(err.value) for w in words), err.value


def test_labels_that_cannot_be_checked_under_jit_give_nan():
    """Under ``jit`` the labels are tracers: a sequence with a label out of range or equal to
    the blank has loss NaN (visible), the others their loss; padding labels are never read."""
    logits = jax.random.normal(jax.random.key(0), (3, 5, 4))
    lengths = jnp.array([5, 5, 4])
    labels = jnp.array([[1, 2], [1, 7], [0, -1]])      # row 2: its valid label is the blank
    loss = jax.jit(lambda lab, n: rnn_jax.ctc_loss(logits, lengths, lab, n, reduction="none"))(
        labels, jnp.array([2, 2, 1]))
    want = rnn_jax.ctc_loss(logits[:1], lengths[:1], labels[:1], jnp.array([2]), reduction="none")
    np.testing.assert_allclose(loss[0], want[0], rtol=1e-6)
    assert np.isnan(loss[1]) and np.isnan(loss[2])
    padded = jnp.array([[1, -5], [3, 99], [2, 0]])     # out-of-range values only in padding
    ok = jax.jit(lambda lab: rnn_jax.ctc_loss(logits, lengths, lab, jnp.array([1, 1, 1]),
                                              reduction="none"))(padded)
    assert np.all(np.isfinite(ok))
