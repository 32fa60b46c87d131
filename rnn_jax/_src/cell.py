"""The cell protocol: a cell is a small NamedTuple of pure functions.

A step is split in two so that the runner may compute the input projection for all time steps
at once, and so that a hand-written backward pass can treat the two halves apart::

    xp            = cell.project(params, x)        # affine in x: W_ih x + folded biases
    carry, y      = cell.recur(params, carry, xp)  # everything that depends on the carry
    cell.step(params, carry, x) == cell.recur(params, carry, cell.project(params, x))
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from rnn_jax._src import initializers as inits


class Options(dict):
    """A cell's options: a dict that is hashable, so that cells can be static jit arguments."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


class Cell(NamedTuple):
    """A recurrent cell: sizes, options and the pure functions that define it.

    Attributes:
      name: ``"elman"``, ``"jordan"``, ``"lstm"`` or ``"gru"``.
      input_size: size ``I`` of ``x_t``.
      hidden_size: size ``H`` of the hidden state.
      output_size: size of ``y_t`` (``H``, the projection size, or Jordan's output size).
      options: the options the cell was built with (flags; activations by name, or the
        callable itself for a custom activation).
      init: ``init(key) -> params``.
      initial_carry: ``initial_carry(batch_shape=(), dtype=jnp.float32) -> carry`` (zeros).
      project: ``project(params, x) -> xp``, the input projection (any leading dims).
      recur: ``recur(params, carry, xp) -> (carry, y)``.

    rnn_jax's own ``project`` and ``recur`` also take ``fa=FEATURES_FIRST``: every array then
    has its feature axis first, ``(features, *batch)``; the runner scans large LSTM batches
    that way (``rnn_jax._src.scan``). The LSTM's ``recur`` also carries a fused form of
    ``recur(project(x))`` that the features-first scan runs (:func:`fused_with`). A cell you
    write needs none of this: only functions marked with :func:`features_first_capable` are
    ever called with ``fa``, and a fused form only while both ``project`` and ``recur`` are
    the ones it was marked with.
    """

    name: str
    input_size: int
    hidden_size: int
    output_size: int
    options: Mapping[str, Any]
    init: Callable[[jax.Array], Any]
    initial_carry: Callable[..., Any]
    project: Callable[[Any, jax.Array], jax.Array]
    recur: Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]

    def step(self, params: Any, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]:
        """One time step ``(params, carry, x) -> (carry, y)``."""
        return self.recur(params, carry, self.project(params, x))


def check_size(value: Any, argname: str) -> int:
    """A positive Python int, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argname} must be a positive int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{argname} must be a positive int, got {value}")
    return value


def check_options(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """Raises ValueError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {list(allowed)}")
    return value


def gate_weights(
    key: jax.Array,
    gates: int,
    hidden: int,
    fan_in: int,
    fan_rec: int,
    w_ih_init: inits.Initializer,
    w_hh_init: inits.Initializer,
    bias_init: inits.Initializer,
    dtype: Any,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(w_ih, w_hh, b_ih, b_hh)`` of shapes ``(G*H, fan_in), (G*H, fan_rec), (G*H,), (G*H,)``.

    Weights are initialised one gate block at a time (:func:`initializers.per_gate`).
    """
    k1, k2, k3, k4 = jax.random.split(key, 4)
    w_ih = inits.per_gate(w_ih_init, k1, gates, (gates * hidden, fan_in), dtype)
    w_hh = inits.per_gate(w_hh_init, k2, gates, (gates * hidden, fan_rec), dtype)
    b_ih = bias_init(k3, (gates * hidden,), dtype)
    b_hh = bias_init(k4, (gates * hidden,), dtype)
    return w_ih, w_hh, b_ih, b_hh


def zeros_carry(size: int) -> Callable[..., jax.Array]:
    """``initial_carry`` for a cell whose carry is one vector of ``size``."""

    def initial_carry(batch_shape: Sequence[int] = (), dtype: Any = jnp.float32) -> jax.Array:
        return jnp.zeros((*tuple(batch_shape), size), dtype)

    return initial_carry


def _w_dot(x: jax.Array, w: jax.Array) -> jax.Array:
    """``w @ xᵀ``: shape ``(out, *lead)`` for ``x`` of shape ``(*lead, in)``, ``w`` ``(out, in)``."""
    dtype = jnp.result_type(x, w)  # lax.dot_general does not promote; jnp.matmul would
    return jax.lax.dot_general(jnp.asarray(w, dtype), jnp.asarray(x, dtype),
                               (((1,), (x.ndim - 1,)), ((), ())))


# Where the feature axis of a step's arrays sits: -1, ``(*batch, features)``, the public layout;
# or 0, ``(features, *batch)``, which the runner may scan in (``rnn_jax._src.scan``). rnn_jax's
# cells write their step once, for either, with the helpers below taking ``fa``.
BATCH_FIRST = -1
FEATURES_FIRST = 0


def features_first_capable(fn: Callable) -> Callable:
    """Marks a cell's ``project`` or ``recur`` as accepting ``fa=FEATURES_FIRST``."""
    fn.features_first = True  # type: ignore[attr-defined]
    return fn


class Fused(NamedTuple):
    """A cell step in two parts, for the runner's features-first scan: ``preact(params, carry,
    x, fa) -> a``, the pre-activations from ``x`` with one matmul (:func:`stacked_linear`), and
    ``finish(params, carry, a, fa) -> (carry, y)``, the rest of the step."""

    preact: Callable[..., jax.Array]
    finish: Callable[..., tuple[Any, jax.Array]]

    def __call__(self, params: Any, carry: Any, x: jax.Array, fa: int = BATCH_FIRST):
        return self.finish(params, carry, self.preact(params, carry, x, fa), fa)


def fused_with(project: Callable, fused: Fused) -> Callable[[Callable], Callable]:
    """Marks a cell's ``recur`` as having a fused form: ``fused(params, carry, x, fa)`` equals
    ``recur(params, carry, project(params, x, fa), fa)`` but computes the input and recurrent
    matmuls as one. The runner's features-first scan uses it while the cell still has this
    ``project`` and this ``recur`` (:func:`fused_recur`), so a cell with either replaced runs
    its own functions."""

    def mark(recur: Callable) -> Callable:
        recur.fused = (project, fused)  # type: ignore[attr-defined]
        return recur

    return mark


def fused_recur(cell: Cell) -> Fused | None:
    """The :class:`Fused` step of ``cell`` (see :func:`fused_with`), or None when it has none
    or its ``project`` or ``recur`` was replaced."""
    mark = getattr(cell.recur, "fused", None)
    return mark[1] if mark is not None and mark[0] is cell.project else None


def with_invariants(prepare: Callable[[Any, tuple], Any]) -> Callable[[Callable], Callable]:
    """Marks a cell's ``recur`` as taking loop invariants: ``prepare(params, batch_shape)``
    returns operands that depend on ``params`` only (e.g. ``W_hhᵀ``), or None (for batch
    shapes where they do not pay); the runner evaluates it once before a batch-first scan and
    calls ``recur(params, carry, xp, inv=...)`` at every step (:func:`bound_recur`). A weight
    transposed inside the scan body is transposed (copied) at every step on CPU; computed
    before it, it is one loop input. A cell whose ``recur`` was replaced runs its own function
    without invariants."""

    def mark(recur: Callable) -> Callable:
        recur.invariants = prepare  # type: ignore[attr-defined]
        return recur

    return mark


def recur_invariants(cell: Cell, params: Any, batch_shape: tuple) -> Any:
    """The loop invariants of ``cell.recur`` (:func:`with_invariants`) for a batch-first run
    over ``batch_shape`` sequences, or None."""
    prepare = getattr(cell.recur, "invariants", None)
    return None if prepare is None else prepare(params, tuple(batch_shape))


def bound_recur(cell: Cell, params: Any, batch_shape: tuple,
                inv: Any = None) -> Callable | None:
    """``cell.recur`` with its loop invariants (:func:`with_invariants`) bound, or None when it
    has none for ``batch_shape``. ``inv``: the invariants if already computed (a caller that
    also uses them passes its own, so that the scan gets one copy as input); else they are
    computed here (call it outside the scan body, so that they are computed once)."""
    inv = recur_invariants(cell, params, batch_shape) if inv is None else inv
    if inv is None:
        return None
    recur = cell.recur
    return lambda p, c, xp, **kw: recur(p, c, xp, inv=inv, **kw)


def stacked_linear(x: jax.Array, h: jax.Array, w_x: jax.Array, w_h: jax.Array,
                   fa: int = BATCH_FIRST) -> jax.Array:
    """``x @ w_x.T + h @ w_h.T`` as one matmul, ``[x, h] @ [w_x, w_h].T``.

    One contraction over ``I + P`` instead of two over ``I`` and ``P``: features first, an
    LSTM forward at B=64, T=500, I=H=128 on CPU took 63 against 103 ms for the matmuls alone
    (same process; no gain at I=H=256 or 512, where each half is already large).
    """
    return linear(jnp.concatenate([x, h], axis=fa),
                  jnp.concatenate([w_x, w_h], axis=1), fa)


def split(a: jax.Array, n: int, fa: int = BATCH_FIRST) -> list[jax.Array]:
    """``a`` cut into ``n`` equal blocks (gates) along its feature axis."""
    return jnp.split(a, n, axis=fa)


def per_feature(v: jax.Array, like: jax.Array, fa: int = BATCH_FIRST) -> jax.Array:
    """A ``(features,)`` parameter (bias, peephole) shaped to broadcast against ``like``."""
    return v if fa == BATCH_FIRST else jnp.reshape(v, v.shape + (1,) * (like.ndim - 1))


def linear(x: jax.Array, w: jax.Array, fa: int = BATCH_FIRST) -> jax.Array:
    """``x @ w.T`` for ``x`` with any leading dims and ``w`` in ``(out, in)`` layout.

    Computed as ``(w xᵀ)ᵀ`` with a ``dot_general`` that contracts the ``in`` axes directly, so
    no transposed copy of ``w`` is made: with ``x @ w.T`` inside a ``lax.scan`` body XLA on CPU
    copied the transpose of ``W_hh`` at every step (7.8 -> 0.94 ms for an LSTM forward at
    B=1, T=100, I=64, H=128; see benchmarks/README.md). Features first (``x`` of shape
    ``(in, *batch)``): ``w x``, shape ``(out, *batch)``.
    """
    if fa == FEATURES_FIRST:
        dtype = jnp.result_type(x, w)
        return jax.lax.dot_general(jnp.asarray(w, dtype), jnp.asarray(x, dtype),
                                   (((1,), (0,)), ((), ())))
    return jnp.moveaxis(_w_dot(x, w), 0, -1)


def affine(x: jax.Array, w: jax.Array, b: jax.Array, fa: int = BATCH_FIRST) -> jax.Array:
    """``x @ w.T + b``, with the bias added in the same ``(out, *batch)`` layout as
    :func:`add_linear` works in, so that the two compose without extra transposes."""
    if fa == FEATURES_FIRST:
        wx = linear(x, w, fa)
        return wx + per_feature(b, wx, fa)
    wx = _w_dot(x, w)
    return jnp.moveaxis(wx + jnp.reshape(b, b.shape + (1,) * (wx.ndim - 1)), 0, -1)


def add_linear(xp: jax.Array, h: jax.Array, w: jax.Array, fa: int = BATCH_FIRST) -> jax.Array:
    """``xp + h @ w.T``, the recurrent pre-activation of a step (features first: ``xp + w h``).

    The sum is formed in the ``(out, *batch)`` layout of ``w hᵀ`` and transposed once. When
    ``xp`` comes from :func:`linear` in the same step, XLA cancels its transposes, and the
    whole pre-activation is ``W_ih xᵀ + W_hh hᵀ + b`` with one transpose at the end: 1.36x
    faster for an LSTM forward at B=16, T=100, I=128, H=256 on CPU than summing in the
    ``(*batch, out)`` layout (benchmarks/README.md).
    """
    if fa == FEATURES_FIRST:
        return xp + linear(h, w, fa)
    return jnp.moveaxis(jnp.moveaxis(xp, -1, 0) + _w_dot(h, w), 0, -1)
