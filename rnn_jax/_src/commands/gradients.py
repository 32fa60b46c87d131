"""``rnn-jax gradients``: gradient norm against lag for several cells; a table and a PNG.

For each model (tanh Elman at several spectral radii of ``W_hh``, a linear Elman just above
radius 1, ReLU with identity init, tanh with orthogonal init, LSTM, GRU) it computes the exact
Jacobians ``∂h_T/∂h_k`` on random input sequences and prints, per model, ``ρ(W_hh)``,
``σ_max(W_hh)``, Pascanu's per-step bound ``γ σ_max``, the mean norm at a few lags and the
measured per-step growth factor; it writes ``gradients.png`` (log scale) and ``gradients.csv``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from rnn_jax._src.commands._args import positive_int, writable_dir

NAME = "gradients"
HELP = "gradient norm against lag (vanishing / exploding) for several cells: table and PNG"


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory for gradients.png and gradients.csv (created if needed)")
    parser.add_argument("--length", type=positive_int, default=100, help="sequence length T")
    parser.add_argument("--hidden", type=positive_int, default=32, help="hidden size H")
    parser.add_argument("--input-size", type=positive_int, default=8, help="input size I")
    parser.add_argument("--sequences", type=positive_int, default=8,
                        help="random input sequences averaged over")
    parser.add_argument("--radii", type=_floats, default=[0.5, 0.9, 1.0, 1.5],
                        help="spectral radii of W_hh for the tanh RNNs")
    parser.add_argument("--linear-radius", type=float, default=1.02,
                        help="spectral radius of the linear RNN, 0 to leave it out")
    parser.add_argument("--seed", type=int, default=0)


def main(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp

    # Norms at long lags fall far below float32's range; this process computes in float64.
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
