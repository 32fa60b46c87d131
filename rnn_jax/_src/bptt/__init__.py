"""Hand-written backpropagation through time: per-cell backward steps, the sequence backward,
the :class:`ManualBPTT` gradient method and the checks behind ``rnn-jax verify``."""
