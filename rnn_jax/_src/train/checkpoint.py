"""Checkpoints without pickle: a pytree's leaves in flax's msgpack format.

A checkpoint directory holds

* ``checkpoint.msgpack``: the leaves of the :class:`~rnn_jax._src.train.step.TrainState`
  (params, optimiser state, step, RNG key, carried state) as NumPy arrays, plus the
  tree structure as text for error messages;
* ``config.json``: whatever the caller needs to rebuild the model and the run.

Restoring needs a template pytree of the same structure (build the model and a
fresh state from ``config.json``, then restore into it). Files are written to a
temporary name and moved into place with ``os.replace``, so a run killed while
saving leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np
from flax import serialization

CHECKPOINT = "checkpoint.msgpack"
CONFIG = "config.json"


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(directory: str, tree: Any) -> str:
    """Writes the leaves of ``tree`` to ``directory/checkpoint.msgpack`` atomically."""
    os.makedirs(directory, exist_ok=True)
    leaves, treedef = jax.tree.flatten(tree)
    payload = {
        "format": "rnn_jax.checkpoint/1",
        "treedef": str(treedef),
        "leaves": {str(i): np.asarray(x) for i, x in enumerate(leaves)},
    }
    path = os.path.join(directory, CHECKPOINT)
    _atomic_write(path, serialization.msgpack_serialize(payload))
    return path


def restore_checkpoint(directory: str, template: Any) -> Any:
    """Reads a checkpoint into the structure of ``template``; shapes and dtypes must match."""
    path = os.path.join(directory, CHECKPOINT)
    with open(path, "rb") as f:
        payload = serialization.msgpack_restore(f.read())
    leaves_t, treedef = jax.tree.flatten(template)
    stored = payload["leaves"]
    if len(stored) != len(leaves_t):
        raise ValueError(f"{path} holds {len(stored)} arrays, the template has {len(leaves_t)}; "
                         f"stored structure: {payload.get('treedef')}")
    leaves = []
    for i, t in enumerate(leaves_t):
        x = np.asarray(stored[str(i)])
        t = np.asarray(t)
        if x.shape != t.shape or x.dtype != t.dtype:
            raise ValueError(f"{path}: array {i} is {x.dtype}{x.shape}, "
                             f"the template expects {t.dtype}{t.shape}")
        leaves.append(jax.numpy.asarray(x))
    return jax.tree.unflatten(treedef, leaves)


def has_checkpoint(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, CHECKPOINT))


def save_config(directory: str, config: dict) -> None:
    os.makedirs(directory, exist_ok=True)
    _atomic_write(os.path.join(directory, CONFIG),
                  json.dumps(config, indent=2, sort_keys=True).encode("utf-8"))


def load_config(directory: str) -> dict:
    with open(os.path.join(directory, CONFIG), encoding="utf-8") as f:
        return json.load(f)
