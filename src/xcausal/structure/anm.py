"""Bivariate orientation by the additive-noise-model (ANM) entropy score.

For an ANM y = f(x) + e with e independent of x, the joint entropy factorises as
H(x, y) = H(x) + H(e); in the wrong direction the residual is not independent of the input and
H(y) + H(x - g(y)) is larger (Hoyer et al. 2008; the likelihood form of Mooij et al. 2016,
"Distinguishing cause from effect using observational data", Sec. 2.3). Both variables are
standardised first, so the score does not depend on their scales (unlike least-squares DAG
scores, see DESIGN.md §5 on varsortability), and the regression is a k-nearest-neighbour smoother,
so f may be any smooth function.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

__all__ = ["entropy_1d", "anm_score", "anm_direction"]


def entropy_1d(x: np.ndarray) -> float:
    """Differential entropy of a 1-D sample by Vasicek's m-spacing estimator (m = round(√n)).

    Parameters
    ----------
    x : (n,) array, n >= 4
    """
    x = np.sort(np.asarray(x, dtype=float).ravel())
    n = len(x)
    if n < 4:
        raise ValueError(f"entropy_1d needs at least 4 samples, got {n}")
    if not np.isfinite(x).all():
        raise ValueError("entropy_1d: input contains NaN or inf")
    m = max(1, int(round(np.sqrt(n))))
    hi = x[np.minimum(np.arange(n) + m, n - 1)]
    lo = x[np.maximum(np.arange(n) - m, 0)]
    spacing = np.maximum(hi - lo, 1e-12)
    return float(np.mean(np.log(n / (2.0 * m) * spacing)))


def _standardise(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float).ravel()
    sd = a.std()
    if not np.isfinite(sd) or sd == 0:
        raise ValueError("anm_score: a constant (or non-finite) variable has no direction")
    return (a - a.mean()) / sd


def anm_score(cause: np.ndarray, effect: np.ndarray, *, n_neighbors: int | None = None) -> float:
    """H(cause) + H(effect - f(cause)) on standardised data; lower = more plausible direction.

    Parameters
    ----------
    cause, effect : (n,) arrays
    n_neighbors : k of the k-NN regression; default ``max(10, n // 25)``.
    """
    c, e = _standardise(cause), _standardise(effect)
    if len(c) != len(e):
        raise ValueError(f"anm_score: lengths differ ({len(c)} vs {len(e)})")
    k = n_neighbors or max(10, len(c) // 25)
    k = min(k, len(c) - 1)
    f = KNeighborsRegressor(n_neighbors=k).fit(c[:, None], e)
    return entropy_1d(c) + entropy_1d(e - f.predict(c[:, None]))


def anm_direction(x: np.ndarray, y: np.ndarray, *, n_neighbors: int | None = None) -> tuple[int, float, float]:
    """Orient the pair (x, y).

    Returns
    -------
    (direction, score_xy, score_yx) with direction +1 for x -> y, -1 for y -> x.
    """
    sxy = anm_score(x, y, n_neighbors=n_neighbors)
    syx = anm_score(y, x, n_neighbors=n_neighbors)
    return (1 if sxy <= syx else -1), sxy, syx
