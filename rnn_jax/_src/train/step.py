"""Jitted optax training steps, including the truncated-BPTT chunk step.

Everything that changes during training lives in one :class:`TrainState` pytree
(params, optimizer state, step counter, RNG key, carried hidden state), so a
step is a pure function ``(state, batch) -> (state, metrics)`` and a checkpoint
is that pytree written to disk.

Optimisers and clipping come from optax: elementwise clipping ``optax.clip``
(min-char-rnn clips to [-5, 5]) and clipping by global norm
``optax.clip_by_global_norm`` (Pascanu, Mikolov & Bengio 2013, Algorithm 1).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = {
    "adam": optax.adam,
    "rmsprop": optax.rmsprop,
    "sgd": optax.sgd,
    "adagrad": optax.adagrad,
}


class TrainState(NamedTuple):
    params: Any
    opt_state: Any
    step: jax.Array     # int32 scalar: number of updates made
    key: jax.Array      # raw uint32 PRNG key, split once per step
    carry: Any          # hidden state carried across chunks (truncated BPTT), or None


def make_optimizer(name: str = "adam", learning_rate: float = 1e-3, *,
                   clip_norm: Optional[float] = None,
                   clip_value: Optional[float] = None) -> optax.GradientTransformation:
    """``optax.chain(clip elementwise?, clip by global norm?, optimiser)``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is not one of {sorted(OPTIMIZERS)}")
    parts = []
    if clip_value is not None:
        parts.append(optax.clip(clip_value))
    if clip_norm is not None:
        parts.append(optax.clip_by_global_norm(clip_norm))
    parts.append(OPTIMIZERS[name](learning_rate))
    return optax.chain(*parts)


def init_state(params: Any, optimizer: optax.GradientTransformation, key: jax.Array,
               carry: Any = None) -> TrainState:
    """A fresh :class:`TrainState` at step 0."""
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32),
                      jnp.asarray(key, jnp.uint32), carry)


LossFn = Callable[[Any, Any, Any, jax.Array], tuple[jax.Array, tuple[Any, dict]]]


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, *,
                    jit: bool = True, skip_nonfinite: bool = False):
    """Builds ``train_step(state, batch) -> (state, metrics)``.

    Args:
      loss_fn: ``loss_fn(params, batch, carry, key) -> (loss, (new_carry, aux))``; ``aux``
        is a dict of scalar metrics. ``new_carry`` becomes ``state.carry`` with its
        gradient stopped (truncated BPTT); return ``carry`` unchanged when there is none.
      optimizer: an optax transformation, e.g. :func:`make_optimizer`.
      jit: wrap the step in ``jax.jit``.
      skip_nonfinite: where the loss or the gradient norm is not finite, keep the params,
        optimiser state and carry of ``state`` (the step counter and key still advance).

    ``metrics`` holds ``loss``, ``grad_norm``, ``aux``, ``finite`` (whether both are finite)
    and, with ``skip_nonfinite``, ``skipped`` (``~finite``).
    """

    def train_step(state: TrainState, batch: Any):
        key, sub = jax.random.split(state.key)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (carry, aux)), grads = grad_fn(state.params, batch, state.carry, sub)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(norm)
        metrics = {"loss": loss, "grad_norm": norm, **aux, "finite": finite}
        carry = jax.lax.stop_gradient(carry)
        if skip_nonfinite:
            params, opt_state, carry = jax.tree.map(
                lambda new, old: jnp.where(finite, new, old),
                (params, opt_state, carry), (state.params, state.opt_state, state.carry))
            metrics["skipped"] = ~finite
        return TrainState(params, opt_state, state.step + 1, key, carry), metrics

    return jax.jit(train_step) if jit else train_step


def reset_carry(carry: Any, initial: Any, reset: jax.Array) -> Any:
    """``initial`` where ``reset`` (shape batch) is True, else ``carry``, leaf by leaf."""
    return jax.tree.map(
        lambda c, c0: jnp.where(reset.reshape(reset.shape + (1,) * (c.ndim - reset.ndim)), c0, c),
        carry, initial)


def tbptt_loss(apply_fn: Callable, token_loss: Callable) -> LossFn:
    """Loss of one chunk of a stream for truncated BPTT.

    Args:
      apply_fn: ``apply_fn(params, inputs, carry, resets) -> (carry, outputs)``: the model
        over one chunk, starting from ``carry`` and resetting it where ``resets`` is True.
      token_loss: ``token_loss(outputs, targets) -> scalar``.

    The incoming carry is passed through ``lax.stop_gradient``: gradients flow back
    through at most one chunk (Williams & Peng 1990; min-char-rnn's chunks of 25).
    The batch is ``(inputs, targets, resets)``.
    """

    def loss_fn(params, batch, carry, key):
        del key
        inputs, targets, resets = batch
        carry, outputs = apply_fn(params, inputs, jax.lax.stop_gradient(carry), resets)
        return token_loss(outputs, targets), (jax.lax.stop_gradient(carry), {})

    return loss_fn
