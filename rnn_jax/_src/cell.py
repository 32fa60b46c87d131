"""The cell protocol: a cell is the maths of one step, written with column vectors.

A cell's functions see ``x`` of shape ``(I,)`` and a carry of vectors (``h`` of shape ``(H,)``),
and take products with a weight through :func:`affine` and :func:`linear` (``W x + b``, ``W h``),
which the runner's layouts compute in the form XLA runs fastest; vector parameters (biases,
peepholes) enter through :func:`affine` and :func:`col`. The same code then also runs on a batch
of column vectors, ``x`` of shape ``(I, B)`` (features first), which is how the runner may
evaluate a step; or the runner maps it over a batch with ``jax.vmap``. Batches, time and memory
layout are the runner's business (:mod:`rnn_jax._src.plan` decides), so no cell holds a batch,
layout or backend branch. A cell of your own may be written with plain ``W @ h + b``: the
runner then always maps it.

A step is split in two so that the input projection can be taken apart from the recurrence::

    xp       = cell.project(params, x)         # affine in x: W_ih x + folded biases
    carry, y = cell.recur(params, carry, xp)   # everything that depends on the carry

An rnn_jax cell also carries its hand-written backward step (:class:`Backward`), written beside
its forward step in the cell's module.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
from jax import custom_batching

from rnn_jax._src import initializers as inits


class Options(dict):
    """A cell's options: a dict that is hashable, so that cells can be static jit arguments."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))


class Backward(NamedTuple):
    """The hand-written backward step of a cell, and the forward split it differentiates.

    All functions but ``grads`` see one sequence at one step, like the cell's own.

    * ``preact(params, carry, xp) -> pre``: the part of ``recur`` that takes the matmul with
      the carry (the gate pre-activations, or whatever the backward step needs).
    * ``finish(params, carry, pre) -> (carry, y)``: the rest of the step;
      ``finish(p, c, preact(p, c, xp)) == recur(p, c, xp)``. The forward pass that saves
      ``pre`` for the backward step computes the step this way, so it computes ``pre`` once.
    * ``step(params, carry, pre, dcarry, dy) -> (dcarry_prev, dxp, local)``: the
      vector-Jacobian product of the step for the carry and ``xp``; ``local`` holds what the
      parameter gradients need beyond ``dxp`` and the carry.
    * ``grads(params, xs, carries, dxps, locals) -> (dparams, dxs)``: the parameter gradients
      and the inputs'. It sees columns: every array has its features on axis 0 and any
      trailing (time, batch) axes, over which the parameter gradients are summed
      (``Σ_t δa_t h_{t-1}ᵀ``, :func:`outer_sum`); ``dxs`` is ``(I, ...)``. The runner calls it
      once per step on ``(F, B)`` columns, or once for all steps on ``(F, T, B)``.
    * ``fused``: None, or ``fused(params, carry, x) -> pre``, equal to
      ``preact(params, carry, project(params, x))`` with the products with ``x`` and with the
      carry taken as one (the LSTM's ``[W_ih, W_hh] [x; h]``); the planner uses it where that
      is faster.
    * ``project``, ``recur``: the cell functions this backward belongs to. A cell whose
      ``project`` or ``recur`` was replaced (``cell._replace(recur=...)``) no longer matches
      them and is differentiated by autodiff (:func:`backward_of`).
    """

    preact: Callable[..., Any]
    finish: Callable[..., tuple[Any, jax.Array]]
    step: Callable[..., tuple[Any, jax.Array, Any]]
    grads: Callable[..., tuple[Any, jax.Array]]
    project: Callable[..., jax.Array]
    recur: Callable[..., tuple[Any, jax.Array]]
    fused: Optional[Callable[..., Any]] = None


class Cell(NamedTuple):
    """A recurrent cell: sizes, options and the pure functions that define it.

    Attributes:
      name: ``"elman"``, ``"jordan"``, ``"lstm"``, ``"gru"``, or a name of your own.
      input_size: size ``I`` of ``x_t``.
      hidden_size: size ``H`` of the hidden state.
      output_size: size of ``y_t`` (``H``, the projection size, or Jordan's output size).
      options: the options the cell was built with (flags; activations by name, or the
        callable itself for a custom activation).
      init: ``init(key) -> params``.
      initial_carry: ``initial_carry(batch_shape=(), dtype=jnp.float32) -> carry`` (zeros).
      project: ``project(params, x) -> xp`` for one input vector ``x`` of shape ``(I,)``.
      recur: ``recur(params, carry, xp) -> (carry, y)`` for one sequence.
      backward: the hand-written :class:`Backward` (None: differentiate with autodiff).
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
    backward: Optional[Backward] = None

    def step(self, params: Any, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]:
        """One time step ``(params, carry, x) -> (carry, y)``; ``x`` may have leading batch
        dimensions ``(*batch, I)`` (the carry then has them too)."""
        return batched(lambda c, x1: self.recur(params, c, self.project(params, x1)),
                       x.ndim - 1)(carry, x)


def backward_of(cell: Cell) -> Optional[Backward]:
    """``cell.backward`` if it still belongs to the cell's ``project`` and ``recur``, else None."""
    b = cell.backward
    if b is None or b.project is not cell.project or b.recur is not cell.recur:
        return None
    return b


def batched(fn: Callable, n: int) -> Callable:
    """``fn`` mapped with ``jax.vmap`` over ``n`` leading axes of every argument."""
    for _ in range(n):
        fn = jax.vmap(fn)
    return fn


def project_all(cell: Cell, params: Any, xs: jax.Array) -> jax.Array:
    """``cell.project`` of every input vector of ``xs`` (any leading dims): one large matmul."""
    return batched(lambda x: cell.project(params, x), xs.ndim - 1)(xs)


@jax.custom_jvp
def affine(w: jax.Array, x: jax.Array, b: jax.Array) -> jax.Array:
    """``w @ x + b`` for a vector ``x``: the affine maps of a cell's step.

    On a batch of column vectors ``x`` of shape ``(I, B)`` it is ``w x + b`` (``b`` broadcast
    along the batch, or a batch itself). Mapped over a batch with ``jax.vmap`` (``x`` and
    maybe ``b``, e.g. ``xp + W_hh h``) it is computed as rows, ``X wᵀ + B`` of shape
    ``(B, out)``, the form flax's ``Dense`` takes. The runner's mapped layout hands the step its
    weights transposed before the loop (:func:`rnn_jax._src.scan.loop`), so that XLA takes the
    product with a stored ``wᵀ``. Values are the same; derivatives are those of ``w @ x + b``.
    """
    return _affine(w, x, b)


@affine.defjvp
def _affine_jvp(primals, tangents):
    (w, x, b), (dw, dx, db) = primals, tangents
    y = affine(w, x, b)
    return y, (_plain_affine(dw, x, db) + _plain_affine(w, dx, 0)).astype(y.dtype)


@custom_batching.custom_vmap
def _affine(w: jax.Array, x: jax.Array, b: jax.Array) -> jax.Array:
    return _plain_affine(w, x, b)


def _plain_affine(w, x, b):
    dtype = jnp.result_type(w, x, b)  # lax.dot_general does not promote
    wx = jnp.asarray(w, dtype) @ jnp.asarray(x, dtype)
    return wx + (col(b, wx) if jnp.ndim(b) == 1 else b)


def col(v: jax.Array, like: jax.Array) -> jax.Array:
    """A ``(features,)`` parameter shaped to broadcast against ``like``, a vector ``(F,)`` or a
    batch of column vectors ``(F, *batch)``."""
    return jnp.reshape(v, jnp.shape(v) + (1,) * (jnp.ndim(like) - 1))


@_affine.def_vmap
def _affine_batched(axis_size: int, in_batched: list, w, x, b):
    w_b, x_b, b_b = in_batched
    if w_b or not x_b or x.ndim != 2:   # anything else: the plain map
        axes = tuple(0 if batched else None for batched in in_batched)
        return jax.vmap(_plain_affine, in_axes=axes)(w, x, b), True
    dtype = jnp.result_type(w, x, b)
    xw = jax.lax.dot_general(jnp.asarray(x, dtype), jnp.asarray(w, dtype),
                             (((1,), (1,)), ((), ())))          # (batch, out)
    return (xw + (b if b_b or jnp.ndim(b) == 0 else b[None, :])).astype(dtype), True


@jax.custom_jvp
def linear_t(w: jax.Array, d: jax.Array) -> jax.Array:
    """``wᵀ d`` (written ``d @ w``): a backward step's product of a gradient with a weight.
    Mapped over a batch of ``d`` it is computed as ``(wᵀ Dᵀ)ᵀ``: the product with ``w`` as
    stored, in the ``(in, batch)`` layout, transposed once."""
    return _linear_t(w, d)


def _plain_linear_t(w, d):
    dtype = jnp.result_type(w, d)
    return jax.lax.dot_general(jnp.asarray(w, dtype), jnp.asarray(d, dtype),
                               (((0,), (0,)), ((), ())))        # wᵀ d


@linear_t.defjvp
def _linear_t_jvp(primals, tangents):
    (w, d), (dw, dd) = primals, tangents
    y = linear_t(w, d)
    return y, (_plain_linear_t(dw, d) + _plain_linear_t(w, dd)).astype(y.dtype)


@custom_batching.custom_vmap
def _linear_t(w: jax.Array, d: jax.Array) -> jax.Array:
    return _plain_linear_t(w, d)


@_linear_t.def_vmap
def _linear_t_batched(axis_size: int, in_batched: list, w, d):
    w_b, d_b = in_batched
    dtype = jnp.result_type(w, d)
    if w_b or not d_b or d.ndim != 2:
        axes = tuple(0 if batched else None for batched in in_batched)
        return jax.vmap(_plain_linear_t, in_axes=axes)(w, d), True
    wd = jax.lax.dot_general(jnp.asarray(w, dtype), jnp.asarray(d, dtype),
                             (((0,), (1,)), ((), ())))          # (in, batch)
    return wd.T, True


def linear(w: jax.Array, x: jax.Array) -> jax.Array:
    """``w @ x`` (:func:`affine` without a bias)."""
    return affine(w, x, jnp.zeros((), jnp.result_type(w, x)))


def stacked(a: jax.Array, b: jax.Array, w_a: jax.Array, w_b: jax.Array,
            bias: jax.Array) -> jax.Array:
    """``w_a @ a + w_b @ b + bias`` as one matmul, ``[w_a, w_b] @ [a; b]``: one contraction
    over ``len(a) + len(b)`` instead of two (the concatenated weight is loop-invariant)."""
    return affine(jnp.concatenate([w_a, w_b], axis=1), jnp.concatenate([a, b]), bias)


def outer_sum(d: jax.Array, v: jax.Array) -> jax.Array:
    """``Σ_n d_n v_nᵀ`` over the columns ``n`` (every trailing axis): ``(m, ...), (k, ...) ->
    (m, k)``."""
    return jnp.einsum("m...,k...->mk", d, v)


def col_sum(d: jax.Array) -> jax.Array:
    """The sum of the columns (over every trailing axis): ``(m, ...) -> (m,)``."""
    return d.sum(axis=tuple(range(1, jnp.ndim(d))))


def check_size(value: Any, argname: str) -> int:
    """A positive Python int, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argname} must be a positive int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{argname} must be a positive int, got {value}")
    return value


def check_bool(value: Any, argname: str) -> bool:
    """A Python bool (not merely truthy), or a TypeError naming the argument."""
    if not isinstance(value, bool):
        raise TypeError(f"{argname} must be True or False, got {value!r}")
    return value


def check_real(value: Any, argname: str) -> float:
    """A finite real number (not a bool or a string), or a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argname} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{argname} must be finite, got {value!r}")
    return float(value)


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
