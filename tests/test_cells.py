"""Each cell's step against its equations written out by hand in NumPy (float64), every option,
and the two worked examples of concepts.md §5."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

F64 = jnp.float64
I, H, B = 3, 4, 2


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


ACTS = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "identity": lambda a: a,
        "sigmoid": sig}


def _random_params(cell, seed):
    """Params with every entry random (biases and peepholes too), as float64 NumPy."""
    p = cell.init(jax.random.key(seed))
    leaves, tree = jax.tree.flatten(p)
    rng = np.random.default_rng(seed)
    leaves = [rng.normal(size=l.shape) * 0.7 for l in leaves]
    return jax.tree.unflatten(tree, [jnp.asarray(l, F64) for l in leaves]), \
        jax.tree.unflatten(tree, leaves)


def _inputs(seed, size):
    rng = np.random.default_rng(100 + seed)
    return rng.normal(size=(B, I)), rng.normal(size=(B, size))


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_elman_step(activation):
    cell = rnn_jax.elman(I, H, activation=activation, dtype=F64)
    p, q = _random_params(cell, 1)
    x, h = _inputs(1, H)
    want = ACTS[activation](x @ q.w_ih.T + q.b_ih + h @ q.w_hh.T + q.b_hh)
    carry, y = cell.step(p, jnp.asarray(h), jnp.asarray(x))
    np.testing.assert_allclose(carry, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_elman_custom_callable_activation():
    cell = rnn_jax.elman(I, H, activation=jnp.sin, dtype=F64)
    p, q = _random_params(cell, 2)
    x, h = _inputs(2, H)
    _, y = cell.step(p, jnp.asarray(h), jnp.asarray(x))
    np.testing.assert_allclose(y, np.sin(x @ q.w_ih.T + q.b_ih + h @ q.w_hh.T + q.b_hh), rtol=1e-12)


@pytest.mark.parametrize("activation,out_act", [("tanh", "identity"), ("relu", "sigmoid")])
def test_jordan_step_feeds_back_output(activation, out_act):
    O = 5
    cell = rnn_jax.jordan(I, H, O, activation=activation, output_activation=out_act, dtype=F64)
    assert cell.output_size == O
    p, q = _random_params(cell, 3)
    x, y_prev = _inputs(3, O)
    h = ACTS[activation](x @ q.w_ih.T + q.b_ih + y_prev @ q.w_yh.T)
    want = ACTS[out_act](h @ q.w_hy.T + q.b_y)
    carry, y = cell.step(p, jnp.asarray(y_prev), jnp.asarray(x))
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(carry, want, rtol=1e-12, atol=1e-12)


def _lstm_ref(q, h, c, x, peephole, proj, ga, ca, oa):
    a = x @ q.w_ih.T + q.b_ih + h @ q.w_hh.T + q.b_hh
    ai, af, ag, ao = np.split(a, 4, axis=-1)
    if peephole:
        ai, af = ai + q.w_ci * c, af + q.w_cf * c
    c_new = ACTS[ga](af) * c + ACTS[ga](ai) * ACTS[ca](ag)
    if peephole:
        ao = ao + q.w_co * c_new
    h_new = ACTS[ga](ao) * ACTS[oa](c_new)
    if proj:
        h_new = h_new @ q.w_hr.T
    return h_new, c_new


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("proj", [None, 2])
@pytest.mark.parametrize("acts", [("sigmoid", "tanh", "tanh"), ("sigmoid", "identity", "relu")])
def test_lstm_step(peephole, proj, acts):
    ga, ca, oa = acts
    cell = rnn_jax.lstm(I, H, peephole=peephole, proj_size=proj, gate_activation=ga,
                        cell_activation=ca, output_activation=oa, dtype=F64)
    P = proj or H
    assert cell.output_size == P
    p, q = _random_params(cell, 4)
    x, h = _inputs(4, P)
    c = np.random.default_rng(5).normal(size=(B, H))
    want_h, want_c = _lstm_ref(q, h, c, x, peephole, proj, ga, ca, oa)
    carry, y = cell.step(p, rnn_jax.LSTMCarry(jnp.asarray(h), jnp.asarray(c)), jnp.asarray(x))
    np.testing.assert_allclose(carry.c, want_c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(carry.h, want_h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, want_h, rtol=1e-12, atol=1e-12)


def test_lstm_param_layout_and_forget_bias():
    cell = rnn_jax.lstm(I, H, peephole=True, proj_size=2, forget_bias=1.5)
    p = cell.init(jax.random.key(0))
    assert (p.w_ih.shape, p.w_hh.shape, p.b_ih.shape, p.w_hr.shape) == ((4 * H, I), (4 * H, 2),
                                                                        (4 * H,), (2, H))
    np.testing.assert_array_equal(p.b_ih[H:2 * H], 1.5)  # forget slice, gate order i,f,g,o
    np.testing.assert_array_equal(p.b_ih[:H], 0.0)
    assert rnn_jax.lstm(I, H).init(jax.random.key(0)).w_ci is None


@pytest.mark.parametrize("reset", ["after", "before"])
def test_gru_step(reset):
    cell = rnn_jax.gru(I, H, reset=reset, dtype=F64)
    p, q = _random_params(cell, 6)
    x, h = _inputs(6, H)
    wi, wh = np.split(q.w_ih, 3), np.split(q.w_hh, 3)
    bi, bh = np.split(q.b_ih, 3), np.split(q.b_hh, 3)
    r = sig(x @ wi[0].T + bi[0] + h @ wh[0].T + bh[0])
    z = sig(x @ wi[1].T + bi[1] + h @ wh[1].T + bh[1])
    if reset == "after":
        n = np.tanh(x @ wi[2].T + bi[2] + r * (h @ wh[2].T + bh[2]))
    else:
        n = np.tanh(x @ wi[2].T + bi[2] + (r * h) @ wh[2].T + bh[2])
    want = (1 - z) * n + z * h
    carry, y = cell.step(p, jnp.asarray(h), jnp.asarray(x))
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_gru_reset_variants_differ():
    a, b = rnn_jax.gru(I, H, reset="after", dtype=F64), rnn_jax.gru(I, H, reset="before", dtype=F64)
    p, _ = _random_params(a, 7)
    x, h = _inputs(7, H)
    assert not np.allclose(a.step(p, jnp.asarray(h), jnp.asarray(x))[1],
                           b.step(p, jnp.asarray(h), jnp.asarray(x))[1])


def test_project_then_recur_equals_step():
    for cell in [rnn_jax.elman(I, H), rnn_jax.lstm(I, H, peephole=True), rnn_jax.gru(I, H),
                 rnn_jax.jordan(I, H, 2)]:
        p, _ = _random_params(cell, 8)
        x = jnp.ones((B, I), F64)
        c0 = cell.initial_carry((B,), F64)
        a = cell.step(p, c0, x)
        b = jax.vmap(lambda c, x1: cell.recur(p, c, cell.project(p, x1)))(c0, x)
        jax.tree.map(np.testing.assert_array_equal, a, b)


# --- concepts.md §5, worked examples --------------------------------------------------------

def test_worked_example_linear_elman():
    cell = rnn_jax.elman(2, 2, activation="identity", dtype=F64)
    ones = jnp.ones((2, 2), F64)
    params = rnn_jax.ElmanParams(ones, ones, jnp.zeros(2, F64), jnp.zeros(2, F64))
    readout = rnn_jax.DenseParams(ones, jnp.zeros(2, F64))
    xs = jnp.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]], F64)
    _, hs = rnn_jax.run(cell, params, xs)
    np.testing.assert_array_equal(hs, [[2, 2], [6, 6], [16, 16]])
    outs = rnn_jax.dense(2, 2).apply(readout, hs)
    np.testing.assert_array_equal(outs, [[4, 4], [12, 12], [32, 32]])
    _, hs_rev = rnn_jax.run(cell, params, xs[::-1])
    assert not np.array_equal(rnn_jax.dense(2, 2).apply(readout, hs_rev), outs)


def test_worked_example_single_lstm_memory_cell():
    """z = x1 (linear g), i = σ(100 x2 − 10), f = σ(100 x2 + 10), o = σ(100 x3 − 10), linear h."""
    cell = rnn_jax.lstm(3, 1, forget_bias=0.0, cell_activation="identity",
                        output_activation="identity", dtype=F64)
    # gate order i, f, g, o
    w_ih = jnp.array([[0, 100, 0], [0, 100, 0], [1, 0, 0], [0, 0, 100]], F64)
    b_ih = jnp.array([-10, 10, 0, -10], F64)
    z41 = jnp.zeros((4, 1), F64)
    params = rnn_jax.LSTMParams(w_ih, z41, b_ih, jnp.zeros(4, F64))
    xs = jnp.array([[3, 1, 0], [4, 1, 0], [2, 0, 0], [1, 0, 1], [3, -1, 0]], F64)

    def collect(carry, x):
        carry, y = cell.step(params, carry, x)
        return carry, (carry.c[0], y[0])

    _, (c, y) = jax.lax.scan(collect, cell.initial_carry((), F64), xs)
    # The notes print c = 7 after [3, -1, 0]: a transcription error, x2 = -1 closes the forget
    # gate (σ(-90) ≈ 0) and erases the memory, so c = 0.
    np.testing.assert_allclose(c, [3, 7, 7, 7, 0], atol=1e-3)
    np.testing.assert_allclose(y, [0, 0, 0, 7, 0], atol=1e-3)
    _, ys = rnn_jax.run(cell, params, xs)
    np.testing.assert_allclose(ys[:, 0], y, atol=1e-12)


# --- initialisers --------------------------------------------------------------------------

def test_initializers():
    key = jax.random.key(0)
    w = rnn_jax.initializers.random_rotation()(key, (6, 6), F64)
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(np.asarray(w))), 1.0, atol=1e-12)
    # it is expm of a block-diagonal skew-symmetric matrix: its log has that form
    theta = np.arctan2(w[0, 1], w[0, 0])
    A = np.zeros((6, 6)); A[0, 1], A[1, 0] = theta, -theta
    np.testing.assert_allclose(jax.scipy.linalg.expm(jnp.asarray(A))[:2, :2], w[:2, :2], atol=1e-12)
    np.testing.assert_array_equal(rnn_jax.initializers.identity(2.0)(key, (3, 3)), 2 * np.eye(3))
    u = rnn_jax.initializers.pytorch_uniform(16)(key, (1000,), F64)
    assert float(jnp.max(jnp.abs(u))) <= 0.25 and float(jnp.max(jnp.abs(u))) > 0.24
    gru = rnn_jax.gru(4, 5, dtype=F64).init(key)
    for g in range(3):  # orthogonal per gate block
        blk = gru.w_hh[g * 5:(g + 1) * 5]
        np.testing.assert_allclose(blk @ blk.T, np.eye(5), atol=1e-12)
    ir = rnn_jax.irnn(3, 4).init(key)
    np.testing.assert_array_equal(ir.w_hh, np.eye(4))
    np.testing.assert_array_equal(ir.b_ih, 0)
