"""rnn_jax.seq2seq: teacher forcing equals step-by-step decoding, for every attention and
with input feeding and reversed sources; padding of the source never matters; every gradient
method of the runner gives the same gradients; bridges; clear errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax import decoding

F64 = jnp.float64
VS, VT, E, H, S, T = 7, 6, 4, 5, 6, 5


def _model(attention=None, feed=False, reverse=False, enc=None, dec=None):
    enc = enc or rnn_jax.lstm(E, H, dtype=F64)
    dec = dec or rnn_jax.lstm(E + (H if feed else 0), H, dtype=F64)
    return rnn_jax.seq2seq(VS, VT, enc, dec, embed_size=E, attention=attention,
                           input_feeding=feed, reverse_source=reverse, dtype=F64)


def _data(seed=0):
    r = np.random.default_rng(seed)
    src = jnp.asarray(r.integers(0, VS, (3, S)))
    tgt = jnp.asarray(r.integers(0, VT, (3, T)))
    return src, jnp.array([S, 3, 1]), tgt


CONFIGS = [(None, False, False), (None, False, True), ("additive", False, False),
           ("dot", False, True), ("general", False, False), ("additive", True, True),
           ("general", True, False)]


@pytest.mark.parametrize("attention,feed,reverse", CONFIGS)
def test_teacher_forcing_equals_step_by_step(attention, feed, reverse):
    m = _model(attention, feed, reverse)
    p = m.init(jax.random.key(0))
    src, src_len, tgt = _data()
    logits, weights = jax.jit(m.apply)(p, src, src_len, tgt)
    memory = m.encode(p, src, src_len)

    def one(mem, tokens):
        def body(state, tok):
            return m.step(p, mem, state, tok)
        return jax.lax.scan(body, m.start(mem), tokens)[1]

    stepped = jax.vmap(one)(memory, tgt)
    np.testing.assert_allclose(logits, stepped, rtol=1e-10, atol=1e-12)
    if attention is None:
        assert weights is None
    else:
        assert weights.shape == (3, T, S)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)
        assert float(jnp.abs(weights[1, :, 3:]).max()) == 0.0     # padding gets nothing
        assert float(jnp.abs(weights[2, :, 1:]).max()) == 0.0


@pytest.mark.parametrize("attention,feed,reverse", CONFIGS[1:4])
def test_source_padding_never_matters(attention, feed, reverse):
    m = _model(attention, feed, reverse)
    p = m.init(jax.random.key(1))
    src, src_len, tgt = _data(1)
    other = src.at[1, 3:].set(0).at[2, 1:].set(VS - 1)
    a, b = m.apply(p, src, src_len, tgt)[0], m.apply(p, other, src_len, tgt)[0]
    np.testing.assert_allclose(a, b, rtol=1e-12)
    empty = m.apply(p, src, jnp.array([S, 0, 2]), tgt)
    assert bool(jnp.isfinite(empty[0]).all())


def test_reversed_source_reverses_only_the_valid_prefix():
    x = jnp.arange(12).reshape(2, 6)
    got, idx = rnn_jax.reverse_valid(x, jnp.array([4, 0]))
    np.testing.assert_array_equal(got, [[3, 2, 1, 0, 4, 5], [6, 7, 8, 9, 10, 11]])


def test_every_gradient_method_gives_the_same_gradients():
    m = _model("additive")
    p = m.init(jax.random.key(2))
    src, src_len, tgt = _data(2)
    tgt_len = jnp.array([T, 2, 4])

    def loss(p, grad):
        logits, _ = m.apply(p, src, src_len, tgt, tgt_len, grad=grad)
        return rnn_jax.sequence_cross_entropy(logits, tgt, tgt_len)

    ref = jax.grad(loss)(p, rnn_jax.Autodiff())
    for g in (rnn_jax.ManualBPTT(), rnn_jax.Checkpointed()):
        got = jax.grad(loss)(p, g)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12),
                     got, ref)
    assert float(jnp.abs(ref.encoder.w_hh).max()) > 0


def test_bridge_only_where_the_carries_differ():
    same = _model()
    assert same.init(jax.random.key(0)).bridge is None
    m = _model("general", enc=rnn_jax.bidirectional(rnn_jax.gru(E, 3, dtype=F64)))
    p = m.init(jax.random.key(0))
    assert p.bridge.w.shape == (2 * H, 2 * 3)                # (h, c) of the LSTM from 2 GRUs
    src, src_len, tgt = _data()
    logits, w = m.apply(p, src, src_len, tgt)
    assert logits.shape == (3, T, VT) and w.shape == (3, T, S)


def test_beam_search_decodes_a_batch():
    m = _model("additive")
    p = m.init(jax.random.key(3))
    src, src_len, _ = _data(3)
    memory = m.encode(p, src, src_len)
    out = jax.jit(jax.vmap(lambda mem: decoding.beam_search(
        lambda s, t: m.step(p, mem, s, t), m.start(mem), bos=1, eos=0, max_len=7, beam=3)))(memory)
    assert out.tokens.shape == (3, 3, 7)
    g = jax.vmap(lambda mem: decoding.greedy(lambda s, t: m.step(p, mem, s, t), m.start(mem),
                                             bos=1, eos=0, max_len=7))(memory)
    assert bool(jnp.all(out.log_prob[:, 0] >= g.log_prob - 1e-9))


@pytest.mark.parametrize("kw, err, match", [
    (dict(attention="luong"), ValueError, "attention='luong'"),
    (dict(input_feeding=True), ValueError, "needs an attention"),
    (dict(attention="dot", encoder=rnn_jax.gru(E, 3)), ValueError, "dot attention needs"),
    (dict(decoder=rnn_jax.gru(E + 1, H)), ValueError, "the decoder must read 4 features"),
    (dict(reverse_source="yes"), TypeError, "reverse_source must be True or False"),
])
def test_bad_configurations(kw, err, match):
    args = dict(encoder=rnn_jax.lstm(E, H), decoder=rnn_jax.lstm(E, H), embed_size=E)
    args.update(kw)
    enc, dec = args.pop("encoder"), args.pop("decoder")
    with pytest.raises(err, match=match):
        rnn_jax.seq2seq(VS, VT, enc, dec, **args)
