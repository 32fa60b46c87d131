"""Training: jitted optax steps, truncated BPTT over streams, safe checkpoints, the adding and
copy tasks, the character-level corpus and its n-gram baseline, sampling and hidden-unit pictures.

Public face of :mod:`rnn_jax._src.train`; names load on first use, so ``import rnn_jax`` does not
need the ``train`` extra (flax, Orbax checkpoints, tqdm, matplotlib).
"""

from rnn_jax._src.train import __all__, __dir__, __getattr__  # noqa: F401
