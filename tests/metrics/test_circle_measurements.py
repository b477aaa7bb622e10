"""Pixel measurements of the circles images recover the simulator's features."""

from __future__ import annotations

import numpy as np
import pytest

from xcausal.data.circles import RADIUS_LEVELS, SHIFT_LEVELS, simulate_circles
from xcausal.metrics import circle_features, measure_circles


@pytest.mark.parametrize("size", [32, 64])
def test_circle_features_recover_truth(size):
    sim = simulate_circles(500, seed=4, image_size=size)
    f = circle_features(sim.images, size)
    assert f.shape == (500, 3)
    acc = (f == sim.latents).mean(axis=0)
    assert (acc >= 0.99).all(), acc


def test_measurements_match_the_levels():
    size = 32
    sim = simulate_circles(500, seed=5, image_size=size)
    m = measure_circles(sim.images)
    h, r, sh = sim.latents.T.astype(bool)
    assert m["hue"][~h].mean() < 0.25 and m["hue"][h].mean() > 0.75
    assert ((m["hue"] >= 0) & (m["hue"] <= 1)).all()
    # radius jitter sd 0.01 S = 0.32 px; measurement error on top is small
    assert abs(m["radius"][~r].mean() - RADIUS_LEVELS[0] * size) < 0.3
    assert abs(m["radius"][r].mean() - RADIUS_LEVELS[1] * size) < 0.3
    assert abs(m["center_x"][~sh].mean() - SHIFT_LEVELS[0] * size) < 0.3
    assert abs(m["center_x"][sh].mean() - SHIFT_LEVELS[1] * size) < 0.3
    assert abs(m["center_y"].mean() - size / 2) < 0.3


def test_uint8_blank_and_bad_input():
    sim = simulate_circles(10, seed=0)
    u8 = np.rint(sim.images * 255).astype(np.uint8)
    np.testing.assert_allclose(measure_circles(u8)["radius"], measure_circles(sim.images)["radius"], atol=0.2)
    blank = np.zeros((2, 3, 16, 16), np.float32)
    assert np.isnan(measure_circles(blank)["hue"]).all()
    assert (circle_features(blank) == 0).all()
    with pytest.raises(ValueError, match=r"\(N, 3, S, S\)"):
        measure_circles(sim.images[:, :1])
    with pytest.raises(ValueError, match="image_size=64"):
        circle_features(sim.images, 64)
