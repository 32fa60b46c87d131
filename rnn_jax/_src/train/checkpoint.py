"""Checkpoints without pickle: the training state through Orbax, the config as JSON.

A run directory holds

* ``state/<step>/``: the :class:`~rnn_jax._src.train.step.TrainState` (params, optimiser
  state, step, RNG key, carried state), written by Orbax's ``CheckpointManager`` (arrays in
  TensorStore's OCDBT format, metadata as JSON; the newest step kept). Orbax writes a step
  into a temporary directory and renames it when complete, then removes the older step, so a
  run killed while saving keeps its previous checkpoint (:func:`clean_temporary` removes what
  such a write left behind). Arrays are restored onto the shardings of the template, so a
  state saved from ``N`` devices restores on ``M`` (:mod:`rnn_jax._src.train.sharding`).
* ``config.json``: whatever the caller needs to rebuild the model and the run.

Restoring needs a template pytree of the same structure (build the model and a fresh state
from ``config.json``, then restore into it). Runs saved before Orbax, with the leaves in one
``checkpoint.msgpack`` (flax's msgpack), are still read. A checkpoint that cannot be used
raises :class:`CheckpointError`, whose message names the file and what is wrong with it.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
from collections.abc import Iterator
from typing import Any, Optional

import jax
import numpy as np
from flax import serialization

STATE = "state"                    # Orbax's directory: one sub-directory per saved step
CHECKPOINT = "checkpoint.msgpack"  # the format before Orbax, still read
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
    """Removes the temporary files and Orbax step directories of writes that were interrupted;
    returns their paths."""
    root = glob.escape(directory)
    stale = sorted(glob.glob(os.path.join(root, "*.tmp.*"))
                   + glob.glob(os.path.join(root, STATE, "*.orbax-checkpoint-tmp*")))
    for path in stale:
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return stale


def _manager(directory: str, create: bool = False):
    import orbax.checkpoint as ocp
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=create,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.abspath(os.path.join(directory, STATE)),
                                 options=options, item_handlers=ocp.StandardCheckpointHandler())


def save_checkpoint(directory: str, tree: Any) -> str:
    """Saves ``tree`` (sharded or not) as ``directory/state/<step>`` with Orbax, ``<step>``
    being its ``step`` field (or the next number when it has none); returns that path. The
    previous step's checkpoint is removed once the new one is complete. Saving a step that is
    already saved replaces it (a training run only does so with the same state)."""
    import orbax.checkpoint as ocp
    manager = _manager(directory, create=True)
    latest = manager.latest_step()
    step = getattr(tree, "step", None)
    step = int(step) if step is not None else (0 if latest is None else latest + 1)
    if step in manager.all_steps():
        manager.delete(step)
    manager.save(step, args=ocp.args.StandardSave(tree), force=True)
    manager.wait_until_finished()
    manager.close()
    return os.path.join(directory, STATE, str(step))


def _payload(path: str) -> dict:
    """A pre-Orbax checkpoint's contents, or a :class:`CheckpointError` saying what is wrong."""
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


@contextlib.contextmanager
def _latest(directory: str) -> Iterator[tuple[Any, int, str]]:
    """``(manager, step, path)`` of the newest Orbax checkpoint in ``directory``; the manager
    (and its background threads) closed on leaving the ``with`` block."""
    manager = _manager(directory)
    try:
        step = manager.latest_step()
        if step is None:
            raise CheckpointError(f"{os.path.join(directory, STATE)}: no complete checkpoint")
        yield manager, step, os.path.join(directory, STATE, str(step))
    finally:
        manager.close()


def _stored(manager: Any, step: int, path: str) -> dict:
    """``{name: (shape, dtype)}`` of the arrays Orbax saved at ``step``."""
    try:
        tree = manager.item_metadata(step).tree
        leaves = jax.tree.leaves(tree, is_leaf=lambda x: hasattr(x, "shape"))
        return {m.name: (tuple(m.shape), np.dtype(m.dtype)) for m in leaves}
    except Exception as err:   # missing, empty or foreign metadata files
        raise CheckpointError(f"{path}: not a readable checkpoint (damaged metadata: "
                              f"{type(err).__name__})") from None


def _name(path: tuple) -> str:
    """Orbax's name of a leaf: its key path joined by dots."""
    return ".".join(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k))))
                    for k in path)


def read_step(directory: str) -> Optional[int]:
    """The step saved in ``directory``'s checkpoint (checking that its metadata is
    readable), or None when a pre-Orbax checkpoint has no step record."""
    if os.path.isdir(os.path.join(directory, STATE)):
        with _latest(directory) as (manager, step, path):
            _stored(manager, step, path)
        return step
    step = _payload(os.path.join(directory, CHECKPOINT)).get("step")
    return None if step is None else int(step)


def restore_checkpoint(directory: str, template: Any) -> Any:
    """Reads the newest checkpoint into the structure of ``template``, onto the shardings of
    its arrays; shapes and dtypes must match (else :class:`CheckpointError`, naming the file
    and the first array that differs)."""
    if not os.path.isdir(os.path.join(directory, STATE)):
        return _restore_msgpack(directory, template)
    with _latest(directory) as (manager, step, path):
        return _restore(manager, step, path, template)


def _restore(manager: Any, step: int, path: str, template: Any) -> Any:
    import orbax.checkpoint as ocp
    stored = _stored(manager, step, path)
    named = [(_name(p), x) for p, x in jax.tree_util.tree_flatten_with_path(template)[0]]
    if sorted(stored) != sorted(n for n, _ in named):
        raise CheckpointError(f"{path} holds the arrays {sorted(stored)[:4]}..., the model "
                              f"expects {sorted(n for n, _ in named)[:4]}... (a checkpoint of "
                              "another model?)")
    for name, x in named:
        if stored[name] != (tuple(np.shape(x)), np.dtype(x.dtype)):
            shape, dtype = stored[name]
            raise CheckpointError(f"{path}: array {name} is {dtype}{shape}, the model expects "
                                  f"{np.dtype(x.dtype)}{tuple(np.shape(x))} (a checkpoint of "
                                  "another model?)")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    try:
        return manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as err:   # damaged array files
        raise CheckpointError(f"{path}: not a readable checkpoint (damaged arrays: "
                              f"{type(err).__name__})") from None


def _restore_msgpack(directory: str, template: Any) -> Any:
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
    """Whether ``directory`` holds a checkpoint (Orbax's, or one saved before Orbax)."""
    return (os.path.isdir(os.path.join(directory, STATE))
            or os.path.exists(os.path.join(directory, CHECKPOINT)))


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
