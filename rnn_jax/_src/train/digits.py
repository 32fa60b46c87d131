"""Data of the CTC and captioning tasks: handwritten and spoken digits shipped in packages.

* Handwritten digits: scikit-learn's ``load_digits`` (1,797 images of 8×8 pixels, 0-16 ink,
  from 43 writers; UCI optical recognition of handwritten digits), in the wheel. Images with
  index ``i % 5 == 0`` are the test images, the rest training images, so that test strips and
  canvases are made of images never seen in training.
* Spoken digits: the ``captcha`` package's recordings ``captcha/data/0-9/default.wav`` (one
  speaker, 8 kHz, 8-bit), in the wheel. Utterances vary the speed (resampling), loudness, gaps
  and noise of these ten recordings.

Everything is drawn from explicit seeds with numpy; features are computed in JAX
(:func:`log_mel`).
"""
from __future__ import annotations

import functools
import importlib.resources
import io
import wave
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src.train.seq_data import pad_rows

RATE = 8000                 # Hz, the recordings' sampling rate
WINDOW, HOP, MELS = 256, 128, 32


@functools.lru_cache(maxsize=None)
def digit_images() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images (1797, 8, 8) in [0, 1], labels, is_test)``."""
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError:
        raise RuntimeError("the reading and captioning tasks use scikit-learn's handwritten "
                           "digits: pip install scikit-learn (or rnn-jax[train])") from None
    d = load_digits()
    return ((d.images / 16.0).astype(np.float32), d.target.astype(np.int32),
            np.arange(len(d.target)) % 5 == 0)


class CTCSet(NamedTuple):
    """Inputs ``x (N, T, F)`` with ``lengths``, label strings ``labels (N, L)`` with
    ``label_lengths``, and ``frames (N, T)``: each frame's digit where the alignment is known
    (reading: the digit under that column), else -1."""

    x: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    label_lengths: np.ndarray
    frames: np.ndarray


def read_strips(seed: int, n: int, test: bool = False, digits: tuple[int, int] = (2, 8),
                gap: tuple[int, int] = (1, 4)) -> CTCSet:
    """``n`` strips of 2-8 handwritten digits side by side, ``gap`` blank columns before each
    and after the last; frames are the strip's columns (8 pixels each)."""
    images, labels, is_test = digit_images()
    pool = np.flatnonzero(is_test == test)
    r = np.random.default_rng((seed, 11, int(test)))
    L = digits[1]
    T = L * 8 + (L + 1) * gap[1]
    xs, ys, fs = [], [], []
    for _ in range(n):
        k = int(r.integers(digits[0], digits[1] + 1))
        pick = pool[r.integers(0, len(pool), k)]
        cols, frame = [], []
        for i in pick:
            g = int(r.integers(gap[0], gap[1] + 1))
            cols += [np.zeros((g, 8), np.float32), images[i].T]
            frame += [-1] * g + [int(labels[i])] * 8
        g = int(r.integers(gap[0], gap[1] + 1))
        cols.append(np.zeros((g, 8), np.float32))
        frame += [-1] * g
        xs.append(np.concatenate(cols))
        ys.append(labels[pick])
        fs.append(np.array(frame, np.int32))
    return CTCSet(pad_rows(xs, T), np.array([len(x) for x in xs], np.int32), pad_rows(ys, L),
                  np.array([len(y) for y in ys], np.int32), pad_rows(fs, T, -1))


@functools.lru_cache(maxsize=None)
def spoken_digits() -> tuple[np.ndarray, ...]:
    """The ten recordings, float32 in [-1, 1], leading and trailing silence trimmed."""
    out = []
    for d in range(10):
        try:
            data = importlib.resources.files("captcha").joinpath(f"data/{d}/default.wav")
            raw = data.read_bytes()
        except ModuleNotFoundError:
            raise RuntimeError("the listening task uses the 'captcha' package's recordings: "
                               "pip install captcha (or rnn-jax[train])") from None
        with wave.open(io.BytesIO(raw)) as w:
            x = (np.frombuffer(w.readframes(w.getnframes()), np.uint8) - 128.0) / 128.0
        loud = np.flatnonzero(np.abs(x) > 0.05)
        out.append(x[loud[0]:loud[-1] + 1].astype(np.float32))
    return tuple(out)


def utterances(seed: int, n: int, test: bool = False,
               digits: tuple[int, int] = (2, 5)) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` waveforms of 2-5 spoken digits: each recording resampled to 0.8-1.25 of its
    speed and scaled by 0.5-1, gaps of 0-250 ms, 100 ms before and after, Gaussian noise at a
    signal-to-noise ratio of 0-20 dB. Returns ``(waves, digit arrays)``."""
    rec = spoken_digits()
    r = np.random.default_rng((seed, 13, int(test)))
    waves, labels = [], []
    for _ in range(n):
        k = int(r.integers(digits[0], digits[1] + 1))
        ds = r.integers(0, 10, k)
        parts = [np.zeros(int(0.1 * RATE), np.float32)]
        for i, d in enumerate(ds):
            x = rec[d]
            speed = r.uniform(0.8, 1.25)
            x = np.interp(np.arange(0, len(x) - 1, speed), np.arange(len(x)), x)
            parts.append((r.uniform(0.5, 1.0) * x).astype(np.float32))
            gap = 0.1 if i == k - 1 else r.uniform(0.0, 0.25)
            parts.append(np.zeros(int(gap * RATE), np.float32))
        w = np.concatenate(parts)
        power = np.mean(w ** 2) * 10 ** (-r.uniform(0, 20) / 10)
        waves.append((w + r.normal(0, np.sqrt(power), len(w))).astype(np.float32))
        labels.append(ds.astype(np.int32))
    return waves, labels


def mel_filters(n_fft: int = WINDOW, mels: int = MELS, rate: int = RATE) -> np.ndarray:
    """Triangular mel filters ``(n_fft // 2 + 1, mels)`` from 0 Hz to ``rate / 2``."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)        # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)          # noqa: E731
    edges = hz(np.linspace(0, mel(rate / 2), mels + 2))
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return tri.T.astype(np.float32)


def log_mel(waves: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Log-mel features ``(B, F, MELS)`` of padded waveforms ``(B, N)`` (Hann windows of
    ``WINDOW`` samples every ``HOP``) and the valid frames ``(B,)``."""
    waves = jnp.asarray(waves)
    F = 1 + (waves.shape[1] - WINDOW) // HOP
    idx = jnp.arange(F)[:, None] * HOP + jnp.arange(WINDOW)[None]
    frames = waves[:, idx] * jnp.hanning(WINDOW)
    power = jnp.abs(jnp.fft.rfft(frames, axis=-1)) ** 2
    feats = jnp.log(power @ mel_filters() + 1e-6)
    n = jnp.maximum(0, 1 + (jnp.asarray(lengths) - WINDOW) // HOP)
    return (feats + 2.0) / 4.0, n                          # about zero mean, unit scale


def listen_set(seed: int, n: int, test: bool = False) -> CTCSet:
    """``n`` utterances as log-mel frames (:func:`utterances`, :func:`log_mel`)."""
    waves, labels = utterances(seed, n, test)
    N = max(len(w) for w in waves)
    x, lengths = log_mel(pad_rows(waves, N), np.array([len(w) for w in waves]))
    return CTCSet(np.asarray(x), np.asarray(lengths, np.int32), pad_rows(labels, 5),
                  np.array([len(y) for y in labels], np.int32),
                  np.full(x.shape[:2], -1, np.int32))


WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class Canvases(NamedTuple):
    """``images (N, size, size)``; per image, in caption order (left to right): ``digits
    (N, 4)``, their boxes' top-left corners ``corners (N, 4, 2)`` as (row, column) (-1 past
    ``counts``) and ``counts (N,)``."""

    images: np.ndarray
    digits: np.ndarray
    corners: np.ndarray
    counts: np.ndarray


def canvases(seed: int, n: int, test: bool = False, size: int = 32,
             digits: tuple[int, int] = (1, 4)) -> Canvases:
    """``n`` canvases with 1-4 handwritten digits at random positions: 8×8 boxes that do not
    overlap, whose left edges differ by at least 3 pixels (so left to right is clear)."""
    images, labels, is_test = digit_images()
    pool = np.flatnonzero(is_test == test)
    r = np.random.default_rng((seed, 17, int(test)))
    M = digits[1]
    out = Canvases(np.zeros((n, size, size), np.float32), np.full((n, M), -1, np.int32),
                   np.full((n, M, 2), -1, np.int32), np.zeros(n, np.int32))
    for b in range(n):
        k = int(r.integers(digits[0], digits[1] + 1))
        boxes: list[tuple[int, int]] = []
        while len(boxes) < k:
            y, x = (int(v) for v in r.integers(0, size - 7, 2))
            if all((abs(y - y2) >= 8 or abs(x - x2) >= 8) and abs(x - x2) >= 3
                   for y2, x2 in boxes):
                boxes.append((y, x))
        boxes.sort(key=lambda c: c[1])
        pick = pool[r.integers(0, len(pool), k)]
        for j, ((y, x), i) in enumerate(zip(boxes, pick)):
            out.images[b, y:y + 8, x:x + 8] = np.maximum(out.images[b, y:y + 8, x:x + 8],
                                                         images[i])
            out.digits[b, j], out.corners[b, j] = labels[i], (y, x)
        out.counts[b] = k
    return out
