"""The language tasks: the ATIS-style grammar, word data, slots/intent models and autoencoders."""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax._src.train import atis, autoencoder, lang_data, lang_tasks
from rnn_jax._src.train.experiment import default_config



@pytest.fixture(scope="module")
def corpus():
    return atis.atis_corpus(0, train=600, test=200)


def _spans(labels):
    """(slot, start, end) of each BIO span; raises on an I- that continues nothing."""
    out, open_ = [], None
    for i, lab in enumerate(labels + ("O",)):
        if open_ and not (lab.startswith("I-") and lab[2:] == open_[0]):
            out.append((open_[0], open_[1], i))
            open_ = None
        if lab.startswith("B-"):
            open_ = (lab[2:], i)
        elif lab.startswith("I-") and open_ is None:
            raise AssertionError(f"I- without B-: {labels}")
    return out


def test_atis_corpus_splits_and_labels(corpus):
    assert atis.atis_corpus(0, train=600, test=200) == corpus        # a pure function of seed
    assert atis.atis_corpus(1, train=600, test=200).train != corpus.train
    train_words = {s.words for s in corpus.train}
    assert not train_words & {s.words for s in corpus.test + corpus.test_unseen}
    seen_cities, unseen = set(atis.TRAIN_CITIES), set(atis.UNSEEN_CITIES)
    roles = collections.defaultdict(set)
    for split, cities in ((corpus.train + corpus.test, seen_cities), (corpus.test_unseen, unseen)):
        for s in split:
            assert len(s.words) == len(s.labels) and set(s.labels) <= set(atis.SLOT_LABELS)
            for slot, a, b in _spans(s.labels):
                if slot.endswith("city_name"):
                    assert " ".join(s.words[a:b]) in cities
                    roles[" ".join(s.words[a:b])].add(slot)
    # the same city is a departure and an arrival somewhere in training
    both = [c for c in seen_cities if {"fromloc.city_name", "toloc.city_name"} <= roles[c]]
    assert len(both) > len(seen_cities) // 2
    text = "\n".join(" " + " ".join(s.words) + " " for s in corpus.train)
    assert not [c for c in unseen if f" {c} " in text]
    assert {s.intent for s in corpus.train} == set(atis.INTENTS)


def test_far_sentences_end_in_neutral_words():
    far = atis.atis_corpus(0, train=200, test=10, far=True)
    near = atis.atis_corpus(0, train=200, test=10)
    assert np.mean([len(s.words) for s in far.train]) > np.mean(
        [len(s.words) for s in near.train]) + 10


def test_word_ids_round_trip_and_padding():
    ids, n = lang_data.pad_ids([np.array([3, 1]), np.array([5])], 4)
    np.testing.assert_array_equal(ids, [[3, 1, 0, 0], [5, 0, 0, 0]])
    np.testing.assert_array_equal(n, [2, 1])
    vocab = ("to", "boston")
    s2s = lang_data.seq2seq_ids(rnn_jax.word_ids(["to", "kaohsiung", "boston"], vocab), 2)
    np.testing.assert_array_equal(s2s, [4, lang_data.OTHER_S2S, 5])
    assert lang_data.words_of(list(s2s) + [2, 4], vocab) == ["to", "<other>", "boston"]


def test_prose_sentences_and_triples():
    data = lang_data.sentences("prose", 0)
    assert len(data.train) > 1000 and data.triples_train and data.test
    assert all(4 <= len(r) <= 30 for r in data.train)
    prev, cur, nxt = data.triples_train[0]
    assert np.array_equal(cur, data.train[1]) and np.array_equal(nxt, data.train[2])


def test_slot_scores_are_seqeval_f1(corpus):
    vocab, splits = lang_data.atis_arrays(0)
    s = splits["test"]
    perfect = lang_tasks.slot_scores(s.labels, s, "test")
    assert perfect == {"test_f1": 1.0, "test_word_accuracy": 1.0}
    wrong = s.labels.copy()
    wrong[:, 0] = 0            # drop every slot that starts a sentence
    spans = sum(len(_spans(x.labels)) for x in s.sentences)
    lost = sum(x.labels[0] != "O" for x in s.sentences)
    recall = (spans - lost) / spans
    assert lang_tasks.slot_scores(wrong, s, "test")["test_f1"] == pytest.approx(
        2 * recall / (1 + recall), abs=0.02)   # precision stays ~1 (broken spans shorten)


def test_pretrained_classifier_reads_the_autoencoders_sentence_vector():
    """An intent model started from an autoencoder pools exactly the encoder's last output."""
    V = 7
    ae = autoencoder.build(default_config("autoencoder", hidden=8, embed=5, reverse_source=True),
                           V)
    s2s_params = ae.init(jax.random.PRNGKey(0))
    cfg = default_config("intent", cell="lstm", hidden=8, embed=5)
    model = lang_tasks.build({**cfg, "reverse_input": True}, V)
    params = lang_tasks.from_autoencoder(model.init(jax.random.PRNGKey(1)), s2s_params, V)
    ids = np.array([[0, 3, 7, 2, 0], [6, 1, 0, 0, 0]])   # 7: "other"
    n = np.array([4, 2])
    vec = autoencoder.sentence_vectors(ae, s2s_params,
                                       [lang_data.seq2seq_ids(r[:k], V) for r, k in zip(ids, n)])
    readout = rnn_jax.dense(8, len(atis.INTENTS))
    want = readout.apply(params[1][1], jnp.asarray(vec))
    np.testing.assert_allclose(model.apply(params, ids, n), want, rtol=1e-5, atol=1e-6)


def test_skip_thought_shares_one_encoder():
    cfg = default_config("autoencoder", hidden=6, embed=4, objective="skip-thought")
    model = autoencoder.build(cfg, 5)
    params = model.init(jax.random.PRNGKey(0))
    assert params[1].encoder is None and params[1].src_embed is None
    nxt, prev = autoencoder.split_params(model, params)
    assert prev.encoder is nxt.encoder and prev.decoder is params[1].decoder
    a = {"src": jnp.array([[4, 5, 6]]), "src_len": jnp.array([3]), "tgt_in": jnp.array([[1, 7]]),
         "tgt_out": jnp.array([[7, 2]]), "tgt_len": jnp.array([2])}

    def loss(p, which):
        n, q = autoencoder.split_params(model, p)
        return autoencoder._xent(model.prev if which else model.s2s, q if which else n, a)

    g_prev = jax.grad(loss)(params, 1)
    assert float(jnp.abs(g_prev[0].encoder.w_ih).sum()) > 0       # reaches the shared encoder
    assert float(jnp.abs(g_prev[0].decoder.w_ih).sum()) == 0      # not the other decoder


def test_exact_counts_the_end_symbol():
    a = {"tgt_out": np.array([[5, 6, 2, 0], [5, 2, 0, 0]]), "tgt_len": np.array([3, 2])}
    tokens = np.array([[5, 6, 2, 9], [5, 6, 2, 0]])
    np.testing.assert_array_equal(autoencoder.exact(tokens, a), [True, False])


TINY = ["--hidden", "8", "--batch", "4", "--log-every", "2", "--no-progress"]


def _main(argv):
    from rnn_jax._src import cli
    try:
        return cli.main(argv)
    except SystemExit as exit_:      # argparse's own errors
        return exit_.code


@pytest.mark.parametrize("argv, words", [
    (["train", "slots", "--pool", "mean"], ["--pool", "not apply to slots"]),
    (["train", "charlm", "--far", "--bidirectional"], ["--bidirectional, --far", "charlm"]),
    (["train", "charlm", "--corpus", "atis"], ["--corpus atis", "charlm"]),
    (["train", "reverse", "--embed", "0"], ["--embed", "positive"]),
    (["train", "intent", "--labelled", "0"], ["--labelled", "(0, 1]"]),
    (["train", "slots", "--unk-rate", "1"], ["--unk-rate", "[0, 1)"]),
    (["train", "intent", "--pretrained", "/nonexistent"], ["--pretrained", "no trained run"]),
    (["train", "slots", "--param-budget", "100"], ["--param-budget is not available"]),
])
def test_misuse_is_one_line_and_exit_2(argv, words, capsys, tmp_path):
    assert _main(argv + ["--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err


@pytest.mark.slow
def test_slots_autoencoder_and_pretrained_intent_end_to_end(tmp_path, capsys):
    import json
    import os
    out = {k: str(tmp_path / k) for k in ("slots", "ae", "intent", "skip")}
    assert _main(["train", "slots", "--bidirectional", "--cell", "elman", "--steps", "4",
                  "--eval-every", "4", "--out", out["slots"], *TINY]) == 0
    summary = json.load(open(os.path.join(out["slots"], "summary.json")))
    assert 0 <= summary["final"]["eval_test_unseen_f1"] <= 1
    words = [w.split("/")[0] for w in summary["report"]["examples"][0].split()]
    assert words == "i want to leave taipei on november 2nd".split()
    assert _main(["train", "autoencoder", "--embed", "4", "--reverse-source", "--far",
                  "--steps", "4",
                  "--eval-every", "4", "--out", out["ae"], *TINY]) == 0
    by_length = json.load(open(os.path.join(out["ae"], "by_length.json")))["by_length"]
    assert sum(n for _, n in by_length.values()) == 1000
    assert _main(["train", "intent", "--pretrained", out["ae"], "--labelled", "0.01", "--far",
                  "--steps", "4", "--eval-every", "4", "--out", out["intent"], *TINY]) == 0
    cfg = json.load(open(os.path.join(out["intent"], "config.json")))
    assert (cfg["embed"], cfg["reverse_input"], cfg["train_sentences"]) == (4, True, 40)
    fresh = str(tmp_path / "fresh")
    assert _main(["train", "slots", "--pretrained", out["ae"], "--out", fresh]) == 2
    assert _main(["train", "intent", "--pretrained", out["ae"], "--out", fresh]) == 2
    assert "--far" in capsys.readouterr().err.splitlines()[-1]
    assert _main(["train", "intent", "--pretrained", out["ae"], "--far", "--bidirectional",
                  "--out", fresh]) == 2
    assert "bidirectional" in capsys.readouterr().err.splitlines()[-1]
    assert _main(["train", "autoencoder", "--corpus", "prose", "--objective", "skip-thought",
                  "--embed", "4", "--steps", "2", "--eval-every", "2", "--out", out["skip"],
                  *TINY]) == 0
    neighbours = json.load(open(os.path.join(out["skip"], "neighbours.json")))["neighbours"]
    assert len(neighbours) == 5 and all(len(v) == 3 for v in neighbours.values())
