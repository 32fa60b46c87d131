"""`rnn-jax train adding|copy --truncate K` and `--gradient uoro`."""
import functools
import json
import os

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from rnn_jax._src import cli
from rnn_jax._src.train import data_tasks
from rnn_jax._src.train.experiment import default_config
from rnn_jax._src.train.step import init_state, make_optimizer, make_train_step
from rnn_jax._src.train.tasks import setup

TINY = dict(cell="lstm", hidden=6, batch=4, eval_batch=8, steps=3, log_every=1, eval_every=3,
            checkpoint_every=3, lr=1e-2)


def _leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state)]


@functools.lru_cache(maxsize=None)
def _setup(task, **kw):
    return setup(default_config(task, **kw))


def _init(s, seed=1):
    return jax.jit(s.model.init)(jax.random.PRNGKey(seed))


def _value_and_grad(s, params, batch, key=None):
    fn = jax.value_and_grad(lambda p, b, k: s.loss_fn(p, b, None, k)[0])
    return jax.jit(fn)(params, batch, key)


def _grad(s, params, batch, key=None):
    return _value_and_grad(s, params, batch, key)[1]


def test_truncate_at_least_T_trains_bit_identically():
    """Three training steps with ``truncate`` of at least the steps read equal full BPTT bit for
    bit (params, optimiser state, step, key); ``truncate=1`` changes every recurrent weight's
    gradient from the first step."""
    opt = make_optimizer("rmsprop", 1e-2, clip_norm=1.0)
    # adding reads T = 6 steps, copy T + 20 = 22
    for task, length, whole in (("adding", 6, 6), ("copy", 2, 22)):
        params, states = _init(_setup(task, length=length, truncate=None, **TINY)), {}
        for k in (None, whole):
            s = _setup(task, length=length, truncate=k, **TINY)
            state = init_state(params, opt, jax.random.PRNGKey(2))
            step = make_train_step(s.loss_fn, opt)
            for i in range(3):
                state, _ = step(state, s.batch_fn(i))
            states[k] = state
        for a, b in zip(_leaves(states[None]), _leaves(states[whole])):
            np.testing.assert_array_equal(a, b)
        full, cut = (_setup(task, length=length, truncate=k, **TINY) for k in (None, 1))
        batch = full.batch_fn(0)
        for a, b in zip(_leaves(_grad(full, params, batch).cell),
                        _leaves(_grad(cut, params, batch).cell)):
            assert not np.allclose(a, b, rtol=1e-3)


def _setups(task, cell, **kw):
    common = dict(cell=cell, hidden=3, batch=2, eval_batch=4, **kw)
    return _setup(task, gradient="uoro", **common), _setup(task, gradient="bptt", **common)


def test_uoro_is_exact_for_one_step():
    """T = 1: no carry to estimate a sensitivity through, the estimate is the gradient (the
    copy task: one-hot inputs, the mean cross-entropy split over the steps)."""
    su, sb = _setups("copy", "gru", length=2)
    params, full = _init(su), su.batch_fn(0)
    one = data_tasks.CopyBatch(full.inputs[:, :1], full.inputs[:, :1])
    (loss, got), (want_loss, want) = (_value_and_grad(su, params, one, jax.random.PRNGKey(5)),
                                      _value_and_grad(sb, params, one))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-6)


def test_uoro_first_step_gradient_has_the_bptt_gradient_as_its_mean():
    """Over 4000 keys, the mean of the training step's gradient is within ~3 standard errors
    of BPTT's, component by component, while one estimate is far from it; the truncated
    gradient (biased) is many standard errors away, so the check has power. The readout's
    gradient is exact in every estimate."""
    su, sb = _setups("adding", "elman", length=4)
    params, batch = _init(su), su.batch_fn(0)
    keys = jax.random.split(jax.random.PRNGKey(2), 4000)
    grad = jax.grad(lambda p, k: su.loss_fn(p, batch, None, k)[0])
    gs = jax.jit(jax.vmap(grad, in_axes=(None, 0)))(params, keys)
    want = _grad(sb, params, batch)
    for a, b in zip(jax.tree.leaves(gs.readout), jax.tree.leaves(want.readout)):
        np.testing.assert_allclose(a, np.broadcast_to(b, a.shape), rtol=1e-5, atol=1e-7)
    G = np.asarray(jax.vmap(lambda g: ravel_pytree(g)[0])(gs.cell), np.float64)
    exact = ravel_pytree(want.cell)[0]
    mean, se = G.mean(0), G.std(0) / np.sqrt(len(G))
    assert np.all(se > 0)
    assert np.max(np.abs(mean - exact) / se) < 4.0
    assert np.linalg.norm(mean - exact) < 0.05 * np.linalg.norm(exact)
    assert np.linalg.norm(G[0] - exact) > 0.2 * np.linalg.norm(exact)
    truncated = _setup("adding", cell="elman", hidden=3, batch=2, eval_batch=4, length=4,
                       truncate=1)
    biased = ravel_pytree(_grad(truncated, params, batch).cell)[0]
    assert np.max(np.abs(mean - biased) / se) > 10.0


def _cli(out, *extra, task="adding", steps=2):
    argv = ["train", task, "--cell", "elman", "--hidden", "4", "--length", "3", "--batch", "2",
            "--eval-batch", "4", "--log-every", "1", "--eval-every", "100", "--no-progress",
            "--steps", str(steps), "--out", str(out), *extra]
    try:
        return cli.main(argv)
    except SystemExit as exit_:     # argparse's own errors
        return exit_.code


def _one_line(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def test_cli_uoro_runs_and_options_are_checked(tmp_path, capsys):
    out = tmp_path / "uoro"
    assert _cli(out, "--gradient", "uoro") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and np.isfinite(summary["final"]["eval_mse"])
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    assert saved["gradient"] == "uoro" and saved["truncate"] is None
    for extra, words in [
        (["--truncate", "0"], ["--truncate", "positive integer"]),
        (["--truncate", "x"], ["--truncate"]),
        (["--gradient", "rtrl"], ["--gradient", "rtrl"]),
        (["--gradient", "uoro", "--truncate", "2"], ["--truncate", "uoro"]),
        (["--resume", "--truncate", "2", "--steps", "3"], ["--truncate 2", "saved: None"]),
        (["--resume", "--gradient", "bptt", "--steps", "3"], ["--gradient bptt",
                                                              "saved: uoro"]),
    ]:
        assert _cli(out, *extra) == 2, extra
        _one_line(capsys, *words)
    for task in ("charlm", "waveform"):
        assert _cli(tmp_path / task, "--truncate", "2", task=task) == 2
        _one_line(capsys, "--truncate", f"does not apply to {task}")
        assert _cli(tmp_path / task, "--gradient", "uoro", task=task) == 2
        _one_line(capsys, "--gradient", f"does not apply to {task}")
