"""The persistent-kernel probe (benchmarks/pallas_lstm_probe.py) computes rnn_jax's LSTM.

Its GPU timings are quoted in benchmarks/README.md; here its kernel runs in Pallas's interpret
mode on the CPU, both ``W_hh`` placements, against ``rnn_jax.run``.
"""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

pytest.importorskip("jax.experimental.pallas")
PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "pallas_lstm_probe.py"
spec = importlib.util.spec_from_file_location("pallas_lstm_probe", PATH)
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


@pytest.mark.parametrize("onchip", [True, False])
def test_persistent_kernel_matches_the_runner(onchip):
    B, T, I, H = 32, 6, 16, 32
    cell = rnn_jax.lstm(I, H)
    k = jax.random.split(jax.random.key(0), 3)
    params = cell.init(k[0])
    # non-zero biases, so that a dropped or doubled bias shows
    params = params._replace(b_ih=jax.random.normal(k[1], params.b_ih.shape),
                             b_hh=jax.random.normal(k[2], params.b_hh.shape))
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    weights = {n: getattr(params, n) for n in ("w_ih", "w_hh", "b_ih", "b_hh")}
    got = probe.persistent_lstm(weights, xs, bt=16, onchip=onchip, interpret=True)
    want = rnn_jax.run(cell, params, xs, grad=rnn_jax.Autodiff())[1]
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(want))) > 0.1
