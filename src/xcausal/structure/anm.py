"""Bivariate orientation by the additive-noise-model (ANM) entropy score.

For an ANM y = f(x) + e with e independent of x, the joint entropy factorises as
H(x, y) = H(x) + H(e); in the wrong direction the residual is not independent of the input and
H(y) + H(x - g(y)) is larger (Hoyer et al. 2008; the likelihood form of Mooij et al. 2016,
"Distinguishing cause from effect using observational data", Sec. 2.3). Both variables are
standardised first, so the score does not depend on their scales (unlike least-squares DAG
scores, which orient by marginal variance, docs/methods/cmcl.md), and the regression is a
k-nearest-neighbour smoother, so f may be any smooth function.

Three scores of the direction x -> y are offered (:func:`anm_direction`, ``method=``):

* ``"entropy"`` (default): H(cause) + H(residual) (the likelihood form), the entropies estimated by
  a Gaussian mixture from :data:`GMM_MIN_ROWS` rows and by Vasicek's spacings below
  (:func:`entropy_1d`, :func:`resolve_entropy`).
* ``"pnl"``: for a pair whose second variable ``y`` is known only up to a monotone
  transformation (a learned latent next to an observed variable): x -> y is scored as the better of
  the ANM and a post-nonlinear model h(y) = f(x) + e with h monotone (:func:`pnl_score`, used
  only when it beats the ANM by more than the scores' noise); y -> x stays an ANM, because a warp
  of the cause is absorbed by f. CMCL's default (``anm_method="pnl"``); see :func:`anm_direction`
  for why.
* ``"hsic"``: the dependence between the input and the regression residual, measured by the
  (biased) Hilbert-Schmidt independence criterion with Gaussian kernels (median-heuristic widths)
  on a fixed subsample of at most 800 rows; the direction whose residual is *more* independent of
  its input wins (Hoyer et al. 2008).

How often each score orients the simulator's pairs right, and CMCL's learned latents:
docs/methods/cmcl.md ("The orientation score") and docs/results.md. causal-learn's ``ANM`` does the
HSIC variant with Gaussian-process regression and a kernel test's p-value: O(n^3) per pair, too slow
for CMCL, which orients every variable-latent pair several times during training.

:func:`normal_scores` maps a latent monotonically onto a standard-normal marginal before it is
scored (CMCL's default ``anm_latent_scale="normal"``): a learned latent's scale is arbitrary up to a
monotone warp, and the scores above are not invariant to it in finite samples.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

__all__ = ["entropy_1d", "ENTROPY_ESTIMATORS", "anm_score", "pnl_score", "anm_direction", "hsic", "MIN_STRATUM", "decontaminate",
           "fold_regressions", "normal_scores", "NORMAL_KNOTS", "resolve_entropy"]

HSIC_MAX_ROWS = 800
"""HSIC is O(n^2) in memory and time: at most this many rows (a fixed, seeded subsample) enter it."""


ENTROPY_ESTIMATORS = ("gmm", "vasicek")
"""Estimators of :func:`entropy_1d`; the scores below also take "auto" (:func:`resolve_entropy`)."""
GMM_MIN_ROWS = 1000
"""``entropy="auto"`` uses the mixture for a sample of at least this many rows, Vasicek's spacings
below (:func:`resolve_entropy`)."""
GMM_MAX_COMPONENTS = 8
"""Largest number of components :func:`entropy_1d` tries with ``estimator="gmm"``. Why 8 and not
fewer: a few Gaussians cannot make a bounded variable's sharp edges, and the mixture then leans
against a uniform cause (docs/methods/cmcl.md)."""
GMM_PATIENCE = 2
"""The search over the number of components stops after this many in a row that do not lower BIC."""


def entropy_1d(x: np.ndarray, *, estimator: str = "auto") -> float:
    """Differential entropy of a 1-D sample.

    ``estimator="gmm"``: minus the mean log-likelihood of the sample under a Gaussian
    mixture of 1 to :data:`GMM_MAX_COMPONENTS` components fitted by scikit-learn's
    ``GaussianMixture`` (k-means start, ``random_state=0``), the number chosen by BIC.
    ``"vasicek"``: Vasicek's m-spacing estimator (m = round(√n)).
    ``"auto"`` (default): the mixture from :data:`GMM_MIN_ROWS` rows, the spacings below
    (:func:`resolve_entropy`, which says why).

    Why the mixture: the ANM scores compare sums of entropies that differ by 0.001-0.1 nats, so the
    estimator's noise decides the near-ties, and the mixture orients more pairs right than the
    spacing and kernel estimators (docs/methods/cmcl.md, which also gives its cost). Vasicek's
    estimate also rests on each extreme value through about √n spacings, so where a monotone map
    puts the sample's ends moves it (see :func:`normal_scores`); a mixture fitted by likelihood is
    far less sensitive to single points. The fit starts from k-means on the sample in its given
    order, so reordering the rows can move the estimate by about 0.01 nats: the same rows in the
    same order give the same value.

    Parameters
    ----------
    x : (n,) array, n >= 4
    estimator : "auto", "gmm" or "vasicek"
    """
    x = np.asarray(x, dtype=float).ravel()
    n = len(x)
    if estimator != "auto" and estimator not in ENTROPY_ESTIMATORS:
        raise ValueError(f"entropy_1d: estimator={estimator!r}: must be 'auto', 'gmm' or 'vasicek'")
    estimator = resolve_entropy(estimator, n)
    if n < 4:
        raise ValueError(f"entropy_1d needs at least 4 samples, got {n}")
    if not np.isfinite(x).all():
        raise ValueError("entropy_1d: input contains NaN or inf")
    if estimator == "gmm":
        return _gmm_entropy(x)
    x = np.sort(x)
    m = max(1, int(round(np.sqrt(n))))
    hi = x[np.minimum(np.arange(n) + m, n - 1)]
    lo = x[np.maximum(np.arange(n) - m, 0)]
    spacing = np.maximum(hi - lo, 1e-12)
    return float(np.mean(np.log(n / (2.0 * m) * spacing)))


def _gmm_entropy(x: np.ndarray) -> float:
    """:func:`entropy_1d` with ``estimator="gmm"`` (x finite, n >= 4)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    sd = max(float(x.std()), 1e-12)  # a constant sample: a finite (very negative) entropy
    s = ((x - x.mean()) / sd)[:, None]  # H(x) = H(x / sd) + log sd; the mixture sees unit scale
    best_bic, best_nll, worse = np.inf, 0.0, 0
    for k in range(1, min(GMM_MAX_COMPONENTS, len(x) // 4) + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            g = GaussianMixture(k, random_state=0).fit(s)
        bic = g.bic(s)
        if bic < best_bic:
            best_bic, best_nll, worse = bic, -float(g.score(s)), 0
        else:
            worse += 1
            if worse == GMM_PATIENCE:  # two more components in a row did not help: stop
                break
    return best_nll + float(np.log(sd))


def resolve_entropy(entropy: str, n: int) -> str:
    """The estimator of :func:`entropy_1d` that a score given ``entropy`` uses on a sample of ``n``
    rows: "gmm" and "vasicek" as given; "auto": "gmm" from :data:`GMM_MIN_ROWS` rows, else "vasicek".

    Why: with few rows BIC admits few components, and a few Gaussians cannot make the sharp edges
    of a bounded variable, so the mixture overstates a uniform cause's entropy and leans against
    it; it orients more pairs right than the spacings from about 1000 rows (docs/methods/cmcl.md).
    Strata of a discrete variable (:func:`anm_direction`, ``strata``) are often smaller, e.g. about
    100 rows per digit on rotated MNIST.
    """
    if entropy == "auto":
        return "gmm" if n >= GMM_MIN_ROWS else "vasicek"
    if entropy not in ENTROPY_ESTIMATORS:
        raise ValueError(f"entropy={entropy!r}: must be 'auto', 'gmm' or 'vasicek'")
    return entropy


def _standardise(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float).ravel()
    sd = a.std()
    if not np.isfinite(sd) or sd == 0:
        raise ValueError("anm_score: a constant (or non-finite) variable has no direction")
    return (a - a.mean()) / sd


def anm_score(cause: np.ndarray, effect: np.ndarray, *, n_neighbors: int | None = None,
              entropy: str = "auto") -> float:
    """H(cause) + H(effect - f(cause)) on standardised data; lower = more plausible direction.

    Parameters
    ----------
    cause, effect : (n,) arrays
    n_neighbors : k of the k-NN regression; default ``max(10, n // 25)``.
    entropy : the estimator of :func:`entropy_1d`, "auto" (default; :func:`resolve_entropy`), "gmm" or
        "vasicek".
    """
    c, e = _standardise(cause), _standardise(effect)
    if len(c) != len(e):
        raise ValueError(f"anm_score: lengths differ ({len(c)} vs {len(e)})")
    est = resolve_entropy(entropy, len(c))
    return _anm_score(c, e, n_neighbors, est, entropy_1d(c, estimator=est))


def _anm_score(c: np.ndarray, e: np.ndarray, n_neighbors: int | None, est: str, h_cause: float) -> float:
    """:func:`anm_score` of the standardised ``c``, ``e``, given H(c) (computed once per pair by
    :func:`anm_direction`, which scores the same cause with :func:`pnl_score` too)."""
    k = n_neighbors or max(10, len(c) // 25)
    k = min(k, len(c) - 1)
    f = KNeighborsRegressor(n_neighbors=k).fit(c[:, None], e)
    return h_cause + entropy_1d(e - f.predict(c[:, None]), estimator=est)


PNL_KNOTS = 16
"""Linear pieces of the monotone warp h of :func:`pnl_score` (knots at the effect's quantiles)."""
PNL_SMOOTH = 30.0
"""Penalty on squared differences of neighbouring log-slopes of h (keeps h smooth)."""
PNL_MARGIN = 0.45
"""The warp h of :func:`pnl_score` is used (``method="pnl"``) only when it beats the plain ANM score
by more than ``PNL_MARGIN / sqrt(n)`` nats, i.e. by more than about the sampling noise of the
entropy scores (which shrinks as 1/sqrt(n)). Why: without a margin h also wins on unwarped
anti-causal pairs, and a BIC charge (log(n) / n) is far too strict within small strata
(docs/methods/cmcl.md)."""


def pnl_score(cause: np.ndarray, effect: np.ndarray, *, n_neighbors: int | None = None,
              knots: int = PNL_KNOTS, smooth: float = PNL_SMOOTH, entropy: str = "auto") -> float:
    """Entropy score of a post-nonlinear model h(effect) = f(cause) + e, h monotone; lower = better.

    H(cause) + H(h(effect) - f(cause)) - E[log h'(effect)] on standardised data: like
    :func:`anm_score` (which is the case h = identity), an estimate of the joint entropy
    H(cause, effect) that is tight when the residual is independent of the cause; the Jacobian
    term makes it invariant to the scale of h.

    h is piecewise linear with ``knots`` pieces between quantiles of the effect and slopes
    exp(a_k); f is the same k-nearest-neighbour smoother as :func:`anm_score`. Because that smoother
    is linear in its targets, the residual is linear in the slopes, r = (B - S B) exp(a), and the
    Gaussian-noise likelihood 0.5 log mean(r^2) - mean(log h') plus ``smooth`` times the mean
    squared difference of neighbouring a_k is minimised over the ``knots`` numbers a by L-BFGS-B
    (started at h = identity). The score then uses the ``entropy`` estimator of the residual
    (:func:`entropy_1d`), as :func:`anm_score` does. (causal-learn's ``PNL`` trains two neural networks per pair with a
    mutual-information loss: far slower, and CMCL scores every variable-latent pair several times
    per fit.)
    """
    c, e = _standardise(cause), _standardise(effect)
    if len(c) != len(e):
        raise ValueError(f"pnl_score: lengths differ ({len(c)} vs {len(e)})")
    if knots < 1:
        raise ValueError(f"pnl_score: knots must be >= 1, got {knots}")
    est = resolve_entropy(entropy, len(c))
    return _pnl_score(c, e, n_neighbors, knots, smooth, est, entropy_1d(c, estimator=est))


def _pnl_score(c: np.ndarray, e: np.ndarray, n_neighbors: int | None, knots: int, smooth: float, est: str,
               h_cause: float) -> float:
    """:func:`pnl_score` of the standardised ``c``, ``e``, given H(c) (see :func:`_anm_score`)."""
    from scipy.optimize import minimize
    from sklearn.neighbors import NearestNeighbors

    n = len(c)
    k = min(n_neighbors or max(10, n // 25), n - 1)
    nbr = NearestNeighbors(n_neighbors=k).fit(c[:, None]).kneighbors(c[:, None], return_distance=False)
    t = np.quantile(e, np.linspace(0.0, 1.0, knots + 1))
    t[0], t[-1] = t[0] - 1e-9, t[-1] + 1e-9
    basis = np.clip(e[:, None] - t[None, :-1], 0.0, np.diff(t)[None, :])  # h(e) = basis @ exp(a)
    piece = np.clip(np.searchsorted(t, e, side="right") - 1, 0, knots - 1)
    counts = np.bincount(piece, minlength=knots) / n
    m = basis - basis[nbr].mean(axis=1)  # residual = m @ exp(a)
    q = m.T @ m / n
    w = smooth / (knots * max(knots - 1, 1))

    def objective(a: np.ndarray) -> tuple[float, np.ndarray]:
        slope = np.exp(a)
        msr = float(slope @ q @ slope)
        da = np.diff(a)
        grad = (q @ slope) * slope / msr - counts
        grad[:-1] -= 2 * w * da
        grad[1:] += 2 * w * da
        return 0.5 * np.log(msr) - float(counts @ a) + w * float(da @ da), grad

    a = minimize(objective, np.zeros(knots), jac=True, method="L-BFGS-B").x
    return h_cause + entropy_1d(m @ np.exp(a), estimator=est) - float(counts @ a)


def hsic(a: np.ndarray, b: np.ndarray) -> float:
    """Biased HSIC statistic (1/n^2) tr(K H L H) of two 1-D samples, Gaussian kernels with the
    median-heuristic width; 0 for independent samples (in the limit), larger for dependent ones.
    Rows beyond :data:`HSIC_MAX_ROWS` are subsampled with a fixed seed (deterministic)."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if len(a) != len(b):
        raise ValueError(f"hsic: lengths differ ({len(a)} vs {len(b)})")
    if len(a) > HSIC_MAX_ROWS:
        keep = np.sort(np.random.default_rng(0).choice(len(a), HSIC_MAX_ROWS, replace=False))
        a, b = a[keep], b[keep]
    n = len(a)

    def gram(x: np.ndarray) -> np.ndarray:
        d2 = (x[:, None] - x[None, :]) ** 2
        pos = d2[d2 > 0]
        width = np.median(pos) if len(pos) else 1.0
        return np.exp(-d2 / width)

    k, l_ = gram(a), gram(b)
    kc = k - k.mean(0, keepdims=True) - k.mean(1, keepdims=True) + k.mean()  # H K H
    return float(np.sum(kc * l_)) / n ** 2


def _residual(cause: np.ndarray, effect: np.ndarray, n_neighbors: int | None) -> np.ndarray:
    k = min(n_neighbors or max(10, len(cause) // 25), len(cause) - 1)
    return effect - KNeighborsRegressor(n_neighbors=k).fit(cause[:, None], effect).predict(cause[:, None])


MIN_STRATUM = 30
"""Smallest stratum that :func:`anm_direction` scores when given ``strata``."""


def anm_direction(x: np.ndarray, y: np.ndarray, *, n_neighbors: int | None = None,
                  method: str = "entropy", strata: np.ndarray | None = None,
                  entropy: str = "auto") -> tuple[int, float, float]:
    """Orient the pair (x, y).

    Parameters
    ----------
    x, y : (n,) arrays
    n_neighbors : k of the k-NN regression; default ``max(10, n // 25)`` (of the stratum's n).
    method : "entropy" (default), "pnl" or "hsic", see the module docstring. With "pnl", ``y``
        is the variable known only up to a monotone transformation (CMCL passes the latent as
        ``y``); the score of x -> y is ``min(anm_score(x, y), pnl_score(x, y) + PNL_MARGIN /
        sqrt(n))`` and that of y -> x is ``anm_score(y, x)``. Why: a learned latent is
        the true one only up to a monotone warp g, and under a warp the ANM score leans to y -> x
        (u = f(z) + e stays additive in g(z); z = f(u) + e does not). The price is a lean towards
        x -> y where the pair is nearly linear-Gaussian and n is small (docs/methods/cmcl.md).
    strata : optional (n,) labels of a discrete variable that also causes ``y`` (or ``x``), e.g. a
        categorical parent of a latent. The pair is then scored within each stratum of at least
        :data:`MIN_STRATUM` rows (both variables non-constant there) and the scores are averaged,
        weighted by stratum size: a conditional ANM. Why: pooled over a strong discrete cause,
        y = f_s(x) + e is a mixture of shifted (and differently shaped) curves, its "noise" is
        the cluster structure, not independent of x, and the pooled score can prefer the wrong
        direction (docs/methods/cmcl.md). When no stratum qualifies, the pooled score is used.
    entropy : the estimator of :func:`entropy_1d` in the "entropy" and "pnl" scores: "auto"
        (default: the mixture from :data:`GMM_MIN_ROWS` rows of the pair or stratum, Vasicek's
        spacings below; :func:`resolve_entropy`), "gmm" or "vasicek".

    Returns
    -------
    (direction, score_xy, score_yx) with direction +1 for x -> y, -1 for y -> x; the scores are
    lower for the more plausible direction (HSIC of input and residual, or the entropy score).
    """
    resolve_entropy(entropy, 0)  # validated here, resolved per stratum (by its number of rows)
    if strata is not None:
        x = np.asarray(x, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
        strata = np.asarray(strata).ravel()
        if not (len(strata) == len(x) == len(y)):
            raise ValueError(f"anm_direction: lengths differ (x {len(x)}, y {len(y)}, strata {len(strata)})")
        sxy = syx = 0.0
        total = 0
        for level in np.unique(strata):
            s = strata == level
            if s.sum() < MIN_STRATUM or x[s].std() == 0 or y[s].std() == 0:
                continue
            _, a, b = anm_direction(x[s], y[s], n_neighbors=n_neighbors, method=method, entropy=entropy)
            sxy += s.sum() * a
            syx += s.sum() * b
            total += int(s.sum())
        if total:
            return (1 if sxy <= syx else -1), sxy / total, syx / total
    if method == "entropy":
        sxy = anm_score(x, y, n_neighbors=n_neighbors, entropy=entropy)
        syx = anm_score(y, x, n_neighbors=n_neighbors, entropy=entropy)
    elif method == "pnl":
        xs, ys = _standardise(x), _standardise(y)
        if len(xs) != len(ys):
            raise ValueError(f"anm_direction: lengths differ ({len(xs)} vs {len(ys)})")
        n = len(xs)
        est = resolve_entropy(entropy, n)
        hx = entropy_1d(xs, estimator=est)  # once: both models of x -> y have the cause x
        sxy = min(_anm_score(xs, ys, n_neighbors, est, hx),
                  _pnl_score(xs, ys, n_neighbors, PNL_KNOTS, PNL_SMOOTH, est, hx) + PNL_MARGIN / np.sqrt(n))
        syx = anm_score(y, x, n_neighbors=n_neighbors, entropy=entropy)
    elif method == "hsic":
        xs, ys = _standardise(x), _standardise(y)
        if len(xs) != len(ys):
            raise ValueError(f"anm_direction: lengths differ ({len(xs)} vs {len(ys)})")
        sxy = hsic(xs, _residual(xs, ys, n_neighbors))
        syx = hsic(ys, _residual(ys, xs, n_neighbors))
    else:
        raise ValueError(f"method='{method}': must be 'entropy', 'pnl' or 'hsic'")
    return (1 if sxy <= syx else -1), sxy, syx


DECONTAMINATE_T = 3.0
"""|t| a regression coefficient needs before :func:`decontaminate` uses it."""
DECONTAMINATE_MIN_R = 0.9
"""Smallest correlation between the corrected and the raw latent that :func:`decontaminate` accepts:
a larger correction is not a few per cent of contamination but a variable that depends on several
latents, and the corrected latent would be the regression's prediction of the variable itself."""


def fold_regressions(u: np.ndarray, Z: np.ndarray, *, strata: np.ndarray | None = None,
                     folds: int = 5) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cross-fitted least squares of ``u`` (n,) on the latents ``Z`` (n, m), with ``strata`` (n,)
    as dummies: per fold, (held-out rows, coefficients on Z, their |t|). Empty when n is too small
    for m latents or a fold's design is rank-deficient. Reused by :func:`decontaminate` for every
    latent paired with the same variable."""
    from sklearn.model_selection import KFold

    u = np.asarray(u, dtype=float).ravel()
    Z = np.asarray(Z, dtype=float)
    n, m = Z.shape
    if m < 2 or n < 5 * (m + 2):
        return []
    live = Z.std(axis=0) > 1e-6 * max(float(np.abs(Z).max()), 1e-300)  # constant latents: b = t = 0
    cols = [np.ones(n)]
    if strata is not None:
        levels = np.unique(np.asarray(strata).ravel(), return_inverse=True)[1]
        counts = np.bincount(levels)
        small = counts[levels] < MIN_STRATUM  # strata anm_direction would not score: one pooled level
        levels = np.where(small, -1, levels)
        cols += [(levels == lv).astype(float) for lv in np.unique(levels)[1:]]
    first = len(cols)
    A_all = np.column_stack(cols + [Z[:, live]])
    fits = []
    for tr, te in KFold(folds, shuffle=True, random_state=0).split(Z):
        A = A_all[tr]
        keep = np.ones(A.shape[1], dtype=bool)
        keep[1:first] = A[:, 1:first].any(axis=0)  # a stratum absent from these rows
        A = A[:, keep]
        coef, _, rank, _ = np.linalg.lstsq(A, u[tr], rcond=None)
        dof = len(tr) - rank
        if rank < A.shape[1] or dof <= 0:
            return []
        resid = u[tr] - A @ coef
        # the covariance from the pseudo-inverse: a nearly collinear column gives a large standard
        # error, not a NaN
        se = np.sqrt(np.maximum(float(resid @ resid) / dof * np.diag(np.linalg.pinv(A.T @ A)), 0.0))
        n_dummies = int(keep[:first].sum())
        b, t = np.zeros(m), np.zeros(m)
        b[live] = coef[n_dummies:]
        t[live] = np.abs(coef[n_dummies:]) / np.maximum(se[n_dummies:], 1e-300)
        fits.append((te, b, t))
    return fits


def decontaminate(u: np.ndarray, Z: np.ndarray, j: int, *, strata: np.ndarray | None = None,
                  folds: int = 5, t_min: float = DECONTAMINATE_T, min_r: float = DECONTAMINATE_MIN_R,
                  fits: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Latent ``Z[:, j]`` with the other latents' linear contamination removed, as seen from ``u``.

    A learned latent is the true one plus a few per cent of other latents mixed in. Where ``u`` is a
    strong child of latent j, those errors in the cause enter the residual of u given z_j magnified
    by the slope, and the pairwise score prefers u -> z_j (errors in variables). The least-squares
    regression of ``u`` on all latents (and the ``strata`` as dummies) corrects it: its coefficients
    b on the other latents cancel their share. Returned: ``z_j + Σ_k (b_k / b_j) z_k`` over the
    latents k != j whose |t| exceeds ``t_min``, fitted on ``folds`` - 1 folds and applied to the
    held-out one (so u's own noise does not enter its row); ``Z[:, j]`` unchanged where b_j itself
    is not significant (a weak pair, where the ratios would be noise), where no other latent is,
    or where the result correlates with ``Z[:, j]`` below ``min_r`` (not contamination: where u
    depends on several latents, as the shift of an MNIST digit does on all of them, the "corrected"
    latent is the regression's prediction of u, whose residual is uncorrelated with it by
    construction, so the score would lean to z -> u). How many pairs it turns right, and the
    correlations behind ``min_r``: docs/methods/cmcl.md.

    Parameters
    ----------
    u : (n,) the variable; Z : (n, m) the latents; j : the latent's column.
    strata : optional (n,) labels of discrete variables, entered as dummies (not part of the result).
    fits : :func:`fold_regressions` of (u, Z, strata), when already computed.
    """
    Z = np.asarray(Z, dtype=float)
    zj = Z[:, j].copy()
    if fits is None:
        fits = fold_regressions(u, Z, strata=strata, folds=folds)
    if not fits or not all(t[j] > t_min for _, _, t in fits):
        return zj
    out = zj.copy()
    changed = False
    for te, b, t in fits:
        keep = t > t_min
        keep[j] = False
        if keep.any():
            out[te] = zj[te] + Z[te] @ np.where(keep, b / b[j], 0.0)
            changed = True
    if not changed or np.corrcoef(out, zj)[0, 1] < min_r:
        return zj
    return out


NORMAL_KNOTS = 32
"""Linear pieces of the map of :func:`normal_scores` (knots at quantiles of the input)."""


def normal_scores(z: np.ndarray, *, knots: int = NORMAL_KNOTS) -> np.ndarray:
    """``z`` (n,) mapped by a monotone increasing piecewise-linear function to a standard-normal
    marginal: the ``knots + 1`` quantiles of ``z`` at probabilities 0, 1/knots, ..., 1 go to the
    standard-normal quantiles at those probabilities (the ends at 0.5/n and 1 - 0.5/n), linear in
    between. So the marginal is normal at the knots only: the two end pieces keep the input's tail
    shape (an exponential sample, skew 2.1, comes out with skew -0.2). A value repeated over several
    quantiles (a block of tied rows) goes to the normal score of the middle of the block's share of
    the sample; a constant ``z`` is returned unchanged.

    Why: a learned latent is identified only up to a monotone reparametrisation, and the pairwise
    orientation scores are not invariant to it in finite samples: a warp of a latent that a variable
    causes leans the ANM score to latent -> variable, and the post-nonlinear model of
    :func:`pnl_score` undoes only part of a strong warp. This map puts every latent into one
    canonical scale, the one the VAE prior gives a root latent, whatever the warp its encoder
    learned (CMCL's ``anm_latent_scale``). Piecewise linear between quantiles rather than exact
    rank-based normal scores: within a piece the map is linear and keeps the sample's own
    spacings. Not scikit-learn's ``QuantileTransformer(output_distribution="normal")``: it
    interpolates in probability, not in normal scores, and sends the extremes to about ±5.2, far
    beyond a sample's own. How the choices compare on CMCL's latents: docs/methods/cmcl.md.
    """
    from scipy.stats import norm

    z = np.asarray(z, dtype=float).ravel()
    n = len(z)
    if knots < 1:
        raise ValueError(f"normal_scores: knots must be >= 1, got {knots}")
    if n == 0 or not np.isfinite(z).all():
        raise ValueError("normal_scores: input is empty or contains NaN or inf")
    p = np.linspace(0.0, 1.0, knots + 1)
    xs = np.quantile(z, p)
    ys = norm.ppf(np.clip(p, 0.5 / n, 1.0 - 0.5 / n))
    xs, first, count = np.unique(xs, return_index=True, return_counts=True)
    if len(xs) < 2:
        return z.copy()
    ys = ys[first]
    tied = count > 1  # a value repeated over several quantiles: its block of rows goes to the
    if tied.any():    # normal score of the middle of its share of the sample
        zs = np.sort(z)
        mid = (np.searchsorted(zs, xs[tied], side="left") + np.searchsorted(zs, xs[tied], side="right")) / (2 * n)
        ys[tied] = norm.ppf(np.clip(mid, 0.5 / n, 1.0 - 0.5 / n))
    return np.interp(z, xs, ys)
