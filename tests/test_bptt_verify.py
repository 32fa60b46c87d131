"""``rnn-jax verify``: its records, its JSON, and that it fails when a backward pass is wrong."""

import json

from rnn_jax._src import cli
from rnn_jax._src import verify as v

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
    case = _subset()[0]

    def broken(I, H, dtype):  # dW_hh off by 0.1%
        cell = case.make(I, H, dtype)
        b = cell.backward

        def grads(*args):
            dp, dx = b.grads(*args)
            return dp._replace(w_hh=1.001 * dp.w_hh), dx

        return cell._replace(backward=b._replace(grads=grads))

    bad = case._replace(make=broken)
    monkeypatch.setattr(v, "CASES", (bad,))
    assert cli.main(["verify"]) == 1
    assert "FAIL" in capsys.readouterr().out
    record = v.verify_case(bad)
    assert not record["passed"] and record["max_rel_err_autodiff"] > 1e-4
    assert record["max_rel_err_fd"] > v.FD_TOL
