"""One module per cell: each factory returns a :class:`rnn_jax.Cell`."""
