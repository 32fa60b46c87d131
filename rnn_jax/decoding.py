"""Decoding until an end symbol from any ``step(state, token) -> (state, logits)``: greedy,
sampling with a temperature, and beam search with length normalisation.

Public re-exports of :mod:`rnn_jax._src.decoding`.
"""

from rnn_jax._src.decoding import Decoded, beam_search, greedy, sample  # noqa: F401

__all__ = ["Decoded", "beam_search", "greedy", "sample"]
