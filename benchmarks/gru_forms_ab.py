"""The GRU step in other matmul layouts, against rnn_jax's default and flax, in one process.

The measurement behind "CPU, session 8" in benchmarks/README.md: at B=256, T=50, I=H=512 none
of these forms made the then default (batch-first autodiff) clearly faster than flax's. Since
session 9 the default at that shape is the features-first ``ManualBPTT(accumulate=True)``
("CPU, session 9"), which this script times as ``rnn_jax``. Each form is the GRU of
:func:`rnn_jax.gru` (reset after, PyTorch layout and biases) written out by hand:

* ``pretransposed``: ``x_t W_ihᵀ + h W_hhᵀ`` with both weights transposed before the scan
  (rnn_jax's default multiplies ``W_ih x_tᵀ`` and contracts ``h`` with ``W_hh`` as stored).
* ``per_gate``: six ``(in, H)`` products per step, one per gate and operand, as flax's
  ``GRUCell`` has them, from blocks transposed before the scan.
* ``manual_after``: a ``jax.custom_vjp`` whose forward saves ``[r, z, n, u]`` and whose reverse
  scan emits the gate gradients (rnn_jax's own backward step, ``bptt/gru.py``); the weight gradients are two contractions over all ``(t, b)``
  after it (as ``rnn_jax.ManualBPTT``).
* ``manual_accumulate``: the same backward adding ``δaᵀ x_t`` and ``δaᵀ h_{t-1}`` into the
  weight gradients at every step instead (as autodiff does), so no ``(T, B, 3H)`` buffer.

Timing interleaves every variant (``rnn_jax._src.bench.harness``) after checking its outputs
(fwd) or gradients (fwdbwd) against rnn_jax's::

    python benchmarks/gru_forms_ab.py --shape 256x50x512x512 --pass fwdbwd --reps 11
"""

from __future__ import annotations

import argparse
import statistics
from typing import Callable

import jax
import jax.numpy as jnp

import rnn_jax
from rnn_jax._src.bptt.gru import backward
from rnn_jax._src.params import GRUParams

FORMS = ("pretransposed", "per_gate", "manual_after", "manual_accumulate")


def _gates(xp, hh, h, b_hn, H):
    """One reset-after GRU step from ``xp = W_ih x + b`` and ``hh = W_hh h`` (``(B, 3H)``):
    ``(h', [r, z, n, u])`` with ``u = W_hn h + b_hn``."""
    r = jax.nn.sigmoid(xp[:, :H] + hh[:, :H])
    z = jax.nn.sigmoid(xp[:, H:2 * H] + hh[:, H:2 * H])
    u = hh[:, 2 * H:] + b_hn
    n = jnp.tanh(xp[:, 2 * H:] + r * u)
    return (1 - z) * n + z * h, (r, z, n, u)


def _input_bias(p: GRUParams, H: int) -> jax.Array:
    """``b_ih + b_hh`` for r and z, ``b_ih`` alone for n (``b_hn`` sits inside the reset)."""
    return jnp.concatenate([p.b_ih[:2 * H] + p.b_hh[:2 * H], p.b_ih[2 * H:]])


def _forward(form: str, p: GRUParams, xs: jax.Array, save: bool = False):
    """Time-major scan of one form: ``(hs, acts)``; ``acts`` ``(T, B, 4H)`` when ``save``."""
    H = p.w_hh.shape[1]
    b, b_hn = _input_bias(p, H), p.b_hh[2 * H:]
    if form == "per_gate":
        blocks = [(p.w_ih[k * H:(k + 1) * H].T, p.w_hh[k * H:(k + 1) * H].T) for k in range(3)]

        def products(x, h):
            xp = jnp.concatenate([x @ wi for wi, _ in blocks], axis=-1) + b
            return xp, jnp.concatenate([h @ wh for _, wh in blocks], axis=-1)
    else:
        w_ih_t, w_hh_t = p.w_ih.T, p.w_hh.T

        def products(x, h):
            return x @ w_ih_t + b, h @ w_hh_t

    def step(h, x):
        h_new, acts = _gates(*products(x, h), h, b_hn, H)
        return h_new, (h_new, jnp.concatenate(acts, axis=-1) if save else None)

    h0 = jnp.zeros((xs.shape[1], H), xs.dtype)
    return jax.lax.scan(step, h0, xs)[1]


def _outer(a: jax.Array, b: jax.Array) -> jax.Array:
    """``Σ_n a_nᵀ b_n`` over the leading axis of two 2-D arrays."""
    return jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())))


def _manual(accumulate: bool) -> Callable[[GRUParams, jax.Array], jax.Array]:
    """The ``pretransposed`` forward with a hand-written backward (module docstring)."""

    @jax.custom_vjp
    def run(p, xs):
        return _forward("pretransposed", p, xs)[0]

    def fwd(p, xs):
        hs, acts = _forward("pretransposed", p, xs, save=True)
        return hs, (p, xs, hs, acts)

    def bwd(res, dys):
        p, xs, hs, acts = res
        H = p.w_hh.shape[1]
        h_prev = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]])

        step_vjp = backward(rnn_jax.gru(xs.shape[-1], H)).step  # rnn_jax's own step

        def grads(dh, h, a, dy):
            """``(δh_{t-1}, δxp, δ(W_hh h + b_hh))`` of one step from the saved ``a``."""
            return step_vjp(p, h, None, dh, dy, a)

        dh0 = jnp.zeros_like(hs[0])
        if accumulate:
            def step(c, inp):
                dh, dw_ih, dw_hh, db_ih, db_hh = c
                h, a, dy, x = inp
                dh, dxp, local = grads(dh, h, a, dy)
                return (dh, dw_ih + _outer(dxp, x), dw_hh + _outer(local, h),
                        db_ih + dxp.sum(0), db_hh + local.sum(0)), dxp @ p.w_ih

            zeros = (dh0, jnp.zeros_like(p.w_ih), jnp.zeros_like(p.w_hh),
                     jnp.zeros_like(p.b_ih), jnp.zeros_like(p.b_hh))
            (_, dw_ih, dw_hh, db_ih, db_loc), dxs = jax.lax.scan(
                step, zeros, (h_prev, acts, dys, xs), reverse=True)
        else:
            def step(dh, inp):
                dh, dxp, local = grads(dh, *inp)
                return dh, (dxp, local)

            _, (dxp, local) = jax.lax.scan(step, dh0, (h_prev, acts, dys), reverse=True)
            dxs = dxp @ p.w_ih
            dxp, local = dxp.reshape(-1, 3 * H), local.reshape(-1, 3 * H)
            dw_ih = _outer(dxp, xs.reshape(-1, xs.shape[-1]))
            dw_hh = _outer(local, h_prev.reshape(-1, H))
            db_ih, db_loc = dxp.sum(0), local.sum(0)
        db_hh = jnp.concatenate([db_ih[:2 * H], db_loc[2 * H:]])
        return GRUParams(dw_ih, dw_hh, db_ih, db_hh), dxs

    run.defvjp(fwd, bwd)
    return run


def apply_fn(form: str) -> Callable[[GRUParams, jax.Array], jax.Array]:
    """``apply(params, xs (B, T, I)) -> ys (B, T, H)`` of one of :data:`FORMS`."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if form.startswith("manual"):
        scan = _manual(form == "manual_accumulate")
    else:
        def scan(p, xs):
            return _forward(form, p, xs)[0]
    return lambda p, x: jnp.swapaxes(scan(p, jnp.swapaxes(x, 0, 1)), 0, 1)


def main() -> None:
    from rnn_jax._src.bench import harness, peers_flax
    from rnn_jax._src.bench.jaxprep import prepare_jax
    from rnn_jax._src.bench.spec import make_problem, parse_shape

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="256x50x512x512", help="BxTxIxH")
    ap.add_argument("--pass", dest="pass_", default="fwdbwd", choices=["fwd", "fwdbwd"])
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--forms", default=",".join(FORMS), help="comma list of " + ",".join(FORMS))
    ap.add_argument("--no-flax", action="store_true")
    args = ap.parse_args()
    problem = make_problem("gru", parse_shape(args.shape), "float32")
    cell = rnn_jax.gru(problem.shape[2], problem.shape[3])
    params = GRUParams(**{k: jnp.asarray(v) for k, v in problem.weights.items()})
    names = GRUParams._fields

    def to_ours(g):
        return {k: getattr(g, k) for k in names}

    prepared = [prepare_jax("rnn_jax", problem, args.pass_,
                            lambda p, x: rnn_jax.run(cell, p, x)[1], params, to_ours)]
    if not args.no_flax:
        prepared += peers_flax.prepare(problem, args.pass_)
    prepared += [prepare_jax(f, problem, args.pass_, apply_fn(f), params, to_ours)
                 for f in args.forms.split(",")]
    errors = harness.check_against_ours(prepared)
    times = harness.time_interleaved(prepared, args.reps)
    base = statistics.median(times["rnn_jax"])
    print(f"GRU {args.shape} {args.pass_}, ms (median / min of {args.reps}; ÷ rnn_jax; rel err)")
    for impl, t in times.items():
        med = statistics.median(t)
        print(f"  {impl:24s} {med:9.2f} {min(t):9.2f}  {med / base:5.2f}  {errors[impl]:.0e}")


if __name__ == "__main__":
    main()
