"""rnn_jax.interop against Flax linen's cells: outputs and gradients equal on padded batches,
flax -> rnn_jax -> flax bit exact."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax import interop

nn = pytest.importorskip("flax.linen", reason="Flax is not installed (the flax extra)")
KINDS = ("OptimizedLSTMCell", "LSTMCell", "GRUCell", "SimpleCell")
I, H, B, T = 3, 5, 3, 6


def _flax(kind):
    cell = getattr(nn, kind)(features=H, param_dtype=jnp.float64)
    rnn = nn.RNN(cell)
    x = jax.random.normal(jax.random.key(0), (B, T, I), jnp.float64)
    variables = rnn.init(jax.random.key(1), x)
    variables = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.key(2), a.shape,
                                                                   a.dtype), variables)
    return cell, rnn, variables, x


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_and_gradients_equal_on_padded_batches(kind):
    cell, rnn, variables, x = _flax(kind)
    c, params = interop.from_flax(cell, variables["params"])
    lengths = jnp.array([T, 3, 1])
    y_f = rnn.apply(variables, x, seq_lengths=lengths)
    _, y = rnn_jax.run(c, params, x, lengths=lengths)
    valid = (jnp.arange(T) < lengths[:, None])[..., None]
    np.testing.assert_allclose(y, jnp.where(valid, y_f, 0.0), rtol=1e-12, atol=1e-13)
    w = jax.random.normal(jax.random.key(3), y.shape, y.dtype) * valid
    g_f = jax.grad(lambda v: jnp.sum(rnn.apply(v, x, seq_lengths=lengths) * w))(variables)
    # the same loss through the conversion: gradients with respect to flax's own params
    g = jax.grad(lambda v: jnp.sum(rnn_jax.run(c, interop.from_flax(cell, v)[1], x,
                                               lengths=lengths)[1] * w))(variables["params"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12),
                 g, g_f["params"])


@pytest.mark.parametrize("kind", KINDS)
def test_flax_to_rnn_jax_to_flax_is_bit_exact_and_carries_map(kind):
    cell, rnn, variables, x = _flax(kind)
    c, params = interop.from_flax(cell, variables["params"])
    back = interop.to_flax(c, params, kind)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), back,
                 variables["params"]["cell"])
    carry = cell.initialize_carry(jax.random.key(4), (B, I))
    carry = jax.tree.map(lambda a: a + 0.5, carry)
    new_f, y_f = cell.apply({"params": variables["params"]["cell"]}, carry, x[:, 0])
    new, y = c.step(params, interop.carry_from_flax(carry, kind), x[:, 0])
    np.testing.assert_allclose(y, y_f, rtol=1e-12)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12),
                 interop.carry_to_flax(new), new_f)


def test_what_flax_cannot_hold_is_refused():
    for cell, kind in ((rnn_jax.lstm(3, 4, peephole=True), "LSTMCell"),
                       (rnn_jax.gru(3, 4, reset="before"), "GRUCell"),
                       (rnn_jax.elman(3, 4, activation="relu"), "SimpleCell"),
                       (rnn_jax.gru(3, 4), "LSTMCell")):
        with pytest.raises(ValueError, match=kind):
            interop.to_flax(cell, cell.init(jax.random.key(0)), kind)
    with pytest.raises(ValueError, match="one of flax"):
        interop.from_flax("ConvLSTMCell", {})


@pytest.mark.parametrize("kind", KINDS)
def test_nnx_cells_convert_both_ways(kind):
    nnx = pytest.importorskip("flax.nnx")
    m = getattr(nnx, kind)(I, H, rngs=nnx.Rngs(0), param_dtype=jnp.float64,
                           dtype=jnp.float64)
    state = nnx.state(m, nnx.Param)
    nnx.update(m, jax.tree.map(lambda a: a + 0.1, state))          # non-zero biases
    cell, params = interop.from_nnx(m)
    x = jax.random.normal(jax.random.key(5), (B, I), jnp.float64)
    carry = jax.tree.map(lambda a: a + 0.3, m.initialize_carry((B, I), nnx.Rngs(1)))
    new_m, y_m = m(carry, x)
    new, y = cell.step(params, interop.carry_from_flax(carry, kind), x)
    np.testing.assert_allclose(y, y_m, rtol=1e-12)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12),
                 interop.carry_to_flax(new), new_m)
    other = getattr(nnx, kind)(I, H, rngs=nnx.Rngs(7), param_dtype=jnp.float64,
                               dtype=jnp.float64)
    interop.to_nnx(cell, params, other)                 # nnx -> rnn_jax -> nnx: bit exact
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b),
                 nnx.to_pure_dict(nnx.state(other, nnx.Param)),
                 nnx.to_pure_dict(nnx.state(m, nnx.Param)))
    if kind == "GRUCell":                                # nnx has no b_hn
        with pytest.raises(ValueError, match="b_hn"):
            interop.to_nnx(cell, params._replace(b_hh=params.b_hh + 1.0), other)
