"""Keras 3 layers' weights: rnn_jax reproduces the layers' outputs (LSTM; GRU with
reset_after True and False; SimpleRNN), and the round trip is bit exact."""
import os

import jax
import numpy as np
import pytest

from rnn_jax import interop

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras", reason="Keras 3 is not installed")
I, H, B, T = 3, 4, 2, 5

LAYERS = [("LSTM", {}), ("GRU", {"reset_after": True}), ("GRU", {"reset_after": False}),
          ("SimpleRNN", {})]


def _layer(kind, kw):
    layer = getattr(keras.layers, kind)(H, return_sequences=True, **kw)
    layer.build((None, T, I))
    r = np.random.default_rng(0)
    layer.set_weights([w + 0.1 * r.normal(size=w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("kind, kw", LAYERS, ids=[f"{k}-{kw}" for k, kw in LAYERS])
def test_keras_layers_convert_both_ways(kind, kw):
    layer = _layer(kind, kw)
    cell, params = interop.from_keras(layer)
    x = np.random.default_rng(1).normal(size=(B, T, I)).astype(np.float32)
    import rnn_jax
    _, y = rnn_jax.run(cell, params, x)
    np.testing.assert_allclose(y, np.asarray(layer(x)), rtol=1e-5, atol=1e-6)
    for a, b in zip(interop.to_keras(cell, params), layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    again = interop.from_keras(layer.get_weights(), kind, **kw)[1]
    jax.tree.map(np.testing.assert_array_equal, again, params)


def test_a_gru_with_b_hn_has_no_reset_before_keras_layer():
    import rnn_jax
    cell = rnn_jax.gru(I, H, reset="before")
    params = cell.init(jax.random.key(0))
    params = params._replace(b_hh=params.b_hh + 1.0)
    with pytest.raises(ValueError, match="b_hn"):
        interop.to_keras(cell, params)


@pytest.mark.parametrize("kind, kw", LAYERS, ids=[f"{k}-{kw}" for k, kw in LAYERS])
def test_gradients_agree_with_keras(kind, kw):
    """Keras (JAX backend, ``stateless_call``) and rnn_jax differentiate the same function: the
    input gradients agree, and so do the weight gradients along random directions ``V``
    (``from_keras`` is linear in the weights: ``<∇_W L, V> = <∇_θ L, from_keras(V)>``)."""
    import jax.numpy as jnp
    import rnn_jax
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs on another backend here")
    layer = _layer(kind, kw)
    cell, params = interop.from_keras(layer)
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(B, T, I)).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(B, T, H)).astype(np.float32))

    frozen = [v.value for v in layer.non_trainable_variables]   # e.g. a seed generator

    def keras_loss(trainable, x):
        y, _ = layer.stateless_call(trainable, frozen, x)
        return jnp.sum(jnp.tanh(y) * w)

    def ours(params, x):
        return jnp.sum(jnp.tanh(rnn_jax.run(cell, params, x)[1]) * w)

    weights = [jnp.asarray(v.value) for v in layer.trainable_variables]
    gk_w, gk_x = jax.grad(keras_loss, argnums=(0, 1))(weights, x)
    gr_p, gr_x = jax.grad(ours, argnums=(0, 1))(params, x)
    np.testing.assert_allclose(gr_x, gk_x, rtol=1e-4, atol=1e-6)
    for seed in range(3):
        r = np.random.default_rng(10 + seed)
        vs = [r.normal(size=v.shape).astype(np.float32) for v in layer.get_weights()]
        along_keras = sum(float(jnp.vdot(g, v)) for g, v in zip(gk_w, vs))
        v_ours = interop.from_keras(vs, kind, **kw)[1]
        along_ours = sum(float(jnp.vdot(g, v)) for g, v in
                         zip(jax.tree.leaves(gr_p), jax.tree.leaves(v_ours)))
        np.testing.assert_allclose(along_ours, along_keras, rtol=1e-4)
