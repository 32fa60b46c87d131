"""Gradient methods: how the runner's one loop is differentiated is an argument, not a second loop.

Each method is a small frozen dataclass, registered with JAX as static data (no array leaves),
so ``grad=rnn_jax.ManualBPTT(truncate=3)`` can be passed straight through ``jax.jit``. Its one
function ``scan(cell, params, xs, carry, valid, resets, *, reverse, plan) -> (final, ys)``
takes the runner's time-major, flat-batch inputs (:func:`rnn_jax._src.scan.loop`) and the
planner's speed choices (:class:`rnn_jax.Plan`). The forward
values are identical for every method; only what is stored for the backward pass, and how the
backward pass is computed, differ (Griewank & Walther 2008, ch. 12 on checkpointing).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from rnn_jax._src.cell import Cell
from rnn_jax._src.scan import loop


class GradientMethod:
    """Base class of the gradient methods accepted by ``rnn_jax.run(..., grad=...)``."""

    def scan(self, cell: Cell, params: Any, xs: jax.Array, carry: Any,
             valid: Optional[jax.Array], resets: Optional[jax.Array], *, reverse: bool,
             plan: Any) -> tuple[Any, jax.Array]:
        raise NotImplementedError


def perturbed(tree: Any) -> bool:
    """Whether any leaf of ``tree``, as a ``custom_vjp(..., symbolic_zeros=True)`` forward rule
    receives it, is differentiated (a method then skips the backward work of the others)."""
    return any(leaf.perturbed for leaf in jax.tree.leaves(tree))


def cotangents(tree: Any) -> Any:
    """``tree`` of cotangents with every symbolic zero made an array of zeros."""
    return jax.tree.map(lambda c: jnp.zeros(c.shape, c.dtype) if isinstance(c, SymbolicZero)
                        else c, tree, is_leaf=lambda c: isinstance(c, SymbolicZero))


def gradient_method(cls: type) -> type:
    """Makes ``cls`` a frozen dataclass that JAX treats as static (hashable, no leaves)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    jax.tree_util.register_static(cls)
    return cls


@gradient_method
class Autodiff(GradientMethod):
    """Reverse-mode autodiff through ``lax.scan``: JAX keeps each step's residuals.

    The default for cells without a hand-written backward step, and the method to pass for
    forward mode (``jax.jvp``, ``jax.jacfwd``), which a custom VJP does not support.

    In bfloat16 or float16 the weight gradients are summed over the steps in that dtype (the
    scan's gradient carry), so over long sequences small per-step terms are rounded away;
    :class:`rnn_jax.ManualBPTT` sums them in float32 instead.
    """

    def scan(self, cell, params, xs, carry, valid, resets, *, reverse, plan):
        return loop(cell, params, xs, carry, valid, resets, reverse=reverse,
                    unroll=plan.unroll, fuse=plan.fuse, features_first=plan.features_first)


@gradient_method
class Checkpointed(GradientMethod):
    """Autodiff that stores only each step's inputs and recomputes the step when going back.

    Memory for the backward pass falls from every gate activation per step to the carry per
    step, at the price of a second forward evaluation of each step (``jax.checkpoint``). Its
    weight gradients are autodiff's, summed over the steps in the params' dtype.
    """

    def scan(self, cell, params, xs, carry, valid, resets, *, reverse, plan):
        return loop(cell, params, xs, carry, valid, resets, reverse=reverse,
                    unroll=plan.unroll, fuse=plan.fuse, features_first=plan.features_first,
                    checkpoint=True)
