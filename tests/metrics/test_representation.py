"""mcc, mean_mic, match_latents and score_matrix."""

from __future__ import annotations

import numpy as np
import pytest

from xcausal.metrics import match_latents, mcc, mean_mic, score_matrix

N = 500


@pytest.fixture(scope="module")
def z() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, 3))


def test_permuted_and_scaled_copy(z: np.ndarray) -> None:
    # est column i = a_i * z[:, perm[i]] + b_i, with a negative scale included
    perm = [2, 0, 1]
    est = z[:, perm] * np.array([-2.0, 3.0, 0.5]) + np.array([1.0, -4.0, 10.0])
    assert mcc(z, est) == pytest.approx(1.0)
    assert mcc(z, est, method="spearman") == pytest.approx(1.0)
    assert mean_mic(z, est) == pytest.approx(1.0)
    matched, s = match_latents(z, est, score="pearson")
    # true j is matched to the est column holding it: perm[i] = j  ->  i = perm.index(j)
    assert matched == [perm.index(j) for j in range(3)] == [1, 2, 0]
    assert s.shape == (3, 3)


def test_monotone_transforms(z: np.ndarray) -> None:
    est = np.column_stack([np.exp(z[:, 1]), z[:, 2] ** 3, -np.arctan(z[:, 0])])
    assert mcc(z, est, method="spearman") == pytest.approx(1.0)
    assert mean_mic(z, est) == pytest.approx(1.0)
    # Pearson is not invariant to non-linear transforms
    assert mcc(z, est) < 0.95
    assert match_latents(z, est, score="mic")[0] == [2, 0, 1]


def test_more_learned_than_true_latents(z: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(N, 2))
    est = np.column_stack([noise[:, 0], z[:, 1], z[:, 2], noise[:, 1], z[:, 0]])  # k=5 > m=3
    assert mcc(z, est) == pytest.approx(1.0)
    assert mean_mic(z, est) == pytest.approx(1.0)
    matched, s = match_latents(z, est, score="spearman")
    assert matched == [4, 1, 2]
    assert s.shape == (3, 5)


def test_fewer_learned_than_true_latents(z: np.ndarray) -> None:
    # k=2 < m=3: two perfect matches, the third true latent counts 0 -> (1 + 1 + 0) / 3
    est = np.column_stack([z[:, 2], 5 * z[:, 0]])
    assert mcc(z, est) == pytest.approx(2 / 3)
    assert mean_mic(z, est) == pytest.approx(2 / 3)
    matched, s = match_latents(z, est, score="pearson")
    assert matched == [1, -1, 0]
    assert s.shape == (3, 2)


def test_hand_computed_partial_correlation() -> None:
    # est0 = z0 + z1 with z0, z1 orthonormal -> |corr(z0, est0)| = 1/sqrt(2); est1 = z1.
    # The matching must pair z1 with est1 (1.0) and z0 with est0 (1/sqrt 2): mean (1 + .7071)/2.
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    z = np.column_stack([np.sin(t), np.cos(t)])  # exactly uncorrelated, equal variance
    est = np.column_stack([z[:, 0] + z[:, 1], z[:, 1]])
    assert mcc(z, est) == pytest.approx((1 + 1 / np.sqrt(2)) / 2)
    assert match_latents(z, est, score="pearson")[0] == [0, 1]


def test_independent_latents_score_low(z: np.ndarray) -> None:
    other = np.random.default_rng(2).normal(size=(N, 3))
    assert mcc(z, other) < 0.15
    assert mean_mic(z, other) < 0.25


def test_constant_learned_latent_scores_zero(z: np.ndarray) -> None:
    est = np.column_stack([z[:, 0], np.full(N, 7.0)])
    s = score_matrix(z[:, :2], est, score="pearson")
    assert s[:, 1].tolist() == [0.0, 0.0]
    assert mcc(z[:, :2], est) == pytest.approx(0.5)
    assert mean_mic(z[:, :2], est) == pytest.approx(0.5)


def test_one_dimensional_inputs_are_single_latents(z: np.ndarray) -> None:
    assert mcc(z[:, 0], -z[:, 0]) == pytest.approx(1.0)


def test_score_matrix_values(z: np.ndarray) -> None:
    s = score_matrix(z, z, score="spearman")
    np.testing.assert_allclose(np.diag(s), 1.0)
    assert np.all((s >= 0) & (s <= 1))


@pytest.mark.parametrize(
    "a, b, kw, match",
    [
        (np.zeros((10, 2)), np.zeros((9, 2)), {}, r"differ in sample count: 10 != 9"),
        (np.zeros((10, 2, 1)), np.zeros((10, 2)), {}, r"z_true must have shape \(N, m\)"),
        (np.zeros((10, 0)), np.zeros((10, 2)), {}, r"z_true has no columns"),
        (np.full((10, 1), np.nan), np.zeros((10, 1)), {}, r"z_true contains NaN"),
        (np.zeros((1, 1)), np.zeros((1, 1)), {}, r"at least 2 samples, got N=1"),
        (np.ones((5, 1)), np.ones((5, 1)), {"method": "kendall"}, r"got 'kendall'"),
    ],
)
def test_mcc_bad_input(a, b, kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        mcc(a, b, **kw)


def test_bad_score_and_mic_sample_size() -> None:
    with pytest.raises(ValueError, match=r"score must be one of .* got 'cosine'"):
        match_latents(np.zeros((5, 1)), np.zeros((5, 1)), score="cosine")
    with pytest.raises(ValueError, match=r"at least 4 samples, got N=3"):
        mean_mic(np.arange(3.0), np.arange(3.0))
