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

    In bfloat16 or float16 the weight gradients are summed over the steps in that dtype (the
    scan's gradient carry), so over long sequences small per-step terms are rounded away:
    at B=8, T=2000 a bfloat16 LSTM's bias gradients came out 81% off a float32 reference.
    :class:`rnn_jax.ManualBPTT` (the default there) sums them in single contractions instead.

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
    step, at the price of a second forward evaluation of each step (``jax.checkpoint``). Its
    weight gradients are autodiff's, summed over the steps in the params' dtype (see
    :class:`Autodiff` on bfloat16), as are those of ``ManualBPTT(accumulate=True)``; in 16-bit
    dtypes over long sequences prefer ``ManualBPTT()``.
    """

    def scan(self, cell: Cell, params: Any, xs: jax.Array, carry: Any,
             valid: Optional[jax.Array], *, reverse: bool, unroll: int,
             resets: Optional[jax.Array] = None):
        wrap = partial(jax.checkpoint, prevent_cse=False)
        return scan_steps(cell, params, xs, carry, valid, reverse=reverse, unroll=unroll,
                          wrap_step=wrap, resets=resets)
