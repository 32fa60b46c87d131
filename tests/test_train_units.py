"""Hidden-unit pictures: indentation feature, automatic unit choice, PNG output."""
import numpy as np

from rnn_jax._src.train.units import indentation_depth, pick_units, plot_unit


def test_indentation_depth():
    np.testing.assert_array_equal(indentation_depth("a\n  b\n\tc\n"), [0, 0, 2, 2, 2, 2, 4, 4, 4])


def test_pick_units_finds_the_unit_that_tracks_the_feature():
    rng = np.random.default_rng(0)
    feature = np.repeat([0.0, 4.0, 8.0, 4.0], 50)
    acts = rng.normal(size=(200, 12))
    acts[:, 7] = -0.1 * feature + 0.05 * rng.normal(size=200)   # anti-correlated counts too
    acts[:, 3] *= 5                                              # the largest variance
    units, scores = pick_units(acts, feature, k=2)
    assert units[0] == 7 and scores[0] > 0.95 and scores[1] < 0.5
    assert pick_units(acts, None, k=1)[0][0] == 3


def test_plot_unit_writes_png(tmp_path):
    text = "def f(x):\n    return x\n"
    path = tmp_path / "u.png"
    plot_unit(text, np.linspace(-1, 1, len(text)), str(path), title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
