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
