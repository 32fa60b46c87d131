"""``rnn-jax gradients``: gradient norm against lag for several cells, or (``--methods``) the
gradient methods side by side on one problem.

Lag mode (the default). For each model (tanh Elman at several spectral radii of ``W_hh``, a
linear Elman just above radius 1, ReLU with identity init, tanh with orthogonal init, LSTM,
GRU) it computes the exact Jacobians ``∂h_T/∂h_k`` on random input sequences and prints, per
model, ``ρ(W_hh)``, ``σ_max(W_hh)``, Pascanu's per-step bound ``γ σ_max``, the mean norm at a
few lags and the measured per-step growth factor; it writes ``gradients.png`` (log scale) and
``gradients.csv``.

Methods mode (``--methods``). One random problem in float64 (``--cell``, inputs and output
cotangents ``N(0, 1)`` of shape ``(B, T, ·)``, loss ``L = Σ ⟨δy, y⟩``) and a row per gradient
method (:func:`rnn_jax.diagnostics.compare_methods`: the columns' definitions): the error
against :class:`rnn_jax.Autodiff`, XLA's temp bytes of the compiled gradient and its median
time; it writes ``methods.csv``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from rnn_jax._src.commands._args import (UsageError, positive_floats, positive_int, positive_ints,
                                         writable_dir)

NAME = "gradients"
HELP = ("gradient norm against lag (vanishing / exploding) for several cells: table and PNG; "
        "--methods: the gradient methods' error, memory and time")

# Options of one mode only (default None: refused in the other mode) and their defaults.
LAG_ONLY = {"sequences": 8, "radii": [0.5, 0.9, 1.0, 1.5], "linear_radius": 1.02}
METHODS_ONLY = {"cell": "lstm", "batch": 4, "snapshots": [4, 16], "truncate": None,
                "samples": 100, "repeats": 3, "rtrl_max_params": 4096}
HIDDEN = {"lag": 32, "methods": 16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rnn_jax._src.train.models import CELLS

    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory for gradients.png and gradients.csv, or methods.csv "
                             "(created if needed)")
    parser.add_argument("--methods", action="store_true",
                        help="compare the gradient methods on one problem instead")
    parser.add_argument("--length", type=positive_int, default=100, help="sequence length T")
    parser.add_argument("--hidden", type=positive_int,
                        help="hidden size H (default: 32; with --methods 16)")
    parser.add_argument("--input-size", type=positive_int, default=8, help="input size I")
    parser.add_argument("--seed", type=int, default=0)
    lag = parser.add_argument_group("lag mode only")
    lag.add_argument("--sequences", type=positive_int,
                     help="random input sequences averaged over (default: 8)")
    lag.add_argument("--radii", type=positive_floats,
                     help="spectral radii of W_hh for the tanh RNNs (default: 0.5,0.9,1,1.5)")
    lag.add_argument("--linear-radius", type=float,
                     help="spectral radius of the linear RNN, 0 to leave it out (default: 1.02)")
    met = parser.add_argument_group("--methods only")
    met.add_argument("--cell", choices=CELLS, help="the cell (default: lstm)")
    met.add_argument("--batch", type=positive_int, help="sequences B (default: 4)")
    met.add_argument("--snapshots", type=positive_ints,
                     help="the k of the Revolve(k) rows (default: 4,16)")
    met.add_argument("--truncate", type=positive_int,
                     help="k of ManualBPTT(truncate=k), below T (default: max(1, T // 10))")
    met.add_argument("--samples", type=positive_int,
                     help="UORO estimates averaged in its second row (default: 100)")
    met.add_argument("--repeats", type=positive_int,
                     help="timed calls per method after a warm one (default: 3)")
    met.add_argument("--rtrl-max-params", type=positive_int,
                     help="run RTRL only up to this many parameters (default: 4096)")


def _resolve(args: argparse.Namespace) -> None:
    """Fills the mode's defaults in; an option of the other mode is a :class:`UsageError`."""
    mine, other = (METHODS_ONLY, LAG_ONLY) if args.methods else (LAG_ONLY, METHODS_ONLY)
    given = ["--" + k.replace("_", "-") for k in other if getattr(args, k) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} only with{'out' if args.methods else ''} "
                         f"--methods")
    for k, default in mine.items():
        if getattr(args, k) is None:
            setattr(args, k, default)
    if args.hidden is None:
        args.hidden = HIDDEN["methods" if args.methods else "lag"]
    if args.methods:
        if args.truncate is None:
            args.truncate = max(1, args.length // 10)
        elif args.truncate >= args.length:
            raise UsageError(f"--truncate {args.truncate} must be below --length "
                             f"{args.length} (else it is the full gradient)")


def main(args: argparse.Namespace) -> int:
    import jax

    _resolve(args)
    if args.methods:
        writable_dir(args.out, "--out")
        jax.config.update("jax_enable_x64", True)   # errors near 1e-14 need float64
        return _methods(args)
    # Norms at long lags fall far below float32's range; this process computes in float64.
    import jax.numpy as jnp
    import matplotlib  # noqa: F401  (needed for the PNG: say so before computing)

    writable_dir(args.out, "--out")
    jax.config.update("jax_enable_x64", True)
    from rnn_jax._src.diagnostics.plots import plot_lag_norms
    from rnn_jax._src.diagnostics.report import format_table, gradient_report
    T = args.length
    lags = sorted({l for l in (1, 10, 30, 100) if l < T} | {T})
    models, curves, rows = gradient_report(
        length=T, hidden=args.hidden, input_size=args.input_size, sequences=args.sequences,
        seed=args.seed, radii=args.radii, linear_radius=args.linear_radius, lags=lags,
        dtype=jnp.float64)
    print(f"||dh_T/dh_(T-l)||_2 (mean over {args.sequences} random sequences), T={T}, "
          f"H={args.hidden}; rate = per-step factor from lag 1 to lag {T}")
    print(format_table(rows))
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "gradients.png")
    plot_lag_norms(curves, png, bounds={r.name: r.bound_rate for r in rows},
                   title=f"Gradient norm against lag (T={T}, H={args.hidden})")
    csv = os.path.join(args.out, "gradients.csv")
    names = list(curves)
    table = np.column_stack([np.arange(T + 1)] + [curves[n] for n in names])
    np.savetxt(csv, table, delimiter=",", header=",".join(["lag", *names]), comments="")
    print(f"wrote {png} and {csv}")
    return 0


def _methods(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp

    from rnn_jax._src.diagnostics.methods import (
        compare_methods,
        format_methods,
        write_methods_csv,
    )
    from rnn_jax._src.train.models import make_cell

    try:
        cell = make_cell(args.cell, args.input_size, args.hidden)
    except ValueError as err:
        raise UsageError(str(err)) from None
    B, T, f64 = args.batch, args.length, jnp.float64
    k_params, k_xs, k_dys, k_uoro = jax.random.split(jax.random.key(args.seed), 4)
    params = jax.tree.map(lambda a: a.astype(f64), cell.init(k_params))
    xs = jax.random.normal(k_xs, (B, T, args.input_size), f64)
    dys = jax.random.normal(k_dys, (B, T, cell.output_size), f64)
    print(f"d/dparams of sum <dy, y>: {args.cell}, T={T}, H={args.hidden}, "
          f"I={args.input_size}, B={B}, float64; errors against Autodiff, "
          f"XLA temp bytes of the compiled gradient, median ms of {args.repeats} calls",
          flush=True)
    rows = compare_methods(cell, params, xs, dys, k_uoro, snapshots=args.snapshots,
                           truncate=args.truncate, uoro_samples=args.samples,
                           rtrl_max_params=args.rtrl_max_params, repeats=args.repeats)
    print(format_methods(rows))
    path = os.path.join(args.out, "methods.csv")
    write_methods_csv(rows, path)
    print(f"wrote {path}")
    return 0
