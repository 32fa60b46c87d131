"""Test configuration: float64 available and a fast hypothesis profile.

* ``jax_enable_x64`` so gradient checks can run in float64 (cells take ``dtype=jnp.float64``).
* Hypothesis profile ``ci`` (default; ``HYPOTHESIS_PROFILE=dev`` for more examples): few examples,
  no deadline (the first example of a shape pays for compilation).
"""

import os

import jax
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)

settings.register_profile(
    "ci", max_examples=15, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
