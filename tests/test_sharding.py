"""Data-parallel training on 8 simulated CPU devices (a subprocess with
``--xla_force_host_platform_device_count=8``): a sharded step equals the single-device step,
truncated-BPTT carries stay split over the devices, and a run saved on 8 devices resumes on 2
and on 1 as if never interrupted."""
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from rnn_jax._src.train.experiment import default_config, run_training
    from rnn_jax._src.train import sharding, step as st, models
    out = {"devices": len(jax.devices())}
    cfg = default_config("adding", cell="lstm", hidden=8, length=6, batch=8, steps=6,
                         eval_batch=8, log_every=1, eval_every=0, checkpoint_every=3)
    one, _ = run_training(cfg, sys.argv[1] + "/one", progress=False, devices=1)
    eight, _ = run_training(cfg, sys.argv[1] + "/eight", progress=False, devices=8)
    diff = lambda a, b: max(float(jnp.max(jnp.abs(x - y))) for x, y in
                            zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    out["params_8_vs_1"] = diff(one.params, eight.params)
    out["replicated"] = all(len(x.sharding.device_set) == 8 and x.sharding.is_fully_replicated
                            for x in jax.tree.leaves(eight.params))
    # stop after step 3 on 8 devices, resume on 2, and on 1
    for n in (2, 1):
        d = f"{sys.argv[1]}/resume{n}"
        run_training(cfg, d, progress=False, devices=8, stop_after=3)
        resumed, _ = run_training(cfg, d, resume=True, progress=False, devices=n)
        out[f"resume_8_then_{n}_vs_1"] = diff(one.params, resumed.params)
    # a truncated-BPTT carry stays split along the batch axis
    model = models.build_model(dict(cell="gru", input_size=5, hidden=6, output_size=5,
                                    tokens=True))
    loss = st.tbptt_loss(model.apply, lambda y, t: jnp.mean((y - jax.nn.one_hot(t, 5)) ** 2))
    opt = st.make_optimizer("adam", 1e-2)
    state = st.init_state(model.init(jax.random.PRNGKey(0)), opt, jax.random.PRNGKey(1),
                          model.initial_carry((8,)))
    dp = sharding.data_parallel(8)
    state = sharding.shard_state(dp, state)
    x = np.random.default_rng(0).integers(0, 5, (8, 4))
    batch = sharding.shard_batch(dp, (x, x, np.zeros((8, 4), bool)))
    train_step = st.make_train_step(loss, opt)
    for _ in range(2):
        state, _ = train_step(state, batch)
    out["carry_split"] = [str(c.sharding.spec) for c in jax.tree.leaves(state.carry)]
    out["carry_devices"] = len(jax.tree.leaves(state.carry)[0].sharding.device_set)
    # tensor parallel: the gate rows of every weight split over 4 devices, same values
    import rnn_jax
    cell = rnn_jax.lstm(3, 16)
    p = cell.init(jax.random.PRNGKey(2))
    xs = jax.random.normal(jax.random.PRNGKey(3), (5, 7, 3))
    f = jax.jit(jax.value_and_grad(lambda p: jnp.sum(jnp.tanh(rnn_jax.run(cell, p, xs)[1]))))
    (v1, g1), sp = f(p), sharding.shard_hidden(p, 4)
    v4, g4 = f(sp)
    out["tp_value"] = abs(float(v1 - v4))
    out["tp_grads"] = diff(g1, g4)
    out["tp_w_hh"] = [str(sp.w_hh.sharding.spec), len(sp.w_hh.sharding.device_set),
                      sp.w_hh.addressable_shards[0].data.shape[0]]
    print(json.dumps(out))
''')


@pytest.mark.slow
def test_data_parallel_on_eight_simulated_devices(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["devices"] == 8 and out["replicated"]
    assert out["params_8_vs_1"] < 1e-5               # float32, sums in another order
    assert out["resume_8_then_2_vs_1"] < 1e-5 and out["resume_8_then_1_vs_1"] < 1e-5
    assert out["carry_devices"] == 8 and all("batch" in s for s in out["carry_split"])
    assert out["tp_value"] < 1e-5 and out["tp_grads"] < 1e-5
    assert out["tp_w_hh"] == ["P('hidden',)", 4, 16]   # 64 gate rows / 4


def test_more_devices_than_the_machine_has_is_one_line_and_exit_2(tmp_path, capsys):
    import jax

    from rnn_jax._src import cli
    n = len(jax.local_devices()) + 1
    assert cli.main(["train", "adding", "--devices", str(n), "--steps", "1",
                     "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--devices {n}" in err, err
    assert not (tmp_path / "x" / "checkpoint.msgpack").exists()


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Gloo's notice "[Gloo] Rank r is connected to n peer ranks. Expected number of connected peer
# ranks is : n", written from C++ threads: two notices can interleave mid-line, so its two halves
# are removed wherever they fall.
_GLOO = re.compile(r"\[Gloo\] Rank \d+|\s*is connected to \d+ peer ranks\. "
                   r"Expected number of connected peer ranks is : \d+")


@pytest.mark.slow
def test_two_processes_train_as_one_and_their_checkpoint_resumes_in_one(tmp_path):
    """Two processes of two simulated devices each (jax.distributed over Gloo), started as
    README's "Scaling out" says, train 3 steps; one process with one device resumes to step 6
    and ends where an uninterrupted single-device run ends."""
    from rnn_jax._src.train.sampling import load_trained
    tiny = ["--cell", "lstm", "--hidden", "8", "--length", "6", "--batch", "8", "--eval-batch",
            "8", "--eval-every", "100", "--checkpoint-every", "3", "--no-progress"]
    cmd = [sys.executable, "-m", "rnn_jax", "train", "adding", *tiny]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    port, two = _free_port(), str(tmp_path / "two")
    procs = [subprocess.Popen([*cmd, "--steps", "3", "--out", two, "--coordinator",
                               f"127.0.0.1:{port}", "--num-processes", "2", "--process-id",
                               str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    printed = ["\n".join(line for line in _GLOO.sub("", out).splitlines() if line.strip())
               for out, _ in outs]                       # Gloo's connection notices aside
    assert json.loads(printed[0])["devices"] == 4 and printed[1] == ""   # process 0 reports
    one = {**os.environ, "JAX_PLATFORMS": "cpu"}
    for args in (["--resume", "--steps", "6", "--out", two],
                 [*tiny, "--steps", "6", "--out", str(tmp_path / "one")]):
        run = subprocess.run([sys.executable, "-m", "rnn_jax", "train", "adding", *args],
                             env=one, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
    _, resumed, _ = load_trained(two)
    _, single, _ = load_trained(str(tmp_path / "one"))
    import jax
    import numpy as np
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(single)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)   # float32 sums in another order


def test_the_command_line_starts_no_jax_backend_before_its_command_runs():
    """``jax.distributed.initialize`` must come before any JAX computation: building the
    parser (every command's options and defaults) must not start a backend."""
    code = ("from jax._src import xla_bridge as xb\nfrom rnn_jax._src import cli\n"
            "cli.build_parser()\nprint(bool(xb._backends))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert run.returncode == 0 and run.stdout.strip() == "False", run.stderr[-2000:]


def test_distributed_options_go_together(tmp_path, capsys):
    from rnn_jax._src import cli
    assert cli.main(["train", "adding", "--coordinator", "127.0.0.1:1", "--steps", "1",
                     "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--num-processes" in err, err
