"""Plots of gradient norm against lag (matplotlib, drawn on an Agg canvas).

No pyplot and no global backend switch: a :class:`matplotlib.figure.Figure` is built on its own
Agg canvas, so the functions work headless and leave a notebook's backend alone (the returned
figure still displays inline in Jupyter).
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np


def plot_lag_norms(curves: Mapping[str, np.ndarray], path: Optional[str] = None, *,
                   bounds: Optional[Mapping[str, float]] = None,
                   title: str = "Jacobian norm against lag",
                   ylabel: str = r"$\|\partial h_T / \partial h_{T-l}\|_2$"):
    """Log-scale plot of each curve (entry ``l`` = norm at lag ``l``) against the lag.

    Args:
      curves: name -> norms by lag. Zeros (a ReLU unit that switched off) cannot be drawn on a
        log axis and are left out.
      path: if given, the figure is saved there as PNG.
      bounds: optional name -> per-step factor ``γ σ_max``; drawn dashed as ``(γ σ_max)^l``
        in the colour of the curve (Pascanu et al. 2013).

    Returns:
      the :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = {}
    for name, curve in curves.items():
        curve = np.asarray(curve, dtype=np.float64)
        ok = curve > 0
        (line,) = ax.plot(np.arange(curve.size)[ok], curve[ok], label=name, lw=1.6)
        colours[name] = line.get_color()
    ax.set_yscale("log")
    ax.autoscale(False)  # the bounds below must not stretch the axes
    for name, rate in (bounds or {}).items():
        if rate is not None and name in curves:
            lags = np.arange(np.asarray(curves[name]).size)
            with np.errstate(over="ignore", under="ignore"):
                ax.plot(lags, np.power(float(rate), lags), ls="--", lw=0.9, color=colours[name])
    ax.set_xlabel("lag $l = T - k$")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", ncol=2)
    if bounds:
        ax.text(0.99, 0.99, "dashed: Pascanu bound $(\\gamma\\,\\sigma_{max})^l$",
                transform=ax.transAxes, ha="right", va="top", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, format="png")
    return fig
