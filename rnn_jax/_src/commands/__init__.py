"""Subcommands of the ``rnn-jax`` command line, one module each (see ``rnn_jax._src.cli``)."""
