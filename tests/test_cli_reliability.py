"""The command line off the happy path: no run is lost or overwritten, misuse is one line and
exit 2, a non-finite loss stops the run with its last finite state kept, Ctrl-C saves and says
how to resume, damaged files are named. Every test drives ``rnn-jax`` through its ``main``."""
import json
import os
import shutil

import numpy as np
import pytest

from rnn_jax._src import cli
from rnn_jax._src.train import checkpoint as ckpt
from rnn_jax._src.train import tasks
from rnn_jax._src.train.loop import METRICS

TINY = ["--cell", "elman", "--hidden", "4", "--length", "3", "--batch", "2", "--eval-batch",
        "4", "--log-every", "2", "--checkpoint-every", "2", "--eval-every", "100",
        "--no-progress"]


def _train(out, *extra, task="adding", steps=4):
    return cli.main(["train", task, *TINY, "--steps", str(steps), "--out", str(out), *extra])


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def _strict_json(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _files(out):
    return {f: open(os.path.join(out, f), "rb").read() for f in sorted(os.listdir(out))
            if os.path.isfile(os.path.join(out, f))}


def _copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


def _saved(out):
    """The leaves Orbax saved in the run ``out`` (restored without a template) and its step."""
    import orbax.checkpoint as ocp
    step = ckpt.read_step(out)
    path = os.path.join(out, ckpt.STATE, str(step), "default")
    return ocp.StandardCheckpointer().restore(path), step


@pytest.fixture(scope="module")
def run4(tmp_path_factory):
    """A finished 4-step adding run (Elman), read-only for the tests."""
    out = tmp_path_factory.mktemp("runs") / "adding"
    assert _train(out) == 0
    return str(out)


@pytest.mark.parametrize("argv, words", [
    (["train", "adding", "--steps", "-5"], ["--steps", "positive integer"]),
    (["train", "adding", "--steps", "0"], ["--steps"]),
    (["train", "adding", "--batch", "0"], ["--batch"]),
    (["train", "adding", "--lr", "-1"], ["--lr", "positive number"]),
    (["train", "adding", "--lr", "nan"], ["--lr"]),
    (["train", "adding", "--hidden", "0"], ["--hidden"]),
    (["train", "adding", "--length", "0"], ["--length"]),
    (["train", "adding", "--clip", "-1"], ["--clip"]),
    (["train", "adding", "--resume", "--overwrite", "--out", "x"], ["exclude"]),
    (["train", "adding", "--resume"], ["--resume needs --out"]),
    (["sample", "--checkpoint", "x", "--temperature", "0"], ["--temperature"]),
    (["sample", "--checkpoint", "/nonexistent"], ["/nonexistent", "no such directory"]),
    (["bench", "--shapes", "foo"], ["--shapes", "BxTxIxH"]),
    (["bench", "--cells", "lstm,foo"], ["--cells", "foo"]),
    (["gradients", "--out", "/proc/x"], ["--out /proc/x"]),
    (["verify", "--workers", "0"], ["--workers"]),
])
def test_misuse_is_one_line_and_exit_2(argv, words, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exit_:      # argparse's own errors
        code = exit_.code
    assert code == 2
    _one_line_error(capsys, *words)


def test_help_shows_the_defaults(capsys):
    for argv in (["train", "--help"], ["sample", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("(default: adding 20, copy 20, charlm 32, waveform 1, sequence tasks 64, "
                   "slots and intent 32, autoencoder 64, ctc tasks 32, caption 32)", "(default: adding 0.001",
                   "(default: adding rmsprop", "(default: adding 1.0", "(default: adding 100,",
                   "softmax temperature", "(default: 1.0)"):
        assert phrase in text


def test_an_existing_run_is_never_overwritten(run4, capsys):
    before = _files(run4)
    assert _train(run4, steps=6) == 2
    _one_line_error(capsys, run4, "--resume", "--overwrite")
    assert _files(run4) == before


def test_overwrite_replaces_and_default_out_is_a_new_directory(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r"
    assert _train(out, steps=2) == 0
    assert _train(out, "--overwrite", "--seed", "3", steps=4) == 0
    assert ckpt.load_config(str(out))["seed"] == 3 and ckpt.read_step(str(out)) == 4
    monkeypatch.chdir(tmp_path)
    args = ["train", "adding", *TINY, "--steps", "2"]
    assert cli.main(args) == 0 and cli.main(args) == 0
    runs = sorted(os.listdir(tmp_path / "runs"))
    assert len(runs) == 2 and all(r.startswith("adding-elman-") for r in runs)


def test_resume_refuses_contradictions_and_says_when_there_is_nothing_to_do(run4, tmp_path,
                                                                              capsys):
    before = _files(run4)
    code = cli.main(["train", "adding", "--cell", "gru", "--lr", "0.5", "--resume", "--out",
                     run4, "--no-progress"])
    assert code == 2
    _one_line_error(capsys, "--cell gru (saved: elman)", "--lr 0.5", "contradict")
    assert cli.main(["train", "copy", "--resume", "--out", run4]) == 2
    _one_line_error(capsys, "adding run, not copy")
    assert cli.main(["train", "adding", "--resume", "--steps", "2", "--out", run4]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert cli.main(["train", "adding", "--resume", "--out", run4]) == 0   # already at 4 of 4
    assert "nothing to do" in capsys.readouterr().out
    assert _files(run4) == before
    no_ckpt = tmp_path / "config_only"
    no_ckpt.mkdir()
    (no_ckpt / ckpt.CONFIG).write_bytes(before[ckpt.CONFIG])
    assert cli.main(["train", "adding", "--resume", "--out", str(no_ckpt)]) == 2
    _one_line_error(capsys, "no checkpoint")
    assert cli.main(["train", "adding", "--resume", "--out", str(tmp_path / "none")]) == 2
    _one_line_error(capsys, "holds no run")


def test_resume_extends_a_finished_run(run4, tmp_path):
    out = _copy_run(run4, tmp_path / "more")
    assert cli.main(["train", "adding", "--resume", "--steps", "6", "--out", str(out),
                     "--no-progress"]) == 0
    assert ckpt.read_step(str(out)) == 6 and ckpt.load_config(str(out))["steps"] == 6


def test_nonfinite_loss_stops_keeps_the_last_finite_state_and_valid_json(tmp_path, capsys):
    out = str(tmp_path / "nan")
    blowup = ["--optimizer", "sgd", "--lr", "1e30", "--clip", "0"]
    assert _train(out, *blowup, steps=20) == 3
    err = _one_line_error(capsys, "non-finite", "step", out)
    saved, step = _saved(out)
    import jax
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(saved["params"]))
    bad = int(err.split("at step ")[1].split(";")[0])
    assert step == int(saved["step"]) == bad - 1
    for line in open(os.path.join(out, METRICS)):
        _strict_json(line)
    # skipping instead: the run finishes, the skipped steps are counted, params stay finite
    out2 = str(tmp_path / "skip")
    assert _train(out2, *blowup, "--nonfinite", "skip", steps=20) == 0
    records = [_strict_json(line) for line in open(os.path.join(out2, METRICS))]
    assert records[-2]["skipped_nonfinite"] > 0
    _strict_json(open(os.path.join(out2, "summary.json")).read())


def test_ctrl_c_saves_and_prints_the_resume_command(tmp_path, monkeypatch, capsys):
    real_setup = tasks.setup

    def interrupted_setup(cfg, **kw):
        s = real_setup(cfg, **kw)

        def batch_fn(step):
            if step == 5:
                raise KeyboardInterrupt
            return s.batch_fn(step)

        return s._replace(batch_fn=batch_fn)

    monkeypatch.setattr("rnn_jax._src.train.experiment.setup", interrupted_setup)
    out = str(tmp_path / "ctrl_c")
    assert _train(out, steps=8) == 130
    err = capsys.readouterr().err
    assert f"Resume with: rnn-jax train adding --resume --out {out}" in err
    assert "Traceback" not in err and ckpt.read_step(out) == 5   # not 4, the last checkpoint
    monkeypatch.setattr("rnn_jax._src.train.experiment.setup", real_setup)
    assert cli.main(["train", "adding", "--resume", "--out", out, "--no-progress"]) == 0
    assert ckpt.read_step(out) == 8


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "foreign"])
def test_a_damaged_checkpoint_is_named_before_any_setup(run4, tmp_path, monkeypatch, capsys,
                                                        damage):
    out = _copy_run(run4, tmp_path / damage)
    path = out / ckpt.STATE / "4" / "default" / "_METADATA"   # Orbax's tree of the arrays
    good = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": good[: len(good) // 2],
                      "random": np.random.default_rng(0).bytes(500),
                      "foreign": json.dumps({"a": [0, 1]}).encode()}[damage])
    monkeypatch.setattr("rnn_jax._src.train.experiment.setup",
                        lambda *a, **k: pytest.fail("setup ran before the checkpoint check"))
    assert cli.main(["train", "adding", "--resume", "--steps", "6", "--out", str(out)]) == 2
    _one_line_error(capsys, str(out / ckpt.STATE / "4"))


def test_damaged_arrays_are_named(run4, tmp_path, capsys):
    out = _copy_run(run4, tmp_path / "arrays")
    for f in (out / ckpt.STATE / "4" / "default").rglob("*"):
        if f.is_file() and f.parent.name == "d":      # TensorStore's array data
            f.write_bytes(b"\0" * 16)
    assert cli.main(["train", "adding", "--resume", "--steps", "6", "--out", str(out),
                     "--no-progress"]) == 2
    _one_line_error(capsys, str(out / ckpt.STATE / "4"), "damaged")


def test_torn_metrics_line_is_dropped_and_temporary_files_are_cleaned(run4, tmp_path, capsys):
    out = _copy_run(run4, tmp_path / "torn")
    with open(out / METRICS, "a") as f:
        f.write('{"step": 5, "lo')
    (out / "summary.json.tmp.123").write_bytes(b"partial")
    (out / ckpt.STATE / "5.orbax-checkpoint-tmp-123").mkdir()      # a save that was killed
    assert cli.main(["train", "adding", "--resume", "--steps", "6", "--out", str(out),
                     "--no-progress"]) == 0
    assert "torn last line" in capsys.readouterr().err
    assert not any(".tmp." in f for f in os.listdir(out))
    assert os.listdir(out / ckpt.STATE) == ["6"]
    steps = [_strict_json(line)["step"] for line in open(out / METRICS)]
    assert steps == sorted(steps) and steps[-1] == 6


def test_sample_refuses_a_checkpoint_of_another_model(tmp_path, capsys):
    text = tmp_path / "code.py"
    text.write_text("def f(x):\n    return x\n" * 40)
    out = str(tmp_path / "lm")
    assert cli.main(["train", "charlm", "--cell", "gru", "--hidden", "6", "--length", "8",
                     "--batch", "2", "--steps", "2", "--eval-batch", "2", "--valid-chars",
                     "32", "--min-count", "1", "--ngram-order", "0", "--data", str(text),
                     "--out", out, "--no-progress"]) == 0
    cfg = ckpt.load_config(out)
    cfg["model"]["hidden"] = 7
    ckpt.save_config(out, cfg)
    capsys.readouterr()
    assert cli.main(["sample", "--checkpoint", out, "--length", "5"]) == 2
    _one_line_error(capsys, "state", "another model")
    assert cli.main(["sample", "--checkpoint", str(tmp_path)]) == 2   # a directory, no run
    _one_line_error(capsys, "config.json")
