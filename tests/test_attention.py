"""rnn_jax.attention: the three scores against their formulas, the source mask (padding gets
no weight and no gradient, a zero-length source gives zeros, not NaN), batching and jit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import attention as at

F64 = jnp.float64
S, D, Q = 5, 3, 4


def _keys(seed=0, B=()):
    r = np.random.default_rng(seed)
    return jnp.asarray(r.normal(size=(*B, S, D))), jnp.asarray(r.normal(size=(*B, Q)))


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_scores_follow_their_formulas(kind):
    keys, q = _keys()
    if kind == "dot":
        a, q = at.dot(D), q[:D]
    else:
        a = at.additive(Q, D, 6, dtype=F64) if kind == "additive" else at.general(Q, D, dtype=F64)
    p = a.init(jax.random.key(0))
    got = a.score(p, q, a.prepare(p, keys))
    k, qq = np.asarray(keys), np.asarray(q)
    if kind == "additive":
        want = np.tanh(k @ np.asarray(p.w_k).T + qq @ np.asarray(p.w_q).T + np.asarray(p.b)) @ np.asarray(p.v)
    elif kind == "dot":
        want = k @ qq
    else:
        want = (qq @ np.asarray(p.w)) @ k.T
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_mask_gives_padding_no_weight_and_no_gradient():
    scores = jnp.array([[1.0, 2.0, jnp.nan, jnp.inf], [0.5, -1.0, 3.0, 0.0]], F64)
    mask = at.source_mask(jnp.array([2, 4]), 4)
    w = at.masked_softmax(scores, mask)
    np.testing.assert_allclose(w[0], [np.exp(1) / (np.exp(1) + np.exp(2)),
                                      np.exp(2) / (np.exp(1) + np.exp(2)), 0, 0], rtol=1e-12)
    np.testing.assert_allclose(w[1], jax.nn.softmax(scores[1]), rtol=1e-12)
    g = jax.grad(lambda s: jnp.sum(at.masked_softmax(s, mask) * jnp.arange(4.0)))(scores)
    assert bool(jnp.isfinite(g).all()) and float(jnp.abs(g[0, 2:]).max()) == 0.0


def test_zero_length_source_is_zero_not_nan():
    a = at.additive(Q, D, 6, dtype=F64)
    p = a.init(jax.random.key(0))
    keys, q = _keys()
    mask = at.source_mask(jnp.array(0), S)
    ctx, w = at.attend(a, p, q, a.prepare(p, keys), keys, mask)
    assert float(jnp.abs(w).max()) == 0.0 and float(jnp.abs(ctx).max()) == 0.0
    g = jax.grad(lambda p, q: jnp.sum(at.attend(a, p, q, a.prepare(p, keys), keys, mask)[0]),
                 argnums=(0, 1))(p, q)
    assert all(bool(jnp.isfinite(l).all()) and float(jnp.abs(l).max()) == 0.0
               for l in jax.tree.leaves(g))


def test_context_is_the_weighted_sum_of_valid_states_and_nan_values_stay_out():
    a = at.general(Q, D, dtype=F64)
    p = a.init(jax.random.key(1))
    keys, q = _keys(1)
    mask = at.source_mask(jnp.array(3), S)
    values = keys.at[3:].set(jnp.nan)                          # NaN padding in the values
    ctx, w = at.attend(a, p, q, a.prepare(p, keys), values, mask)
    np.testing.assert_allclose(ctx, w[:3] @ keys[:3], rtol=1e-12)
    assert abs(float(w.sum()) - 1) < 1e-12


def test_batch_dims_match_vmap_and_jit():
    a = at.additive(Q, D, 6, dtype=F64)
    p = a.init(jax.random.key(2))
    keys, q = _keys(2, B=(2, 3))
    mask = at.source_mask(jnp.array([[5, 2, 0], [1, 4, 3]]), S)
    f = jax.jit(lambda p, q, k, m: at.attend(a, p, q, a.prepare(p, k), k, m))
    batched = f(p, q, keys, mask)
    mapped = jax.vmap(jax.vmap(lambda q, k, m: at.attend(a, p, q, a.prepare(p, k), k, m)))(
        q, keys, mask)
    for x, y in zip(batched, mapped):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="attention_size"):
        at.additive(3, 4, 0)
    with pytest.raises(TypeError, match="size"):
        at.dot(2.5)
