"""Whole-sequence manual BPTT against ``jax.grad``, finite differences and ``vmap``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

import rnn_jax
from rnn_jax._src.verify import CASES, call_compiled, random_carry, random_like, rel_err

F64 = jnp.float64
EXACT = [c for c in CASES if c.truncate is None and c.clip is None]
BY_NAME = {f"{c.cell} {c.options}": c for c in EXACT}


def _pairing(dys, dcarry, final, ys):
    return jnp.vdot(dys, ys) + sum(jnp.vdot(a, b) for a, b in
                                   zip(jax.tree.leaves(dcarry), jax.tree.leaves(final)))


@given(case=st.sampled_from(EXACT), B=st.sampled_from([1, 3]), T=st.sampled_from([1, 6]),
       I=st.sampled_from([1, 3]), H=st.sampled_from([1, 4]), reverse=st.booleans(),
       use_lengths=st.booleans(), unroll=st.sampled_from([1, 2]), seed=st.integers(0, 2**16),
       data=st.data())
def test_manual_matches_autodiff(case, B, T, I, H, reverse, use_lengths, unroll, seed, data):
    cell = case.make(I, H, F64)
    rng = np.random.default_rng(seed)
    params = random_like(cell.init(jax.random.key(seed)), rng, 0.5)
    xs = jnp.asarray(rng.normal(size=(B, T, I)))
    carry0 = random_carry(cell, (B,), rng, 0.5)
    lengths = (jnp.asarray(data.draw(st.lists(st.integers(0, T), min_size=B, max_size=B)))
               if use_lengths else None)
    dys = jnp.asarray(rng.normal(size=(B, T, cell.output_size)))
    dcarry = random_like(carry0, rng)

    def grads(params, xs, carry0, lengths):
        def loss(p, x, c, grad):
            final, ys = rnn_jax.run(cell, p, x, c, lengths=lengths, reverse=reverse,
                                    unroll=unroll, grad=grad)
            return _pairing(dys, dcarry, final, ys)

        return [jax.grad(loss, (0, 1, 2))(params, xs, carry0, g)
                for g in (rnn_jax.ManualBPTT(), rnn_jax.Autodiff())]

    manual, auto = call_compiled(grads, params, xs, carry0, lengths)
    assert rel_err(manual, auto) <= 1e-10


@pytest.mark.parametrize("name,batch,time_major", [
    ("lstm peephole proj_size=2", (2, 3), True), ("gru reset=before", (), False),
    ("jordan activation=tanh output=identity O=5", (2,), False)])
def test_bptt_function_matches_vjp_of_run(name, batch, time_major):
    """``rnn_jax.bptt`` is the VJP of ``rnn_jax.run``, any batch rank and layout."""
    cell = BY_NAME[name].make(3, 4, F64)
    rng = np.random.default_rng(1)
    T = 5
    params = random_like(cell.init(jax.random.key(1)), rng, 0.5)
    shape = (T, *batch, 3) if time_major else (*batch, T, 3)
    xs = jnp.asarray(rng.normal(size=shape))
    carry0 = random_carry(cell, batch, rng)
    lengths = jnp.asarray(rng.integers(0, T + 1, size=batch)) if batch else None
    out_shape = jax.eval_shape(lambda: rnn_jax.run(cell, params, xs, carry0,
                                                   time_major=time_major))
    dcarry, dys = random_like(out_shape, rng)

    def both(params, xs, carry0, dcarry, dys):
        res = []
        for reverse in (False, True):
            def f(p, x, c):
                return rnn_jax.run(cell, p, x, c, lengths=lengths, reverse=reverse,
                                   time_major=time_major)

            want = jax.vjp(f, params, xs, carry0)[1]((dcarry, dys))
            got = rnn_jax.bptt(cell, params, xs, dys, dcarry, carry0, lengths=lengths,
                               reverse=reverse, time_major=time_major)
            res.append((want, (got[0], got[2], got[1])))
        return res

    for want, got in call_compiled(both, params, xs, carry0, dcarry, dys):
        assert rel_err(got, want) <= 1e-10


def test_bptt_rejects_wrong_dys_shape():
    cell = rnn_jax.elman(2, 3, dtype=F64)
    params = cell.init(jax.random.key(0))
    with pytest.raises(ValueError, match="dys must have shape"):
        rnn_jax.bptt(cell, params, jnp.zeros((4, 5, 2)), jnp.zeros((4, 5, 2)))


@pytest.mark.parametrize("name", ["elman activation=tanh", "lstm peephole proj_size=2",
                                  "gru reset=after", "jordan activation=relu output=sigmoid O=2"])
def test_check_grads_finite_differences(name):
    cell = BY_NAME[name].make(2, 3, F64)
    rng = np.random.default_rng(2)
    params = random_like(cell.init(jax.random.key(2)), rng, 0.5)
    xs = jnp.asarray(rng.normal(size=(2, 4, 2)))
    carry0 = random_carry(cell, (2,), rng, 0.5)
    lengths = jnp.array([4, 2])

    @jax.jit
    def f(p, x, c):
        final, ys = rnn_jax.run(cell, p, x, c, lengths=lengths, reverse=True,
                                grad=rnn_jax.ManualBPTT())
        return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(a**2) for a in jax.tree.leaves(final))

    check_grads(f, (params, xs, carry0), order=1, modes=["rev"])


@pytest.mark.parametrize("name", ["lstm peephole proj_size=2", "gru reset=before"])
def test_vmap_grad_equals_grad_vmap(name):
    """Per-sequence gradients under ``vmap`` sum to the gradient of the vmapped loss."""
    cell = BY_NAME[name].make(3, 4, F64)
    rng = np.random.default_rng(3)
    params = random_like(cell.init(jax.random.key(3)), rng, 0.5)
    xs = jnp.asarray(rng.normal(size=(4, 6, 3)))
    lengths = jnp.array([6, 3, 1, 0])

    def loss(p, x, n, grad):  # one unbatched sequence
        _, ys = rnn_jax.run(cell, p, x, lengths=n, grad=grad)
        return jnp.sum(jnp.tanh(ys) * jnp.arange(1, ys.shape[-1] + 1))

    def all_grads(params, xs, lengths):
        m = rnn_jax.ManualBPTT()
        per_seq = jax.vmap(jax.grad(loss), (None, 0, 0, None))(params, xs, lengths, m)
        vmap_grad = jax.tree.map(lambda g: g.sum(0), per_seq)
        grad_vmap = jax.grad(lambda p: jnp.sum(jax.vmap(loss, (None, 0, 0, None))(
            p, xs, lengths, m)))(params)
        auto = jax.grad(lambda p: jnp.sum(jax.vmap(loss, (None, 0, 0, None))(
            p, xs, lengths, rnn_jax.Autodiff())))(params)
        return vmap_grad, grad_vmap, auto

    vmap_grad, grad_vmap, auto = call_compiled(all_grads, params, xs, lengths)
    assert rel_err(vmap_grad, grad_vmap) <= 1e-10
    assert rel_err(grad_vmap, auto) <= 1e-10


def test_layers_take_manual_bptt():
    """``stacked`` and ``bidirectional`` pass the method to every layer's run."""
    net = rnn_jax.stacked([rnn_jax.bidirectional(rnn_jax.elman(3, 4, dtype=F64)),
                           rnn_jax.gru(8, 5, dtype=F64)])
    params = net.init(jax.random.key(4))
    xs = jax.random.normal(jax.random.key(5), (2, 6, 3), F64)
    lengths = jnp.array([6, 4])

    def loss(p, grad):
        _, ys = net.apply(p, xs, lengths=lengths, grad=grad)
        return jnp.sum(ys**2)

    g_m, g_a = call_compiled(lambda p: [jax.grad(loss)(p, g) for g in
                                        (rnn_jax.ManualBPTT(), rnn_jax.Autodiff())], params)
    assert rel_err(g_m, g_a) <= 1e-10


# float32: manual and autodiff round differently; both are within a few float32 ulps of the
# float64 gradient. Tolerance per leaf: max|a-b| / max(|a|+|b|) <= 2e-5 (measured <= 6e-7 for
# T <= 100, B=4, H=32 across all cells with bounded activations).
F32_TOL = 2e-5


def _scaled_err(a, b):
    return max(float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(x) + jnp.abs(y)))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("name", ["elman activation=tanh", "lstm peephole proj_size=2",
                                  "gru reset=after", "jordan activation=tanh output=identity O=5"])
def test_float32_tolerance(name):
    cell = BY_NAME[name].make(8, 32, jnp.float32)
    rng = np.random.default_rng(5)
    T = 60
    params = cell.init(jax.random.key(5))
    xs = jnp.asarray(rng.normal(size=(4, T, 8)), jnp.float32)
    lengths = jnp.array([T, T // 2, 1, 0])
    dys = jnp.asarray(rng.normal(size=(4, T, cell.output_size)), jnp.float32)

    def grads(params, xs):
        def loss(p, x, grad):
            return jnp.vdot(dys, rnn_jax.run(cell, p, x, lengths=lengths, grad=grad)[1])

        return [jax.grad(loss, (0, 1))(params, xs, g)
                for g in (rnn_jax.ManualBPTT(), rnn_jax.Autodiff())]

    manual, auto = call_compiled(grads, params, xs)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(manual))
    assert _scaled_err(manual, auto) <= F32_TOL


def test_default_gradient_is_manual_for_own_cells_only():
    """``run`` differentiates rnn_jax's LSTM and Elman with ManualBPTT, and a user's cell that merely borrows the name "lstm" with autodiff, so its gradient stays right."""
    own = rnn_jax.lstm(3, 4)
    for cell in (own, rnn_jax.elman(3, 4), rnn_jax.gru(3, 4), rnn_jax.jordan(3, 4)):
        for on in ("cpu", "tpu"):
            assert rnn_jax.plan(cell, on=on).grad == rnn_jax.ManualBPTT()
    scale = 0.5

    def recur(p, c, xp):  # an LSTM step with an extra scale: different equations, same name
        new, y = own.recur(p, c, xp)
        return rnn_jax.LSTMCarry(scale * new.h, new.c), scale * y

    mine = own._replace(recur=recur)
    assert rnn_jax.plan(mine).grad == rnn_jax.Autodiff()
    assert rnn_jax.plan(mine, on="gpu").grad == rnn_jax.Autodiff()
    with pytest.raises(ValueError, match="no hand-written backward"):
        rnn_jax.run(mine, own.init(jax.random.key(0)), jnp.zeros((2, 5, 3)),
                    grad=rnn_jax.ManualBPTT())
    params = jax.tree.map(lambda a: a.astype(F64), own.init(jax.random.key(0)))
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3), F64)

    def loss(p, cell, grad=None):
        return jnp.sum(jnp.sin(rnn_jax.run(cell, p, xs, grad=grad)[1]))

    for cell in (own, mine):
        g_default = jax.grad(loss)(params, cell)
        g_auto = jax.grad(loss)(params, cell, rnn_jax.Autodiff())
        assert rel_err(g_default, g_auto) <= 1e-10
    assert rel_err(jax.grad(loss)(params, own), jax.grad(loss)(params, mine)) > 1e-3
