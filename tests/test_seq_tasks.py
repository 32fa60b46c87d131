"""The sequence-to-sequence tasks: correct targets, fixed and disjoint splits, long test
sources, padded batches, and ``rnn-jax train reverse`` end to end."""
import datetime
import json
import os

import numpy as np
import pytest

from rnn_jax._src.train import seq_data as sd


def _prefix_value(s: str) -> tuple[int, int]:
    if s[0].isdigit():
        return int(s[0]), 1
    a, n = _prefix_value(s[1:])
    b, m = _prefix_value(s[1 + n:])
    return {"+": a + b, "-": a - b, "*": a * b}[s[0]], 1 + n + m


@pytest.mark.parametrize("task", sd.TASKS)
def test_targets_are_right_and_splits_disjoint(task):
    d = sd.make_task(task, seed=3, n_train=2000, n_eval=200)
    assert d == sd.make_task(task, seed=3, n_train=2000, n_eval=200)      # fixed
    train = set(d.train.sources)
    for split in (d.valid, d.test, d.test_long):
        assert len(split.sources) > 50 and not train & set(split.sources)
    size = (lambda s: sum(c.isdigit() for c in s)) if task == "parse" else len   # operands
    if task == "dates":      # every format is in training: the long split is its longest 5%
        cut = np.percentile([len(s) for s in d.train.sources], 95)
        assert min(map(len, d.test_long.sources)) >= cut
    else:
        assert min(map(size, d.test_long.sources)) > max(map(size, d.train.sources))
    for src, tgt in zip(d.test.sources + d.test_long.sources, d.test.targets + d.test_long.targets):
        if task == "reverse":
            assert tgt == src[::-1]
        elif task == "addition":
            a, b = src.split("+")
            assert int(tgt) == int(a) + int(b)
        elif task == "dates":
            day = datetime.date.fromisoformat(tgt)
            assert str(day.day) in src and 1950 <= day.year <= 2049
        else:
            value, used = _prefix_value(tgt)
            assert used == len(tgt) and value == eval(src)          # the same tree
        assert sd.ids_to_text(sd.text_to_ids(src) + [sd.SEQ_EOS, 5]) == src


def test_padded_batches():
    d = sd.make_task("addition", n_train=100, n_eval=20)
    S, T = sd.max_lengths(d)
    a = sd.batch_arrays(d.train, np.arange(5), S, T)
    assert a["src"].shape == (5, S) and a["tgt_in"].shape == (5, T)
    for b in range(5):
        n = a["tgt_len"][b]
        assert a["tgt_in"][b, 0] == sd.SEQ_BOS and a["tgt_out"][b, n - 1] == sd.SEQ_EOS
        assert sd.ids_to_text(a["tgt_out"][b]) == d.train.targets[b]
        assert sd.ids_to_text(a["src"][b, :a["src_len"][b]]) == d.train.sources[b]
        assert not a["src"][b, a["src_len"][b]:].any()


@pytest.mark.slow
def test_train_reverse_with_attention_end_to_end(tmp_path):
    from rnn_jax._src.cli import main
    out = str(tmp_path / "run")
    assert main(["train", "reverse", "--attention", "additive", "--hidden", "32", "--embed", "16",
                 "--steps", "40", "--eval-every", "40", "--beam", "2", "--out", out,
                 "--no-progress"]) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    final = summary["final"]
    assert {"eval_test_exact", "eval_test_beam_exact", "eval_test_long_exact"} <= set(final)
    report = summary["report"]
    assert 0 < report["anti_diagonal"] <= 1 and report["by_length"]
    assert os.path.getsize(os.path.join(out, "attention.png")) > 5000


def test_param_budget_is_refused_for_sequence_tasks(capsys):
    from rnn_jax._src.cli import main
    assert main(["train", "dates", "--param-budget", "1000", "--out", "/nonexistent/x"]) == 2
    assert "--param-budget is not available" in capsys.readouterr().err
