"""Training over several devices and hosts with ``jax.sharding``: data and tensor parallel.

**Data parallel** (:func:`data_parallel`): a one-axis :class:`jax.sharding.Mesh` (``"batch"``)
over the devices of every process; the training state (params, optimiser state, step, key) is
replicated, each batch is split along its leading axis, and so is a carried hidden state
(truncated BPTT). The jitted train step is unchanged: XLA partitions it from these shardings
and inserts the all-reduce of the gradients (no communication code here). A step on ``n``
devices computes what it computes on one, up to the order of floating-point sums.

**Several hosts**: every process calls :func:`initialize_distributed` (``jax.distributed``)
first, then builds the same mesh over the global devices. Batches are deterministic in the
step, so each process makes the whole global batch and hands XLA the rows of its own devices
(:func:`shard_batch`); XLA's collectives (NCCL on GPUs, Gloo between CPU processes) do the
rest. Process 0 writes the run's files; every process takes part in saving a checkpoint.

**Tensor parallel** (:func:`shard_hidden`): for hidden sizes too big for one device, every
weight's leading axis (the gate rows ``G·H`` of ``W_ih``, ``W_hh`` and the biases) is split
over a ``"hidden"`` mesh axis. Each device then computes its rows of a step's products, and the
next step needs the whole ``h_{t-1}``: XLA all-gathers it at every time step, a latency that
sequential recurrence cannot hide (``benchmarks/README.md`` measures it).

Checkpoints are Orbax's (``rnn_jax/_src/train/checkpoint.py``), restored onto the shardings of
the resuming run's state, so a run saved on ``n`` devices resumes on any other number.
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


def initialize_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Joins a multi-process run (``jax.distributed.initialize``): ``coordinator`` is process
    0's ``host:port``; call it in every process before any other JAX call."""
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} must lie in [0, {num_processes})")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)


def is_primary() -> bool:
    """Whether this process writes the run's files (process 0)."""
    return jax.process_index() == 0


def _mesh(devices: Optional[int], axis: str) -> Mesh:
    every = jax.devices()           # all processes' devices; this process's when alone
    n = len(every) if devices is None else devices
    if not 1 <= n <= len(every):
        raise ValueError(f"devices={devices} must lie in [1, {len(every)}] (the devices: "
                         f"{len(every)} {every[0].platform})")
    if jax.process_count() > 1 and n != len(every):
        raise ValueError(f"devices={devices}: a run over {jax.process_count()} processes "
                         f"uses all their {len(every)} devices")
    return Mesh(np.array(every[:n]), (axis,))


def data_parallel(devices: Optional[int] = None) -> DataParallel:
    """A :class:`DataParallel` over the first ``devices`` devices (None: all of them)."""
    mesh = _mesh(devices, "batch")
    return DataParallel(mesh, NamedSharding(mesh, PartitionSpec()),
                        NamedSharding(mesh, PartitionSpec("batch")))


def _put(x: Any, sharding: NamedSharding) -> jax.Array:
    """``x`` (the same global value in every process) placed with ``sharding``: each process
    supplies the pieces of its own devices."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def shard_batch(dp: DataParallel, tree: Any) -> Any:
    """``tree``'s arrays split along their leading (batch) axis where it divides by the
    number of devices, the others replicated."""
    def put(x):
        split = np.ndim(x) >= 1 and np.shape(x)[0] % dp.size == 0
        return _put(x, dp.split if split else dp.replicated)
    return jax.tree.map(put, tree)


def shard_state(dp: DataParallel, state: Any) -> Any:
    """A ``TrainState`` replicated, its ``carry`` split along the batch axis."""
    rest = jax.tree.map(lambda x: _put(x, dp.replicated), state._replace(carry=None))
    return rest._replace(carry=shard_batch(dp, state.carry))


def sharded_batches(dp: DataParallel, batch_fn: Callable[[int], Any]) -> Callable[[int], Any]:
    """``batch_fn`` whose batches are split over the devices."""
    return lambda step: shard_batch(dp, batch_fn(step))


def shard_hidden(params: Any, devices: Optional[int] = None) -> Any:
    """``params`` with the leading axis of every array that it divides split over a one-axis
    ``"hidden"`` mesh of ``devices`` devices (None: all), the rest replicated: tensor
    parallelism over the gate rows ``G·H``, by sharding annotations only. ``rnn_jax.run`` and
    its gradients run unchanged under ``jax.jit`` on the result."""
    mesh = _mesh(devices, "hidden")
    n = mesh.devices.size

    def put(x):
        split = np.ndim(x) >= 1 and np.shape(x)[0] % n == 0
        return _put(x, NamedSharding(mesh, PartitionSpec("hidden") if split
                                     else PartitionSpec()))
    return jax.tree.map(put, params)
