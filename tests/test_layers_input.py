"""Input checks of the layer combinators (params/initial_carry structure, dropout, bool flags)
and the dense readout's values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax._src import layers as layers_mod

B, T, I, H = 2, 5, 3, 4
F64 = jnp.float64
XS = jax.random.normal(jax.random.key(0), (B, T, I), F64)
LENGTHS = jnp.array([5, 3])


def _cell(i=I):
    return rnn_jax.lstm(i, H, dtype=F64)


def _zeros_carry(batch=(B,)):
    return _cell().initial_carry(batch, F64)


@pytest.fixture(scope="module")
def deep():
    net = rnn_jax.stacked([_cell(), _cell(H), _cell(H)])
    return net, net.init(jax.random.key(1))


@pytest.fixture(scope="module")
def bi():
    net = rnn_jax.bidirectional(_cell())
    return net, net.init(jax.random.key(2))


@pytest.mark.parametrize("n", [2, 4, 1, 0])
def test_stacked_wrong_number_of_carries(deep, n):
    net, params = deep
    with pytest.raises(ValueError, match=rf"initial_carry .*3 layers but {n} carries"):
        net.apply(params, XS, initial_carry=(_zeros_carry(),) * n)


def test_stacked_carry_not_a_tuple(deep):
    net, params = deep
    with pytest.raises(ValueError, match=r"initial_carry must be None or a tuple with one carry "
                                         r"per layer \(3 layers\), got a LSTMCarry"):
        net.apply(params, XS, initial_carry=_zeros_carry())


def test_stacked_explicit_carries_match_default(deep):
    net, params = deep
    c0, y0 = net.apply(params, XS, lengths=LENGTHS)
    c1, y1 = net.apply(params, XS, lengths=LENGTHS, initial_carry=(_zeros_carry(),) * 3)
    c2, y2 = net.apply(params, XS, lengths=LENGTHS,
                       initial_carry=[None, _zeros_carry(), None])
    for y in (y1, y2):
        np.testing.assert_allclose(y, y0, rtol=1e-12)
    for c in (c1, c2):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), c, c0)
    # A non-zero carry for one layer changes the result (it is used, not dropped).
    ones = jax.tree.map(jnp.ones_like, _zeros_carry())
    _, y3 = net.apply(params, XS, initial_carry=(None, ones, None))
    assert not np.allclose(y3, net.apply(params, XS)[1])


@pytest.mark.parametrize("cut", [2, 4])
def test_stacked_wrong_number_of_params(deep, cut):
    net, params = deep
    bad = (params + params)[:cut]
    with pytest.raises(ValueError, match=rf"params has {cut} entries for 3 layers"):
        net.apply(bad, XS)


def test_stacked_params_not_a_tuple(deep):
    net, params = deep
    with pytest.raises(ValueError, match=r"params must be a tuple with one entry per layer "
                                         r"\(3 layers\), got a LSTMParams"):
        net.apply(params[0], XS)


@pytest.mark.parametrize("carry", [
    lambda: _zeros_carry(),  # a single LSTMCarry is a 2-tuple, but not the pair asked for
    lambda: (_zeros_carry(),),
    lambda: (_zeros_carry(),) * 3,
    lambda: jnp.zeros((2, B, H)),
])
def test_bidirectional_carry_not_a_pair(bi, carry):
    net, params = bi
    with pytest.raises(ValueError, match=r"initial_carry of a bidirectional layer must be None "
                                         r"or a pair \(forward_carry, backward_carry\)"):
        net.apply(params, XS, initial_carry=carry())


def test_bidirectional_params_not_a_pair(bi):
    net, params = bi
    with pytest.raises(ValueError, match=r"params of a bidirectional layer must be a pair"):
        net.apply(params[0], XS)


def test_bidirectional_pair_carry_matches_default(bi):
    net, params = bi
    _, y0 = net.apply(params, XS, lengths=LENGTHS)
    _, y1 = net.apply(params, XS, lengths=LENGTHS, initial_carry=[_zeros_carry(), None])
    np.testing.assert_allclose(y1, y0, rtol=1e-12)


@pytest.mark.parametrize("rate", ["0.2", True, False, None, [0.1]])
def test_dropout_type(rate):
    with pytest.raises(TypeError, match=r"dropout must be a rate in \[0, 1\)"):
        rnn_jax.stacked([_cell(), _cell(H)], dropout=rate)


@pytest.mark.parametrize("rate", [1.0, 1, -0.1, float("nan"), float("inf")])
def test_dropout_range(rate):
    with pytest.raises(ValueError, match=r"dropout must be a rate in \[0, 1\)"):
        rnn_jax.stacked([_cell(), _cell(H)], dropout=rate)


def test_dropout_accepts_numeric_rates():
    net = rnn_jax.stacked([_cell(), _cell(H)], dropout=np.float32(0.5))
    params = net.init(jax.random.key(3))
    _, y_eval = net.apply(params, XS)
    _, y_drop = net.apply(params, XS, key=jax.random.key(4))
    assert not np.allclose(y_eval, y_drop)
    _, y0 = rnn_jax.stacked([_cell(), _cell(H)], dropout=0).apply(params, XS, key=jax.random.key(4))
    np.testing.assert_allclose(y0, y_eval, rtol=1e-12)


@pytest.mark.parametrize("value", ["no", 1, 0, None])
def test_bool_flags(value, deep, bi):
    with pytest.raises(TypeError, match="reverse must be a bool"):
        rnn_jax.layer(_cell(), reverse=value)
    with pytest.raises(TypeError, match="residual must be a bool"):
        rnn_jax.stacked([_cell(), _cell(H)], residual=value)
    single = rnn_jax.layer(_cell())
    for net, params in [(single, single.init(jax.random.key(5))), deep, bi]:
        with pytest.raises(TypeError, match="time_major must be a bool"):
            net.apply(params, XS, time_major=value)


def test_bool_flags_accept_numpy_bools(deep):
    net, params = deep
    _, y0 = net.apply(params, XS)
    _, y1 = net.apply(params, jnp.swapaxes(XS, 0, 1), time_major=np.bool_(True))
    np.testing.assert_allclose(jnp.swapaxes(y1, 0, 1), y0, rtol=1e-12)


def test_layers_module_does_not_use_cell_linear():
    assert not hasattr(layers_mod, "linear")


@pytest.mark.parametrize("lead", [(), (I + 2,), (B, T)])
def test_dense_values(lead):
    d = rnn_jax.dense(I, H + 1, dtype=F64)
    p = d.init(jax.random.key(6))
    p = p._replace(b=jax.random.normal(jax.random.key(7), (H + 1,), F64))
    assert p.w.shape == (H + 1, I)
    x = jax.random.normal(jax.random.key(8), lead + (I,), F64)
    y = d.apply(p, x)
    want = np.asarray(x) @ np.asarray(p.w).T + np.asarray(p.b)
    np.testing.assert_allclose(y, want, rtol=1e-12)
    gw = jax.grad(lambda w: jnp.sum(d.apply(p._replace(w=w), x)))(p.w)
    np.testing.assert_allclose(gw, np.broadcast_to(
        np.asarray(x).reshape(-1, I).sum(0), (H + 1, I)), rtol=1e-12)


def test_dense_bad_input():
    d = rnn_jax.dense(I, H)
    p = d.init(jax.random.key(9))
    with pytest.raises(ValueError, match=rf"x must have shape \(\.\.\., {I}\).*\(2, {I + 1}\)"):
        d.apply(p, jnp.ones((2, I + 1)))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        d.apply(p, jnp.float32(1.0))
