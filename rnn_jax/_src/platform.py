"""The platform a computation runs on by default: that of ``jax.default_device`` where it is
set (a CPU computation on a GPU machine), else JAX's default backend."""

from __future__ import annotations

from typing import Optional

import jax

_ALIASES = {"cuda": "gpu", "rocm": "gpu"}


def default_platform(name: Optional[str] = None) -> str:
    """``name`` (a platform such as ``"cpu"`` or ``"cuda"``), or the default device's platform,
    as ``"cpu"``, ``"gpu"`` or ``"tpu"``."""
    if name is None:
        device = jax.config.jax_default_device
        name = jax.default_backend() if device is None else getattr(device, "platform", device)
    return _ALIASES.get(name, name)
