"""The planner's choices, the gradient methods as static data under ``jax.jit``, and the
clear errors of the runner and cells for options of the wrong type or value."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

CELLS = {"elman": rnn_jax.elman, "jordan": rnn_jax.jordan, "lstm": rnn_jax.lstm,
         "gru": rnn_jax.gru}


def test_plan_is_one_table_per_backend():
    from rnn_jax._src.plan import TABLE

    assert set(TABLE) == {"cpu", "gpu"}
    for name, make in CELLS.items():
        cell = make(3, 4)
        for on in ("cpu", "tpu"):  # a backend without a row takes the CPU's
            p = rnn_jax.plan(cell, on=on)   # one sequence: mapped, products apart
            assert p == rnn_jax.Plan(unroll=1, fuse=False, grad=rnn_jax.ManualBPTT())
            p = rnn_jax.plan(cell, on=on, batch=32)  # LSTM and Elman run fused at H <= 128
            assert p.features_first and not p.forward_features_first
            assert p.fuse == (name in ("lstm", "elman"))
            assert rnn_jax.plan(cell, on=on, batch=128).forward_features_first
        assert not rnn_jax.plan(make(3, 256), batch=32).fuse
        assert rnn_jax.plan(cell, on="gpu").unroll == 8
        assert not rnn_jax.plan(cell, on="gpu").forward_features_first


def test_a_cell_of_your_own_runs_mapped_with_plain_numpy():
    """A cell written as for one sequence (``W @ x + b``, which cannot run on columns) gets the
    mapped layout at every batch, and runs there: values equal a per-sequence loop, and its
    autodiff gradient equals that of the loop."""
    I, H, B, T = 3, 4, 40, 5
    k = jax.random.split(jax.random.key(0), 3)

    def init(key):
        return {"w": 0.5 * jax.random.normal(key, (H, I)), "u": 0.3 * jnp.eye(H), "b": jnp.ones(H)}

    cell = rnn_jax.Cell("mine", I, H, H, {}, init, lambda shape=(), dtype=jnp.float32:
                        jnp.zeros((*shape, H), dtype),
                        lambda p, x: p["w"] @ x + p["b"],
                        lambda p, h, xp: (jnp.tanh(xp + p["u"] @ h),) * 2)
    for batch in (1, B, 256):
        plan = rnn_jax.plan(cell, batch=batch)
        assert not plan.features_first and not plan.forward_features_first
    assert rnn_jax.plan(cell, batch=B) == rnn_jax.plan(cell, batch=B, on="gpu")._replace(unroll=1)
    params = init(k[0])
    xs = jax.random.normal(k[1], (B, T, I))
    dys = jax.random.normal(k[2], (B, T, H))

    def reference(p):
        h, ys = jnp.zeros((B, H)), []
        for t in range(T):
            h = jnp.tanh(xs[:, t] @ p["w"].T + p["b"] + h @ p["u"].T)
            ys.append(h)
        return jnp.vdot(dys, jnp.stack(ys, 1))

    loss = jax.jit(lambda p: jnp.vdot(dys, rnn_jax.run(cell, p, xs)[1]))
    np.testing.assert_allclose(loss(params), reference(params), rtol=1e-5)
    got, want = jax.grad(loss)(params), jax.grad(reference)(params)
    for name in params:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


def test_the_plan_follows_the_default_device(monkeypatch):
    """Under ``jax.default_device`` the planner plans for that device's platform, not for the
    machine's default backend (a CPU computation on a GPU machine gets the CPU's row)."""
    from rnn_jax._src import plan

    monkeypatch.setattr(plan.jax, "default_backend", lambda: "gpu")
    cell = rnn_jax.lstm(3, 4)
    assert rnn_jax.plan(cell).unroll == 8
    for device in (jax.devices("cpu")[0], "cpu"):
        with jax.default_device(device):
            assert rnn_jax.plan(cell) == rnn_jax.plan(cell, on="cpu")
    assert plan.backend("cuda") == "gpu"
    with jax.default_device("cpu"):   # and the persistent kernel runs in the interpreter there
        assert rnn_jax.Persistent().config(cell, jnp.float32).interpret
    assert not rnn_jax.Persistent().config(cell, jnp.float32).interpret


def test_gradient_methods_are_static_under_jit():
    """The README's ``jax.jit(rnn_jax.run, static_argnums=0)`` works with any ``grad=``, and
    with ``reverse``/``time_major`` given as ``static_argnames``."""
    cell = rnn_jax.lstm(3, 4)
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
    f = jax.jit(rnn_jax.run, static_argnums=0, static_argnames=("reverse", "time_major"))
    for grad in (rnn_jax.ManualBPTT(truncate=3), rnn_jax.ManualBPTT(clip=0.5),
                 rnn_jax.Checkpointed(), rnn_jax.Autodiff()):
        _, ys = f(cell, params, xs, grad=grad, reverse=True)
        _, want = rnn_jax.run(cell, params, xs, grad=grad, reverse=True)
        np.testing.assert_allclose(ys, want, rtol=1e-6, atol=1e-6)
    assert jax.tree.leaves(rnn_jax.ManualBPTT(truncate=3)) == []
    g = jax.jit(jax.grad(lambda p, m: jnp.sum(rnn_jax.run(cell, p, xs, grad=m)[1] ** 2)))
    d3 = g(params, rnn_jax.ManualBPTT(truncate=3))
    d_full = g(params, rnn_jax.ManualBPTT())
    assert float(jnp.max(jnp.abs(d3.w_hh - d_full.w_hh))) > 1e-6   # truncate really applied
    with pytest.raises(TypeError, match="static_argnames"):
        jax.jit(rnn_jax.run, static_argnums=0)(cell, params, xs, reverse=True)


def test_eager_run_and_bptt_trace_once_per_cell_and_shapes():
    """Called outside ``jit``, ``run`` and ``bptt`` compile one program per cell, shapes and
    static options and reuse it: new values (inputs, params, concrete lengths) trace the step
    no more. A cell that cannot be hashed (a plain dict of options) still runs, uncompiled."""
    traces = []

    def counted_tanh(a):           # called once each time the step is traced
        traces.append(1)
        return jnp.tanh(a)

    cell = rnn_jax.elman(3, 4, activation=counted_tanh)
    plain = rnn_jax.elman(3, 4)
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
    _, first = rnn_jax.run(cell, params, xs, lengths=jnp.array([6, 2]))
    n = len(traces)
    assert n >= 1
    _, second = rnn_jax.run(cell, params, 2 * xs, lengths=jnp.array([3, 6]))
    rnn_jax.run(cell, jax.tree.map(lambda a: a + 1, params), xs, lengths=np.array([1, 1]))
    assert len(traces) == n                                 # nothing traced again
    np.testing.assert_allclose(second, rnn_jax.run(plain, params, 2 * xs,
                                                    lengths=jnp.array([3, 6]))[1], rtol=1e-6)
    rnn_jax.run(cell, params, xs, reverse=True)             # a new static option: traced
    assert len(traces) > n
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T=6\]"):  # values checked
        rnn_jax.run(cell, params, xs, lengths=jnp.array([7, 1]))

    dys = jnp.ones_like(first)
    g1 = rnn_jax.bptt(cell, params, xs, dys)[0]
    n = len(traces)
    g2 = rnn_jax.bptt(cell, params, 2 * xs, dys)[0]
    assert len(traces) == n
    np.testing.assert_allclose(g2.w_hh, rnn_jax.bptt(plain, params, 2 * xs, dys)[0].w_hh,
                               rtol=1e-5)
    assert not np.allclose(g1.w_hh, g2.w_hh)

    unhashable = plain._replace(options={"activation": ["tanh"]})   # runs as it is
    np.testing.assert_allclose(rnn_jax.run(unhashable, params, xs)[1],
                               rnn_jax.run(plain, params, xs)[1], rtol=1e-6)


@pytest.mark.parametrize("kw,err,match", [
    ({"reverse": "no"}, TypeError, "reverse must be True or False"),
    ({"time_major": 1}, TypeError, "time_major must be True or False"),
    ({"grad": rnn_jax.ManualBPTT}, TypeError, r"grad=rnn_jax.ManualBPTT\(\), not the class"),
    ({"grad": "manual"}, TypeError, "grad must be a gradient method"),
    ({"unroll": 0}, ValueError, "unroll must be a positive int"),
])
def test_runner_options_of_the_wrong_type(kw, err, match):
    cell = rnn_jax.gru(3, 4)
    with pytest.raises(err, match=match):
        rnn_jax.run(cell, cell.init(jax.random.key(0)), jnp.zeros((2, 5, 3)), **kw)


@pytest.mark.parametrize("kw,match", [
    ({"truncate": 0}, "truncate"), ({"truncate": "3"}, "truncate"), ({"truncate": True}, "truncate"),
    ({"clip": "1"}, "clip"), ({"clip": 0}, "clip"), ({"clip": float("nan")}, "clip"),
])
def test_manual_bptt_options(kw, match):
    with pytest.raises(ValueError, match=match):
        rnn_jax.ManualBPTT(**kw)


@pytest.mark.parametrize("make,match", [
    (lambda: rnn_jax.lstm(3, 4, forget_bias=float("nan")), "forget_bias must be finite"),
    (lambda: rnn_jax.lstm(3, 4, forget_bias="1"), "forget_bias must be a real number"),
    (lambda: rnn_jax.lstm(3, 4, proj_size=4), "proj_size must be smaller than hidden_size=4"),
    (lambda: rnn_jax.lstm(3, 4, proj_size=5), "proj_size must be smaller"),
    (lambda: rnn_jax.lstm(3, 4, peephole="yes"), "peephole must be True or False"),
    (lambda: rnn_jax.gru(3, 4, reset="middle"), "reset='middle' is not one of"),
])
def test_cell_options(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("grad", [rnn_jax.Autodiff(), rnn_jax.Checkpointed(),
                                  rnn_jax.ManualBPTT()], ids=["autodiff", "ckpt", "manual"])
def test_nan_and_inf_padding_never_reach_values_or_gradients(name, grad):
    cell = CELLS[name](3, 4)
    params = cell.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (3, 6, 3))
    lengths = jnp.array([6, 2, 0])
    poisoned = xs.at[1, 2:].set(jnp.nan).at[2].set(jnp.inf)

    def loss(p, x, reverse):
        c, ys = rnn_jax.run(cell, p, x, lengths=lengths, reverse=reverse, grad=grad)
        return jnp.sum(ys ** 2) + sum(jnp.sum(l) for l in jax.tree.leaves(c))

    for reverse in (False, True):
        want = jax.grad(loss, (0, 1))(params, xs, reverse)
        got = jax.grad(loss, (0, 1))(params, poisoned, reverse)
        assert float(loss(params, poisoned, reverse)) == pytest.approx(
            float(loss(params, xs, reverse)), rel=1e-6)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            assert bool(jnp.all(jnp.isfinite(a)))
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert float(jnp.max(jnp.abs(got[1][1, 2:]))) == 0.0   # no gradient into padding
