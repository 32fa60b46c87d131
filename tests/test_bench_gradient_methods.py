"""``benchmarks/gradient_methods.py`` (and its ``parallel_time.py``) at tiny sizes.

The memory mode runs end to end through ``main --quick`` (LSTM I=8, H=16, B=4 at T=200; a
4-unit Elman for RTRL), with its JSON and markdown files; the newton functions are called on
tiny networks. Checked: the memory ordering the methods promise (Revolve(4) and Checkpointed
below Autodiff, RTRL's storage flat in T while BPTT's grows), Revolve's extra steps equal to
``revolve_steps``, Newton iterations within the cap and T, full Newton converging on a
contractive network in fewer iterations than the diagonal one, ``λ₁ < 0`` for ``ρ = 0.5``,
No timing is asserted, only that times exist. (The trained LSTM and the wall-time table are
left to the benchmark itself: ``tests/test_parallel_time.py`` checks the solver they time.)
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys

import jax
import pytest

import rnn_jax

pytestmark = pytest.mark.slow

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gradient_methods.py"


def _load():
    spec = importlib.util.spec_from_file_location("_benchmarks_gradient_methods", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gm = _load()
pt = gm.pt


@pytest.fixture(scope="module")
def memory(tmp_path_factory):
    out = tmp_path_factory.mktemp("gm")
    result = gm.main(["--quick", "--mode", "memory", "--out", str(out)])
    return result, out


def _by(rows, T, method):
    (row,) = [r for r in rows if r["T"] == T and r["method"] == method]
    return row


def test_memory_ordering(memory):
    rows = memory[0]["memory"]
    assert {r["method"] for r in rows} == {"Autodiff", "Checkpointed", "ManualBPTT", "Revolve(4)"}
    auto, revolve = _by(rows, 200, "Autodiff"), _by(rows, 200, "Revolve(4)")
    ckpt = _by(rows, 200, "Checkpointed")
    for key in ("temp_bytes", "temp_bytes_final"):
        assert 0 < revolve[key] < ckpt[key] < auto[key]
    # the final-carry loss keeps no per-step outputs: never more than the Σ|y_t|² loss
    assert all(0 < r["temp_bytes_final"] <= r["temp_bytes"] for r in rows)
    assert revolve["advances"] == rnn_jax.revolve_steps(200, 4)
    assert auto["advances"] is None
    assert all(r["ms"] > 0 for r in rows)


def test_rtrl_storage_flat_in_T(memory):
    rows = memory[0]["rtrl"]
    grow = {m: _by(rows, 40, m)["temp_bytes_final"] - _by(rows, 10, m)["temp_bytes_final"]
            for m in ("RTRL", "ManualBPTT")}
    assert grow["RTRL"] < grow["ManualBPTT"]
    assert grow["ManualBPTT"] > 0


def test_files_hold_what_was_printed(memory):
    result, out = memory
    saved = json.loads((out / "gradient_methods.json").read_text())
    assert saved["memory"] == result["memory"] and saved["rtrl"] == result["rtrl"]
    assert saved["options"]["lengths"] == [200] and saved["environment"]["jax_backend"]
    text = (out / "gradient_methods.md").read_text()
    assert "Revolve(4)" in text and "RTRL" in text


def test_radius_sweep():
    rows = pt.radius_sweep([0.5, 1.5], 6, 3, 60, 30, jax.random.key(0))
    small, large = rows
    assert small["lyapunov"] < 0 and small["lyapunov"] < large["lyapunov"]
    assert small["full"]["converged"] and small["full"]["residual"] < 1e-9
    assert small["full"]["iterations"] < small["diagonal"]["iterations"] or \
        not small["diagonal"]["converged"]
    for r in rows:
        for m in ("full", "diagonal"):
            assert 1 <= r[m]["iterations"] <= 30
            assert r[m]["converged"] or r[m]["iterations"] == 30
    assert "did not converge" in pt.report(rows, [], []) or all(
        r[m]["converged"] for r in rows for m in ("full", "diagonal"))


@pytest.mark.parametrize("argv", [["--mode", "fast"], ["--lengths", "0,10"], ["--radii", "x"],
                                  ["--reps", "0"]])
def test_bad_option_is_one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        gm.main(argv)
    assert exit_.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_unusable_out_is_one_line_exit_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = subprocess.run([sys.executable, str(SCRIPT), "--out", str(blocker / "sub")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [run.stderr.strip()] and "--out" in run.stderr
