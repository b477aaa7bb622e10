"""Registration-based counterfactual measurements: rotation, vertical shift, L1 in 0-255."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from xcausal.data.mnist import load_mnist, simulate_mnist
from xcausal.metrics import estimate_rotation, estimate_shift, l1_255
from xcausal.metrics.counterfactual import _rotation_operator, _shift_operator

ANGLES = [-25.0, -10.0, 0.0, 7.0, 20.0]
SHIFTS = [-4.0, -1.5, 0.0, 3.0]


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    x, y = load_mnist()
    return x[[int(np.flatnonzero(y == c)[3]) for c in range(10)]].astype(np.float64)


def test_operators_match_scipy(digits: np.ndarray) -> None:
    ref = digits[7]
    for a in (-33.3, 12.5):
        mine = (_rotation_operator(np.array([a]), 28, 28) @ ref.ravel()).reshape(28, 28)
        assert np.allclose(mine, ndimage.rotate(ref, a, reshape=False, order=1), atol=1e-9)
    for s in (-2.7, 4.0):
        mine = (_shift_operator(np.array([s]), 28, 28) @ ref.ravel()).reshape(28, 28)
        assert np.allclose(mine, ndimage.shift(ref, (s, 0), order=1, mode="constant"), atol=1e-9)


@pytest.mark.parametrize("angle", ANGLES)
def test_recovers_known_rotation(digits: np.ndarray, angle: float) -> None:
    for ref in digits[[2, 5, 7]]:
        img = ndimage.rotate(ref, angle, reshape=False, order=1)
        est = estimate_rotation(img, ref)
        assert isinstance(est, float)
        assert est == pytest.approx(angle, abs=1.0)


@pytest.mark.parametrize("shift", SHIFTS)
def test_recovers_known_shift(digits: np.ndarray, shift: float) -> None:
    for ref in digits[[0, 4, 9]]:
        img = ndimage.shift(ref, (shift, 0), order=1, mode="constant", cval=0.0)
        est = estimate_shift(img, ref)
        assert isinstance(est, float)
        assert est == pytest.approx(shift, abs=0.5)


def test_batched_equals_single_and_broadcasts_ref(digits: np.ndarray) -> None:
    ref = digits[3]
    imgs = np.stack([ndimage.rotate(ref, a, reshape=False, order=1) for a in ANGLES])
    batch = estimate_rotation(imgs[:, None], np.repeat(ref[None, None], len(ANGLES), axis=0))
    assert batch.shape == (len(ANGLES),)
    assert np.allclose(batch, [estimate_rotation(im, ref) for im in imgs])
    assert np.allclose(estimate_rotation(imgs, ref), batch)  # one ref for all images
    assert np.allclose(batch, ANGLES, atol=1.0)


@pytest.mark.parametrize("kind", ["rotate", "shift"])
def test_simulated_samples_against_their_base_image(kind: str) -> None:
    d = simulate_mnist(kind, 40, seed=5)
    base = load_mnist()[0][d.info["source_index"]]
    est = (estimate_rotation if kind == "rotate" else estimate_shift)(d.images, base)
    tol = 1.5 if kind == "rotate" else 0.5
    assert est.shape == (40,)
    # |shift| beyond the default grid (+-10 px) is astronomically rare at seed 5; check anyway
    ok = np.abs(d.latents[:, 0]) < 10
    assert np.all(np.abs(est - d.latents[:, 0])[ok] < tol)


def test_constant_image_is_nan(digits: np.ndarray) -> None:
    assert np.isnan(estimate_rotation(np.zeros((28, 28)), digits[0]))
    out = estimate_shift(np.stack([np.zeros((28, 28)), digits[1]]), digits[1])
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.0, abs=1e-6)


def test_bad_input(digits: np.ndarray) -> None:
    with pytest.raises(ValueError, match="sizes differ"):
        estimate_rotation(digits[0], digits[0][:20, :20])
    with pytest.raises(ValueError, match="expected 3 or 1"):
        estimate_shift(digits[:3], digits[:2])
    with pytest.raises(ValueError, match="img must be"):
        estimate_shift(digits[0].ravel(), digits[0])
    with pytest.raises(ValueError, match="NaN"):
        estimate_rotation(np.full((28, 28), np.nan), digits[0])


def test_l1_255_by_hand() -> None:
    a = np.array([[[0.0, 1.0], [0.5, 0.2]]])
    b = np.array([[[0.0, 0.0], [0.5, 0.6]]])
    # |diff| = 0, 1, 0, 0.4 -> mean 0.35 -> 89.25 in 0-255 units
    assert l1_255(a, b) == pytest.approx(89.25)
    assert l1_255(a, a) == 0.0
    two = np.concatenate([a, b])  # (2, 2, 2)
    assert np.allclose(l1_255(two, np.zeros_like(two), per_image=True), [255 * 1.7 / 4, 255 * 1.1 / 4])
