"""The handwritten and spoken digit data, and the ctc-read, ctc-listen and caption commands."""
import json
import os

import numpy as np
import pytest

from rnn_jax._src.train import caption_tasks, ctc_tasks
from rnn_jax._src.train import digits as dg


def test_strips_hold_the_images_they_name():
    images, labels, is_test = dg.digit_images()
    s = dg.read_strips(0, 20, test=True)
    assert s.x.shape == (20, 100, 8) and np.all((2 <= s.label_lengths) & (s.label_lengths <= 8))
    for b in range(20):
        cols = s.frames[b, :s.lengths[b]]
        starts = np.flatnonzero((cols >= 0) & (np.r_[-1, cols[:-1]] < 0))
        assert len(starts) == s.label_lengths[b]
        assert list(cols[starts]) == list(s.labels[b, :s.label_lengths[b]])
        assert not s.x[b, s.lengths[b]:].any() and not s.x[b, :s.lengths[b]][cols < 0].any()
        window = s.x[b, starts[0]:starts[0] + 8].T           # the first digit, as an image
        match = [i for i in np.flatnonzero(is_test) if np.array_equal(images[i], window)]
        assert match and labels[match[0]] == s.labels[b, 0]


def test_canvases_are_captioned_left_to_right():
    images, labels, is_test = dg.digit_images()
    c = dg.canvases(0, 30)
    assert set(c.counts) <= {1, 2, 3, 4} and len(set(c.counts)) > 2
    for b in range(30):
        k = c.counts[b]
        xs = c.corners[b, :k, 1]
        assert np.all(np.diff(xs) >= 3) and np.all(c.digits[b, k:] == -1)
        canvas = np.zeros((32, 32))
        for y, x in c.corners[b, :k]:
            canvas[y:y + 8, x:x + 8] += 1
        assert canvas.max() == 1 and not c.images[b][canvas == 0].any()   # no overlap
    t = caption_tasks.targets(c)
    b = int(np.argmax(c.counts))
    words = [dg.WORDS[d] for d in c.digits[b, :c.counts[b]]]
    assert caption_tasks.caption_text(t["tgt_out"][b]) == " ".join(words)
    assert t["tgt_in"][b, 0] == caption_tasks.BOS and t["tgt_len"][b] == c.counts[b] + 1


def test_localisation_scores_the_peak_cell():
    c = dg.canvases(1, 5)
    w = np.zeros((5, 5, 64))
    for b in range(5):
        for t in range(c.counts[b]):
            y, x = c.corners[b, t] + 4                     # inside the digit's box
            w[b, t, (y // 4) * 8 + x // 4] = 1
    assert caption_tasks.localisation(w, c) == 1.0
    assert caption_tasks.localisation(np.roll(w, 1, axis=1), c) < 1.0
    one = dg.Canvases(np.zeros((1, 32, 32)), np.array([[3, -1, -1, -1]]),
                      np.array([[[4, 5], [-1, -1], [-1, -1], [-1, -1]]]), np.array([1]))
    for (row, col), on in (((1, 1), True), ((1, 0), False), ((3, 3), False), ((2, 3), True)):
        w = np.zeros((1, 5, 64))
        w[0, 0, row * 8 + col] = 1                     # box rows 4-11, columns 5-12
        assert caption_tasks.localisation(w, one) == float(on), (row, col)


def test_log_mel_of_a_tone_peaks_at_its_band():
    t = np.arange(4000) / dg.RATE
    filters = dg.mel_filters()
    for f in (300.0, 1500.0):
        x, n = dg.log_mel(np.sin(2 * np.pi * f * t)[None], np.array([4000]))
        assert int(n[0]) == 1 + (4000 - dg.WINDOW) // dg.HOP
        bin_f = int(round(f / (dg.RATE / 2) * (dg.WINDOW // 2)))
        assert int(np.argmax(np.asarray(x)[0, 5])) == int(np.argmax(filters[bin_f]))


def test_utterances_concatenate_the_recordings():
    waves, labels = dg.utterances(0, 6)
    assert all(2 <= len(y) <= 5 for y in labels)
    rec = dg.spoken_digits()
    for w, y in zip(waves, labels):
        assert len(w) > sum(0.8 * len(rec[d]) for d in y)


def test_label_error_rate():
    tokens = np.array([[1, 2, 3], [4, 4, -1]])
    ler, exact = ctc_tasks.label_error_rate(tokens, np.array([3, 2]), np.array([[1, 2, 3],
                                                                                [4, 0, 0]]),
                                            np.array([3, 1]))
    assert (ler, exact) == (1 / 4, 0.5)


def _main(argv):
    from rnn_jax._src import cli
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.parametrize("argv, words", [
    (["train", "ctc-listen", "--objective", "frames"], ["--objective frames", "ctc"]),
    (["train", "caption", "--attention", "additive"], ["--attention additive", "caption"]),
    (["train", "reverse", "--attention", "soft"], ["--attention soft", "reverse"]),
])
def test_misuse_is_one_line_and_exit_2(argv, words, capsys, tmp_path):
    assert _main(argv + ["--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err


@pytest.mark.slow
def test_ctc_and_caption_commands_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setitem(ctc_tasks.SIZES, "ctc-read", (40, 20))
    monkeypatch.setitem(ctc_tasks.SIZES, "ctc-listen", (20, 10))
    monkeypatch.setattr(caption_tasks, "SIZES", (40, 20))
    tiny = ["--hidden", "8", "--batch", "4", "--steps", "2", "--eval-every", "2",
            "--no-progress"]
    for task, extra in (("ctc-read", ["--objective", "frames", "--beam", "2"]),
                        ("ctc-listen", ["--beam", "1"]),
                        ("caption", ["--attention", "hard", "--embed", "4", "--beam", "2"])):
        out = str(tmp_path / task)
        assert _main(["train", task, *extra, *tiny, "--out", out]) == 0, task
        summary = json.load(open(os.path.join(out, "summary.json")))
        final = summary["final"]
        picture = "attention.png" if task == "caption" else "ctc_outputs.png"
        assert os.path.getsize(os.path.join(out, picture)) > 5000
        if task == "caption":
            assert 0 <= final["eval_test_localisation"] <= 1 and "eval_test_exact_beam" in final
        else:
            assert final["eval_test_ler_greedy"] >= 0
            assert ("eval_test_ler_beam" in final) == (task == "ctc-read")
