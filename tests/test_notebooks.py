"""Executes every notebook in notebooks/ end to end, at small sizes (RNN_JAX_NOTEBOOK_SMALL=1)."""

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


# Notebooks whose plots are part of what they show.
MIN_FIGURES = {"03_long_memory.ipynb": 1, "04_char_rnn.ipynb": 1, "05_vanishing_exploding.ipynb": 5,
               "06_long_timescales.ipynb": 3, "07_seq2seq_attention.ipynb": 2,
               "08_ctc_and_captioning.ipynb": 5, "09_slot_filling_and_autoencoders.ipynb": 3,
               "10_gradient_methods.ipynb": 7}


def test_there_are_notebooks():
    assert any(p.name.startswith("01_") for p in NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_JAX_NOTEBOOK_SMALL", "1")
    # Small problems: XLA's compile time dominates, so the kernel skips the expensive passes.
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                                    "--xla_llvm_disable_expensive_passes=true")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []))
    assert figures >= MIN_FIGURES.get(path.name, 0)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_is_executed_with_its_outputs(path):
    """The repository holds every notebook executed: each code cell ran (in order) and the
    figures a reader should see are there."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{path.name}: cells not executed"
    assert counts == sorted(counts), f"{path.name}: cells executed out of order"
    assert sum(len(c.get("outputs", [])) for c in code) > 0
    figures = sum("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    assert figures >= MIN_FIGURES.get(path.name, 0)
