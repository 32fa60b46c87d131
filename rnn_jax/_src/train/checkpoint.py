"""Checkpoints without pickle: a pytree's leaves in flax's msgpack format.

A checkpoint directory holds

* ``checkpoint.msgpack``: the leaves of the :class:`~rnn_jax._src.train.step.TrainState`
  (params, optimiser state, step, RNG key, carried state) as NumPy arrays, plus the
  tree structure as text for error messages;
* ``config.json``: whatever the caller needs to rebuild the model and the run.

Restoring needs a template pytree of the same structure (build the model and a
fresh state from ``config.json``, then restore into it). Files are written to a
temporary name and moved into place with ``os.replace``, so a run killed while
saving leaves the previous checkpoint intact (:func:`clean_temporary` removes what such a
write left behind). A file that is not a readable checkpoint raises :class:`CheckpointError`,
whose message names the file and what is wrong with it.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Any, Optional

import jax
import numpy as np
from flax import serialization

CHECKPOINT = "checkpoint.msgpack"
CONFIG = "config.json"
FORMAT = "rnn_jax.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint or config file that cannot be used; the message names the file."""


def atomic_write(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file and ``os.replace``: a reader sees
    the old file or the new one, never a torn one."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def clean_temporary(directory: str) -> list[str]:
    """Removes the temporary files of writes that were interrupted; returns their paths."""
    stale = sorted(glob.glob(os.path.join(glob.escape(directory), "*.tmp.*")))
    for path in stale:
        os.remove(path)
    return stale


def save_checkpoint(directory: str, tree: Any) -> str:
    """Writes the leaves of ``tree`` to ``directory/checkpoint.msgpack`` atomically (and its
    ``step``, when it has one, readable without a template: :func:`read_step`)."""
    os.makedirs(directory, exist_ok=True)
    leaves, treedef = jax.tree.flatten(tree)
    payload = {
        "format": FORMAT,
        "treedef": str(treedef),
        "leaves": {str(i): np.asarray(x) for i, x in enumerate(leaves)},
    }
    if getattr(tree, "step", None) is not None:
        payload["step"] = int(tree.step)
    path = os.path.join(directory, CHECKPOINT)
    atomic_write(path, serialization.msgpack_serialize(payload))
    return path


def _payload(path: str) -> dict:
    """The checkpoint's contents, or a :class:`CheckpointError` saying what is wrong."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({err.strerror})") from None
    if not data:
        raise CheckpointError(f"{path}: the checkpoint is empty")
    try:
        payload = serialization.msgpack_restore(data)
    except Exception as err:   # msgpack raises several types for torn or foreign bytes
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or damaged: "
                              f"{type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT \
            or not isinstance(payload.get("leaves"), dict):
        raise CheckpointError(f"{path}: not an rnn_jax checkpoint (no {FORMAT!r} record)")
    return payload


def read_step(directory: str) -> Optional[int]:
    """The step saved in ``directory``'s checkpoint (checking that it is readable), or None
    when the checkpoint has no step record."""
    step = _payload(os.path.join(directory, CHECKPOINT)).get("step")
    return None if step is None else int(step)


def restore_checkpoint(directory: str, template: Any) -> Any:
    """Reads a checkpoint into the structure of ``template``; shapes and dtypes must match
    (else :class:`CheckpointError`, naming the file and the first array that differs)."""
    path = os.path.join(directory, CHECKPOINT)
    payload = _payload(path)
    leaves_t, treedef = jax.tree.flatten(template)
    stored = payload["leaves"]
    if len(stored) != len(leaves_t):
        raise CheckpointError(f"{path} holds {len(stored)} arrays, the template has {len(leaves_t)}; "
                         f"stored structure: {payload.get('treedef')}")
    leaves = []
    for i, t in enumerate(leaves_t):
        if str(i) not in stored:
            raise CheckpointError(f"{path}: array {i} is missing")
        x = np.asarray(stored[str(i)])
        t = np.asarray(t)
        if x.shape != t.shape or x.dtype != t.dtype:
            raise CheckpointError(f"{path}: array {i} is {x.dtype}{x.shape}, the model "
                                  f"expects {t.dtype}{t.shape} (a checkpoint of another model?)")
        leaves.append(jax.numpy.asarray(x))
    return jax.tree.unflatten(treedef, leaves)


def has_checkpoint(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, CHECKPOINT))


def save_config(directory: str, config: dict) -> None:
    os.makedirs(directory, exist_ok=True)
    atomic_write(os.path.join(directory, CONFIG),
                 json.dumps(json_safe(config), indent=2, sort_keys=True,
                            allow_nan=False).encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN or Infinity)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def load_config(directory: str) -> dict:
    """The run's ``config.json``, or a :class:`CheckpointError` naming it."""
    path = os.path.join(directory, CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the run's config ({err.strerror})") from None
    except ValueError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: not a run config (not a JSON object)")
    return cfg
