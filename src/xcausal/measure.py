"""Image measurements for judging interventions: what a generated image shows, measured without a model.

Every measurement takes a batch of images ``(N, C, H, W)`` (also ``(N, H, W)`` or ``(H, W)``),
float in ``[0, 1]``, and returns one float per image, shape ``(N,)``. Colour images are averaged
over channels first. The shape measurements follow Morpho-MNIST (Castro et al. 2019,
"Morpho-MNIST: quantitative assessment and diagnostics for representation learning"):

* the image is upscaled by ``scale`` (bilinear, default 4, as Morpho-MNIST measures at 4x) and
  binarised with Otsu's threshold (:func:`skimage.filters.threshold_otsu`), so a global change of
  contrast or gamma barely moves the shape measurements;
* :func:`stroke_thickness`: ``2 x`` the mean Euclidean distance transform of the stroke, read on
  its skeleton (:func:`skimage.morphology.skeletonize`), in pixels of the input image;
* :func:`skeleton_length`: skeleton pixels divided by ``scale``, in pixels of the input image;
* :func:`slant`: the horizontal shear of the binarised stroke from its second-order central
  moments (:func:`skimage.measure.moments_central`), ``slant = -mu11 / mu20`` with ``mu11`` the
  row-column and ``mu20`` the row-row moment. Sign convention: rows grow downwards, so a stroke
  whose top leans to the RIGHT (forward, italic slant) has ``slant > 0``; a horizontal shear
  ``column += k (row_centre - row)`` adds exactly ``k``.

Intensity measurements work on the image as given: :func:`ink` (mean intensity),
:func:`region_intensity` (mean intensity inside a box) and :func:`global_contrast` (99th minus
1st percentile of intensity).

Every measurement but :func:`region_intensity` takes ``exclude``, a box whose pixels are set to
0 first (e.g. a marker's corner, so that the stroke measurements see only the digit). Boxes are
``(row0, row1, col0, col1)`` in pixels, half-open like slices. An image with no contrast (blank)
measures NaN in the shape measurements.

The judge: :func:`judge_intervention` asks whether a measured attribute follows the do() values
of a causal variable (Spearman's rho over the values and its sign), :func:`unchanged` whether
do() of an anti-causal or unrelated variable leaves an attribute where it was (within a noise
tolerance), and :func:`intervention_values` gives do() values over a variable's observed 5-95%
range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage, stats
from skimage.filters import threshold_otsu
from skimage.measure import moments_central
from skimage.morphology import skeletonize
from skimage.transform import rescale

__all__ = [
    "Box",
    "Judgement",
    "MEASURES",
    "binarise",
    "global_contrast",
    "ink",
    "intervention_values",
    "judge_intervention",
    "region_intensity",
    "shift",
    "skeleton_length",
    "slant",
    "stroke_thickness",
    "unchanged",
]

Box = tuple[int, int, int, int]
"""``(row0, row1, col0, col1)``, half-open pixel ranges like ``image[row0:row1, col0:col1]``."""
Measure = Callable[[np.ndarray], np.ndarray]

DEFAULT_SCALE = 4
"""Upscaling factor before binarising (Morpho-MNIST measures at 4x)."""


# ------------------------------------------------------------------ shape measurements
def binarise(image: np.ndarray, scale: int = DEFAULT_SCALE) -> np.ndarray | None:
    """One 2-D image upscaled by ``scale`` (bilinear) and thresholded at Otsu's level.

    Returns a boolean mask of shape ``(scale H, scale W)``, or None when the image has no
    contrast (nothing to threshold) or the mask is empty.
    """
    img = np.asarray(image, dtype=np.float64)
    if scale != 1:
        img = rescale(img, scale, order=1, mode="edge", anti_aliasing=False)
    if float(img.max() - img.min()) < 1e-6:
        return None
    mask = img > threshold_otsu(img)
    return mask if mask.any() else None


def mask_thickness(mask: np.ndarray) -> float:
    """Morpho-MNIST's mean stroke thickness of a binary mask, in its own pixels.

    ``2 x`` the mean of the Euclidean distance transform over the skeleton's pixels.
    """
    skel = skeletonize(mask)
    if not skel.any():
        return float("nan")
    return float(2.0 * ndimage.distance_transform_edt(mask)[skel].mean())


def mask_slant(mask: np.ndarray) -> float:
    """Horizontal shear of a binary mask, ``-mu11 / mu20`` (positive: the top leans right)."""
    mu = moments_central(mask.astype(np.float64), order=2)
    return float(-mu[1, 1] / mu[2, 0]) if mu[2, 0] > 0 else float("nan")


def stroke_thickness(images: np.ndarray, *, scale: int = DEFAULT_SCALE, exclude: Box | None = None) -> np.ndarray:
    """Mean stroke thickness per image (Morpho-MNIST), in pixels of the input image.

    Upscale by ``scale``, binarise (Otsu), skeletonise; thickness = ``2 x`` the mean distance
    transform on the skeleton, divided by ``scale``.
    """
    return _per_mask(images, scale, exclude, lambda m: mask_thickness(m) / scale)


def skeleton_length(images: np.ndarray, *, scale: int = DEFAULT_SCALE, exclude: Box | None = None) -> np.ndarray:
    """Length of the stroke's skeleton per image: skeleton pixels / ``scale`` (input pixels)."""
    return _per_mask(images, scale, exclude, lambda m: float(skeletonize(m).sum()) / scale)


def slant(images: np.ndarray, *, scale: int = DEFAULT_SCALE, exclude: Box | None = None) -> np.ndarray:
    """Slant (horizontal shear) per image from the binarised stroke's central moments.

    ``-mu11 / mu20``; positive when the top leans to the right (see the module docstring).
    """
    return _per_mask(images, scale, exclude, mask_slant)


# ------------------------------------------------------------------ intensity measurements
def ink(images: np.ndarray, *, exclude: Box | None = None) -> np.ndarray:
    """Mean intensity per image (the excluded box counts as 0)."""
    return _gray(images, exclude).mean(axis=(1, 2))


def region_intensity(images: np.ndarray, box: Box) -> np.ndarray:
    """Mean intensity per image inside ``box = (row0, row1, col0, col1)``."""
    r0, r1, c0, c1 = _check_box(box)
    x = _gray(images, None)[:, r0:r1, c0:c1]
    if x.size == 0:
        raise ValueError(f"box {box} is empty or outside the {_gray(images, None).shape[1:]} image")
    return x.mean(axis=(1, 2))


def global_contrast(images: np.ndarray, *, exclude: Box | None = None) -> np.ndarray:
    """Global contrast per image: the 99th minus the 1st percentile of intensity.

    Excluded pixels are left out (not set to 0), so a marker does not count.
    """
    x = _gray(images, None)
    flat = x.reshape(len(x), -1)
    if exclude is not None:
        keep = np.ones(x.shape[1:], dtype=bool)
        r0, r1, c0, c1 = _check_box(exclude)
        keep[r0:r1, c0:c1] = False
        flat = flat[:, keep.ravel()]
    lo, hi = np.percentile(flat, [1.0, 99.0], axis=1)
    return hi - lo


MEASURES: dict[str, Measure] = {
    "stroke_thickness": stroke_thickness,
    "skeleton_length": skeleton_length,
    "slant": slant,
    "ink": ink,
    "global_contrast": global_contrast,
}
"""The box-free measurements by name (``region_intensity`` needs a box)."""


# ------------------------------------------------------------------ the judge
class Judgement(NamedTuple):
    """Spearman's rho between do() values and the mean measured attribute, and its sign."""

    rho: float
    sign: int


def intervention_values(observed: np.ndarray, k: int = 7, *, lo: float = 5.0, hi: float = 95.0) -> np.ndarray:
    """``k`` evenly spaced do() values over the ``lo``-``hi`` percentile range of ``observed``.

    A binary or otherwise few-valued variable (at most ``k`` distinct values) gets its distinct
    values instead.
    """
    x = np.asarray(observed, dtype=np.float64).ravel()
    levels = np.unique(x)
    if len(levels) <= k:
        return levels
    a, b = np.percentile(x, [lo, hi])
    return np.linspace(a, b, k)


def judge_intervention(
    values: Sequence[float] | np.ndarray,
    images_by_value: Sequence[np.ndarray],
    measure: Measure,
) -> Judgement:
    """Does the measured attribute follow the do() values?

    Parameters
    ----------
    values : sequence of float, length K >= 2
        The do() values (e.g. from :func:`intervention_values`).
    images_by_value : sequence of K image batches
        ``images_by_value[k]``: the images generated under ``do(u = values[k])`` (the same rows
        for every k, as a counterfactual grid).
    measure : callable
        Batch -> one float per image, e.g. :func:`stroke_thickness` or
        ``functools.partial(region_intensity, box=...)``.

    Returns
    -------
    Judgement
        ``rho``: Spearman's rank correlation between ``values`` and the per-value mean of the
        measurement (NaN images ignored); ``sign``: ``+1``, ``-1`` or ``0`` (rho 0 or undefined).
        The causal check wants the sign of the true mechanism and ``|rho| >= 0.8``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if len(v) != len(images_by_value) or len(v) < 2:
        raise ValueError(f"need one image batch per do() value and at least 2 values, got {len(v)} values "
                         f"and {len(images_by_value)} batches")
    means = np.array([np.nanmean(measure(b)) for b in images_by_value])
    if np.ptp(v) == 0 or not np.isfinite(means).all() or np.ptp(means) == 0:
        return Judgement(float("nan"), 0)
    rho = float(stats.spearmanr(v, means).statistic)
    return Judgement(rho, int(np.sign(rho)))


def shift(images_a: np.ndarray, images_b: np.ndarray, measure: Measure) -> float:
    """Mean measurement of ``images_b`` minus that of ``images_a`` (NaN images ignored)."""
    return float(np.nanmean(measure(images_b)) - np.nanmean(measure(images_a)))


def unchanged(images_a: np.ndarray, images_b: np.ndarray, measure: Measure, noise: float) -> bool:
    """True when the mean measurement moves by at most ``noise`` between the two batches.

    ``images_a`` and ``images_b`` are, e.g., the images under two do() values of an anti-causal
    or unrelated variable; ``noise`` is the tolerance in the measurement's units, the data's own
    noise (e.g. the standard error of the mean measurement, or a fraction of its spread over the
    observed images).
    """
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be finite and >= 0, got {noise!r}")
    return bool(abs(shift(images_a, images_b, measure)) <= noise)


# ------------------------------------------------------------------ helpers
def _gray(images: np.ndarray, exclude: Box | None) -> np.ndarray:
    """(N, H, W) float64 gray images (channels averaged), excluded box set to 0 (a copy)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 4:
        x = x.mean(axis=1)
    if x.ndim != 3:
        raise ValueError(f"images must be (N, C, H, W), (N, H, W) or (H, W), got shape {np.shape(images)}")
    if exclude is not None:
        r0, r1, c0, c1 = _check_box(exclude)
        x = x.copy()
        x[:, r0:r1, c0:c1] = 0.0
    return x


def _check_box(box: Box) -> Box:
    if len(box) != 4 or any(int(b) != b or b < 0 for b in box):
        raise ValueError(f"box must be (row0, row1, col0, col1), non-negative integers, got {box!r}")
    return tuple(int(b) for b in box)  # type: ignore[return-value]


def _per_mask(images: np.ndarray, scale: int, exclude: Box | None, f: Callable[[np.ndarray], float]) -> np.ndarray:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    out = np.full(len(x := _gray(images, exclude)), np.nan)
    for i, img in enumerate(x):
        mask = binarise(img, int(scale))
        if mask is not None:
            out[i] = f(mask)
    return out
