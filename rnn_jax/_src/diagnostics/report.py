"""A standard set of cells and the table of their gradient norm against lag.

Used by ``rnn-jax gradients`` and the vanishing/exploding notebook. Each model is run on a few
random input sequences ``x_t ~ N(0, I)``; the curve is the mean over the sequences of
``‖∂h_T/∂h_{T-l}‖_2`` (spectral norm, whole carry: ``(h, c)`` for an LSTM) at each lag ``l``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src.cell import Cell
from rnn_jax._src.cells.clockwork import clockwork
from rnn_jax._src.cells.elman import elman, irnn
from rnn_jax._src.cells.gru import gru
from rnn_jax._src.cells.lstm import lstm
from rnn_jax._src.cells.scrn import scrn
import rnn_jax._src.diagnostics.spectra as spectra
from rnn_jax._src.diagnostics.jacobians import block_norms, carry_blocks, jacobian_norms


class Model(NamedTuple):
    """A cell with fixed parameters; ``gamma`` is ``sup|φ'|`` for an Elman cell, else None."""

    name: str
    cell: Cell
    params: Any
    gamma: Optional[float] = None


def elman_with_radius(key: jax.Array, input_size: int, hidden: int, rho: float,
                      activation: str = "tanh", dtype: Any = jnp.float32,
                      cell: Optional[Cell] = None) -> Model:
    """An Elman cell whose ``W_hh`` is Gaussian ``N(0, 1/H)`` rescaled to spectral radius ``rho``.

    Pass ``cell`` (an Elman cell of these sizes and activation) to share it, and so its
    compilations, between models.
    """
    cell = cell or elman(input_size, hidden, activation=activation, dtype=dtype)
    k1, k2 = jax.random.split(key)
    w = jax.random.normal(k2, (hidden, hidden), dtype) / math.sqrt(hidden)
    w = spectra.scale_to_spectral_radius(w, rho).astype(dtype)
    params = _jit(cell.init)(k1)._replace(w_hh=w)
    return Model(f"{activation} rho={rho:g}", cell, params, spectra.derivative_bound(activation))


def standard_models(key: jax.Array, input_size: int, hidden: int,
                    radii: Sequence[float] = (0.5, 0.9, 1.0, 1.5), linear_radius: float = 1.02,
                    dtype: Any = jnp.float32) -> list[Model]:
    """tanh Elman at several spectral radii, a linear Elman just above radius 1, ReLU with
    identity init (IRNN), tanh with orthogonal init, LSTM (forget bias 1), GRU, a Clockwork
    RNN (4 modules of periods 1, 2, 4, 8, the paper's init) and an SCRN (``0.4 H`` context
    units, α = 0.95)."""
    keys = iter(jax.random.split(key, len(radii) + 7))
    tanh = elman(input_size, hidden, dtype=dtype)   # orthogonal W_hh by default; one cell
    models = [elman_with_radius(next(keys), input_size, hidden, r, dtype=dtype, cell=tanh)
              for r in radii]
    if linear_radius:
        models.append(elman_with_radius(next(keys), input_size, hidden, linear_radius,
                                        activation="identity", dtype=dtype))
    for name, cell, gamma in [
        ("relu identity (IRNN)", irnn(input_size, hidden, dtype=dtype), 1.0),
        ("tanh orthogonal", tanh, 1.0),
        ("lstm (h,c)", lstm(input_size, hidden, dtype=dtype), None),
        ("gru", gru(input_size, hidden, dtype=dtype), None),
        ("clockwork", clockwork(input_size, max(4, hidden - hidden % 4), dtype=dtype), None),
        ("scrn", scrn(input_size, hidden, max(1, round(0.4 * hidden)), dtype=dtype), None),
    ]:
        models.append(Model(name, cell, _jit(cell.init)(next(keys)), gamma))
    return models


_CACHE: dict = {}  # (kind, id(obj)) -> (obj, jitted function); small and bounded


def _cached(kind: str, obj: Any, make):
    key = (kind, id(obj))
    if key not in _CACHE or _CACHE[key][0] is not obj:
        if len(_CACHE) >= 64:
            _CACHE.clear()
        _CACHE[key] = (obj, jax.jit(make(obj)))
    return _CACHE[key][1]


def _jit(fn):
    """``jax.jit(fn)``, one wrapper per function object: models sharing a cell compile once."""
    return _cached("fn", fn, lambda f: f)


def lag_curve(model: Model, xs: jax.Array) -> np.ndarray:
    """Mean over the sequences ``xs`` ``(B, T, I)`` of ``‖∂h_T/∂h_{T-l}‖_2``, ``l = 0..T``."""
    def make(cell):
        return lambda params, xs: jax.vmap(lambda x: jacobian_norms(cell, params, x))(xs)

    return np.asarray(_cached("curves", model.cell, make)(model.params, xs)).mean(axis=0)


def block_curves(model: Model, xs: jax.Array) -> dict:
    """For a Clockwork RNN or an SCRN, ``{"NAME BLOCK": curve}``: the mean over ``xs`` of
    ``‖∂h_T/∂h_{T-l}[block]‖_2`` for each module, or for ``h`` and the slow context ``s``
    (:func:`rnn_jax.diagnostics.carry_blocks`); empty for other cells."""
    if model.cell.name not in ("clockwork", "scrn"):
        return {}
    out = {}
    for name, cols in carry_blocks(model.cell, model.params).items():
        def make(cell, cols=cols):
            return lambda p, xs: jax.vmap(lambda x: block_norms(cell, p, x, cols))(xs)
        fn = jax.jit(make(model.cell))
        out[f"{model.name} {name}"] = np.asarray(fn(model.params, xs)).mean(axis=0)
    return out


def growth_rate(curve: np.ndarray) -> float:
    """Per-step factor ``(‖J_L‖ / ‖J_1‖)^{1/(L-1)}`` between lag 1 and the last lag ``L``."""
    first, last = float(curve[1]), float(curve[-1])
    if first <= 0 or len(curve) < 3:
        return float("nan")
    return (last / first) ** (1.0 / (len(curve) - 2))


class Row(NamedTuple):
    name: str
    rho: Optional[float]        # spectral radius of W_hh (Elman only)
    sigma: Optional[float]      # largest singular value of W_hh
    bound_rate: Optional[float]  # γ σ_max, Pascanu's per-step bound
    norms: dict                 # lag -> mean norm
    rate: float                 # measured per-step factor


def summarise(models: Sequence[Model], curves: dict, lags: Sequence[int]) -> list[Row]:
    """One :class:`Row` per model, the norms read at ``lags`` (those ``<= T``)."""
    rows = []
    for m in models:
        curve = curves[m.name]
        rho = sigma = bound = None
        if m.gamma is not None:
            w = spectra.recurrent_matrix(m.cell, m.params)
            rho, sigma = spectra.spectral_radius(w), float(spectra.largest_singular_value(w))
            bound = m.gamma * sigma
        norms = {l: float(curve[l]) for l in lags if l < len(curve)}
        rows.append(Row(m.name, rho, sigma, bound, norms, growth_rate(curve)))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A fixed-width text table of :func:`summarise` rows."""
    lags = list(rows[0].norms) if rows else []
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    head = (f"{'model':<22}{'rho(W)':>8}{'s_max':>8}{'g*s_max':>9}"
            + "".join(f"{'lag ' + str(l):>11}" for l in lags) + f"{'rate':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name:<22}{fmt(r.rho):>8}{fmt(r.sigma):>8}{fmt(r.bound_rate):>9}"
                     + "".join(f"{r.norms[l]:>11.2e}" for l in lags) + f"{r.rate:>8.3f}")
    return "\n".join(lines)


def gradient_report(length: int = 100, hidden: int = 32, input_size: int = 8,
                    sequences: int = 8, seed: int = 0,
                    radii: Sequence[float] = (0.5, 0.9, 1.0, 1.5), linear_radius: float = 1.02,
                    lags: Sequence[int] = (1, 10, 30, 100), dtype: Any = jnp.float32):
    """Builds :func:`standard_models`, computes their curves on random inputs.

    Returns:
      ``(models, curves, rows)``: ``curves[name]`` is the ``(T+1,)`` mean-norm curve by lag.
    """
    km, kx = jax.random.split(jax.random.key(seed))
    models = standard_models(km, input_size, hidden, radii, linear_radius, dtype)
    xs = jax.random.normal(kx, (sequences, length, input_size), dtype)
    curves = {m.name: lag_curve(m, xs) for m in models}
    blocks = []
    for m in models:   # per Clockwork module, and the SCRN's h and slow context s
        for name, curve in block_curves(m, xs).items():
            curves[name] = curve
            blocks.append(Model(name, m.cell, m.params))
    return models + blocks, curves, summarise(models + blocks, curves, lags)
