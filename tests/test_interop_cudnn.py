"""The flat cuDNN LSTM vector of jax.experimental.rnn: rnn_jax's network reproduces its
reference implementation, and the round trip is bit exact."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import interop

rnn = pytest.importorskip("jax.experimental.rnn")


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True), (3, False)])
def test_flat_cudnn_weights_match_the_reference_lstm(layers, bidirectional):
    I, H, B, T = 3, 4, 2, 5
    w = rnn.init_lstm_weight(jax.random.key(0), I, H, layers, bidirectional).astype(jnp.float64)
    net, params = interop.from_cudnn(w, I, H, layers, bidirectional)
    np.testing.assert_array_equal(interop.to_cudnn(net, params), w)
    x = jax.random.normal(jax.random.key(1), (B, T, I), jnp.float64)
    D = 2 if bidirectional else 1
    zeros = jnp.zeros((layers * D, B, H), jnp.float64)
    W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(w, I, H, layers, bidirectional)
    y_ref, _, _ = rnn.lstm_ref(x, zeros, zeros, W_ih, W_hh, b_ih, b_hh,
                               jnp.full((B,), T, jnp.int32), I, H, layers, 0.0, bidirectional)
    _, y = net.apply(params, x)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-13)


def test_wrong_sizes_and_non_lstm_networks_are_refused():
    import rnn_jax
    w = rnn.init_lstm_weight(jax.random.key(0), 3, 4, 1, False)
    with pytest.raises(ValueError, match="numbers"):
        interop.from_cudnn(w, 3, 5)
    g = rnn_jax.gru(3, 4)
    with pytest.raises(ValueError, match="LSTM"):
        interop.to_cudnn(g, g.init(jax.random.key(0)))
