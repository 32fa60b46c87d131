"""Training throughput on 1, 2, 4, 8 devices (``rnn_jax._src.train.sharding``).

    python benchmarks/scaling.py [--simulate 8] [--steps 30] [--tensor-parallel]

With ``--simulate N`` (the default on a machine with one device) the devices are N simulated
CPU devices of one process (``--xla_force_host_platform_device_count``): they share the same
cores, so the table shows that the sharded step runs and what its overhead is, not a speed-up.
On a machine with several accelerators, pass ``--simulate 0``. Prints a markdown table of
sequences per second (an LSTM, H=128, on the adding problem, T=100, batch 64), median of the
timed steps after a compiled warm-up step. With ``--tensor-parallel``: the gate rows of an
LSTM's weights (H=1024, T=50, batch 16) split over the devices (``shard_hidden``), sequences
per second of a jitted forward+backward pass.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r'''
import json, sys, time
import jax, numpy as np
from rnn_jax._src.train import sharding, step as st
from rnn_jax._src.train.experiment import default_config
from rnn_jax._src.train.tasks import setup
n, steps = int(sys.argv[1]), int(sys.argv[2])
cfg = default_config("adding", cell="lstm", hidden=128, length=100, batch=64, eval_batch=64)
s = setup(cfg)
opt = st.make_optimizer("rmsprop", 1e-3, clip_norm=1.0)
state = st.init_state(s.model.init(jax.random.PRNGKey(0)), opt, jax.random.PRNGKey(1), None)
dp = sharding.data_parallel(n)
state, batch_fn = sharding.shard_state(dp, state), sharding.sharded_batches(dp, s.batch_fn)
train_step = st.make_train_step(s.loss_fn, opt)
state, m = train_step(state, batch_fn(0)); jax.block_until_ready(m["loss"])
times = []
for i in range(1, steps + 1):
    b = batch_fn(i)
    t = time.perf_counter(); state, m = train_step(state, b); jax.block_until_ready(m["loss"])
    times.append(time.perf_counter() - t)
print(json.dumps({"devices": n, "platform": jax.devices()[0].platform,
                  "seq_per_s": cfg["batch"] / float(np.median(times))}))
'''


TENSOR = r'''
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
import rnn_jax
from rnn_jax._src.train import sharding
n, steps = int(sys.argv[1]), int(sys.argv[2])
cell = rnn_jax.lstm(256, 1024)
params = sharding.shard_hidden(cell.init(jax.random.PRNGKey(0)), n)
xs = jax.random.normal(jax.random.PRNGKey(1), (16, 50, 256))
f = jax.jit(jax.grad(lambda p: jnp.sum(rnn_jax.run(cell, p, xs)[1] ** 2)))
jax.block_until_ready(f(params))
times = []
for _ in range(steps):
    t = time.perf_counter(); jax.block_until_ready(f(params)); times.append(time.perf_counter() - t)
print(json.dumps({"devices": n, "platform": jax.devices()[0].platform,
                  "seq_per_s": 16 / float(np.median(times))}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--simulate", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--tensor-parallel", action="store_true",
                        help="split the weights' gate rows over the devices, not the batch")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.simulate:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.simulate}"
        env["JAX_PLATFORMS"] = "cpu"
    rows = []
    for n in (1, 2, 4, 8):
        child = TENSOR if args.tensor_parallel else CHILD
        run = subprocess.run([sys.executable, "-c", child, str(n), str(args.steps)], env=env,
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
    base = rows[0]["seq_per_s"]
    print("| devices | sequences/s | relative to 1 |\n|---|---|---|")
    for r in rows:
        print(f"| {r['devices']} ({r['platform']}) | {r['seq_per_s']:,.0f} | "
              f"{r['seq_per_s'] / base:.2f} |")


if __name__ == "__main__":
    main()
