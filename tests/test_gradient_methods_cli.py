"""``rnn-jax gradients --methods``: the gradient methods side by side on one float64 problem.

One small run of the command (its ``methods.csv`` and printed table) is checked for what the
methods must show: the exact ones equal autodiff to rounding, truncated BPTT is biased, the
mean of many UORO estimates is closer to the gradient than one estimate (unbiasedness), Revolve
with few snapshots needs less scratch memory than autodiff. Misuse is one line and exit 2.
"""

from __future__ import annotations

import csv
import math

import jax
import jax.numpy as jnp
import pytest

import rnn_jax
from rnn_jax import revolve_steps
from rnn_jax._src import cli
from rnn_jax._src.diagnostics.methods import (
    FIELDS,
    MethodRow,
    compare_methods,
    format_methods,
    write_methods_csv,
)

EXACT = ("Checkpointed", "ManualBPTT", "Revolve(2)", "RTRL", "ParallelInTime")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("methods")
    argv = ["gradients", "--methods", "--out", str(out), "--cell", "elman", "--length", "40",
            "--hidden", "4", "--input-size", "3", "--batch", "2", "--snapshots", "2",
            "--truncate", "5", "--samples", "64", "--repeats", "1", "--seed", "1"]
    assert cli.main(argv) == 0
    with open(out / "methods.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {r["method"]: r for r in rows}


def test_one_row_per_method_in_order(table):
    assert list(table) == ["Autodiff", *EXACT, "ManualBPTT(truncate=5)", "UORO",
                           "UORO mean of 64"]
    assert list(next(iter(table.values()))) == list(FIELDS)
    for r in table.values():
        assert int(r["temp_bytes"]) >= 0 and float(r["time_ms"]) > 0


def test_exact_methods_equal_autodiff(table):
    assert float(table["Autodiff"]["max_rel_err"]) == 0.0
    for name in EXACT:
        assert float(table[name]["max_rel_err"]) < 1e-10, name
        assert float(table[name]["angle_deg"]) < 1e-6, name


def test_truncated_bptt_is_biased(table):
    row = table["ManualBPTT(truncate=5)"]
    assert float(row["max_rel_err"]) > 0.1
    assert float(row["norm_rel_err"]) > 0.01 and float(row["angle_deg"]) > 0.5


def test_uoro_mean_is_closer_than_one_estimate(table):
    one, mean = (float(table[n]["norm_rel_err"]) for n in ("UORO", "UORO mean of 64"))
    assert mean < one
    assert mean < 0.5 * one          # E‖mean − g‖² = E‖one − g‖² / 64


def test_revolve_needs_less_memory_than_autodiff(table):
    assert int(table["Revolve(2)"]["temp_bytes"]) < int(table["Autodiff"]["temp_bytes"])


def test_notes_say_what_each_method_did(table):
    steps = revolve_steps(40, 2)
    assert table["Revolve(2)"]["note"] == f"{steps} recomputed steps (forward pass: 40)"
    assert "converged True" in table["ParallelInTime"]["note"]


def test_a_cell_whose_recur_was_replaced_skips_the_hand_written_backward():
    """The hand-written backward belongs to the cell's own ``recur``: with another one, the
    ManualBPTT rows are skipped (saying why) and every other method still agrees."""
    cell = rnn_jax.elman(3, 4, dtype=jnp.float64)
    own = cell._replace(recur=lambda p, h, xp: cell.recur(p, h, xp))
    key = jax.random.key(0)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), own.init(key))
    xs = jax.random.normal(key, (2, 6, 3), jnp.float64)
    dys = jax.random.normal(jax.random.key(1), (2, 6, 4), jnp.float64)
    rows = {r.method: r for r in compare_methods(own, params, xs, dys, key, snapshots=(2,),
                                                 truncate=3, uoro_samples=2, repeats=1)}
    for name in ("ManualBPTT", "ManualBPTT(truncate=3)"):
        assert math.isnan(rows[name].max_rel_err) and "no hand-written" in rows[name].note
    for name in ("Checkpointed", "Revolve(2)", "RTRL", "ParallelInTime"):
        assert rows[name].max_rel_err <= 1e-10


def test_a_method_not_run_shows_dashes_and_empty_cells(tmp_path):
    rows = [MethodRow("Autodiff", 0.0, 0.0, 0.0, 10, 1.0, "reference"),
            MethodRow("RTRL", math.nan, math.nan, math.nan, None, None, "not run: P = 9")]
    lines = format_methods(rows).splitlines()
    assert lines[-1].split()[:6] == ["RTRL", "-", "-", "-", "-", "-"]
    write_methods_csv(rows, tmp_path / "m.csv")
    assert (tmp_path / "m.csv").read_text().splitlines()[-1] == "RTRL,,,,,,not run: P = 9"


@pytest.mark.parametrize("argv, words", [
    (["--cell", "gru"], ["--cell", "only with --methods"]),
    (["--methods", "--radii", "1,2"], ["--radii", "only without --methods"]),
    (["--methods", "--truncate", "100"], ["--truncate 100", "below --length 100"]),
    (["--methods", "--snapshots", "0,4"], ["--snapshots", "positive integers"]),
    (["--methods", "--cell", "foo"], ["--cell", "foo"]),
    (["--methods", "--batch", "0"], ["--batch"]),
])
def test_misuse_is_one_line_and_exit_2(argv, words, tmp_path, capsys):
    try:
        code = cli.main(["gradients", "--out", str(tmp_path), *argv])
    except SystemExit as exit_:      # argparse's own errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
