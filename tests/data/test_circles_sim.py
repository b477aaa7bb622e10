"""The circles simulator: determinism, the DAGs' statistics, images, the physics curve."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from xcausal.data.circles import (
    CIRCLE_FEATURES,
    simulate_circles,
    strain_hardening_curve,
)


@pytest.fixture(scope="module")
def vstruct():
    return simulate_circles(2000, seed=0)


def test_same_seed_same_arrays():
    a, b = simulate_circles(60, seed=7), simulate_circles(60, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.latents, b.latents)
    np.testing.assert_array_equal(a.modalities["curve"], b.modalities["curve"])
    assert a.info == b.info and a.truth.to_dict() == b.truth.to_dict()
    c = simulate_circles(60, seed=8)
    assert not np.array_equal(a.images, c.images)


def test_rows_do_not_depend_on_n():
    small, big = simulate_circles(20, seed=3), simulate_circles(50, seed=3)
    np.testing.assert_array_equal(small.images, big.images[:20])
    np.testing.assert_array_equal(small.modalities["curve"], big.modalities["curve"][:20])


def test_shapes_ranges_and_truth(vstruct):
    s = vstruct
    assert s.images.shape == (2000, 3, 32, 32) and s.images.dtype == np.float32
    assert s.images.min() >= 0.0 and s.images.max() <= 1.0
    assert list(s.table.columns) == ["id"]
    assert s.latents.shape == (2000, 3) and set(np.unique(s.latents)) == {0.0, 1.0}
    assert s.truth.node_names == list(CIRCLE_FEATURES) == s.truth.latent
    assert {(e.source, e.target, e.weight) for e in s.truth.edges} == {("hue", "shift", 1.0), ("radius", "shift", 1.0)}
    assert s.truth.method == "truth"
    assert s.modalities["curve"].shape == (2000, 64) and s.modalities["curve"].dtype == np.float32
    json.dumps(s.info)
    assert s.info["dag"] == "v-structure" and "strain_hardening" in s.info["modalities"]["curve"]["model"]
    # black background: the corners are (noise-level) dark
    assert s.images[:, :, :3, :3].mean() < 0.03


def test_fast_enough():
    t0 = time.perf_counter()
    simulate_circles(2000, seed=1)
    assert time.perf_counter() - t0 < 2.0


def test_v_structure_statistics(vstruct):
    h, r, sh = vstruct.latents.T
    assert abs(np.corrcoef(h, r)[0, 1]) < 0.1
    assert abs(h.mean() - 0.5) < 0.05 and abs(r.mean() - 0.5) < 0.05
    p = {(a, b): sh[(h == a) & (r == b)].mean() for a in (0, 1) for b in (0, 1)}
    # sigmoid(-2.5) = 0.076, sigmoid(0) = 0.5, sigmoid(2.5) = 0.924; n ~ 500 per cell
    assert abs(p[0, 0] - 0.076) < 0.05 and abs(p[1, 1] - 0.924) < 0.05
    assert abs(p[1, 0] - 0.5) < 0.08 and abs(p[0, 1] - 0.5) < 0.08
    # shift depends on each parent, also given the other one
    assert p[1, 0] - p[0, 0] > 0.3 and p[0, 1] - p[0, 0] > 0.3
    assert p[1, 1] - p[0, 1] > 0.3 and p[1, 1] - p[1, 0] > 0.3


def test_chain_and_independent():
    h, r, sh = simulate_circles(2000, seed=2, dag="chain").latents.T
    assert r[h == 1].mean() - r[h == 0].mean() > 0.6
    assert sh[r == 1].mean() - sh[r == 0].mean() > 0.6
    # shift is independent of hue given radius
    for level in (0, 1):
        sel = r == level
        assert abs(sh[sel & (h == 1)].mean() - sh[sel & (h == 0)].mean()) < 0.1
    ind = simulate_circles(2000, seed=2, dag="independent")
    assert ind.truth.edges == []
    c = np.corrcoef(ind.latents.T)
    assert np.abs(c[np.triu_indices(3, 1)]).max() < 0.1


def test_curve_is_the_physics_model_plus_noise(vstruct):
    per = vstruct.info["modalities"]["curve"]["per_sample"]
    t = np.linspace(0.0, 1.0, 64)
    clean = strain_hardening_curve(t, np.array(per["x0"]), np.array(per["y0"]), np.array(per["theta"]))
    res = vstruct.modalities["curve"] - clean
    assert abs(res.std() - 0.01) < 0.001 and abs(res.mean()) < 0.001
    # each parameter follows its feature
    h, r, sh = vstruct.latents.T
    assert abs(np.mean(per["y0"], where=r == 1) - 1.5) < 0.01 and abs(np.mean(per["y0"], where=r == 0) - 1.0) < 0.01
    assert abs(np.mean(per["theta"], where=h == 1) - 1.5) < 0.01
    assert abs(np.mean(per["x0"], where=sh == 1) - 0.3) < 0.01


def test_strain_hardening_curve():
    t = np.linspace(0.0, 1.0, 11)
    e = strain_hardening_curve(t, 0.2, 1.0, 0.5)
    assert e.shape == (11,)
    np.testing.assert_allclose(e[:2], [0.0, 0.5])  # slope y0 / x0 = 5 below x0
    np.testing.assert_allclose(e[2], 1.0)  # continuous at the yield point
    np.testing.assert_allclose(e[-1], 1.0 + 0.5 * 0.8)
    batch = strain_hardening_curve(t, np.array([0.2, 0.3]), np.array([1.0, 1.5]), 0.5)
    assert batch.shape == (2, 11)
    np.testing.assert_allclose(batch[0], e)


@pytest.mark.parametrize("kw, match", [
    ({"n": 5}, "n must be"),
    ({"seed": -1}, "seed must be"),
    ({"image_size": 8}, "image_size must be"),
    ({"curve_length": 1}, "curve_length must be"),
    ({"dag": "collider"}, "dag must be one of"),
])
def test_bad_arguments(kw, match):
    args = {"n": 20, "seed": 0} | kw
    with pytest.raises(ValueError, match=match):
        simulate_circles(args.pop("n"), **args)
