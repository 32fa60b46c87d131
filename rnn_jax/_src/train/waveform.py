"""The Clockwork RNN paper's sequence-generation task (Koutník et al. 2014, §4.1).

A network that reads no input (a constant zero) must generate a 320-sample audio clip from its
own dynamics; the loss is the mean squared error at every step, the metric the normalised MSE
``NMSE = MSE / Var(target)`` (0: perfect; 1: as good as the clip's mean). The clip is a real
recording shipped in a PyPI package, never downloaded: a spoken digit of the ``captcha``
package (``captcha/data/D/default.wav``, 8 kHz, 8-bit), the 320-sample window of the
largest energy, scaled to a peak of 1. One sequence, the whole of it per step (full BPTT).
"""
from __future__ import annotations

import importlib.resources
import io
import json
import os
import wave
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src.train.models import build_model


def load_clip(digit: int = 0, length: int = 320) -> np.ndarray:
    """The clip ``(length,)`` float32 in ``[-1, 1]``: the ``length`` samples of the spoken
    ``digit`` (0-9) of the ``captcha`` package with the largest energy, peak-normalised."""
    try:
        data = importlib.resources.files("captcha").joinpath(f"data/{digit}/default.wav")
    except ModuleNotFoundError:
        raise RuntimeError("the waveform task reads a recording of the 'captcha' package: "
                           "pip install captcha (or rnn-jax[train])") from None
    with wave.open(io.BytesIO(data.read_bytes())) as w:
        raw = np.frombuffer(w.readframes(w.getnframes()), np.uint8)
    x = (raw.astype(np.float64) - 128.0) / 128.0
    if length > len(x):
        raise ValueError(f"length={length} exceeds the recording's {len(x)} samples")
    energy = np.convolve(x ** 2, np.ones(length), "valid")
    clip = x[int(np.argmax(energy)):][:length]
    return (clip / np.abs(clip).max()).astype(np.float32)


def setup_waveform(cfg: dict):
    """The :class:`~rnn_jax._src.train.tasks.Setup` of the waveform task."""
    from rnn_jax._src.train.tasks import Setup, _no_carry

    target = jnp.asarray(load_clip(cfg.get("digit", 0), cfg["length"]))
    model = build_model(dict(cell=cfg["cell"], input_size=1, hidden=cfg["hidden"],
                             output_size=1, init=cfg["init"]))
    inputs = jnp.zeros((1, cfg["length"], 1), jnp.float32)
    variance = float(jnp.var(target))

    def mse(params, batch):
        del batch
        return jnp.mean((generate(model, params, inputs) - target) ** 2)

    eval_mse = jax.jit(mse)
    return Setup(model, _no_carry(mse), lambda s: None,
                 lambda p: {"nmse": eval_mse(p, None) / variance}, None,
                 {"nmse_predict_mean": 1.0}, 1, {})


def generate(model, params, inputs) -> jax.Array:
    """The model's output sequence ``(T,)`` for ``inputs`` ``(1, T, 1)``."""
    return model.apply(params, inputs)[1][0, :, 0]


def plot_waveforms(run_dirs: Sequence[str], path: str) -> None:
    """A PNG at ``path``: the target clip and the output of each trained run in
    ``run_dirs`` (``rnn-jax train waveform`` directories), one panel per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rnn_jax._src.train.sampling import load_trained

    fig, axes = plt.subplots(len(run_dirs), 1, figsize=(8, 1.6 * len(run_dirs)), sharex=True,
                             squeeze=False)
    for ax, run in zip(axes[:, 0], run_dirs):
        model, params, cfg = load_trained(run)
        target = load_clip(cfg.get("digit", 0), cfg["length"])
        out = np.asarray(generate(model, params, jnp.zeros((1, cfg["length"], 1))))
        nmse = float(np.mean((out - target) ** 2) / np.var(target))
        ax.plot(target, color="0.6", lw=1.5, label="target")
        ax.plot(out, color="C3", lw=1, label="generated")
        ax.set_title(f"{cfg['cell']}, {cfg['params']} parameters: NMSE {nmse:.3g}", fontsize=9)
        ax.set_ylim(-1.3, 1.3)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("sample (8 kHz)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m rnn_jax._src.train.waveform RUN... --out PNG``: :func:`plot_waveforms`."""
    import argparse
    parser = argparse.ArgumentParser(description=plot_waveforms.__doc__)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    plot_waveforms(args.runs, args.out)
    print(json.dumps({"wrote": args.out}))


if __name__ == "__main__":
    main()
