"""Pixel measurements of the circles images (:mod:`xcausal.data.circles`), without a learned judge.

Each image is assumed to hold one bright object on a dark background. Its pixels are found by a
brightness threshold: with ``b`` the per-pixel maximum over the colour channels, a first mask
``b >= max(b) / 2`` gives the object's level ``m`` (the median of ``b`` over that mask, robust to
noise and to the anti-aliased edge), and the object is ``b > m / 2``. An edge pixel at half
coverage sits at the threshold, so the mask's area matches the disc's area ``pi r^2``.

Coordinates follow the simulator: pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, row 0
at the top, so a pixel's centre is ``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["measure_circles", "circle_features", "MIN_OBJECT_LEVEL"]

logger = logging.getLogger(__name__)

MIN_OBJECT_LEVEL = 0.1
"""Images whose brightest pixel is below this (on a 0..1 scale) have no object: NaN measurements."""


def measure_circles(images: np.ndarray) -> dict[str, np.ndarray]:
    """Measure colour, size and position of the one circle in each image.

    Parameters
    ----------
    images : ndarray, shape (N, 3, S, S)
        RGB images, float in [0, 1] or uint8 in 0..255.

    Returns
    -------
    dict of str to ndarray, shape (N,) float64 each
        ``"hue"``: blue-vs-red score ``sum B / (sum R + sum B)`` over the circle's pixels, in
        ``[0, 1]`` (0 = pure red, 1 = pure blue); ``"radius"``: ``sqrt(area / pi)`` in pixels,
        ``area`` = number of pixels above the threshold; ``"center_x"``, ``"center_y"``: the
        brightness-weighted centroid of those pixels, in pixels from the left / top edge.
        NaN for an image without an object (brightest pixel below :data:`MIN_OBJECT_LEVEL`).

    Raises
    ------
    ValueError
        If ``images`` is not (N, 3, S, S).
    """
    from xcausal.data.circles import hue_score  # deferred: xcausal.data imports torch

    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, S, S) RGB, got shape {x.shape}")
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    n, _, h, w = x.shape
    if n == 0 or h == 0 or w == 0:
        return {k: np.full(n, np.nan) for k in ("hue", "radius", "center_x", "center_y")}
    b = x.max(axis=1)  # (N, H, W)
    peak = b.max(axis=(1, 2))
    first = b >= 0.5 * peak[:, None, None]  # never empty: holds the brightest pixel
    level = np.nanmedian(np.where(first, b, np.nan).reshape(n, -1), axis=1)
    mask = b > 0.5 * level[:, None, None]
    area = mask.sum(axis=(1, 2)).astype(np.float64)
    rgb = (x * mask[:, None]).sum(axis=(2, 3))  # (N, 3)
    wgt = b * mask
    total = wgt.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (wgt * (np.arange(w) + 0.5)[None, None, :]).sum(axis=(1, 2)) / total
        cy = (wgt * (np.arange(h) + 0.5)[None, :, None]).sum(axis=(1, 2)) / total
    out = {"hue": hue_score(rgb), "radius": np.sqrt(area / np.pi), "center_x": cx, "center_y": cy}
    empty = peak < MIN_OBJECT_LEVEL
    if empty.any():
        logger.debug("%d image(s) without an object: NaN measurements", int(empty.sum()))
        for v in out.values():
            v[empty] = np.nan
    return out


def circle_features(images: np.ndarray, image_size: int | None = None) -> np.ndarray:
    """Recover the simulator's binary features ``hue, radius, shift`` from pixels.

    Each measurement of :func:`measure_circles` is thresholded at the midpoint of the
    simulator's two levels (:func:`xcausal.data.circles.feature_thresholds`): the hue score,
    the radius and the horizontal centre ``center_x``.

    Parameters
    ----------
    images : ndarray, shape (N, 3, S, S)
        RGB images, float in [0, 1] or uint8.
    image_size : int, optional
        Side ``S`` the thresholds are scaled to; must equal the images' side when given
        (default: the images' side).

    Returns
    -------
    ndarray, shape (N, 3), float64
        0/1 features in the order ``hue, radius, shift`` (the columns of the simulator's
        ``latents``). A NaN measurement gives 0.

    Raises
    ------
    ValueError
        If ``images`` is not (N, 3, S, S) or ``image_size`` differs from ``S``.
    """
    from xcausal.data.circles import feature_thresholds  # deferred: xcausal.data imports torch

    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
        raise ValueError(f"images must be (N, 3, S, S) RGB, got shape {x.shape}")
    size = x.shape[-1]
    if image_size is not None and int(image_size) != size:
        raise ValueError(f"image_size={image_size} but the images are {size} px wide; the "
                         f"thresholds are in pixels of the images measured")
    m = measure_circles(x)
    thr = feature_thresholds(size)
    with np.errstate(invalid="ignore"):
        cols = [m["hue"] > thr["hue"], m["radius"] > thr["radius"], m["center_x"] > thr["shift"]]
    return np.stack(cols, axis=1).astype(np.float64)
