"""rnn_jax.captioner (soft and hard attention over image features) and reinforce_loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

D, V, E, H, S = 6, 9, 5, 8, 7


def _model(attention="soft", **kw):
    cap = rnn_jax.captioner(D, V, rnn_jax.lstm(E + D, H), embed_size=E, attention=attention,
                            **kw)
    params = cap.init(jax.random.key(0))
    feats = jax.random.normal(jax.random.key(1), (2, S, D))
    tgt_in = jnp.array([[1, 3, 4, 5], [1, 6, 0, 0]])
    return cap, params, feats, tgt_in, jnp.array([4, 2])


def test_soft_teacher_forcing_equals_stepping_one_word_at_a_time():
    cap, params, feats, tgt_in, n = _model()
    out = cap.apply(params, feats, tgt_in, n)
    np.testing.assert_allclose(out.weights.sum(-1), 1.0, rtol=1e-6)
    assert not out.log_p_locations.any()
    look, step = jax.jit(cap.look), jax.jit(cap.step)
    for b in range(2):
        state = cap.start(params, feats[b])
        for t in range(int(n[b])):
            alpha = look(params, feats[b], state)
            state, logits = step(params, feats[b], state, tgt_in[b, t])
            np.testing.assert_allclose(logits, out.logits[b, t], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(alpha, out.weights[b, t], rtol=1e-5, atol=1e-7)
    ent = -(out.weights * jnp.log(out.weights)).sum(-1)
    np.testing.assert_allclose(out.entropy, [ent[0].sum(), ent[1, :2].sum()], rtol=1e-5)


def test_hard_attention_reads_the_sampled_location():
    cap, params, feats, tgt_in, n = _model("hard", soft_mix=0.0)
    with pytest.raises(ValueError, match="key="):
        cap.apply(params, feats, tgt_in, n)
    apply = jax.jit(cap.apply)
    out = apply(params, feats, tgt_in, n, key=jax.random.key(3))
    again = apply(params, feats, tgt_in, n, key=jax.random.key(3))
    np.testing.assert_allclose(out.logits, again.logits, rtol=1e-5, atol=1e-6)
    # the location log-probabilities are those of some location at each valid step
    logw = np.log(np.asarray(out.weights))
    assert out.log_p_locations[1] <= logw[1, :2].max(-1).sum() + 1e-5
    assert out.log_p_locations[1] >= logw[1, :2].min(-1).sum() - 1e-5
    # with every annotation vector equal, the sampled location cannot matter
    same = jnp.broadcast_to(feats[:, :1], feats.shape)
    hard = apply(params, same, tgt_in, n, key=jax.random.key(4))
    soft_cap = rnn_jax.captioner(D, V, rnn_jax.lstm(E + D, H), embed_size=E)
    np.testing.assert_allclose(hard.logits, soft_cap.apply(params, same, tgt_in, n).logits,
                               rtol=1e-5, atol=1e-6)
    # the paper's mix: about half the steps read the expected context and add no log p(s)
    mixed, _, _, _, _ = _model("hard", soft_mix=0.5)
    keys = jax.random.split(jax.random.key(6), 40)
    log_p = jax.vmap(lambda k: mixed.apply(params, feats, tgt_in, None, key=k)
                     .log_p_locations)(keys)
    assert 0 < float(jnp.mean(log_p == 0)) < 0.5     # all four steps soft: 1/16 of sequences


def test_reinforce_loss_is_the_papers_estimator():
    cap, params, feats, tgt_in, n = _model("hard")
    targets = jnp.array([[3, 4, 5, 2], [6, 2, 0, 0]])
    out = cap.apply(params, feats, tgt_in, n, key=jax.random.key(5))
    b0 = jnp.asarray(-3.0)
    loss, b1 = rnn_jax.reinforce_loss(out, targets, n, b0, decay=0.8, entropy_weight=0.1)
    lp = jax.nn.log_softmax(out.logits)
    log_py = np.array([sum(lp[b, t, targets[b, t]] for t in range(int(n[b]))) for b in range(2)])
    want = np.mean(-log_py - (log_py - b0) * out.log_p_locations - 0.1 * out.entropy)
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    np.testing.assert_allclose(b1, 0.8 * -3.0 + 0.2 * log_py.mean(), rtol=1e-5)
    # the reward is a constant: d loss / d log p(s) = -(log p(y|s) - b) / B
    g = jax.grad(lambda lps: rnn_jax.reinforce_loss(out._replace(log_p_locations=lps), targets,
                                                    n, b0)[0])(out.log_p_locations)
    np.testing.assert_allclose(g, -(log_py - b0) / 2, rtol=1e-5)


def test_decoding_with_the_shared_search():
    cap, params, feats, _, _ = _model()
    step = lambda s, t: cap.step(params, feats[0], s, t)     # noqa: E731
    greedy = rnn_jax.decoding.greedy(step, cap.start(params, feats[0]), bos=1, eos=2, max_len=4)
    beam = rnn_jax.decoding.beam_search(step, cap.start(params, feats[0]), bos=1, eos=2,
                                        max_len=4, beam=V)
    assert beam.log_prob[0] >= greedy.log_prob - 1e-5


@pytest.mark.parametrize("make, words", [
    (lambda: rnn_jax.captioner(D, V, rnn_jax.lstm(E, H), embed_size=E), ["input_size", "11"]),
    (lambda: rnn_jax.captioner(D, V, rnn_jax.lstm(E + D, H), embed_size=E, attention="x"),
     ["attention"]),
    (lambda: rnn_jax.captioner(D, V, "lstm", embed_size=E), ["decoder", "Cell"]),
])
def test_bad_construction_names_the_argument(make, words):
    with pytest.raises((ValueError, TypeError)) as err:
        make()
    assert all(w in str(err.value) for w in words), err.value


def test_bad_features_name_the_shape():
    cap, params, feats, tgt_in, n = _model()
    with pytest.raises(ValueError, match=r"feats must be \(\.\.\., S, 6\)"):
        cap.apply(params, feats[..., :4], tgt_in, n)
