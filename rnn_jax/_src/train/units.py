"""Pictures of single hidden units over source text (Karpathy, Johnson & Fei-Fei 2015).

:func:`unit_activations` runs a character model over a text and returns every hidden
unit's value after each character; :func:`pick_units` finds the strongest units
automatically: those whose activation correlates most (in absolute value) with a
feature of the text, by default the indentation depth of the current line, and
otherwise those of largest variance; :func:`plot_unit` draws the text with each
character's background coloured by the unit's value, one PNG per unit.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from rnn_jax._src.train.data_text import SEP, Vocab


def indentation_depth(text: str) -> np.ndarray:
    """Leading spaces of the line each character belongs to (tabs count as 4)."""
    out = np.zeros(len(text))
    i = 0
    for line in text.splitlines(keepends=True):
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        depth = lead.count(" ") + 4 * lead.count("\t")
        out[i:i + len(line)] = depth
        i += len(line)
    return out


def unit_activations(model, params: Any, vocab: Vocab, text: str) -> np.ndarray:
    """(len(text), H): the hidden state after reading each character (after a leading SEP)."""
    import jax.numpy as jnp

    from rnn_jax._src.train.models import hidden_states
    tokens = np.concatenate([[SEP], vocab.encode(text)]).astype(np.int32)
    hs = hidden_states(model, params, jnp.asarray(tokens)[None])[0]
    return np.asarray(hs)[1:]


def pick_units(acts: np.ndarray, feature: np.ndarray | None = None, k: int = 4):
    """Indices of the ``k`` strongest units and their scores.

    With ``feature`` (one value per character): the largest ``|corr(unit, feature)|``;
    without: the largest variance.
    """
    if feature is None:
        score = acts.var(axis=0)
    else:
        a = acts - acts.mean(axis=0)
        f = feature - feature.mean()
        denom = np.sqrt((a ** 2).sum(axis=0) * (f ** 2).sum()) + 1e-12
        score = np.abs(a.T @ f) / denom
    order = np.argsort(-score)[:k]
    return order, score[order]


def plot_unit(text: str, values: np.ndarray, path: str | None = None, *, title: str = "",
              max_lines: int = 40, max_cols: int = 80, cmap: str = "coolwarm"):
    """Draws ``text`` with each character's background coloured by ``values`` (in [-1, 1]).

    Returns the matplotlib figure; saves a PNG when ``path`` is given.
    """
    import matplotlib
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    lines = text.split("\n")[:max_lines]
    grid = np.full((len(lines), max_cols), np.nan)
    i = 0
    for r, line in enumerate(lines):
        n = max(0, min(len(line) + 1, max_cols, len(values) - i))  # + the newline
        grid[r, :n] = values[i:i + n]
        i += len(line) + 1
    fig, ax = plt.subplots(figsize=(max_cols * 0.11, len(lines) * 0.2 + 0.6))
    vmax = max(1e-6, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0)
    ax.imshow(grid, cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
    for r, line in enumerate(lines):
        for c, ch in enumerate(line[:max_cols]):
            if not ch.isspace():
                ax.text(c, r, ch, ha="center", va="center", fontsize=6, family="monospace")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def save_unit_pictures(model, params, vocab: Vocab, text: str, out_dir: str, *, k: int = 4,
                       feature: str = "indent") -> list[str]:
    """One PNG per strongest unit in ``out_dir``; returns the paths."""
    acts = unit_activations(model, params, vocab, text)
    feat = indentation_depth(text) if feature == "indent" else None
    units, scores = pick_units(acts, feat, k)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for u, s in zip(units, scores):
        label = f"|corr with indentation| = {s:.2f}" if feat is not None else f"variance {s:.3f}"
        p = os.path.join(out_dir, f"unit_{int(u):04d}.png")
        plot_unit(text, acts[:, u], p, title=f"unit {int(u)}: {label}")
        paths.append(p)
    return paths
