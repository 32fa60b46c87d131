"""Flax peers: ``flax.linen.RNN`` over ``OptimizedLSTMCell``, ``LSTMCell``, ``GRUCell``, ``SimpleCell``.

Flax keeps one ``Dense`` per gate with kernels ``(in, out)`` and a single bias where the input
and recurrent terms are summed (LSTM, Elman, GRU's r and z gates); GRU's candidate keeps the
input bias on ``in`` and the recurrent bias on ``hn`` (reset applied after, as PyTorch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_jax._src.bench.jaxprep import jnp_dtype, prepare_jax
from rnn_jax._src.bench.spec import Prepared, Problem

CELL_CLASSES = {
    "lstm": ("OptimizedLSTMCell", "LSTMCell"),
    "gru": ("GRUCell",),
    "elman": ("SimpleCell",),
}
_ORDER = {"lstm": "ifgo", "gru": "rzn", "elman": ""}


def _blocks(w: np.ndarray, n: int) -> list[np.ndarray]:
    """Splits a gate-stacked PyTorch tensor into its ``n`` gates."""
    return np.split(w, n, axis=0)


def to_flax(cell: str, weights: dict[str, np.ndarray]) -> dict[str, Any]:
    """Converts rnn_jax (PyTorch-layout) weights to the flax cell's parameter dict."""
    w_ih, w_hh, b_ih, b_hh = (weights[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh"))
    if cell == "elman":
        return {"i": {"kernel": w_ih.T, "bias": b_ih + b_hh}, "h": {"kernel": w_hh.T}}
    order = _ORDER[cell]
    wi, wh = _blocks(w_ih, len(order)), _blocks(w_hh, len(order))
    bi, bh = _blocks(b_ih, len(order)), _blocks(b_hh, len(order))
    tree: dict[str, Any] = {}
    for k, gate in enumerate(order):
        tree["i" + gate] = {"kernel": wi[k].T}
        tree["h" + gate] = {"kernel": wh[k].T}
    if cell == "lstm":
        for k, gate in enumerate(order):
            tree["h" + gate]["bias"] = bi[k] + bh[k]
    else:  # GRU: r, z summed on the input side; n split between "in" and "hn"
        tree["ir"]["bias"] = bi[0] + bh[0]
        tree["iz"]["bias"] = bi[1] + bh[1]
        tree["in"]["bias"] = bi[2]
        tree["hn"]["bias"] = bh[2]
    return tree


def from_flax(cell: str, tree: dict[str, Any]) -> dict[str, Any]:
    """Maps a gradient in flax's layout back to rnn_jax's weight names."""
    import jax.numpy as jnp

    if cell == "elman":
        b = tree["i"]["bias"]
        return {"w_ih": tree["i"]["kernel"].T, "w_hh": tree["h"]["kernel"].T, "b_ih": b, "b_hh": b}
    order = _ORDER[cell]
    w_ih = jnp.concatenate([tree["i" + g]["kernel"].T for g in order])
    w_hh = jnp.concatenate([tree["h" + g]["kernel"].T for g in order])
    if cell == "lstm":
        b = jnp.concatenate([tree["h" + g]["bias"] for g in order])
        return {"w_ih": w_ih, "w_hh": w_hh, "b_ih": b, "b_hh": b}
    r, z = tree["ir"]["bias"], tree["iz"]["bias"]
    return {"w_ih": w_ih, "w_hh": w_hh,
            "b_ih": jnp.concatenate([r, z, tree["in"]["bias"]]),
            "b_hh": jnp.concatenate([r, z, tree["hn"]["bias"]])}


def prepare(problem: Problem, pass_: str) -> list[Prepared]:
    """One :class:`Prepared` per flax cell class that implements ``problem.cell``."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    dtype = jnp_dtype(problem.dtype)
    hidden = problem.shape[3]
    out = []
    for name in CELL_CLASSES[problem.cell]:
        cell_cls = getattr(nn, name)
        # The recurrent kernel's default initializer (orthogonal) has no bfloat16 QR, and flax
        # evaluates the initializer's shape even when params are given; the weights used are
        # the problem's, so any initializer of the right shape will do.
        model = nn.RNN(cell_cls(features=hidden, dtype=dtype, param_dtype=dtype,
                                recurrent_kernel_init=nn.initializers.lecun_normal()))
        params = {"params": {"cell": to_flax(problem.cell, problem.weights)}}
        # The tree check initialises in float32: flax's orthogonal init has no bfloat16 QR.
        reference = nn.RNN(cell_cls(features=hidden)).init(
            jax.random.PRNGKey(0), jnp.zeros((1, 1, problem.shape[2]), jnp.float32))
        if jax.tree.structure(reference) != jax.tree.structure(params):
            raise AssertionError(f"flax {name} parameter tree changed: {reference}")
        cell = problem.cell
        out.append(prepare_jax(f"flax:{name}", problem, pass_, model.apply, params,
                               lambda g, cell=cell: from_flax(cell, g["params"]["cell"])))
    return out
