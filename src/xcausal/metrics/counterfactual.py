"""Counterfactual-image measurements without a learned judge (DESIGN §6, Monteiro et al. 2023).

Effectiveness of an intervention on a rotation or a vertical shift is measured in the image
itself, by registration: the transform that best maps a reference image onto the image, found by
maximising the normalised cross-correlation (NCC) over a grid of candidate transforms and refined
by a parabola through the best grid point and its neighbours. Composition and reversibility are
image distances, :func:`l1_255`.

Conventions match :func:`xcausal.data.mnist.transform_images`: a rotation is in degrees,
counter-clockwise as displayed (row 0 at the top; ``scipy.ndimage.rotate``); a shift is in
pixels, positive = down (``scipy.ndimage.shift`` along rows). The candidate transforms are
applied to ``ref`` with bilinear interpolation and zero padding, as one sparse linear operator
per grid, so a batch of pairs costs a few matrix products.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

__all__ = ["estimate_rotation", "estimate_shift", "l1_255", "DEFAULT_ANGLES", "DEFAULT_SHIFTS"]

logger = logging.getLogger(__name__)

DEFAULT_ANGLES = np.arange(-45.0, 45.25, 0.5)
"""Candidate rotations of :func:`estimate_rotation`, degrees."""
DEFAULT_SHIFTS = np.arange(-10.0, 10.25, 0.25)
"""Candidate vertical shifts of :func:`estimate_shift`, pixels."""

_CHUNK_VALUES = 4_000_000  # floats of transformed references held at once (about 32 MB)


def estimate_rotation(
    img: np.ndarray, ref: np.ndarray, *, angles: np.ndarray = DEFAULT_ANGLES
) -> float | np.ndarray:
    """Rotation (degrees) that best maps ``ref`` onto ``img``.

    Parameters
    ----------
    img : ndarray, shape (H, W), (n, H, W) or (n, 1, H, W)
        Images in which the rotation is measured.
    ref : ndarray, shape (H, W), (n, H, W) or (n, 1, H, W)
        Reference (unrotated) images, one per ``img`` or a single one for all.
    angles : ndarray, shape (A,), optional
        Candidate rotations, degrees, counter-clockwise as displayed (``scipy.ndimage.rotate``).

    Returns
    -------
    float or ndarray, shape (n,)
        ``argmax_theta NCC(rotate(ref, theta), img)``, refined between grid points when
        ``angles`` is evenly spaced; a float for a single (H, W) pair. NaN where ``img`` or
        ``ref`` is constant (NCC undefined).
    """
    x, r, single = _pairs(img, ref)
    grid = _grid(angles, "angles")
    op = _rotation_operator(grid, *x.shape[-2:])
    out = _register(x, r, op, grid)
    return float(out[0]) if single else out


def estimate_shift(
    img: np.ndarray, ref: np.ndarray, *, shifts: np.ndarray = DEFAULT_SHIFTS
) -> float | np.ndarray:
    """Vertical shift (pixels, positive = down) that best maps ``ref`` onto ``img``.

    Parameters
    ----------
    img : ndarray, shape (H, W), (n, H, W) or (n, 1, H, W)
        Images in which the shift is measured.
    ref : ndarray, shape (H, W), (n, H, W) or (n, 1, H, W)
        Reference (unshifted) images, one per ``img`` or a single one for all.
    shifts : ndarray, shape (S,), optional
        Candidate shifts in pixels (``scipy.ndimage.shift(ref, (s, 0))`` convention).

    Returns
    -------
    float or ndarray, shape (n,)
        ``argmax_s NCC(shift(ref, s), img)``, refined between grid points when ``shifts`` is
        evenly spaced; a float for a single (H, W) pair. NaN where an image is constant.
    """
    x, r, single = _pairs(img, ref)
    grid = _grid(shifts, "shifts")
    op = _shift_operator(grid, *x.shape[-2:])
    out = _register(x, r, op, grid)
    return float(out[0]) if single else out


def l1_255(a: np.ndarray, b: np.ndarray, *, per_image: bool = False) -> float | np.ndarray:
    """Mean absolute difference of images in ``[0, 1]``, in 0-255 units.

    Parameters
    ----------
    a, b : ndarray, same shape (or broadcastable)
        Images with values in ``[0, 1]``, e.g. (n, 1, H, W).
    per_image : bool, optional
        If true, average over all axes but the first and return shape (n,).

    Returns
    -------
    float or ndarray, shape (n,)
        ``255 * mean(|a - b|)``.
    """
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) * 255.0
    if not per_image:
        return float(d.mean())
    if d.ndim < 2:
        raise ValueError(f"per_image needs a batch axis, got shape {d.shape}")
    return d.reshape(len(d), -1).mean(axis=1)


# ------------------------------------------------------------------ helpers
def _as_batch(a: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    elif x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"{name} must be (H, W), (n, H, W) or (n, 1, H, W), got shape {np.shape(a)}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def _pairs(img: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Batch ``img`` and ``ref`` as (n, H, W); a single ref is broadcast over the images."""
    single = np.ndim(img) == 2
    x, r = _as_batch(img, "img"), _as_batch(ref, "ref")
    if x.shape[-2:] != r.shape[-2:]:
        raise ValueError(f"img and ref image sizes differ: {x.shape[-2:]} vs {r.shape[-2:]}")
    if len(r) == 1 and len(x) > 1:
        r = np.broadcast_to(r, x.shape)
    elif len(r) != len(x):
        raise ValueError(f"img has {len(x)} images but ref has {len(r)} (expected {len(x)} or 1)")
    return x, r, single and len(x) == 1


def _grid(values: np.ndarray, name: str) -> np.ndarray:
    g = np.asarray(values, dtype=np.float64).ravel()
    if g.size < 1 or not np.isfinite(g).all():
        raise ValueError(f"{name} must be a non-empty array of finite values")
    return g


def _bilinear_rows(rr: np.ndarray, cc: np.ndarray, h: int, w: int) -> sparse.csr_matrix:
    """Sparse (P, h*w) matrix sampling an (h, w) image bilinearly at (rr, cc), zero outside."""
    rr, cc = rr.ravel(), cc.ravel()
    r0, c0 = np.floor(rr), np.floor(cc)
    fr, fc = rr - r0, cc - c0
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    rows, cols, vals = [], [], []
    p = np.arange(rr.size)
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            ri, ci = r0 + dr, c0 + dc
            ok = (ri >= 0) & (ri < h) & (ci >= 0) & (ci < w) & (wr * wc > 0)
            rows.append(p[ok])
            cols.append(ri[ok] * w + ci[ok])
            vals.append((wr * wc)[ok])
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(rr.size, h * w)
    )


def _rotation_operator(angles: np.ndarray, h: int, w: int) -> sparse.csr_matrix:
    """(A*h*w, h*w): row block ``a`` rotates a flattened image by ``angles[a]`` degrees.

    Same geometry as ``scipy.ndimage.rotate(reshape=False)``: about ``((h-1)/2, (w-1)/2)``,
    output pixel ``(r, c)`` samples the input at ``R(-theta)`` of its offset from the centre.
    """
    cr, cw = (h - 1) / 2.0, (w - 1) / 2.0
    dr, dc = np.meshgrid(np.arange(h) - cr, np.arange(w) - cw, indexing="ij")
    t = np.deg2rad(angles)[:, None, None]
    cos, sin = np.cos(t), np.sin(t)
    rr = cr + dr * cos + dc * sin
    cc = cw + dc * cos - dr * sin
    return _bilinear_rows(rr, cc, h, w)


def _shift_operator(shifts: np.ndarray, h: int, w: int) -> sparse.csr_matrix:
    """(S*h*w, h*w): row block ``s`` moves a flattened image down by ``shifts[s]`` pixels."""
    r, c = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    rr = r[None] - shifts[:, None, None]
    cc = np.broadcast_to(c, rr.shape)
    return _bilinear_rows(rr, cc, h, w)


def _standardise(x: np.ndarray, axis: int) -> np.ndarray:
    """Centre and scale to unit norm along ``axis``; constant slices become NaN."""
    x = x - x.mean(axis=axis, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=axis, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 1e-12, x / norm, np.nan)


def _register(x: np.ndarray, r: np.ndarray, op: sparse.csr_matrix, grid: np.ndarray) -> np.ndarray:
    """Best grid value per pair by NCC of ``op @ ref`` with ``img``, parabola-refined."""
    n, h, w = x.shape
    p, k = h * w, grid.size
    xs = _standardise(x.reshape(n, p), axis=1)  # (n, P)
    rf = np.ascontiguousarray(r.reshape(n, p).T)  # (P, n)
    ncc = np.empty((k, n))
    step = max(1, _CHUNK_VALUES // (k * p))
    for s in range(0, n, step):
        moved = (op @ rf[:, s:s + step]).reshape(k, p, -1)  # (K, P, m)
        ncc[:, s:s + step] = np.einsum("kpm,mp->km", _standardise(moved, axis=1), xs[s:s + step])
    bad = np.isnan(ncc).all(axis=0)
    best = np.argmax(np.where(np.isnan(ncc), -np.inf, ncc), axis=0)
    out = grid[best].astype(np.float64)
    if k >= 3:
        d = np.diff(grid)
        if np.allclose(d, d[0]) and d[0] != 0:
            inner = (best > 0) & (best < k - 1) & ~bad
            i = best[inner]
            cols = np.flatnonzero(inner)
            y0, y1, y2 = ncc[i - 1, cols], ncc[i, cols], ncc[i + 1, cols]
            curv = y0 - 2.0 * y1 + y2
            with np.errstate(invalid="ignore", divide="ignore"):
                delta = np.where(curv < 0, 0.5 * (y0 - y2) / curv, 0.0)
            out[cols] += np.clip(np.nan_to_num(delta), -0.5, 0.5) * d[0]
    out[bad] = np.nan
    return out
