"""Equinox peers: ``eqx.nn.LSTMCell`` / ``eqx.nn.GRUCell`` vmapped over the batch under ``lax.scan``.

Equinox cells act on one example with PyTorch-shaped weights and a single bias vector
(``b_ih + b_hh``); its GRU keeps the recurrent candidate bias apart as ``bias_n``. Equinox has
no Elman cell, so Elman has no Equinox peer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_jax._src.bench.jaxprep import prepare_jax
from rnn_jax._src.bench.spec import Prepared, Problem

CELL_CLASSES = {"lstm": "LSTMCell", "gru": "GRUCell"}


def to_equinox(cell: str, weights: dict[str, np.ndarray]) -> Any:
    """Builds the Equinox cell holding rnn_jax (PyTorch-layout) weights."""
    import equinox as eqx
    import jax

    w_ih, w_hh, b_ih, b_hh = (weights[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh"))
    hidden, inputs = w_hh.shape[1], w_ih.shape[1]
    module = getattr(eqx.nn, CELL_CLASSES[cell])(inputs, hidden, key=jax.random.PRNGKey(0))
    if cell == "lstm":
        return eqx.tree_at(lambda m: (m.weight_ih, m.weight_hh, m.bias), module,
                           (w_ih, w_hh, b_ih + b_hh))
    bias = b_ih.copy()
    bias[: 2 * hidden] += b_hh[: 2 * hidden]
    return eqx.tree_at(lambda m: (m.weight_ih, m.weight_hh, m.bias, m.bias_n), module,
                       (w_ih, w_hh, bias, b_hh[2 * hidden:]))


def from_equinox(cell: str, grad: Any) -> dict[str, Any]:
    """Maps a gradient with respect to the Equinox cell back to rnn_jax's weight names."""
    import jax.numpy as jnp

    if cell == "lstm":
        return {"w_ih": grad.weight_ih, "w_hh": grad.weight_hh, "b_ih": grad.bias, "b_hh": grad.bias}
    hidden = grad.weight_hh.shape[1]
    return {"w_ih": grad.weight_ih, "w_hh": grad.weight_hh, "b_ih": grad.bias,
            "b_hh": jnp.concatenate([grad.bias[: 2 * hidden], grad.bias_n])}


def _apply(cell: str, module: Any, xs: Any) -> Any:
    """Runs the cell over ``xs (B, T, I)`` from a zero state; returns ``ys (B, T, H)``."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    batch, hidden = xs.shape[0], module.hidden_size
    h0 = jnp.zeros((batch, hidden), xs.dtype)
    carry0 = (h0, h0) if cell == "lstm" else h0
    step_batched = jax.vmap(module)

    def step(carry: Any, x: Any) -> tuple[Any, Any]:
        carry = step_batched(x, carry)
        return carry, carry[0] if cell == "lstm" else carry

    _, ys = lax.scan(step, carry0, jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(ys, 0, 1)


def prepare(problem: Problem, pass_: str) -> list[Prepared]:
    """The Equinox variant for ``problem`` (empty for Elman)."""
    if problem.cell not in CELL_CLASSES:
        return []
    cell = problem.cell
    module = to_equinox(cell, problem.weights)
    return [prepare_jax(f"equinox:{CELL_CLASSES[cell]}", problem, pass_,
                        lambda m, x: _apply(cell, m, x), module,
                        lambda g: from_equinox(cell, g))]
