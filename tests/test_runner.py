"""Property tests of the runner: padding, reversal, layouts, jit, vmap, gradients."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

import rnn_jax

F64 = jnp.float64
I, H, T = 3, 4, 5
BATCH = (2, 3)  # two batch dimensions

CELLS = {
    "elman": rnn_jax.elman(I, H, dtype=F64),
    "jordan": rnn_jax.jordan(I, H, 2, dtype=F64),
    "lstm": rnn_jax.lstm(I, H, peephole=True, proj_size=3, dtype=F64),
    "gru_after": rnn_jax.gru(I, H, dtype=F64),
    "gru_before": rnn_jax.gru(I, H, reset="before", dtype=F64),
    "scrn": rnn_jax.scrn(I, H, 2, dtype=F64),
    "clockwork": rnn_jax.clockwork(I, H, periods=(1, 3), dtype=F64),
}
cell_names = st.sampled_from(sorted(CELLS))
lengths_st = st.lists(st.integers(0, T), min_size=6, max_size=6).map(
    lambda l: np.array(l, np.int32).reshape(BATCH))


# One compiled runner for the whole file: cells are hashable static arguments, so each
# (cell, shape) pair compiles once however many hypothesis examples reuse it.
RUN = jax.jit(rnn_jax.run, static_argnums=0,
              static_argnames=("reverse", "time_major", "unroll", "grad"))


def problem(name, seed):
    cell = CELLS[name]
    params = cell.init(jax.random.key(seed))
    xs = jax.random.normal(jax.random.key(seed + 1), (*BATCH, T, I), F64)
    return cell, params, xs


def tree_close(a, b, **kw):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **kw), a, b)


@given(name=cell_names, lengths=lengths_st, seed=st.integers(0, 2**16))
def test_padded_batch_equals_each_sequence_alone(name, lengths, seed):
    cell, params, xs = problem(name, seed)
    carry, ys = RUN(cell, params, xs, lengths=lengths)
    c0 = cell.initial_carry((), F64)
    for idx in np.ndindex(*BATCH):
        L = int(lengths[idx])
        carry_b = jax.tree.map(lambda a: a[idx], carry)
        if L == 0:
            tree_close(carry_b, c0, atol=0)
        else:
            want_c, want_y = RUN(cell, params, xs[idx][:L])
            tree_close(carry_b, want_c, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(ys[idx][:L], want_y, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(ys[idx][L:], 0.0)


@given(name=cell_names, lengths=lengths_st, seed=st.integers(0, 2**16))
def test_reverse_equals_reversing_valid_prefix_by_hand(name, lengths, seed):
    cell, params, xs = problem(name, seed)
    carry, ys = RUN(cell, params, xs, lengths=lengths, reverse=True)
    for idx in np.ndindex(*BATCH):
        L = int(lengths[idx])
        if L == 0:
            tree_close(jax.tree.map(lambda a: a[idx], carry), cell.initial_carry((), F64), atol=0)
            continue
        want_c, want_y = RUN(cell, params, xs[idx][:L][::-1])
        tree_close(jax.tree.map(lambda a: a[idx], carry), want_c, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ys[idx][:L], want_y[::-1], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(ys[idx][L:], 0.0)


BI_FWD, BI_BWD = rnn_jax.lstm(I, H, dtype=F64), rnn_jax.gru(I, H, dtype=F64)
BI = {m: rnn_jax.bidirectional(BI_FWD, BI_BWD, merge=m) for m in ("concat", "sum", "mean", "none")}
BI_APPLY = {m: jax.jit(layer.apply) for m, layer in BI.items()}


@given(lengths=lengths_st, seed=st.integers(0, 2**16), merge=st.sampled_from(sorted(BI)))
def test_bidirectional_with_padding_equals_separate_runs(lengths, seed, merge):
    fwd, bwd = BI_FWD, BI_BWD
    params = BI[merge].init(jax.random.key(seed))
    xs = jax.random.normal(jax.random.key(seed + 1), (*BATCH, T, I), F64)
    (cf, cb), ys = BI_APPLY[merge](params, xs, lengths=lengths)
    for idx in np.ndindex(*BATCH):
        L = int(lengths[idx])
        if L == 0:
            continue
        seq = xs[idx][:L]
        want_cf, yf = RUN(fwd, params[0], seq)
        want_cb, yb = RUN(bwd, params[1], seq[::-1])
        yb = yb[::-1]
        tree_close(jax.tree.map(lambda a: a[idx], (cf, cb)), (want_cf, want_cb), rtol=1e-12,
                   atol=1e-12)
        want = {"concat": lambda: jnp.concatenate([yf, yb], -1), "sum": lambda: yf + yb,
                "mean": lambda: (yf + yb) / 2, "none": lambda: (yf, yb)}[merge]()
        got = jax.tree.map(lambda a: a[idx][:L], ys)
        tree_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_jit_time_major_and_vmap_agree(name):
    cell, params, xs = problem(name, 0)
    lengths = jnp.array([[5, 0, 2], [1, 3, 4]], jnp.int32)
    ref = rnn_jax.run(cell, params, xs, lengths=lengths)  # eager
    jitted = jax.jit(lambda p, x, l: rnn_jax.run(cell, p, x, lengths=l))(params, xs, lengths)
    tree_close(jitted, ref, rtol=1e-12, atol=1e-12)
    c_tm, y_tm = rnn_jax.run(cell, params, jnp.moveaxis(xs, -2, 0), lengths=lengths,
                             time_major=True)
    tree_close((c_tm, jnp.moveaxis(y_tm, 0, -2)), ref, rtol=1e-12, atol=1e-12)
    one = lambda x, l: rnn_jax.run(cell, params, x, lengths=l)
    vmapped = jax.vmap(jax.vmap(one))(xs, lengths)
    tree_close(vmapped, ref, rtol=1e-12, atol=1e-12)
    for u in (2, 5):  # unroll changes nothing but speed
        tree_close(RUN(cell, params, xs, lengths=lengths, unroll=u), ref, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("reverse", [False, True])
def test_gradients_match_finite_differences_and_methods_agree(name, reverse):
    cell, params, xs = problem(name, 3)
    xs, lengths = xs[0], jnp.array([5, 2, 0], jnp.int32)
    w = jax.random.normal(jax.random.key(9), (3, T, cell.output_size), F64)

    def loss(p, x, method):
        carry, ys = rnn_jax.run(cell, p, x, lengths=lengths, reverse=reverse, grad=method)
        return jnp.sum(w * ys) + sum(jnp.sum(jnp.sin(c)) for c in jax.tree.leaves(carry))

    check_grads(jax.jit(lambda p, x: loss(p, x, None)), (params, xs), order=1, modes=("rev",),
                atol=1e-6, rtol=1e-6)
    grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
    g_auto = grad(params, xs, rnn_jax.Autodiff())
    g_ckpt = grad(params, xs, rnn_jax.Checkpointed())
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(g_auto))
    tree_close(g_ckpt, g_auto, rtol=1e-10, atol=1e-12)
    # padding steps receive no gradient: inputs of the zero-length sequence
    np.testing.assert_array_equal(g_auto[1][2], 0.0)
    np.testing.assert_array_equal(g_auto[1][1, 2:], 0.0)


def test_stacked_layers_chain_and_residual_and_dropout():
    cells = [rnn_jax.lstm(I, H, dtype=F64), rnn_jax.gru(H, H, dtype=F64), rnn_jax.elman(H, H, dtype=F64)]
    lengths = jnp.array([5, 2], jnp.int32)
    xs = jax.random.normal(jax.random.key(0), (2, T, I), F64)
    for residual in (False, True):
        net = rnn_jax.stacked(cells, residual=residual, dropout=0.5)
        params = net.init(jax.random.key(1))
        carries, ys = net.apply(params, xs, lengths=lengths)  # no key: no dropout
        h = xs
        for i, (c, p) in enumerate(zip(cells, params)):
            want_c, y = RUN(c, p, h, lengths=lengths)
            if residual and i > 0:
                y = y + h * (jnp.arange(T)[None, :, None] < lengths[:, None, None])
            tree_close(carries[i], want_c, rtol=1e-12, atol=1e-12)
            h = y
        np.testing.assert_allclose(ys, h, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(ys[1, 2:], 0.0)
    net = rnn_jax.stacked(cells[:2], dropout=0.5)
    params = net.init(jax.random.key(1))
    _, y_a = net.apply(params, xs, key=jax.random.key(5))
    _, y_b = net.apply(params, xs, key=jax.random.key(5))
    _, y_c = net.apply(params, xs, key=jax.random.key(6))
    np.testing.assert_array_equal(y_a, y_b)  # explicit key: reproducible
    assert not np.allclose(y_a, y_c)


def test_losses():
    logits = jax.random.normal(jax.random.key(0), (2, T, 7), F64)
    labels = jax.random.randint(jax.random.key(1), (2, T), 0, 7)
    lengths = jnp.array([5, 2])
    logp = jax.nn.log_softmax(logits)
    nll = -np.take_along_axis(np.asarray(logp), np.asarray(labels)[..., None], -1)[..., 0]
    mask = np.arange(T)[None] < np.asarray(lengths)[:, None]
    total = float(np.sum(nll * mask))
    np.testing.assert_allclose(rnn_jax.sequence_cross_entropy(logits, labels, lengths), total, rtol=1e-12)
    np.testing.assert_allclose(rnn_jax.sequence_cross_entropy(logits, labels, lengths, reduction="mean"),
                               total / 7, rtol=1e-12)
    np.testing.assert_allclose(rnn_jax.sequence_cross_entropy(logits, labels), np.sum(nll), rtol=1e-12)
    pred, target = logits, jnp.zeros_like(logits)
    want = np.sum((np.asarray(pred) ** 2).sum(-1) * mask) / (7 * 7)
    np.testing.assert_allclose(rnn_jax.masked_mse(pred, target, lengths), want, rtol=1e-12)


def _scan_unrolls(jaxpr):
    """The ``unroll`` of every scan in ``jaxpr`` and its sub-jaxprs."""
    out = [e.params["unroll"] for e in jaxpr.eqns if e.primitive.name == "scan"]
    for sub in jax.extend.core.subjaxprs(jaxpr):
        out += _scan_unrolls(sub)
    return out


@pytest.mark.parametrize("on", ["cpu", "gpu"])
def test_default_unroll_follows_the_backend_into_every_scan(on, monkeypatch):
    """With no ``unroll``, the forward scan and the manual backward's scan both take the
    backend's planned value (``plan.TABLE``); an explicit ``unroll`` wins."""
    from rnn_jax._src import plan

    assert plan.TABLE["cpu"].unroll == 1 and plan.TABLE["gpu"].unroll == 8
    assert rnn_jax.plan(rnn_jax.lstm(2, 3), on="tpu").unroll == 1  # no row: the CPU's
    monkeypatch.setattr(plan.jax, "default_backend", lambda: on)
    monkeypatch.setattr(plan, "_persistent_fits", lambda cell, dtype: False)
    cell, params, xs = problem("lstm", 0)

    def unrolls(**kw):
        loss = lambda p: jnp.sum(rnn_jax.run(cell, p, xs, **kw)[1])  # noqa: E731
        return _scan_unrolls(jax.make_jaxpr(jax.grad(loss))(params).jaxpr)

    expected = plan.TABLE[on].unroll
    got = unrolls()
    assert len(got) >= 2 and set(got) == {expected}
    assert set(unrolls(unroll=3)) == {3}
    dys = jnp.ones((*BATCH, T, cell.output_size), F64)
    by_hand = jax.make_jaxpr(lambda p: rnn_jax.bptt(cell, p, xs, dys))(params)
    assert set(_scan_unrolls(by_hand.jaxpr)) == {expected}
