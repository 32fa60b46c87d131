"""Gradient methods: how the runner's loop is differentiated is an argument, not a second loop.

Each method is a small NamedTuple with one function ``scan(cell, params, xs, carry, valid, *,
reverse, unroll, resets=None) -> (final_carry, ys)`` over time-major inputs (see :func:`scan.scan_steps`).
The forward values are identical for every method; only what is stored for the backward pass,
and how the backward pass is computed, differ (Griewank & Walther 2008, ch. 12 on checkpointing).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple, Optional

import jax

from rnn_jax._src.cell import Cell
from rnn_jax._src.scan import scan_steps


class Autodiff(NamedTuple):
    """Reverse-mode autodiff through ``lax.scan``: JAX keeps each step's residuals.

    The default of :func:`rnn_jax.run` for cells other than rnn_jax's own (which default to
    :class:`rnn_jax.ManualBPTT`), and the method to pass for forward-mode ``jax.jvp``.

    Attributes:
      hoist: compute the input projection for all steps before the scan.
    """

    hoist: bool = False

    def scan(self, cell: Cell, params: Any, xs: jax.Array, carry: Any,
             valid: Optional[jax.Array], *, reverse: bool, unroll: int,
             resets: Optional[jax.Array] = None):
        return scan_steps(cell, params, xs, carry, valid, reverse=reverse, unroll=unroll,
                          hoist=self.hoist, resets=resets)


class Checkpointed(NamedTuple):
    """Autodiff that stores only each step's inputs and recomputes the step when going back.

    Memory for the backward pass falls from every gate activation per step to the carry per
    step, at the price of a second forward evaluation of each step (``jax.checkpoint``).
    """

    def scan(self, cell: Cell, params: Any, xs: jax.Array, carry: Any,
             valid: Optional[jax.Array], *, reverse: bool, unroll: int,
             resets: Optional[jax.Array] = None):
        wrap = partial(jax.checkpoint, prevent_cse=False)
        return scan_steps(cell, params, xs, carry, valid, reverse=reverse, unroll=unroll,
                          wrap_step=wrap, resets=resets)
