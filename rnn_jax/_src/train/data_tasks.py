"""Synthetic long-memory tasks: the adding problem and the copy task.

Both are generated from an explicit JAX key, so a batch is a pure function of
``(key, batch, length)``; the training loop derives the key of step ``s`` with
``jax.random.fold_in(data_key, s)``, which makes resumed runs see the same data.

References:
    Hochreiter & Schmidhuber 1997; Arjovsky, Shah & Bengio 2016 (arXiv 1511.06464),
    whose forms are used here.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

# Copy-task alphabet: 0 blank, 1..n_symbols data symbols, n_symbols + 1 delimiter.
BLANK = 0


class AddingBatch(NamedTuple):
    inputs: jax.Array   # (B, T, 2): (value ~ U[0, 1], marker in {0, 1})
    targets: jax.Array  # (B,): sum of the two marked values


class CopyBatch(NamedTuple):
    inputs: jax.Array   # (B, T + 2 * n_copy) int32 tokens
    targets: jax.Array  # (B, T + 2 * n_copy) int32 tokens


def adding_problem(key: jax.Array, batch: int, length: int, dtype=jnp.float32) -> AddingBatch:
    """Adding problem (Arjovsky et al. 2016 form).

    Each sequence has ``length`` pairs ``(v_t, m_t)`` with ``v_t ~ U[0, 1]`` and
    exactly one marker ``m_t = 1`` in each half (first half ``[0, T//2)``, second
    half ``[T//2, T)``). The target is ``sum_t m_t v_t``.
    """
    if length < 2:
        raise ValueError(f"length must be >= 2, got {length}")
    k_val, k_a, k_b = jax.random.split(key, 3)
    half = length // 2
    values = jax.random.uniform(k_val, (batch, length), dtype)
    first = jax.random.randint(k_a, (batch,), 0, half)
    second = jax.random.randint(k_b, (batch,), half, length)
    t = jnp.arange(length)
    markers = ((t == first[:, None]) | (t == second[:, None])).astype(values.dtype)
    inputs = jnp.stack([values, markers], axis=-1)   # (B, T, 2)
    targets = jnp.sum(values * markers, axis=-1)     # (B,)
    return AddingBatch(inputs, targets)


def copy_task(key: jax.Array, batch: int, length: int, *, n_symbols: int = 8,
              n_copy: int = 10) -> CopyBatch:
    """Copy task (Arjovsky et al. 2016).

    Input of length ``T + 2 n_copy``: ``n_copy`` symbols drawn uniformly from
    ``1..n_symbols``, ``T - 1`` blanks, one delimiter (``n_symbols + 1``), then
    ``n_copy`` blanks. Target: ``T + n_copy`` blanks, then the ``n_copy`` symbols.
    The vocabulary size is ``n_symbols + 2``.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    symbols = jax.random.randint(key, (batch, n_copy), 1, n_symbols + 1, dtype=jnp.int32)
    blanks = lambda n: jnp.full((batch, n), BLANK, jnp.int32)
    delim = jnp.full((batch, 1), n_symbols + 1, jnp.int32)
    inputs = jnp.concatenate([symbols, blanks(length - 1), delim, blanks(n_copy)], axis=1)
    targets = jnp.concatenate([blanks(length + n_copy), symbols], axis=1)
    return CopyBatch(inputs, targets)


def copy_vocab_size(n_symbols: int = 8) -> int:
    """Number of token ids used by :func:`copy_task`."""
    return n_symbols + 2


# ----------------------------------------------------------------------------
# Baselines. Closed forms, and the same numbers computed from data by the
# best predictor that has no memory of the inputs.
# ----------------------------------------------------------------------------

ADDING_BASELINE_MSE = 1.0 / 6.0  # Var(U1 + U2) = 2/12: always predict the mean, 1.


def copy_baseline_closed_form(length: int, *, n_symbols: int = 8, n_copy: int = 10) -> float:
    """``n_copy ln(n_symbols) / (T + 2 n_copy)`` nats per step: blanks known, symbols guessed."""
    return n_copy * math.log(n_symbols) / (length + 2 * n_copy)


def adding_baseline(key: jax.Array, *, batch: int = 20000, length: int = 100) -> float:
    """MSE of the best memoryless predictor: the training-set mean of the target.

    The mean is fitted on one sample and the MSE measured on an independent one;
    it estimates :data:`ADDING_BASELINE_MSE` (= 1/6).
    """
    k_fit, k_test = jax.random.split(key)
    mean = jnp.mean(adding_problem(k_fit, batch, length).targets)
    test = adding_problem(k_test, batch, length).targets
    return float(jnp.mean((test - mean) ** 2))


def copy_baseline(key: jax.Array, *, batch: int = 20000, length: int = 100,
                  n_symbols: int = 8, n_copy: int = 10) -> float:
    """Cross-entropy (nats per step) of the best memoryless predictor.

    The predictor outputs, at every position, the empirical distribution of the
    target at that position (fitted on one sample, add-1/2 smoothed); its mean
    cross-entropy is measured on an independent sample. Estimates
    :func:`copy_baseline_closed_form`.
    """
    k_fit, k_test = jax.random.split(key)
    vocab = copy_vocab_size(n_symbols)
    fit = copy_task(k_fit, batch, length, n_symbols=n_symbols, n_copy=n_copy).targets
    counts = jnp.sum(jax.nn.one_hot(fit, vocab), axis=0) + 0.5  # (T', V)
    log_p = jnp.log(counts / jnp.sum(counts, axis=-1, keepdims=True))
    test = copy_task(k_test, batch, length, n_symbols=n_symbols, n_copy=n_copy).targets
    nll = -jnp.take_along_axis(log_p[None], test[..., None], axis=-1)[..., 0]  # (B, T')
    return float(jnp.mean(nll))
