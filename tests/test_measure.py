"""The judge's image measurements: exact on drawn shapes, and they recover what the realistic simulator set."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xcausal import measure as M
from xcausal.data.realistic import SITES, marker_box, simulate_realistic

N = 200


def _bar(width: int, height: int = 20, shear: float = 0.0, size: int = 32) -> np.ndarray:
    """(1, 1, size, size) image of a white bar ``width`` px wide, its top shifted right by ``shear`` per row."""
    img = np.zeros((size, size))
    top = (size - height) // 2
    centre = top + (height - 1) / 2
    for r in range(top, top + height):
        c0 = size / 2 - width / 2 + shear * (centre - r)
        cols = np.arange(size) + 0.5
        img[r] = np.clip(np.minimum(cols + 0.5 - c0, c0 + width - (cols - 0.5)), 0, 1)  # anti-aliased edges
    return img[None, None]


# ------------------------------------------------------------------ drawn shapes
@pytest.mark.parametrize("width", [2, 3, 4, 6])
def test_thickness_of_a_bar_is_its_width(width):
    assert M.stroke_thickness(_bar(width))[0] == pytest.approx(width, abs=0.6)  # a half-pixel edge either way


def test_thickness_grows_with_width_and_ignores_contrast():
    bars = np.concatenate([_bar(w) for w in (2, 3, 4, 5, 6)])
    t = M.stroke_thickness(bars)
    assert np.all(np.diff(t) > 0)
    np.testing.assert_allclose(M.stroke_thickness(0.1 + 0.5 * bars), t, rtol=0.05)  # Otsu: contrast-free


@pytest.mark.parametrize("k", [-0.4, -0.2, 0.2, 0.4])
def test_slant_sign_and_size(k):
    s = M.slant(_bar(3, shear=k))[0]
    assert np.sign(s) == np.sign(k) and s == pytest.approx(k, abs=0.05)  # > 0: top leans right
    assert abs(M.slant(_bar(3))[0]) < 0.01


def test_skeleton_length_grows_with_height():
    lengths = M.skeleton_length(np.concatenate([_bar(2, h) for h in (8, 14, 20, 26)]))
    assert np.all(np.diff(lengths) > 4)
    assert lengths[-1] == pytest.approx(26, abs=3)


def test_intensity_measurements():
    x = np.zeros((2, 1, 10, 10))
    x[0, 0, :2, :2] = 1.0
    x[1] = 0.5
    np.testing.assert_allclose(M.ink(x), [0.04, 0.5])
    np.testing.assert_allclose(M.ink(x, exclude=(0, 2, 0, 2)), [0.0, 0.5 * 96 / 100])
    np.testing.assert_allclose(M.region_intensity(x, (0, 2, 0, 2)), [1.0, 0.5])
    np.testing.assert_allclose(M.global_contrast(x), [1.0, 0.0])
    np.testing.assert_allclose(M.global_contrast(x, exclude=(0, 2, 0, 2)), [0.0, 0.0])
    rgb = np.repeat(x, 3, axis=1)
    np.testing.assert_allclose(M.ink(rgb), M.ink(x))
    assert np.isnan(M.stroke_thickness(np.zeros((1, 1, 8, 8)))).all()  # blank: nothing to measure
    with pytest.raises(ValueError, match="box"):
        M.region_intensity(x, (0, 2, 0))


def test_judge_and_unchanged():
    values = [2, 3, 4, 5, 6]
    grid = [_bar(w) for w in values]
    assert M.judge_intervention(values, grid, M.stroke_thickness) == pytest.approx((1.0, 1))
    assert M.judge_intervention(values, grid[::-1], M.stroke_thickness) == pytest.approx((-1.0, -1))
    assert M.judge_intervention(values, [grid[0]] * 5, M.ink).sign == 0
    assert M.unchanged(grid[0], grid[0].copy(), M.stroke_thickness, noise=0.0)
    assert not M.unchanged(grid[0], grid[2], M.stroke_thickness, noise=0.5)
    assert M.shift(grid[0], grid[2], M.stroke_thickness) == pytest.approx(2.0, abs=0.5)
    np.testing.assert_array_equal(M.intervention_values(np.array([0, 1, 1, 0])), [0, 1])
    v = M.intervention_values(np.arange(101.0), 5)
    np.testing.assert_allclose(v, [5, 27.5, 50, 72.5, 95])
    with pytest.raises(ValueError, match="one image batch per"):
        M.judge_intervention([1, 2], grid, M.ink)


# ------------------------------------------------------------------ recovery on the realistic families
@pytest.fixture(scope="module")
def morpho():
    return simulate_realistic("morpho", N, seed=0)


def test_thickness_and_slant_recovered_on_morpho(morpho):
    thickness, slant = morpho.latents.T
    rho_t = stats.spearmanr(M.stroke_thickness(morpho.images), thickness).statistic
    rho_s = stats.spearmanr(M.slant(morpho.images), slant).statistic
    assert rho_t >= 0.9  # measured about 0.94
    assert rho_s >= 0.9  # measured about 0.96, positive: the sign convention matches the simulator's


def test_judge_passes_the_true_interventions(morpho):
    n = 30  # do() on the first rows, the rest of the seed's draws fixed: the true counterfactuals
    for var, measure in (("dose", M.stroke_thickness), ("tilt", M.slant)):
        values = M.intervention_values(morpho.table[var], 5)
        grid = [simulate_realistic("morpho", n, seed=0, do={var: v}).images for v in values]
        judged = M.judge_intervention(values, grid, measure)
        assert judged.sign == 1 and judged.rho >= 0.8, (var, judged)


def test_marker_region_separates_marker_on_and_off():
    for family in ("marker", "mixed"):
        sim = simulate_realistic(family, 150, seed=1)
        region = M.region_intensity(sim.images, marker_box(32))
        on = sim.table["treated"].to_numpy() == 1
        assert region[on].min() > region[~on].max() + 0.1, family  # mixed: the scanner dims site C's marker


def test_contrast_ordered_by_site():
    sim = simulate_realistic("site", 150, seed=2)
    c = M.global_contrast(sim.images)
    means = {s: c[sim.table["site"].to_numpy() == s].mean() for s in SITES}
    assert means["A"] > means["B"] + 0.1 > means["C"] + 0.2  # gains 0.9 > 0.7 > 0.45
    assert stats.spearmanr(c, sim.latents[:, 0]).statistic > 0.95


def test_unrelated_variables_do_not_move_the_measurements():
    sim = simulate_realistic("unrelated", N, seed=3)
    weight, batch = sim.table["weight"].to_numpy(), sim.table["batch"].to_numpy()
    for measure in (M.stroke_thickness, M.slant, M.ink):
        m = measure(sim.images)
        assert abs(stats.spearmanr(m, weight).statistic) < 0.2  # n = 200: 2.8 standard errors
        spread = max(abs(m[batch == b].mean() - m.mean()) for b in np.unique(batch)) / m.std()
        assert spread < 0.4  # per-batch means (about 50 rows each) within 2.8 standard errors
    base = simulate_realistic("unrelated", 30, seed=3, do={"weight": 50.0}).images
    other = simulate_realistic("unrelated", 30, seed=3, do={"weight": 90.0}).images
    assert M.unchanged(base, other, M.stroke_thickness, noise=0.01)
