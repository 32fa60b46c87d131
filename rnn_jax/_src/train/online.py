"""UORO in the training loop: ``rnn-jax train adding|copy --gradient uoro``.

The training step (:func:`rnn_jax._src.train.step.make_train_step`) takes
``jax.value_and_grad`` of a loss function. To train on UORO's estimate ``ĝ`` instead of the
BPTT gradient, the loss function returns the surrogate

.. math::  \\tilde L(θ) = L(\\bar θ) + \\langle ĝ(\\bar θ), θ - \\bar θ \\rangle, \\qquad
           \\bar θ = \\operatorname{stop\\_gradient}(θ),

whose value is the exact loss (the forward pass is exact) and whose gradient is exactly ``ĝ``:
``L`` and ``ĝ`` come from one forward scan of ``rnn_jax.uoro_loss_grad`` on ``\\bar θ``, so
nothing of UORO is differentiated, and the optimiser, clipping, non-finite handling and data
parallelism are those of every other run.

The readout: the model's cell and its ``dense`` readout are run as one cell
(:func:`with_readout`), ``(c_t, y_t) = (c_t, W h_t + b)``. The readout's parameters do not
enter the carry (``∂F/∂W = 0`` for the carry), so UORO's ``θ̃`` is zero on them and their part
of ``ĝ`` is its direct term ``Σ_t ȳ_tᵀ ∂y_t/∂W``: the readout's gradient is exact, and only
the recurrent parameters' gradient is estimated (without bias, with variance). The per-step
losses are the task's loss split over the steps (``step_loss(y_t, target_t)`` summed over
steps and sequences equals the batch loss), which ``uoro_loss_grad`` needs to form ``ȳ_t``
online.

Reference: Tallec & Ollivier 2017, "Unbiased online recurrent optimization",
arXiv 1702.05043.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

import rnn_jax
from rnn_jax._src.cell import Cell
from rnn_jax._src.train.models import Model, ModelParams


def with_readout(model: Model) -> Cell:
    """``model``'s cell followed by its readout, as one cell with params ``ModelParams``:
    ``project`` is the cell's, ``recur`` returns the cell's carry and the readout of its
    output. Token models take one-hot inputs (``model.config["input_size"]`` wide)."""
    cell, readout = model.cell, model.readout

    def project(p: ModelParams, x: jax.Array) -> jax.Array:
        return cell.project(p.cell, x)

    def recur(p: ModelParams, carry: Any, xp: jax.Array):
        carry, h = cell.recur(p.cell, carry, xp)
        return carry, readout.apply(p.readout, h)

    return Cell(f"{cell.name}+readout", cell.input_size, cell.hidden_size,
                readout.output_size, cell.options, model.init, cell.initial_carry,
                project, recur)


def uoro_loss(model: Model, per_step: Callable[[Any], tuple[jax.Array, Any]],
              step_loss: Callable[[jax.Array, Any], jax.Array], *, eps: float = 1e-7):
    """A training loss function ``(params, batch, carry, key) -> (loss, (carry, {}))`` whose
    gradient is UORO's estimate (see the module docstring).

    Args:
      model: a :func:`rnn_jax._src.train.models.build_model` model.
      per_step: ``per_step(batch) -> (xs, targets)``: the model's inputs (``(B, T, I)``
        floats, or ``(B, T)`` tokens, read one-hot) and a pytree of targets with leading dims
        ``(B, T)``.
      step_loss: ``step_loss(y_t (O,), target_t) -> scalar``; summed over steps and sequences
        it must be the batch's loss (scale it so, e.g. by ``1 / B`` for a mean).
      eps: UORO's ``ε``.

    The key (one per training step) draws every sequence's random signs.
    """
    cell = with_readout(model)

    def loss_fn(params: ModelParams, batch: Any, carry: Any, key: jax.Array):
        xs, targets = per_step(batch)
        if model.config.get("tokens"):
            dtype = jax.tree.leaves(params.readout)[0].dtype
            xs = jax.nn.one_hot(xs, model.config["input_size"], dtype=dtype)
        fixed = jax.lax.stop_gradient(params)
        loss, g, _ = rnn_jax.uoro_loss_grad(cell, fixed, xs, targets, key, step_loss, eps=eps)
        g = jax.lax.stop_gradient(g)
        tangent = jax.tree.map(lambda gi, p, f: jnp.vdot(gi, p - f), g, params, fixed)
        return loss + sum(jax.tree.leaves(tangent)), (carry, {})

    return loss_fn

