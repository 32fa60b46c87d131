"""Data-parallel training over local devices with ``jax.sharding``.

A one-axis :class:`jax.sharding.Mesh` (``"batch"``) over the first ``n`` local devices; the
training state (params, optimiser state, step, key) is replicated, each batch is split along
its leading axis, and so is a carried hidden state (truncated BPTT). The jitted train step is
unchanged: XLA partitions it from these shardings and inserts the all-reduce of the gradients
(no communication code here). A step on ``n`` devices computes what it computes on one, up to
the order of floating-point sums.

Checkpoints hold plain host arrays (``rnn_jax/_src/train/checkpoint.py``), so a run saved on
``n`` devices resumes on any other number. One host only: the mesh is this process's local
devices (several hosts would need a global mesh and per-host batch shards; not yet).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


class DataParallel(NamedTuple):
    """The mesh, and the shardings of replicated and batch-split arrays."""

    mesh: Mesh
    replicated: NamedSharding
    split: NamedSharding

    @property
    def size(self) -> int:
        return self.mesh.devices.size


def data_parallel(devices: Optional[int] = None) -> DataParallel:
    """A :class:`DataParallel` over the first ``devices`` local devices (None: all)."""
    local = jax.local_devices()
    n = len(local) if devices is None else devices
    if not 1 <= n <= len(local):
        raise ValueError(f"devices={devices} must lie in [1, {len(local)}] (the local "
                         f"devices: {len(local)} {local[0].platform})")
    mesh = Mesh(np.array(local[:n]), ("batch",))
    return DataParallel(mesh, NamedSharding(mesh, PartitionSpec()),
                        NamedSharding(mesh, PartitionSpec("batch")))


def shard_batch(dp: DataParallel, tree: Any) -> Any:
    """``tree``'s arrays split along their leading (batch) axis where it divides by the
    number of devices, the others replicated."""
    def put(x):
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        split = x.ndim >= 1 and x.shape[0] % dp.size == 0
        return jax.device_put(x, dp.split if split else dp.replicated)
    return jax.tree.map(put, tree)


def shard_state(dp: DataParallel, state: Any) -> Any:
    """A ``TrainState`` replicated, its ``carry`` split along the batch axis."""
    rest = jax.device_put(state._replace(carry=None), dp.replicated)
    return rest._replace(carry=shard_batch(dp, state.carry))


def sharded_batches(dp: DataParallel, batch_fn: Callable[[int], Any]) -> Callable[[int], Any]:
    """``batch_fn`` whose batches are split over the devices."""
    return lambda step: shard_batch(dp, batch_fn(step))
