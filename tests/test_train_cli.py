"""`rnn-jax train` / `rnn-jax sample` end to end at tiny sizes; interrupted runs resume exactly."""
import json
import os

import jax
import numpy as np
import pytest

from rnn_jax._src import cli
from rnn_jax._src.train.experiment import run_training
from rnn_jax._src.train import checkpoint as ckpt
from rnn_jax._src.train.loop import METRICS, read_metrics

pytestmark = pytest.mark.slow

SOURCE = "".join(f"def f{i}(x):\n    if x:\n        return {i}\n    return x\n\n" for i in range(60))


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus") / "code.py"
    p.write_text(SOURCE)
    return str(p)


def _charlm_cfg(text_file):
    return dict(task="charlm", cell="gru", init="default", seed=0, hidden=8, length=8, batch=2,
                lr=1e-2, optimizer="adam", clip=1.0, clip_value=None, steps=12, eval_batch=2,
                log_every=2, eval_every=4, checkpoint_every=3, data=[text_file],
                max_chars=None, valid_chars=64, min_count=1, ngram_order=2)


def _strip_time(records):
    return [{k: v for k, v in r.items() if k not in ("time", "items_per_s")} for r in records]


@pytest.mark.parametrize("task", ["charlm", "adding"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, text_file, task):
    if task == "charlm":
        cfg = _charlm_cfg(text_file)
    else:
        cfg = dict(task="adding", cell="elman", init="orthogonal", seed=1, hidden=5, length=6,
                   batch=4, lr=1e-2, optimizer="rmsprop", clip=1.0, clip_value=0.5, steps=12,
                   eval_batch=8, log_every=2, eval_every=4, checkpoint_every=3)
    whole, _ = run_training(cfg, str(tmp_path / "whole"), progress=False)
    # "Killed" after step 8: the last checkpoint is at step 6, metrics went up to step 8.
    out = str(tmp_path / "cut")
    run_training(cfg, out, progress=False, stop_after=8)
    assert read_metrics(os.path.join(out, METRICS))[-1]["step"] == 8
    assert int(ckpt.restore_checkpoint(out, whole).step) == 6
    resumed, _ = run_training(ckpt.load_config(out), out, resume=True, progress=False)
    assert int(resumed.step) == 12
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(whole)):
        np.testing.assert_array_equal(a, b)   # bit for bit: params, optimiser, key, carry
    assert _strip_time(read_metrics(os.path.join(out, METRICS))) == \
        _strip_time(read_metrics(str(tmp_path / "whole" / METRICS)))


def test_cli_train_copy_and_charlm_then_sample(tmp_path, text_file, capsys):
    out = str(tmp_path / "copy")
    assert cli.main(["train", "copy", "--cell", "elman", "--init", "rotation", "--hidden", "6",
                     "--length", "3", "--batch", "4", "--steps", "4", "--eval-batch", "8",
                     "--out", out, "--no-progress", "--log-every", "2"]) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["baselines"]["xent_memoryless"] == pytest.approx(10 * np.log(8) / 23)
    assert "eval_xent" in summary["final"] and summary["steps"] == 4
    records = read_metrics(os.path.join(out, METRICS))
    assert [r["step"] for r in records] == [2, 4, 4] and "loss" in records[0]

    out = str(tmp_path / "lm")
    assert cli.main(["train", "charlm", "--cell", "lstm", "--param-budget", "1500", "--length",
                     "8", "--batch", "2", "--steps", "6", "--eval-batch", "2", "--valid-chars",
                     "64", "--min-count", "1", "--ngram-order", "3", "--data", text_file,
                     "--out", out, "--no-progress"]) == 0
    cfg = ckpt.load_config(out)
    assert abs(cfg["params"] - 1500) < 200 and cfg["hidden"] != 256
    assert 0 < cfg["baselines"]["bpc_3gram_witten_bell"] < np.log2(len(cfg["vocab"]))
    capsys.readouterr()
    units = str(tmp_path / "units")
    assert cli.main(["sample", "--checkpoint", out, "--prime", "def ", "--length", "40",
                     "--temperature", "0.8", "--units-out", units, "--units", "2",
                     "--units-text", text_file]) == 0
    text = capsys.readouterr().out
    assert text.startswith("def ") and len(text.splitlines()[0]) >= 4
    assert sorted(os.listdir(units)) and all(f.endswith(".png") for f in os.listdir(units))
    assert len(os.listdir(units)) == 2
