"""Bad input raises ValueError/TypeError naming the argument and the shapes, before XLA runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

I, H, T = 3, 4, 5
cell = rnn_jax.lstm(I, H)
params = cell.init(jax.random.key(0))
xs = jnp.zeros((2, T, I))


def raises(exc, *fragments):
    return pytest.raises(exc, match=".*".join(fragments))


def test_wrong_input_size():
    with raises(ValueError, "xs has feature size 5", r"\(2, 5, 5\)", "input_size is 3"):
        rnn_jax.run(cell, params, jnp.zeros((2, T, 5)))


def test_wrong_rank_and_dtype():
    with raises(ValueError, "xs must have shape", "rank 1"):
        rnn_jax.run(cell, params, jnp.zeros((I,)))
    with raises(TypeError, "xs must be a floating-point array", "int32"):
        rnn_jax.run(cell, params, jnp.zeros((2, T, I), jnp.int32))


@pytest.mark.parametrize("lengths,exc,frag", [
    (np.array([1, 2, 3]), ValueError, r"lengths has shape \(3,\) but the batch shape of the inputs is \(2,\)"),
    (np.array([-1, 2]), ValueError, r"lengths must lie in \[0, T=5\], got min -1"),
    (np.array([6, 2]), ValueError, r"lengths must lie in \[0, T=5\].*max 6"),
    (np.array([1.0, 2.0]), TypeError, "lengths must have an integer dtype, got float64"),
    (np.array([[1, 2]]), ValueError, r"lengths has shape \(1, 2\)"),
])
def test_bad_lengths(lengths, exc, frag):
    with pytest.raises(exc, match=frag):
        rnn_jax.run(cell, params, xs, lengths=lengths)


def test_errors_are_raised_at_trace_time_under_jit():
    f = jax.jit(lambda x, l: rnn_jax.run(cell, params, x, lengths=l))
    with raises(ValueError, "lengths has shape"):
        f(xs, jnp.array([1, 2, 3]))
    with raises(ValueError, "feature size"):
        jax.eval_shape(lambda x: rnn_jax.run(cell, params, x), jax.ShapeDtypeStruct((2, T, 7), jnp.float32))


def test_mismatched_carry_and_params():
    with raises(ValueError, "initial_carry shapes", r"\(3, 4\)", r"\(2, 4\)"):
        rnn_jax.run(cell, params, xs, rnn_jax.LSTMCarry(jnp.zeros((3, H)), jnp.zeros((3, H))))
    with raises(ValueError, "initial_carry does not have the structure"):
        rnn_jax.run(cell, params, xs, jnp.zeros((2, H)))
    other = rnn_jax.lstm(I, H + 1).init(jax.random.key(0))
    with raises(ValueError, "params shapes", "hidden_size=4"):
        rnn_jax.run(cell, other, xs)
    with raises(ValueError, "params does not have the structure"):
        rnn_jax.run(rnn_jax.lstm(I, H, peephole=True), params, xs)


@pytest.mark.parametrize("build,exc,frag", [
    (lambda: rnn_jax.elman(I, H, activation="tahn"), ValueError, "activation='tahn' is not a known"),
    (lambda: rnn_jax.lstm(I, H, cell_activation=3), TypeError, "cell_activation must be"),
    (lambda: rnn_jax.gru(I, H, reset="middle"), ValueError, "reset='middle' is not one of"),
    (lambda: rnn_jax.lstm(I, 0), ValueError, "hidden_size must be a positive int"),
    (lambda: rnn_jax.lstm(I, 2.5), TypeError, "hidden_size must be a positive int"),
    (lambda: rnn_jax.bidirectional(cell, merge="max"), ValueError, "merge='max' is not one of"),
    (lambda: rnn_jax.stacked([cell, rnn_jax.gru(H + 1, H)]), ValueError,
     "layers.1. has input_size 5 but layers.0. has output_size 4"),
    (lambda: rnn_jax.stacked([cell, rnn_jax.gru(H, 2)], residual=True), ValueError, "residual=True"),
    (lambda: rnn_jax.stacked([cell], dropout=1.5), ValueError, "dropout must be a rate"),
    (lambda: rnn_jax.run("lstm", params, xs), TypeError, "cell must be an rnn_jax Cell"),
    (lambda: rnn_jax.run(cell, params, xs, unroll=0), ValueError, "unroll must be a positive int"),
    (lambda: rnn_jax.run(cell, params, xs, grad="manual"), TypeError, "grad must be a gradient method"),
    (lambda: rnn_jax.sequence_cross_entropy(jnp.zeros((2, 5, 3)), jnp.zeros((2, 4), int)),
     ValueError, "labels shape"),
    (lambda: rnn_jax.sequence_cross_entropy(jnp.zeros((2, 5, 3)), jnp.zeros((2, 5), int),
                                            reduction="avg"), ValueError, "reduction='avg'"),
])
def test_bad_options(build, exc, frag):
    with pytest.raises(exc, match=frag):
        build()


def test_nan_is_visible_not_hidden():
    bad = params._replace(w_hh=params.w_hh.at[0, 0].set(jnp.nan))
    _, ys = rnn_jax.run(cell, bad, jnp.ones((2, T, I)))
    assert bool(jnp.any(jnp.isnan(ys)))
