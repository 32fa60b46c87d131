"""``rnn-jax verify``: its records, its JSON, and that it fails when a backward pass is wrong."""

import json

from rnn_jax._src import cli
from rnn_jax._src.bptt import registry
from rnn_jax._src.bptt import verify as v
from rnn_jax._src.bptt.common import CellBackward

KEYS = {"cell", "options", "max_rel_err_autodiff", "max_rel_err_fd", "passed"}


def _subset():
    by = {(c.cell, c.options): c for c in v.CASES}
    return (by[("elman", "activation=tanh")], by[("gru", "reset=after clip=0.02")])


def test_verify_json(monkeypatch, capsys):
    monkeypatch.setattr(v, "CASES", _subset())
    assert cli.main(["verify", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [set(r) for r in records] == [KEYS, KEYS]
    assert records[0]["cell"] == "elman" and records[0]["passed"] is True
    assert 0 <= records[0]["max_rel_err_autodiff"] <= v.AUTODIFF_TOL
    assert 0 < records[0]["max_rel_err_fd"] <= v.FD_TOL
    assert records[1]["max_rel_err_fd"] is None  # clipped: not a derivative of the loss


def test_verify_fails_on_a_wrong_backward(monkeypatch, capsys):
    good = registry.BACKWARDS["elman"]

    def broken(cell):  # dW_hh off by 0.1%
        b = good(cell)
        return CellBackward(b.step, lambda *a: b.recur_grads(*a)._replace(
            w_hh=1.001 * b.recur_grads(*a).w_hh), b.project_grads)

    monkeypatch.setitem(registry.BACKWARDS, "elman", broken)
    monkeypatch.setattr(v, "CASES", _subset()[:1])
    assert cli.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    record = v.verify_case(v.CASES[0])
    assert not record["passed"] and record["max_rel_err_autodiff"] > 1e-4
    assert record["max_rel_err_fd"] > v.FD_TOL
