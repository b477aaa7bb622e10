"""Latent-recovery metrics: MIC, matched mean correlation (MCC) and matched mean MIC.

Learned latents are identifiable at best up to permutation and per-coordinate (often monotone)
transformations, so every score here first matches each true latent to one learned latent with
the Hungarian algorithm on a similarity matrix and then averages the matched similarities.

MIC
---
:func:`mic` is the Maximal Information Coefficient of Reshef et al. (2011, "Detecting novel
associations in large data sets", Science 334), computed with the approximate MINE algorithm
(ApproxMaxMI of their supplement), written from the paper's description:

1. Grid budget ``B = max(floor(n ** alpha), 4)``; grids with ``nx`` columns and ``ny`` rows,
   ``nx, ny >= 2`` and ``nx * ny <= B``.
2. For each ``ny`` the y axis is *equipartitioned* into ``ny`` rows of (nearly) equal mass; the
   x axis is then partitioned *optimally* into at most ``B // ny`` columns. Column boundaries
   only need to lie between "clumps" (maximal runs of x-sorted points in the same row); when
   there are more than ``c * (B // ny)`` clumps they are merged into that many "superclumps" of
   nearly equal mass. A dynamic program over the superclump boundaries maximises
   ``I(P; Q) = H(Q) - H(Q | P)`` for every number of columns at once (``H(Q | P)`` is additive
   over columns, which gives the optimal substructure).
3. Each grid's mutual information is normalised by ``log(min(nx, ny))``; the same is done with
   the roles of x and y exchanged, and MIC is the largest normalised value.

Deliberate simplifications (all within the approximation the paper already makes):

* Equal-mass partitions (rows and superclumps) are built by assigning each atomic unit (a run
  of tied values, or a clump) to bin ``floor(midpoint_rank * bins / n)`` instead of the paper's
  sequential greedy rule. Tied values always stay in one bin, so a variable with few distinct
  values may get fewer non-empty bins than requested (its normalisation then uses the requested
  number, which can only lower that grid's score).
* Points tied in x that fall in different rows form one "mixed" clump that no column boundary
  may split.

The statistic depends on the data only through ranks, so it is exactly invariant under
strictly increasing transformations of either variable; it is exactly symmetric in ``x, y``.
"""

from __future__ import annotations

import numbers
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import xlogy
from scipy.stats import rankdata

__all__ = ["mic", "mcc", "mean_mic", "match_latents", "score_matrix"]

Score = Literal["mic", "pearson", "spearman"]
_SCORES = ("mic", "pearson", "spearman")


# ---------------------------------------------------------------------------------------- MIC
def _check_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated 1-D float copies of ``x`` and ``y``."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    for name, a in (("x", xa), ("y", ya)):
        if a.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    if xa.shape != ya.shape:
        raise ValueError(f"x and y differ in length: {xa.shape[0]} != {ya.shape[0]}")
    if xa.shape[0] < 4:
        raise ValueError(f"MIC needs at least 4 samples, got n={xa.shape[0]}")
    return xa, ya


def _equal_mass_bins(sizes: np.ndarray, bins: int) -> np.ndarray:
    """Assign contiguous units to at most ``bins`` groups of nearly equal total size.

    Parameters
    ----------
    sizes : np.ndarray, shape (u,)
        Positive integer sizes of consecutive units (in axis order).
    bins : int
        Number of groups wanted.

    Returns
    -------
    np.ndarray, shape (u,)
        Non-decreasing group index per unit, consecutive from 0.
    """
    total = float(sizes.sum())
    mid = np.cumsum(sizes) - 0.5 * sizes
    g = np.minimum(np.floor(mid * bins / total).astype(np.int64), bins - 1)
    # relabel to 0..(#non-empty groups - 1); g is non-decreasing
    return np.concatenate(([0], np.cumsum(np.diff(g) > 0)))


class _Axis:
    """Sorting information of one variable, reused for every grid resolution."""

    def __init__(self, v: np.ndarray) -> None:
        self.order = np.argsort(v, kind="stable")
        vs = v[self.order]
        new = np.concatenate(([True], vs[1:] != vs[:-1]))
        self.starts = np.flatnonzero(new)  # first sorted position of every tie run
        self.sizes = np.diff(np.append(self.starts, len(v)))
        self.run_of_sorted = np.cumsum(new) - 1  # tie-run index per sorted position


def _rows(axis: _Axis, n_rows: int, n: int) -> np.ndarray:
    """Equipartition labels (per original sample) of ``axis`` into ``n_rows`` rows."""
    run_bin = _equal_mass_bins(axis.sizes, n_rows)
    labels = np.empty(n, dtype=np.int64)
    labels[axis.order] = run_bin[axis.run_of_sorted]
    return labels


def _best_mi_by_columns(q: np.ndarray, n_rows: int, xaxis: _Axis, max_cols: int,
                        c: int, xlogx: np.ndarray) -> np.ndarray:
    """Approximately maximal I(P; Q) for 2..max_cols columns along x, rows Q fixed.

    Parameters
    ----------
    q : np.ndarray, shape (n,)
        Row label per sample, in 0..n_rows-1.
    n_rows : int
        Number of row labels.
    xaxis : _Axis
        Sorting information of the variable partitioned into columns.
    max_cols : int
        Largest number of columns.
    c : int
        Superclump factor: at most ``c * max_cols`` candidate boundaries.
    xlogx : np.ndarray, shape (n + 1,)
        ``xlogx[i] = i * log(i)`` (0 for ``i = 0``).

    Returns
    -------
    np.ndarray, shape (max_cols + 1,)
        Entry ``l`` (``l >= 2``) is the mutual information (nats) of the best grid found with
        at most ``l`` columns (``-inf`` if the data allow fewer than two superclumps); entries 0
        and 1 are ``-inf``.
    """
    n = q.shape[0]
    out = np.full(max_cols + 1, -np.inf)
    qx = q[xaxis.order]
    # clumps: runs of x-sorted tie groups sharing one row label; a tie group spanning several
    # rows is a clump of its own ("mixed", label -1) that cannot be split.
    lo = np.minimum.reduceat(qx, xaxis.starts)
    hi = np.maximum.reduceat(qx, xaxis.starts)
    lab = np.where(lo == hi, lo, -1)
    cut = (lab[1:] != lab[:-1]) | (lab[1:] < 0) | (lab[:-1] < 0)
    clump_starts = np.concatenate(([0], xaxis.starts[1:][cut]))
    k_hat = c * max_cols
    if clump_starts.shape[0] > k_hat:
        sizes = np.diff(np.append(clump_starts, n))
        grp = _equal_mass_bins(sizes, k_hat)
        keep = np.concatenate(([True], grp[1:] != grp[:-1]))
        clump_starts = clump_starts[keep]
    bounds = np.append(clump_starts, n)  # k + 1 boundaries, k superclumps
    k = bounds.shape[0] - 1
    if k < 2:
        return out

    # row counts before each boundary, (n_rows, k + 1); integer so x log x can be looked up
    seg = np.repeat(np.arange(k), np.diff(bounds))
    per_seg = np.bincount(qx * k + seg, minlength=n_rows * k).reshape(n_rows, k)
    cum = np.zeros((n_rows, k + 1), dtype=np.int64)
    np.cumsum(per_seg, axis=1, out=cum[:, 1:])
    # g[s, t] = sum_r n_r log(n_r / n_c) for the column holding superclumps s..t-1, i.e. the
    # count form of -n_c * H(Q | column); additive over columns. Stored transposed (gt[t, s]) so
    # the dynamic program reduces along contiguous memory.
    gt = np.zeros((k + 1, k + 1))
    tot = np.zeros((k + 1, k + 1), dtype=np.int64)
    for r in range(n_rows):
        cnt = cum[r][:, None] - cum[r][None, :]  # cnt[t, s]
        np.maximum(cnt, 0, out=cnt)
        gt += xlogx[cnt]
        tot += cnt
    gt -= xlogx[tot]
    idx = np.arange(k + 1)
    gt[idx[:, None] <= idx[None, :]] = -np.inf  # need s < t

    p_q = cum[:, -1] / n
    h_q = float(-xlogy(p_q, p_q).sum())
    f = gt[:, 0].copy()  # f[t]: best value with the current number of columns over 0..t
    buf = np.empty_like(gt)
    for cols in range(2, min(max_cols, k) + 1):
        np.add(gt, f[None, :], out=buf)
        f = buf.max(axis=1)
        out[cols] = h_q + f[k] / n
    # more columns than superclumps: only splits inside a superclump remain, which cannot raise
    # the objective, so report the best grid with *at most* ``cols`` columns
    out[2:] = np.maximum.accumulate(out[2:])
    return out


def _mic_one_way(x_axis: _Axis, y_axis: _Axis, n: int, budget: int, c: int) -> float:
    """Best normalised score with y equipartitioned and x optimised."""
    best = 0.0
    xlogx = xlogy(np.arange(n + 1.0), np.arange(n + 1.0))
    for n_rows in range(2, budget // 2 + 1):
        q = _rows(y_axis, n_rows, n)
        max_cols = budget // n_rows
        mi = _best_mi_by_columns(q, n_rows, x_axis, max_cols, c, xlogx)
        cols = np.arange(2, max_cols + 1)
        scores = mi[2:] / np.log(np.minimum(cols, n_rows))
        if scores.size:
            best = max(best, float(np.max(scores)))
    return best


def mic(x: np.ndarray, y: np.ndarray, *, alpha: float = 0.6, c: int = 15) -> float:
    """Maximal Information Coefficient of two samples (approximate MINE algorithm).

    See the module docstring for the algorithm and its documented approximations.

    Parameters
    ----------
    x, y : np.ndarray, shape (n,)
        Paired samples, ``n >= 4``, finite.
    alpha : float, default 0.6
        Grid budget exponent, ``B(n) = n ** alpha``; in (0, 1].
    c : int, default 15
        Clump factor: for at most ``X`` columns at most ``c * X`` superclumps are considered.

    Returns
    -------
    float
        MIC in [0, 1]; about 1 for noiseless functional relations. If either variable is
        constant, 0.0 (it carries no information; a collapsed learned latent is a legitimate
        outcome that should score 0 rather than abort an evaluation).

    Raises
    ------
    ValueError
        On lengths that differ, ``n < 4``, non-1-D input, NaN/inf values, or ``alpha``/``c`` out
        of range.

    Notes
    -----
    The dynamic program costs about ``c**2 * B(n)**3`` operations, i.e. roughly
    ``n ** (3 * alpha)``: with the defaults about 0.02 s at ``n = 200``, 0.1-0.2 s at
    ``n = 1000``, 0.7-1 s at ``n = 3000`` and several seconds at ``n = 10000`` (numpy, one core).
    Subsample large data sets before calling it if that matters.
    """
    xa, ya = _check_pair(x, y)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
        raise ValueError(f"c must be a positive integer, got {c!r}")
    n = xa.shape[0]
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return 0.0
    budget = max(int(np.floor(n ** alpha)), 4)
    ax, ay = _Axis(xa), _Axis(ya)
    score = max(_mic_one_way(ax, ay, n, budget, int(c)), _mic_one_way(ay, ax, n, budget, int(c)))
    return float(min(max(score, 0.0), 1.0))


# ------------------------------------------------------------------------------- matching
def _check_latents(z_true: np.ndarray, z_est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated 2-D float copies (a 1-D array is one latent)."""
    out = []
    for name, z in (("z_true", z_true), ("z_est", z_est)):
        a = np.asarray(z, dtype=float)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2:
            raise ValueError(f"{name} must have shape (N, m), got shape {a.shape}")
        if a.shape[1] == 0:
            raise ValueError(f"{name} has no columns (shape {a.shape})")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        out.append(a)
    if out[0].shape[0] != out[1].shape[0]:
        raise ValueError(
            f"z_true and z_est differ in sample count: {out[0].shape[0]} != {out[1].shape[0]}"
        )
    if out[0].shape[0] < 2:
        raise ValueError(f"need at least 2 samples, got N={out[0].shape[0]}")
    return out[0], out[1]


def _abs_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Pearson correlation| between columns of a (N, m) and b (N, k); 0 for constant columns."""

    def standardise(z: np.ndarray) -> np.ndarray:
        zc = z - z.mean(axis=0)
        sd = np.sqrt((zc**2).mean(axis=0))
        const = sd <= 1e-12 * np.maximum(np.abs(z).max(axis=0), 1.0)
        return np.where(const, 0.0, zc / np.where(const, 1.0, sd))

    r = standardise(a).T @ standardise(b) / a.shape[0]
    return np.clip(np.abs(r), 0.0, 1.0)


def score_matrix(z_true: np.ndarray, z_est: np.ndarray, *, score: Score = "mic") -> np.ndarray:
    """Pairwise similarity of true and learned latents.

    Parameters
    ----------
    z_true : np.ndarray, shape (N, m)
        True latents (a 1-D array is one latent).
    z_est : np.ndarray, shape (N, k)
        Learned latents.
    score : {"mic", "pearson", "spearman"}, default "mic"
        ``"mic"``: :func:`mic`; ``"pearson"``/``"spearman"``: absolute correlation (a constant
        column correlates 0 with everything).

    Returns
    -------
    np.ndarray, shape (m, k)
        Scores in [0, 1]; entry ``[j, i]`` compares true latent ``j`` with learned latent ``i``.

    Raises
    ------
    ValueError
        On an unknown ``score``, shapes that do not match, NaN/inf values, too few samples (2,
        or 4 for MIC).
    """
    if score not in _SCORES:
        raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
    zt, ze = _check_latents(z_true, z_est)
    if score == "pearson":
        return _abs_corr(zt, ze)
    if score == "spearman":
        return _abs_corr(rankdata(zt, axis=0), rankdata(ze, axis=0))
    if zt.shape[0] < 4:
        raise ValueError(f"MIC needs at least 4 samples, got N={zt.shape[0]}")
    s = np.empty((zt.shape[1], ze.shape[1]))
    for j in range(zt.shape[1]):
        for i in range(ze.shape[1]):
            s[j, i] = mic(zt[:, j], ze[:, i])
    return s


def match_latents(z_true: np.ndarray, z_est: np.ndarray, *,
                  score: Score = "mic") -> tuple[list[int], np.ndarray]:
    """Match each true latent to a distinct learned latent maximising total similarity.

    Parameters
    ----------
    z_true : np.ndarray, shape (N, m)
        True latents.
    z_est : np.ndarray, shape (N, k)
        Learned latents; ``k`` may differ from ``m``.
    score : {"mic", "pearson", "spearman"}, default "mic"
        Similarity, see :func:`score_matrix`.

    Returns
    -------
    matched : list of int, length m
        ``matched[j]`` is the column of ``z_est`` matched to true latent ``j``, or -1 if none
        (only possible when ``k < m``). ``min(m, k)`` pairs are matched (Hungarian algorithm,
        maximising the summed score).
    scores : np.ndarray, shape (m, k)
        The score matrix used.

    Raises
    ------
    ValueError
        As :func:`score_matrix`.
    """
    s = score_matrix(z_true, z_est, score=score)
    rows, cols = linear_sum_assignment(s, maximize=True)
    matched = [-1] * s.shape[0]
    for j, i in zip(rows, cols):
        matched[int(j)] = int(i)
    return matched, s


def matched_mean(matched: list[int], scores: np.ndarray) -> float:
    """Mean matched score over the true latents, from :func:`match_latents`' output (an unmatched
    true latent counts 0): MCC / mean MIC once the matching is known."""
    return sum(float(scores[j, i]) for j, i in enumerate(matched) if i >= 0) / max(1, len(matched))


def _matched_mean(z_true: np.ndarray, z_est: np.ndarray, score: Score) -> float:
    return matched_mean(*match_latents(z_true, z_est, score=score))


def mcc(z_true: np.ndarray, z_est: np.ndarray, *,
        method: Literal["pearson", "spearman"] = "pearson") -> float:
    """Mean correlation coefficient between true and learned latents after matching.

    Each true latent is matched to a distinct learned latent (Hungarian algorithm on the
    absolute correlations); the result is the matched absolute correlations summed and divided
    by the number ``m`` of true latents, so when ``k < m`` the unmatched true latents count 0.
    Extra learned latents (``k > m``) are ignored.

    Parameters
    ----------
    z_true : np.ndarray, shape (N, m)
        True latents.
    z_est : np.ndarray, shape (N, k)
        Learned latents.
    method : {"pearson", "spearman"}, default "pearson"
        Spearman makes the score invariant to monotone transformations.

    Returns
    -------
    float
        In [0, 1]; 1 for a permuted and rescaled copy (any monotone copy with Spearman).

    Raises
    ------
    ValueError
        On an unknown ``method`` or bad arrays (see :func:`score_matrix`).
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    return _matched_mean(z_true, z_est, method)


def mean_mic(z_true: np.ndarray, z_est: np.ndarray) -> float:
    """Mean MIC between true and learned latents after matching (in [0, 1]).

    Same matching and averaging as :func:`mcc` (divided by the number ``m`` of true latents;
    unmatched true latents count 0), with :func:`mic` as the similarity. Reported in [0, 1];
    multiply by 100 for the percentage of the paper's tables.

    Parameters
    ----------
    z_true : np.ndarray, shape (N, m)
        True latents, ``N >= 4``.
    z_est : np.ndarray, shape (N, k)
        Learned latents.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        On bad arrays (see :func:`score_matrix`).

    Notes
    -----
    Computes all ``m * k`` pairwise MICs (see :func:`mic` for the cost of one).
    """
    return _matched_mean(z_true, z_est, "mic")
