"""sequence_cross_entropy and masked_mse: values against hand computation, label range checks,
ignore_index, and padding (garbage labels, NaN/Inf inputs) never reaching a value or gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

B, T, V, D = 2, 5, 7, 3
LENGTHS = jnp.array([5, 2])
PAD = np.arange(T)[None] >= np.asarray(LENGTHS)[:, None]  # (B, T): True at padded steps


def _logits():
    return jax.random.normal(jax.random.key(0), (B, T, V), jnp.float64)


def _labels():
    return jax.random.randint(jax.random.key(1), (B, T), 0, V)


def _nll(logits, labels):
    """Per-step ``-log softmax(logits)[label]`` in numpy (labels must be in range)."""
    logp = np.asarray(jax.nn.log_softmax(logits))
    return -np.take_along_axis(logp, np.asarray(labels)[..., None], -1)[..., 0]


def _with_pad(x, value):
    """``x`` with ``value`` written at every padded step."""
    x = np.array(x)
    x[PAD] = value
    return jnp.asarray(x)


xent = rnn_jax.sequence_cross_entropy


def test_cross_entropy_values_and_time_major():
    logits, labels = _logits(), _labels()
    nll = _nll(logits, labels) * ~PAD
    np.testing.assert_allclose(xent(logits, labels, LENGTHS), nll.sum(), rtol=1e-12)
    np.testing.assert_allclose(xent(logits, labels, LENGTHS, reduction="mean"),
                               nll.sum() / 7, rtol=1e-12)
    np.testing.assert_allclose(xent(logits, labels, LENGTHS, reduction="none"), nll, rtol=1e-12)
    got = xent(jnp.swapaxes(logits, 0, 1), labels.T, LENGTHS, time_major=True, reduction="none")
    np.testing.assert_allclose(got, nll.T, rtol=1e-12)


@pytest.mark.parametrize("bad", [V, -1])
def test_out_of_range_label_raises(bad):
    logits, labels = _logits(), _labels().at[1, 1].set(bad)
    msg = rf"labels must lie in \[0, {V}\).*got {bad} at index \(1, 1\)"
    with pytest.raises(ValueError, match=msg):
        xent(logits, labels, LENGTHS)
    with pytest.raises(ValueError, match=msg):
        xent(logits, labels)


@pytest.mark.parametrize("bad", [V, -1])
def test_out_of_range_label_under_jit_is_nan(bad):
    logits, labels = _logits(), _labels().at[1, 1].set(bad)
    per_step = jax.jit(lambda z, y: xent(z, y, LENGTHS, reduction="none"))(logits, labels)
    assert np.isnan(per_step[1, 1])
    want = _nll(logits, _labels()) * ~PAD
    keep = np.ones((B, T), bool)
    keep[1, 1] = False
    np.testing.assert_allclose(np.asarray(per_step)[keep], want[keep], rtol=1e-12)
    assert np.isnan(jax.jit(lambda z, y: xent(z, y, LENGTHS))(logits, labels))


@pytest.mark.parametrize("garbage", [-1, V, 10**6])
@pytest.mark.parametrize("jit", [False, True])
def test_garbage_labels_at_padded_steps_do_not_matter(garbage, jit):
    logits = _logits()
    clean, dirty = _with_pad(_labels(), 0), _with_pad(_labels(), garbage)

    def f(z, y):
        return xent(z, y, LENGTHS, reduction="mean")

    vg = jax.value_and_grad(f)
    vg = jax.jit(vg) if jit else vg
    (l0, g0), (l1, g1) = vg(logits, clean), vg(logits, dirty)
    want = (_nll(logits, clean) * ~PAD).sum() / 7
    np.testing.assert_allclose([l0, l1], [want, want], rtol=1e-12)
    assert np.all(np.isfinite(g1))
    np.testing.assert_array_equal(g0, g1)
    np.testing.assert_array_equal(np.asarray(g1)[PAD], 0.0)


@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
def test_nonfinite_logits_at_padded_steps_do_not_matter(poison):
    logits, labels = _logits(), _labels()
    dirty = _with_pad(logits, poison)
    f = jax.value_and_grad(lambda z: xent(z, labels, LENGTHS))
    (l0, g0), (l1, g1) = f(logits), f(dirty)
    assert np.isfinite(l1) and np.all(np.isfinite(g1))
    np.testing.assert_allclose(l1, l0, rtol=1e-12)
    np.testing.assert_array_equal(g1, g0)
    np.testing.assert_array_equal(np.asarray(g1)[PAD], 0.0)


@pytest.mark.parametrize("ignore", [-100, 3])
@pytest.mark.parametrize("jit", [False, True])
def test_ignore_index(ignore, jit):
    logits, labels = _logits(), _labels()
    labels = jnp.where(labels == ignore, (ignore + 1) % V, labels)  # ignore only where set below
    ignored = np.zeros((B, T), bool)
    ignored[0, [1, 3]] = True
    ignored[1, 0] = True
    labels = jnp.where(ignored, ignore, labels)
    counted = ~ignored & ~PAD
    nll = _nll(logits, jnp.where(ignored, 0, labels))

    def f(z, y, reduction):
        return xent(z, y, LENGTHS, reduction=reduction, ignore_index=ignore)

    f = jax.jit(f, static_argnums=2) if jit else f
    np.testing.assert_allclose(f(logits, labels, "sum"), nll[counted].sum(), rtol=1e-12)
    np.testing.assert_allclose(f(logits, labels, "mean"), nll[counted].mean(), rtol=1e-12)
    np.testing.assert_allclose(f(logits, labels, "none"), np.where(counted, nll, 0.0), rtol=1e-12)
    g = jax.grad(f)(logits, labels, "mean")
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(np.asarray(g)[~counted], 0.0)
    assert np.all(np.abs(np.asarray(g)[counted]).sum(-1) > 0)


def test_ignore_index_without_lengths_and_all_ignored():
    logits, labels = _logits(), _labels().at[0, 2].set(-100)
    keep = np.ones((B, T), bool)
    keep[0, 2] = False
    nll = _nll(logits, labels.at[0, 2].set(0))
    np.testing.assert_allclose(xent(logits, labels, ignore_index=-100, reduction="mean"),
                               nll[keep].mean(), rtol=1e-12)
    every = jnp.full((B, T), -100)
    assert float(xent(logits, every, ignore_index=-100, reduction="mean")) == 0.0


@pytest.mark.parametrize("value", [True, 1.5, "x"])
def test_ignore_index_type(value):
    with pytest.raises(TypeError, match="ignore_index must be an int or None"):
        xent(_logits(), _labels(), ignore_index=value)


@pytest.mark.parametrize("fn", ["xent", "mse"])
@pytest.mark.parametrize("value", ["no", 1, 0, None])
def test_time_major_must_be_bool(fn, value):
    z = _logits()
    with pytest.raises(TypeError, match="time_major must be a bool"):
        if fn == "xent":
            xent(z, _labels(), LENGTHS, time_major=value)
        else:
            rnn_jax.masked_mse(z, z, LENGTHS, time_major=value)


def test_masked_mse_values():
    pred = _logits()[..., :D]
    target = jax.random.normal(jax.random.key(2), pred.shape, jnp.float64)
    se = np.sum((np.asarray(pred) - np.asarray(target)) ** 2, -1) * ~PAD
    mse = rnn_jax.masked_mse
    np.testing.assert_allclose(mse(pred, target, LENGTHS), se.sum() / (7 * D), rtol=1e-12)
    np.testing.assert_allclose(mse(pred, target, LENGTHS, reduction="sum"), se.sum(), rtol=1e-12)
    np.testing.assert_allclose(mse(pred, target, LENGTHS, reduction="none"), se, rtol=1e-12)
    got = mse(jnp.swapaxes(pred, 0, 1), jnp.swapaxes(target, 0, 1), LENGTHS, time_major=True,
              reduction="none")
    np.testing.assert_allclose(got, se.T, rtol=1e-12)


@pytest.mark.parametrize("where", ["target", "pred", "both"])
@pytest.mark.parametrize("poison", [np.nan, np.inf])
def test_masked_mse_nonfinite_padding(where, poison):
    pred = _logits()[..., :D]
    target = jax.random.normal(jax.random.key(2), pred.shape, jnp.float64)
    bad_pred = _with_pad(pred, poison) if where in ("pred", "both") else pred
    bad_target = _with_pad(target, poison) if where in ("target", "both") else target
    for reduction in ("mean", "sum"):
        f = jax.value_and_grad(lambda p, t: rnn_jax.masked_mse(p, t, LENGTHS, reduction=reduction))
        l0, g0 = f(pred, target)
        l1, g1 = f(bad_pred, bad_target)
        assert np.isfinite(l1) and np.all(np.isfinite(g1))
        np.testing.assert_allclose(l1, l0, rtol=1e-12)
        np.testing.assert_array_equal(g1, g0)
        np.testing.assert_array_equal(np.asarray(g1)[PAD], 0.0)


def test_masked_mse_nan_at_valid_step_stays_visible():
    pred = _logits()[..., :D]
    assert np.isnan(rnn_jax.masked_mse(pred.at[0, 0, 0].set(jnp.nan), pred, LENGTHS))
