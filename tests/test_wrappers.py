"""rnn_jax.flax.RNN and rnn_jax.equinox.RNN: the functional network inside each framework's
usual training step, with the same values and gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnn_jax

NET = lambda: rnn_jax.stacked([rnn_jax.bidirectional(rnn_jax.lstm(3, 4)),   # noqa: E731
                               rnn_jax.gru(8, 5)])
X = jax.random.normal(jax.random.key(0), (2, 6, 3))
LENGTHS = jnp.array([6, 2])


def _functional_step(params):
    net = NET()
    loss = lambda p: jnp.sum(net.apply(p, X, lengths=LENGTHS)[1] ** 2)   # noqa: E731
    g = jax.grad(loss)(params)
    opt = optax.sgd(0.1)
    return loss(params), optax.apply_updates(params, opt.update(g, opt.init(params))[0])


def test_flax_module_trains_like_the_functional_network():
    nn = pytest.importorskip("flax.linen")
    del nn
    from rnn_jax.flax import RNN
    model = RNN(NET())
    variables = model.init(jax.random.key(1), X, LENGTHS)
    params = variables["params"]["rnn"]
    np.testing.assert_allclose(model.apply(variables, X, LENGTHS)[1],
                               NET().apply(params, X, lengths=LENGTHS)[1], rtol=1e-6)
    loss = lambda v: jnp.sum(model.apply(v, X, LENGTHS)[1] ** 2)   # noqa: E731
    opt = optax.sgd(0.1)
    g = jax.grad(loss)(variables)
    new = optax.apply_updates(variables, opt.update(g, opt.init(variables))[0])
    want_loss, want = _functional_step(params)
    np.testing.assert_allclose(loss(variables), want_loss, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 new["params"]["rnn"], want)


def test_equinox_module_trains_like_the_functional_network():
    eqx = pytest.importorskip("equinox")
    from rnn_jax.equinox import RNN
    model = RNN(NET(), key=jax.random.key(1))
    assert len(jax.tree.leaves(model)) == len(jax.tree.leaves(model.params))

    @eqx.filter_jit
    def step(model):
        loss, g = eqx.filter_value_and_grad(
            lambda m: jnp.sum(m(X, LENGTHS)[1] ** 2))(model)
        opt = optax.sgd(0.1)
        updates, _ = opt.update(g, opt.init(eqx.filter(model, eqx.is_array)))
        return loss, eqx.apply_updates(model, updates)

    loss, new = step(model)
    want_loss, want = _functional_step(model.params)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 new.params, want)
