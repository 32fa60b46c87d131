"""The benchmark harness runs end to end, and every peer computes what rnn_jax computes.

One tiny problem (B=2, T=5, I=3, H=4), one repetition, every cell, both passes. The harness
maps rnn_jax's PyTorch-layout weights into flax, Equinox and PyTorch layouts and back, so the
peers' outputs and gradients agreeing with rnn_jax checks rnn_jax and the conversions against
three independent implementations. ``--baseline`` is run with this checkout as the other one:
a second, separately imported copy of the package that must agree exactly. No timing is
asserted.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys

import jax
import pytest

import rnn_jax
from rnn_jax._src.bench import harness, ours, report
from rnn_jax._src.bench.spec import CELLS, TINY_SHAPE
from rnn_jax._src.cli import main as cli_main

pytestmark = pytest.mark.slow

PEER_PREFIXES = {"flax": "flax:", "equinox": "equinox:", "torch": "torch"}
EXPECTED_PEERS = {  # peer -> cells it implements
    "flax": {"lstm", "gru", "elman"}, "equinox": {"lstm", "gru"}, "torch": {"lstm", "gru", "elman"},
}
REQUIRED_KEYS = {"cell", "impl", "shape", "pass", "median_ms", "compile_s"}
# float32 matmuls run as TF32 on a GPU's tensor cores by default, in JAX and in cuDNN alike
# (about 4e-4 apart on an H100); on a CPU they are exact float32.
SAME_METHOD_TOL, PEER_TOL = (1e-5, 1e-4) if jax.default_backend() == "cpu" else (3e-3, 3e-3)
ROOT = pathlib.Path(__file__).resolve().parents[1]  # this checkout, as a --baseline


@pytest.fixture(scope="module")
def result():
    peers = tuple(p for p in harness.PEERS if importlib.util.find_spec(p) is not None)
    options = harness.Options(shapes=(TINY_SHAPE,), reps=1, warmup=1, peers=peers)
    return harness.run_benchmark(options, log=lambda s: None)


def test_records_have_required_keys_and_values(result):
    records = result["records"]
    assert records
    for r in records:
        assert REQUIRED_KEYS <= set(r)
        assert r["cell"] in CELLS
        assert r["pass"] in ("fwd", "fwdbwd")
        assert r["shape"] == list(TINY_SHAPE)
        assert r["median_ms"] > 0 and r["compile_s"] >= 0 and r["reps"] == 1
    groups = {(r["cell"], r["pass"]) for r in records}
    assert groups == {(c, p) for c in CELLS for p in ("fwd", "fwdbwd")}
    for cell, pass_ in groups:
        impls = {r["impl"] for r in records if (r["cell"], r["pass"]) == (cell, pass_)}
        assert {"rnn_jax", "floor:scan", "floor:hoisted"} <= impls
        if pass_ == "fwdbwd":
            assert "rnn_jax:checkpointed" in impls


def test_jax_variants_report_xla_memory(result):
    for r in result["records"]:
        if r["impl"] != "torch":
            assert r["memory"]["temp_bytes"] >= 0


def test_rnn_jax_gradient_methods_agree(result):
    for r in result["records"]:
        if r["impl"].startswith("rnn_jax"):
            assert r["rel_error_vs_rnn_jax"] < SAME_METHOD_TOL, r


@pytest.mark.parametrize("peer", sorted(PEER_PREFIXES))
def test_peer_outputs_and_gradients_match_rnn_jax(result, peer):
    pytest.importorskip(peer)
    records = [r for r in result["records"] if r["impl"].startswith(PEER_PREFIXES[peer])]
    assert {r["cell"] for r in records} == EXPECTED_PEERS[peer]
    for r in records:
        assert r["rel_error_vs_rnn_jax"] < PEER_TOL, r


def test_json_and_markdown(result, tmp_path):
    path = tmp_path / "bench.json"
    report.write_json(str(path), result)
    loaded = json.loads(path.read_text())
    assert len(loaded["records"]) == len(result["records"])
    text = report.markdown(loaded, "rnn-jax bench --shapes tiny")
    assert "## Environment" in text and "LSTM forward + backward" in text
    assert loaded["environment"]["versions"]["jax"]
    assert "### LSTM fwdbwd" in report.summary_md([loaded])


def test_cli_subcommand_writes_outputs(tmp_path):
    code = cli_main(["bench", "--cells", "elman", "--passes", "fwd", "--shapes", "2x3x2x3",
                     "--reps", "1", "--peers", "", "--out", str(tmp_path),
                     "--baseline", str(ROOT)])
    assert code == 0
    records = json.loads((tmp_path / "bench.json").read_text())["records"]
    assert {r["impl"] for r in records} >= {"rnn_jax", "baseline", "floor:scan"}
    text = (tmp_path / "bench.md").read_text()
    assert text.startswith("## Environment")
    assert "- Baseline (variant `baseline`)" in text and f"--baseline {ROOT}" in text


def _own_modules():
    return {k: m for k, m in sys.modules.items() if k == "rnn_jax" or k.startswith("rnn_jax.")}


def test_load_checkout_imports_a_second_package_beside_the_current_one():
    before = _own_modules()
    checkout = ours.load_checkout(str(ROOT))
    assert checkout.core is not rnn_jax and checkout.core.run is not rnn_jax.run
    assert checkout.modules["rnn_jax"] is checkout.core
    assert _own_modules() == before  # the current package is back, module for module
    with checkout.imported() as core:
        import rnn_jax as inner  # the import under test

        assert inner is core is checkout.core
    assert sys.modules["rnn_jax"] is rnn_jax and _own_modules() == before


def test_load_checkout_rejects_a_directory_without_rnn_jax(tmp_path):
    with pytest.raises(ValueError, match="no rnn_jax package"):
        ours.load_checkout(str(tmp_path))


def test_a_copy_inside_another_repository_has_no_commit(tmp_path):
    """A package copied into a folder of another repository (as one carries a baseline to a
    machine) is not that repository's commit; the checkout's own top directory is."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "rnn_jax").mkdir()
    (tmp_path / "rnn_jax" / "__init__.py").write_text("")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert ours._commit(str(tmp_path)) == head
    (tmp_path / "rnn_jax" / "__init__.py").write_text("x = 1\n")
    assert ours._commit(str(tmp_path)) == head + "-dirty"
    inner = tmp_path / "copy"
    shutil.copytree(tmp_path / "rnn_jax", inner / "rnn_jax")
    assert ours._commit(str(inner)) is None


def test_baseline_checkout_is_timed_and_agrees_with_rnn_jax():
    options = harness.Options(cells=("lstm", "gru"), shapes=(TINY_SHAPE,), reps=2, peers=(),
                              impls=("rnn_jax",), baseline=str(ROOT))
    result = harness.run_benchmark(options, log=lambda s: None)
    assert result["environment"]["baseline"]["path"] == str(ROOT)
    assert sys.modules["rnn_jax"] is rnn_jax
    baseline = [r for r in result["records"] if r["impl"] == "baseline"]
    assert {(r["cell"], r["pass"]) for r in baseline} == {
        (c, p) for c in ("lstm", "gru") for p in ("fwd", "fwdbwd")}
    for r in baseline:
        assert r["reps"] == 2 and r["median_ms"] > 0
        assert r["rel_error_vs_rnn_jax"] < SAME_METHOD_TOL, r
        assert "rnn_jax" in r["ratios"]


def test_impls_filter_skips_compiling_unselected_variants(monkeypatch):
    compiled = []
    real = harness.ours.prepare_jax

    def spy(impl, *args, **kwargs):
        compiled.append(impl)
        return real(impl, *args, **kwargs)

    monkeypatch.setattr(harness.ours, "prepare_jax", spy)
    options = harness.Options(cells=("lstm",), shapes=(TINY_SHAPE,), reps=1, passes=("fwdbwd",),
                              peers=("flax",), impls=("rnn_jax:manual",))
    records = harness.run_benchmark(options, log=lambda s: None)["records"]
    assert {r["impl"] for r in records} == {"rnn_jax", "floor:scan", "floor:hoisted"} | (
        {"rnn_jax:manual"} if "rnn_jax:manual" in compiled else set())
    assert set(compiled) <= {"rnn_jax", "rnn_jax:manual"}
    assert "rnn_jax" in compiled
