"""Data-parallel training on 8 simulated CPU devices (a subprocess with
``--xla_force_host_platform_device_count=8``): a sharded step equals the single-device step,
truncated-BPTT carries stay split over the devices, and a run saved on 8 devices resumes on 2
and on 1 as if never interrupted."""
import json
import os
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


def test_more_devices_than_the_machine_has_is_one_line_and_exit_2(tmp_path, capsys):
    import jax

    from rnn_jax._src import cli
    n = len(jax.local_devices()) + 1
    assert cli.main(["train", "adding", "--devices", str(n), "--steps", "1",
                     "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--devices {n}" in err, err
    assert not (tmp_path / "x" / "checkpoint.msgpack").exists()
