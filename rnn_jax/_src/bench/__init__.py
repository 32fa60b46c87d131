"""Benchmark harness: rnn_jax against flax, Equinox and PyTorch recurrent layers.

Run it with ``rnn-jax bench`` (see ``rnn_jax/_src/commands/bench.py``; method and results in
``benchmarks/README.md``). Third-party peers are imported lazily, inside the functions that
build them, so importing ``rnn_jax`` never needs torch, flax or Equinox.
"""
