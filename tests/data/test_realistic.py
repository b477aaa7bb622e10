"""The realistic MNIST families: determinism, table types and distributions, marker size, truth, do()."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from xcausal.data.dataset import infer_variables
from xcausal.data.realistic import (
    FAMILY_EDGES,
    FAMILY_LATENTS,
    FAMILY_VARIABLES,
    REALISTIC_FAMILIES,
    marker_box,
    render_realistic,
    simulate_realistic,
)
from xcausal.types import VarType

N = 120
TYPES = {"dose": VarType.CONTINUOUS, "tilt": VarType.CONTINUOUS, "treated": VarType.BINARY,
         "site": VarType.CATEGORICAL, "exposure": VarType.CONTINUOUS, "thickness_score": VarType.CONTINUOUS,
         "weight": VarType.CONTINUOUS, "batch": VarType.CATEGORICAL}


@pytest.fixture(scope="module")
def sims():
    return {f: simulate_realistic(f, N, seed=0) for f in REALISTIC_FAMILIES}


def test_cli_kinds_match_the_families():
    from xcausal.cli import REALISTIC_FAMILIES as CLI_FAMILIES

    assert CLI_FAMILIES == REALISTIC_FAMILIES


@pytest.mark.parametrize("family", REALISTIC_FAMILIES)
def test_same_seed_same_data(family):
    a, b = simulate_realistic(family, 12, seed=4), simulate_realistic(family, 12, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.latents, b.latents)
    assert a.table.equals(b.table) and a.info == b.info and a.truth.to_dict() == b.truth.to_dict()
    c = simulate_realistic(family, 12, seed=5)
    assert not np.array_equal(a.images, c.images) and not a.table.equals(c.table)


def test_rows_do_not_depend_on_n(sims):
    small = simulate_realistic("mixed", 15, seed=0)
    big = sims["mixed"]
    np.testing.assert_array_equal(small.latents, big.latents[:15])
    np.testing.assert_array_equal(small.images, big.images[:15])
    assert small.table.equals(big.table.iloc[:15])


def test_global_rng_untouched():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    simulate_realistic("morpho", 10, seed=0)
    np.testing.assert_array_equal(np.random.random(3), expected)


@pytest.mark.parametrize("family", REALISTIC_FAMILIES)
def test_shapes_types_and_truth(sims, family):
    sim = sims[family]
    assert sim.images.shape == (N, 1, 32, 32) and sim.images.dtype == np.float32
    assert 0.0 <= sim.images.min() and sim.images.max() <= 1.0
    assert list(sim.table.columns) == list(FAMILY_VARIABLES[family])
    assert {v.name: v.type for v in infer_variables(sim.table)} == {c: TYPES[c] for c in FAMILY_VARIABLES[family]}
    assert sim.latents.shape == (N, len(FAMILY_LATENTS[family])) and sim.latents.dtype == np.float64
    assert np.isfinite(sim.latents).all() and np.ptp(sim.latents, axis=0).min() > 0
    assert sim.truth.observed == list(FAMILY_VARIABLES[family])
    assert sim.truth.latent == list(FAMILY_LATENTS[family])
    assert {(e.source, e.target) for e in sim.truth.edges} == set(FAMILY_EDGES[family])
    json.dumps(sim.info)  # JSON-able
    assert len(sim.info["source_index"]) == N and len(set(sim.info["digit_label"])) >= 8


def test_documented_truths():
    assert set(FAMILY_EDGES["morpho"]) == {("dose", "thickness"), ("tilt", "slant")}
    assert FAMILY_EDGES["marker"] == (("treated", "marker"),)
    assert FAMILY_EDGES["site"] == (("site", "contrast"),)
    assert FAMILY_EDGES["anticausal"] == (("thickness", "thickness_score"),)  # anti-causal: latent -> variable
    assert set(FAMILY_EDGES["chain"]) == {("exposure", "thickness"), ("thickness", "thickness_score")}
    assert FAMILY_EDGES["unrelated"] == ()
    assert 6 <= len(FAMILY_VARIABLES["mixed"]) <= 8
    assert set(FAMILY_EDGES["mixed"]) == {e for f in ("morpho", "marker", "site", "anticausal") for e in FAMILY_EDGES[f]}
    for family, edges in FAMILY_EDGES.items():  # every edge joins a variable and a latent of its family
        for a, b in edges:
            assert {a, b} & set(FAMILY_LATENTS[family]) and {a, b} & set(FAMILY_VARIABLES[family])


def test_skewed_bounded_gaussian_causes(sims):
    mixed, chain = sims["mixed"].table, sims["chain"].table
    assert stats.skew(mixed["dose"]) > 1.0 and (mixed["dose"] > 0).all()  # log-normal: skewed
    assert abs(stats.skew(mixed["tilt"])) < 0.5 and stats.normaltest(mixed["tilt"]).pvalue > 1e-3  # Gaussian
    assert chain["exposure"].between(0, 10).all()  # bounded
    assert set(mixed["treated"]) == {0, 1} and set(mixed["site"]) == {"A", "B", "C"}
    assert set(mixed["batch"]) == {"b1", "b2", "b3", "b4"}
    t = sims["anticausal"].latents[:, 0]
    assert t.min() >= 1.5 and t.max() <= 5.5  # 1.5 + 4 Beta(2, 4): bounded


@pytest.mark.parametrize("size", [16, 32, 40, 48, 64])
def test_marker_covers_at_most_3_percent(size):
    r0, r1, c0, c1 = marker_box(size)
    assert 0 < (r1 - r0) * (c1 - c0) <= 0.03 * size * size and r1 <= size and c1 <= size


def test_marker_is_drawn_in_its_box_only(sims):
    sim = sims["marker"]
    r0, r1, c0, c1 = marker_box(32)
    treated = sim.table["treated"].to_numpy() == 1
    assert 0 < treated.sum() < N
    plain = render_realistic(sim.info["source_index"], 32)
    diff = np.abs(sim.images - plain)[:, 0]
    assert diff[~treated].max() == 0.0
    outside = diff.copy()
    outside[:, r0:r1, c0:c1] = 0.0
    assert outside.max() == 0.0
    marker = sim.latents[:, 0]
    np.testing.assert_allclose(sim.images[treated, 0, r0:r1, c0:c1].min(axis=(1, 2)), marker[treated], atol=1e-6)
    assert (marker[~treated] == 0).all() and (marker[treated] >= 0.6).all()


def test_image_sizes_32_to_64():
    for size in (32, 48, 64):
        sim = simulate_realistic("mixed", 10, seed=0, image_size=size)
        assert sim.images.shape == (10, 1, size, size)
        assert sim.info["image"]["marker_box"] == list(marker_box(size))


def test_do_changes_only_descendants():
    base = simulate_realistic("mixed", 20, seed=2)
    for name, value in (("weight", 50.0), ("batch", "b3"), ("thickness_score", 9.0)):
        d = simulate_realistic("mixed", 20, seed=2, do={name: value})
        np.testing.assert_array_equal(d.images, base.images)  # unrelated / anti-causal: images unchanged
        assert (d.table[name] == value).all()
        np.testing.assert_array_equal(d.latents, base.latents)
    d = simulate_realistic("mixed", 20, seed=2, do={"treated": 1})
    assert (d.latents[:, 2] >= 0.6).all() and not np.array_equal(d.images, base.images)
    np.testing.assert_array_equal(d.latents[:, [0, 1, 3]], base.latents[:, [0, 1, 3]])
    d = simulate_realistic("mixed", 20, seed=2, do={"dose": 3.0})
    assert np.ptp(d.latents[:, 0]) < 1.0 and not np.array_equal(d.latents[:, 0], base.latents[:, 0])
    np.testing.assert_array_equal(d.latents[:, 1:], base.latents[:, 1:])


def test_errors():
    with pytest.raises(ValueError, match="family must be one of"):
        simulate_realistic("nope", 20, seed=0)
    with pytest.raises(ValueError, match="n must be"):
        simulate_realistic("morpho", 5, seed=0)
    with pytest.raises(ValueError, match="image_size must be"):
        simulate_realistic("morpho", 20, seed=0, image_size=8)
    with pytest.raises(ValueError, match="not a variable of morpho"):
        simulate_realistic("morpho", 20, seed=0, do={"site": "A"})
    with pytest.raises(ValueError, match="site must be one of"):
        simulate_realistic("site", 20, seed=0, do={"site": "Z"})
