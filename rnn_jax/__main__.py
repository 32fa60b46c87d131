"""``python -m rnn_jax``: the same command line as the ``rnn-jax`` script."""

import sys

from rnn_jax._src.cli import main

sys.exit(main())
