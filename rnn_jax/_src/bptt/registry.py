"""``cell.name`` -> the hand-written backward pass of that cell."""

from __future__ import annotations

from typing import Callable

from rnn_jax._src.bptt import elman, gru, jordan, lstm
from rnn_jax._src.bptt.common import CellBackward
from rnn_jax._src.cell import Cell

BACKWARDS: dict[str, Callable[[Cell], CellBackward]] = {
    "elman": elman.backward,
    "jordan": jordan.backward,
    "lstm": lstm.backward,
    "gru": gru.backward,
}


# Cells whose hand-written backward is the faster default (benchmarks/README.md). The GRU's is
# not: at B=64, T=500, I=H=128 on CPU it took 363 ms against 273 ms for autodiff.
DEFAULT_MANUAL = frozenset({"elman", "jordan", "lstm"})


def manual_is_default(cell: Cell) -> bool:
    """Whether ``run`` differentiates ``cell`` with ``ManualBPTT`` when no ``grad`` is given."""
    return cell.name in DEFAULT_MANUAL and has_backward(cell)


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
