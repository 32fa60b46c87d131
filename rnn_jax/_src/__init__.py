"""Private implementation of rnn_jax. Import from :mod:`rnn_jax` instead."""
