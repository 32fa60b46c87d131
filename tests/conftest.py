"""Test configuration: float64 available and a fast hypothesis profile.

* ``jax_enable_x64`` so gradient checks can run in float64 (cells take ``dtype=jnp.float64``).
* Hypothesis profile ``ci`` (default; ``HYPOTHESIS_PROFILE=dev`` for more examples): few examples,
  no deadline (the first example of a shape pays for compilation).
* Faster compilation. The suite's problems are small, so XLA's compile time is most of its run
  time: LLVM's expensive optimisation passes are skipped (they change the speed of the compiled
  code, not its values), and a persistent compilation cache, shared by the worker processes and
  the subprocesses they start and removed at exit, compiles a program that several tests build
  once. Set ``XLA_FLAGS`` or ``JAX_COMPILATION_CACHE_DIR`` to choose otherwise.
"""

import atexit
import os
import shutil
import tempfile

if "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = ("--xla_backend_optimization_level=0 "
                               "--xla_llvm_disable_expensive_passes=true")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="rnn_jax_tests_xla_cache_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import jax  # noqa: E402  (after the environment above, which JAX reads at import)
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update("jax_enable_x64", True)
# Also where a plugin imported JAX before this file set the environment:
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
jax.config.update("jax_persistent_cache_min_entry_size_bytes",
                  int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"]))

settings.register_profile(
    "ci", max_examples=15, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
