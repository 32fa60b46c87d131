"""How far a persistent LSTM kernel could go: a Pallas (Triton) forward pass against the scan.

A probe, not part of the library (session 5); the library's kernels, forward and backward, LSTM
and GRU, float32 included, are :class:`rnn_jax.Persistent` (``rnn_jax/_src/persistent/``).
One kernel runs all T steps of an LSTM's recurrence for a tile of ``bt`` sequences (grid:
one program per tile), so nothing is launched per time step and no loop condition goes back
to the host. The input projection ``x_t W_ih^T + b`` is one
large matmul before the kernel, as cuDNN does. Per step the program computes
``g_k = xp_k[t] + h W_hk`` for the four gates k (four ``(bt, H) x (H, H)`` products: the
Triton lowering slices no register tiles, so the gate blocks are kept apart), then
``c = σ(f) c + σ(i) tanh(g)``, ``h = σ(o) tanh(c)`` (Hochreiter & Schmidhuber 1997; gate order
i, f, g, o as PyTorch).

Two placements of ``W_hh``:

* ``onchip``: the four blocks are loaded once, before the loop, and stay in the program's
  registers/shared memory for all T steps (what a persistent kernel is for). Fits one SM
  only for small H: 4 H² numbers (H=128: 256 KiB in float32, 128 KiB in bfloat16).
* ``reload``: the blocks are read again every step (from L2 after the first step).

Run on a GPU (``--interpret`` runs the same kernels on the CPU, slowly, to check them):

    python benchmarks/pallas_lstm_probe.py --shapes 64x500x128x128,8x2000x64x128
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl


def _kernel(xp_ref, w_ref, h0_ref, c0_ref, ys_ref, *, steps: int, onchip: bool):
    """xp_ref (T, 4, bt, H); w_ref (4, H, H) = W_hk^T; h0/c0 (bt, H); ys_ref (T, bt, H)."""
    def weights():
        return [w_ref[k] for k in range(4)]

    held = weights() if onchip else None

    def step(t, carry):
        h, c = carry
        w = held if onchip else weights()
        hw = h.astype(w_ref.dtype)
        i, f, g, o = (xp_ref[t, k].astype(jnp.float32)
                      + jnp.dot(hw, w[k], preferred_element_type=jnp.float32) for k in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        ys_ref[t] = h.astype(ys_ref.dtype)
        return h, c

    h0 = h0_ref[...].astype(jnp.float32)
    c0 = c0_ref[...].astype(jnp.float32)
    lax.fori_loop(0, steps, step, (h0, c0))


@functools.partial(jax.jit, static_argnames=("bt", "onchip", "interpret"))
def persistent_lstm(params: dict, xs: jax.Array, *, bt: int, onchip: bool,
                    interpret: bool = False) -> jax.Array:
    """LSTM forward, ``xs (B, T, I)`` -> ``ys (B, T, H)``, zero initial state, PyTorch layout
    params (``w_ih (4H, I)``, ``w_hh (4H, H)``, ``b_ih``, ``b_hh``)."""
    B, T, _ = xs.shape
    H = params["w_hh"].shape[1]
    dtype = xs.dtype
    xp = jnp.einsum("bti,gi->tbg", xs, params["w_ih"]) + (params["b_ih"] + params["b_hh"])
    xp = xp.reshape(T, B, 4, H).transpose(0, 2, 1, 3)  # (T, 4, B, H)
    w = params["w_hh"].reshape(4, H, H).transpose(0, 2, 1).astype(dtype)  # (4, H, H): W_hk^T
    zeros = jnp.zeros((B, H), dtype)
    ys = pl.pallas_call(
        functools.partial(_kernel, steps=T, onchip=onchip),
        grid=(B // bt,),
        in_specs=[pl.BlockSpec((T, 4, bt, H), lambda b: (0, 0, b, 0)),
                  pl.BlockSpec((4, H, H), lambda b: (0, 0, 0)),
                  pl.BlockSpec((bt, H), lambda b: (b, 0)),
                  pl.BlockSpec((bt, H), lambda b: (b, 0))],
        out_specs=pl.BlockSpec((T, bt, H), lambda b: (0, b, 0)),
        out_shape=jax.ShapeDtypeStruct((T, B, H), dtype),
        interpret=interpret,
    )(xp.astype(dtype), w, zeros, zeros)
    return jnp.swapaxes(ys, 0, 1)


def median_ms(fn, reps: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    import rnn_jax
    from rnn_jax._src.bench.harness import max_rel_error
    from rnn_jax._src.bench.ours import make_cell
    from rnn_jax._src.bench.spec import make_problem, parse_shape

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="64x500x128x128,8x2000x64x128")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--bt", default="16", help="comma list of sequences per program")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--interpret", action="store_true")
    ap.add_argument("--out", default=None, help="JSON file for the records")
    args = ap.parse_args()
    records = []
    for text in args.shapes.split(","):
        shape = parse_shape(text)
        for dtype_name in args.dtypes.split(","):
            dtype = jnp.dtype(dtype_name)
            problem = make_problem("lstm", shape, dtype_name)
            cell, params = make_cell(rnn_jax, problem)
            params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
            xs = jnp.asarray(problem.xs, dtype)
            weights = {k: getattr(params, k) for k in ("w_ih", "w_hh", "b_ih", "b_hh")}
            scan = jax.jit(lambda p, x: rnn_jax.run(cell, p, x)[1])
            ref = scan(params, xs)
            fns = {"rnn_jax": lambda: scan(params, xs)}
            group = {"rnn_jax": {}}  # impl -> record
            for bt, onchip in ((int(b), o) for b in args.bt.split(",") for o in (True, False)):
                name = f"pallas:{'onchip' if onchip else 'reload'}:bt{bt}"
                fn = functools.partial(persistent_lstm, weights, xs, bt=min(bt, shape[0]),
                                       onchip=onchip, interpret=args.interpret)
                try:
                    group[name] = {"rel_error_vs_rnn_jax": max_rel_error(fn(), ref)}
                    fns[name] = fn
                except Exception as err:  # noqa: BLE001 - a probe reports what does not lower
                    group[name] = {"error": f"{type(err).__name__}: {str(err)[:400]}"}
            for name, fn in fns.items():
                ms = median_ms(fn, args.reps)
                group[name].update(ms=ms, us_per_step=ms * 1e3 / shape[1])
            for name, rec in group.items():
                records.append({"shape": shape, "dtype": dtype_name, "impl": name, **rec})
                print(json.dumps(records[-1]), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"device": str(jax.devices()[0].device_kind), "jax": jax.__version__,
                       "bt": args.bt, "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
