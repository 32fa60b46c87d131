"""The Clockwork RNN's waveform-generation task: the clip, and a short run end to end."""
import json
import os

import numpy as np
import pytest

from rnn_jax._src.train import waveform

pytest.importorskip("captcha")


def test_clip_is_a_real_recording_window():
    clip = waveform.load_clip(0, 320)
    assert clip.shape == (320,) and clip.dtype == np.float32
    assert np.abs(clip).max() == 1.0 and clip.std() > 0.1
    np.testing.assert_array_equal(clip, waveform.load_clip(0, 320))   # deterministic
    assert not np.array_equal(clip, waveform.load_clip(1, 320))
    with pytest.raises(ValueError, match="length"):
        waveform.load_clip(0, 100_000)


@pytest.mark.slow
def test_train_waveform_clockwork_end_to_end(tmp_path):
    from rnn_jax._src.cli import main
    out = str(tmp_path / "run")
    assert main(["train", "waveform", "--cell", "clockwork", "--param-budget", "300",
                 "--steps", "60", "--eval-every", "60", "--lr", "1e-2", "--out", out,
                 "--no-progress"]) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert abs(summary["params"] - 300) < 60 and summary["hidden"] % 4 == 0
    assert summary["final"]["eval_nmse"] < 1.0                  # better than the clip's mean
    assert os.path.getsize(os.path.join(out, "waveform.png")) > 10_000
