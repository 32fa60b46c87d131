"""Thin script form of ``rnn-jax bench``: ``python benchmarks/run.py [options]``."""

import sys

from rnn_jax._src.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
