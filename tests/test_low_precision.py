"""bfloat16 gradients over long sequences: the default stays as accurate as bfloat16 allows.

Autodiff through ``lax.scan`` sums each step's weight gradient into a bfloat16 carry, and over
hundreds of steps the small increments are rounded away (20-80% off here, as flax's and
Equinox's gradients were in the GPU benchmark). ``ManualBPTT`` sums them in float32: as single
contractions after the backward loop (a batch mapped), or in a float32 sum carried through the
loop (columns, from 32 sequences). The reference is
float32 arithmetic on the same bfloat16-rounded weights and inputs, so only the arithmetic's
precision differs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import rnn_jax
from rnn_jax._src.bench.harness import max_rel_error

T, I, H = 500, 8, 16
WEIGHTS = ("w_ih", "w_hh", "b_ih", "b_hh")
CELLS = {"lstm": rnn_jax.lstm, "gru": rnn_jax.gru, "elman": rnn_jax.elman}


def _grads(cell, params, xs, grad):
    def loss(p, x):
        return jnp.sum(rnn_jax.run(cell, p, x, grad=grad)[1].astype(jnp.float32))

    return jax.jit(jax.grad(loss))(params, xs)


@pytest.mark.parametrize("B", [4, 32], ids=["mapped", "columns"])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_default_bfloat16_weight_gradients_match_float32_over_500_steps(name, B):
    cell = CELLS[name](I, H)
    k1, k2 = jax.random.split(jax.random.key(0))
    params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), cell.init(k1))
    xs = jax.random.normal(k2, (B, T, I)).astype(jnp.bfloat16)
    as32 = jax.tree.map(lambda a: a.astype(jnp.float32), (params, xs))
    want = _grads(cell, *as32, rnn_jax.Autodiff())
    got = _grads(cell, params, xs, None)  # the default
    weights = lambda g: {k: getattr(g, k) for k in WEIGHTS}  # noqa: E731
    assert rnn_jax.plan(cell, jnp.bfloat16, batch=B, on="cpu").features_first == (B == 32)
    assert max_rel_error(weights(got), weights(want)) < 1e-2  # bfloat16 rounding is 4e-3
    assert all(getattr(got, k).dtype == jnp.bfloat16 for k in WEIGHTS)


def test_low_precision_default_is_the_hand_written_backward():
    gru = rnn_jax.gru(I, H)
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        assert rnn_jax.plan(gru, dtype, on="cpu").grad == rnn_jax.ManualBPTT()

    def recur(p, c, xp):  # a user's cell has no hand-written backward: autodiff it stays
        return gru.recur(p, c, xp)

    assert rnn_jax.plan(gru._replace(recur=recur), jnp.bfloat16).grad == rnn_jax.Autodiff()
