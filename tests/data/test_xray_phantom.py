"""The x-ray phantom simulator: determinism, shapes, the table's types, and its causal structure."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from xcausal.data.dataset import infer_variables
from xcausal.data.xray import XRAY_LATENTS, XRAY_VARIABLES, simulate_xray_phantom
from xcausal.types import VarType

N = 1000


@pytest.fixture(scope="module")
def timed():
    t0 = time.perf_counter()
    sim = simulate_xray_phantom(N, seed=0)
    return sim, time.perf_counter() - t0


@pytest.fixture(scope="module")
def sim(timed):
    return timed[0]


def test_fast_enough(timed):
    assert timed[1] < 20.0  # n = 1000 at 128 px (about 4-5 s on one core)


def test_same_seed_same_data():
    a, b = simulate_xray_phantom(20, seed=5, image_size=32), simulate_xray_phantom(20, seed=5, image_size=32)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.latents, b.latents)
    assert a.table.equals(b.table)
    assert a.info == b.info and a.truth.to_dict() == b.truth.to_dict()
    c = simulate_xray_phantom(20, seed=6, image_size=32)
    assert not np.array_equal(a.images, c.images) and not a.table.equals(c.table)


def test_rows_do_not_depend_on_n():
    # 70 rows cross a rendering-chunk boundary (64); the first 20 are the same in both
    small, big = simulate_xray_phantom(20, seed=3, image_size=32), simulate_xray_phantom(70, seed=3, image_size=32)
    np.testing.assert_array_equal(small.latents, big.latents[:20])
    np.testing.assert_allclose(small.images, big.images[:20], atol=1e-6)
    assert small.table.drop(columns="opacity_score").equals(big.table.drop(columns="opacity_score").iloc[:20])
    np.testing.assert_allclose(small.table["opacity_score"], big.table["opacity_score"][:20], atol=0.011)


def test_shapes_ranges_and_truth(sim):
    assert sim.images.shape == (N, 1, 128, 128) and sim.images.dtype == np.float32
    assert sim.images.min() >= 0.0 and sim.images.max() <= 1.0
    assert list(sim.table.columns) == ["id", *XRAY_VARIABLES]
    assert sim.latents.shape == (N, 2) and np.isfinite(sim.latents).all()
    assert sim.truth.observed == list(XRAY_VARIABLES) and sim.truth.latent == ["z1", "z2"] == list(XRAY_LATENTS)
    assert {(e.source, e.target) for e in sim.truth.edges} == {
        ("infected", "z1"), ("age", "z2"), ("z1", "opacity_score")}
    assert sim.truth.method == "truth" and set(sim.truth.extra["latent_meaning"]) == {"z1", "z2"}
    json.dumps(sim.info)
    assert sim.info["generator"] == "xray-phantom" and len(sim.info["score"]["raw_per_sample"]) == N
    # dark background in the corners, brighter body in the middle
    assert sim.images[:, 0, :6, :6].mean() < 0.1 < 0.3 < sim.images[:, 0, 60:68, 60:68].mean()


def test_small_images():
    s = simulate_xray_phantom(10, seed=0, image_size=32)
    assert s.images.shape == (10, 1, 32, 32)


def test_table_types(sim):
    types = {v.name: v for v in infer_variables(sim.table)}
    assert types["infected"].type is VarType.BINARY and types["infected"].categories == ("0", "1")
    assert types["age"].type is VarType.CONTINUOUS
    assert types["opacity_score"].type is VarType.CONTINUOUS
    assert types["site"].type is VarType.CATEGORICAL and types["site"].categories == ("A", "B", "C")
    t = sim.table
    assert 0.3 < t["infected"].mean() < 0.5
    assert t["age"].between(20, 85).all() and t["opacity_score"].between(0, 10).all()


def test_score_measures_the_opacity(sim):
    z1 = sim.latents[:, 0]
    assert abs(np.corrcoef(sim.table["opacity_score"], z1)[0, 1]) > 0.7
    inf = sim.table["infected"].to_numpy() == 1
    assert np.median(z1[inf]) > 5 * np.median(z1[~inf])  # none or faint opacities when not infected


def test_lung_size_falls_with_age(sim):
    assert np.corrcoef(sim.latents[:, 1], sim.table["age"])[0, 1] < -0.5


def test_site_is_independent(sim):
    t = sim.table
    for level in ("A", "B", "C"):
        ind = (t["site"] == level).to_numpy(dtype=float)
        for col in ("infected", "age", "opacity_score"):
            assert abs(np.corrcoef(ind, t[col].to_numpy(dtype=float))[0, 1]) < 0.1, (level, col)
        for j in range(2):
            assert abs(np.corrcoef(ind, sim.latents[:, j])[0, 1]) < 0.1, (level, j)


def test_infected_lungs_are_brighter_at_the_periphery(sim):
    s = sim.images.shape[-1]
    g = (np.arange(s) + 0.5) / s
    x, y = np.meshgrid(g, g)
    d = np.abs(x - 0.5)
    peripheral = (d > 0.2) & (d < 0.28) & (y > 0.3) & (y < 0.6)  # outer third of the lung fields
    central = (d > 0.12) & (d < 0.17) & (y > 0.25) & (y < 0.45)
    inf = sim.table["infected"].to_numpy() == 1
    img = sim.images[:, 0]
    gain_p = img[inf][:, peripheral].mean() - img[~inf][:, peripheral].mean()
    gain_c = img[inf][:, central].mean() - img[~inf][:, central].mean()
    assert gain_p > 0.05 and gain_p > 2 * gain_c


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 9}, "n must be"),
    ({"seed": -1}, "seed must be"),
    ({"image_size": 16}, "image_size must be"),
])
def test_bad_arguments(kwargs, match):
    args = {"n": 10, "seed": 0, "image_size": 32, **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate_xray_phantom(args.pop("n"), **args)
