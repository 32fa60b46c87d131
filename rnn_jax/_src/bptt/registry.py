"""``cell.name`` -> the hand-written backward pass of that cell."""

from __future__ import annotations

from typing import Callable, Optional

from rnn_jax._src.bptt import elman, gru, jordan, lstm
from rnn_jax._src.bptt.common import CellBackward
from rnn_jax._src.cell import Cell
from rnn_jax._src.tuning import manual_below

BACKWARDS: dict[str, Callable[[Cell], CellBackward]] = {
    "elman": elman.backward,
    "jordan": jordan.backward,
    "lstm": lstm.backward,
    "gru": gru.backward,
}


def manual_is_default(cell: Cell, batch_size: int = 1, on: Optional[str] = None) -> bool:
    """Whether ``run`` differentiates ``cell`` with ``ManualBPTT`` when no ``grad`` is given,
    for a batch of ``batch_size`` sequences on backend ``on`` (default: JAX's; see
    :data:`rnn_jax._src.tuning.MANUAL_BELOW` for the measurements)."""
    return has_backward(cell) and batch_size < manual_below(cell.name, on)


def has_backward(cell: Cell) -> bool:
    """Whether ``cell`` is one of rnn_jax's own cells, for which a backward pass is written.

    The name alone is not enough: a user's ``Cell("lstm", ...)`` with other equations must not
    get the LSTM's hand-written gradient, so the step must come from rnn_jax's cell module.
    """
    return cell.name in BACKWARDS and \
        getattr(cell.recur, "__module__", None) == f"rnn_jax._src.cells.{cell.name}"


def backward_for(cell: Cell) -> CellBackward:
    """The :class:`CellBackward` for ``cell``, built from its name and options.

    Raises:
      ValueError: no hand-written backward pass exists for ``cell.name``.
    """
    try:
        make = BACKWARDS[cell.name]
    except KeyError:
        raise ValueError(f"no manual backward pass for cell {cell.name!r}; known cells: "
                         f"{sorted(BACKWARDS)} (use rnn_jax.Autodiff() for others)") from None
    return make(cell)


def step_vjp(cell: Cell, params, carry, xp, dcarry, dy):
    """The full VJP of ``cell.recur`` at one step: ``(dparams, dcarry_prev, dxp)``.

    Equal to ``jax.vjp(cell.recur, params, carry, xp)[1]((dcarry, dy))``; what the tests check
    each backward step against.
    """
    bwd = backward_for(cell)
    dcarry_prev, dxp, local = bwd.step(params, carry, xp, dcarry, dy)
    return bwd.recur_grads(params, carry, dxp, local), dcarry_prev, dxp
