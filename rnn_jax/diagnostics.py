"""Vanishing and exploding gradients: ``∂h_T/∂h_k`` against the lag, spectra of ``W_hh``, the
Pascanu, Mikolov & Bengio (2013) bound, per-step ``‖∂L/∂h_t‖`` and plots.

Public re-exports of :mod:`rnn_jax._src.diagnostics`; see ``rnn-jax gradients`` and
``notebooks/05_vanishing_exploding.ipynb``.
"""

from rnn_jax._src.diagnostics import *  # noqa: F401,F403
from rnn_jax._src.diagnostics import __all__  # noqa: F401
