"""The machine, library versions and allocator/threading settings a result came from.

Allocator (``MALLOC_*``, ``GLIBC_TUNABLES``, ``LD_PRELOAD``) and threading (``OMP_*``,
``MKL_*``) settings change PyTorch's CPU timings, and ``XLA_FLAGS`` JAX's, so every report records
them.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from typing import Any

_PACKAGES = ("jax", "jaxlib", "flax", "equinox", "torch", "numpy", "rnn_jax")
_ENV_PREFIXES = ("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD", "XLA_FLAGS", "OMP_", "MKL_",
                 "KMP_", "GOMP_", "TF_CPP", "JAX_")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (or :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    """A JSON-ready description of where and with what the benchmark ran."""
    import jax

    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith(_ENV_PREFIXES)}
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_device_kind": jax.devices()[0].device_kind,
        # None: XLA's default, which may run float32 matmuls on a GPU's TF32 tensor cores.
        "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
        "versions": {p: _version(p) for p in _PACKAGES}, "env": env,
        "load_avg": list(os.getloadavg()),
    }
    try:
        from rnn_jax._src.bench.peers_torch import versions

        info["torch"] = versions()
    except ImportError:
        pass
    return info
