"""GES with the generalized score (GS-GES, Huang et al. 2018) through causal-learn, with a corrected score.

The search is causal-learn's :func:`causallearn.search.ScoreBased.GES.ges` (forward insertions,
backward deletions over CPDAGs). The local score is not causal-learn's: ours is computed here by
:class:`GeneralizedScore` and handed to the search in place of the upstream one.

Why not the upstream score
--------------------------
causal-learn's 2024 refactor (0.1.4.0 onwards; pinned here: 0.1.4.8) replaced ``np.mat`` by plain
``ndarray`` but kept the kernel centring ``H0 * Kx * H0`` (and ``H0 * Kpa * H0``) in
``local_score_cv_general`` and ``local_score_marginal_general``. On ndarrays ``*`` is elementwise, so
instead of the centred kernel ``H K H`` these functions use ``H ∘ K ∘ H`` (mostly the kernel's
diagonal, minus ``1/T`` times the rest). The marginal-likelihood score has a second such bug
(``causallearn.utils.ScoreUtils.gpr_multi_new`` builds ``K^{-1}`` for its gradient from elementwise
products, and only the noise hyperparameter gets a gradient at all). On a nonlinear collider
0 -> 2 <- 1 both upstream scores fail to find the v-structure (tests/structure/test_ges.py).
Versions before 0.1.4.0 use ``np.mat``, which numpy 2 removed, so no version can simply be pinned.

What :class:`GeneralizedScore` computes (the two scores of the paper):

* ``"cv"`` -- negative k-fold cross-validated log-likelihood of regressing the feature map of
  ``X_i`` on its parents in an RKHS (Huang et al. 2018, Sec. 4.1), with kernel ridge parameter
  ``lam`` and feature-space noise variance ``gamma`` (causal-learn's defaults 10 folds, 0.01, 0.01);
* ``"marginal"`` -- the marginal likelihood of a Gaussian process from the parents to the
  (eigen-decomposed, centred) empirical feature map of ``X_i`` (Sec. 4.2). The kernel widths are
  fixed (median heuristic, as the paper does) and so is the GP's signal variance (1, as in the
  reference code); the noise variance maximises the marginal likelihood (a 1-D search after one
  eigendecomposition per parent set).

Both use Gaussian kernels with the median-heuristic width times 2 (``"cv"``) or 2.5
(``"marginal"``), the factors of the reference code, and centre as the matrix product ``H K H``:
the kernel of ``X_i`` in both scores and the parents' product kernel in the ``"cv"`` score (the
``"marginal"`` score's GP covariance on the parents is, as in the reference, not centred).
Subsampling, standardising and the BLAS thread limit are :func:`fit_gs_ges`'s.

causal-learn's ``ges`` takes a score only by name, so :func:`fit_gs_ges` swaps our function into
the module slot that name resolves to for the duration of the call (under a lock, restored
afterwards). This works for the pinned version; a test fails if the slot ever disappears.

Background knowledge (``allowed``) is applied *during* the search through the score: a parent set
containing a parent ``p`` of ``X_i`` with neither ``allowed[p, i]`` nor ``allowed[i, p]`` gets a
prohibitive score, so forbidden adjacencies are never inserted (and cost no kernel computation).
The same mechanism enforces ``max_parents`` exactly. Orientation-only constraints (a pair allowed in
one direction only) are applied after the search: such an undirected edge is oriented the allowed
way, and a directed edge against it is dropped (logged).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import linalg as sla
from scipy.optimize import minimize_scalar
from threadpoolctl import threadpool_limits

__all__ = ["fit_gs_ges", "endpoints_to_adjacency", "pdag_to_dag", "GeneralizedScore", "GSScore"]

logger = logging.getLogger(__name__)

GSScore = Literal["marginal", "cv"]
_SCORES = ("marginal", "cv")
#: the ges() score names and the causal-learn module attribute each resolves to
_UPSTREAM_SLOT = {"cv": ("local_score_CV_general", "local_score_cv_general"),
                  "marginal": ("local_score_marginal_general", "local_score_marginal_general")}
#: score of a forbidden parent set; finite so that score differences stay finite, and far below
#: causal-learn's "no candidate" sentinel (-1e7) so a forbidden insertion is never chosen
_FORBIDDEN = -1e15
_WIDTH_FACTOR = {"cv": 2.0, "marginal": 2.5}
_PATCH_LOCK = threading.Lock()


# =============================================================================== endpoints
def endpoints_to_adjacency(g: np.ndarray) -> np.ndarray:
    """Convert a causal-learn endpoint matrix (``GeneralGraph.graph``) of a CPDAG to our convention.

    In causal-learn 0.1.4.8, ``GeneralGraph.add_directed_edge(i, j)`` sets ``graph[j, i] = 1``
    (``Endpoint.ARROW``) and ``graph[i, j] = -1`` (``Endpoint.TAIL``); an undirected edge has
    ``TAIL`` on both sides. Hence:

    * i -> j  iff ``g[j, i] == 1`` and ``g[i, j] == -1``;
    * i -- j  (undirected) iff ``g[i, j] == g[j, i] == -1``;
    * no edge iff both are 0.

    Parameters
    ----------
    g : numpy.ndarray, shape (d, d)
        Integer endpoint matrix of a CPDAG (as GES returns).

    Returns
    -------
    numpy.ndarray, shape (d, d), int
        ``A[i, j] = 1`` for a directed edge i -> j; ``A[i, j] = A[j, i] = -1`` for an undirected edge;
        0 elsewhere. The format :func:`xcausal.metrics.count_accuracy` takes.

    Raises
    ------
    ValueError
        If ``g`` is not square, has a nonzero diagonal, or a pair carries marks other than the three
        patterns above (circles, bidirected edges or half-empty pairs: not a CPDAG).
    """
    g = np.asarray(g)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"endpoint matrix must be square (d, d), got shape {g.shape}")
    d = g.shape[0]
    if np.any(np.diag(g) != 0):
        raise ValueError(f"endpoint matrix has a nonzero diagonal: {np.diag(g).tolist()}")
    adj = np.zeros((d, d), dtype=int)
    for i in range(d):
        for j in range(i + 1, d):
            a, b = int(g[i, j]), int(g[j, i])
            if a == 0 and b == 0:
                continue
            if a == -1 and b == 1:
                adj[i, j] = 1
            elif a == 1 and b == -1:
                adj[j, i] = 1
            elif a == -1 and b == -1:
                adj[i, j] = adj[j, i] = -1
            else:
                raise ValueError(f"pair ({i}, {j}) has endpoint marks g[{i},{j}]={a}, g[{j},{i}]={b}: "
                                 "not a CPDAG edge (expected tail/arrow or tail/tail)")
    return adj


def pdag_to_dag(a: np.ndarray) -> np.ndarray:
    """A DAG orienting every undirected edge of a PDAG (Dor & Tarsi 1992 consistent extension).

    Repeatedly picks the lowest-index node ``x`` of the remaining graph that has no outgoing
    directed edge and whose undirected neighbours are adjacent to every other node adjacent to
    ``x``; its undirected edges are oriented into ``x`` and ``x`` is removed. For a CPDAG this yields
    a member of the equivalence class (no new v-structure). If no such node exists (a PDAG without
    consistent extension, e.g. after background knowledge changed a CPDAG), the lowest-index node
    without outgoing directed edges is taken instead (logged): the result is still acyclic, but
    may have v-structures the PDAG lacks.

    Parameters
    ----------
    a : numpy.ndarray, shape (d, d)
        PDAG in the :func:`endpoints_to_adjacency` convention (1 directed, -1 on both sides undirected).

    Returns
    -------
    numpy.ndarray, shape (d, d), int
        0/1 adjacency of an acyclic graph with the same skeleton and every directed edge of ``a`` kept.

    Raises
    ------
    ValueError
        If ``a`` has values outside {-1, 0, 1}, a one-sided -1, or its directed part has a cycle.
    """
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"PDAG must be square (d, d), got shape {a.shape}")
    if not np.all(np.isin(a, (-1, 0, 1))):
        raise ValueError(f"PDAG entries must be in {{-1, 0, 1}}, got {np.unique(a).tolist()[:5]}")
    und = a == -1
    if np.any(und != und.T):
        i, j = (int(v) for v in np.argwhere(und != und.T)[0])
        raise ValueError(f"PDAG pair ({i}, {j}): -1 (undirected) must be written on both sides")
    directed = a == 1
    d = a.shape[0]
    dag = directed.astype(int)
    alive = np.ones(d, dtype=bool)
    adjacent = directed | directed.T | und
    for _ in range(d):
        sinks = [x for x in range(d) if alive[x] and not np.any(directed[x] & alive)]
        if not sinks:
            raise ValueError("the directed part of the PDAG has a cycle")
        pick = None
        for x in sinks:
            nbrs = np.flatnonzero(und[x] & alive)
            adj_x = np.flatnonzero(adjacent[x] & alive)
            if all(adjacent[y, z] for y in nbrs for z in adj_x if z != y):
                pick = x
                break
        if pick is None:
            pick = sinks[0]
            logger.warning("pdag_to_dag: no consistent extension; orienting the undirected edges of node %d "
                           "into it (may add a v-structure)", pick)
        for y in np.flatnonzero(und[pick] & alive):
            dag[y, pick] = 1
        alive[pick] = False
    return dag


# =============================================================================== kernels
def _median_width(x: np.ndarray) -> float:
    """``sqrt(median(positive squared distances) / 2)`` of a 1-D sample; 1.0 if all values are equal."""
    diff = np.subtract.outer(x, x)
    d2 = (diff * diff)[np.triu_indices(len(x), 1)]
    pos = d2[d2 > 0]
    return float(np.sqrt(0.5 * np.median(pos))) if pos.size else 1.0


def _gauss_kernel(x: np.ndarray, width: float) -> np.ndarray:
    """``exp(-(x_a - x_b)^2 / (2 width^2))``, shape (T, T)."""
    diff = np.subtract.outer(x, x)
    return np.exp(-(diff * diff) / (2.0 * width * width))


def _center(k: np.ndarray) -> np.ndarray:
    """``H K H`` with ``H = I - 11'/T`` -- the matrix product, computed as double mean removal."""
    return k - k.mean(axis=0, keepdims=True) - k.mean(axis=1, keepdims=True) + k.mean()


# =============================================================================== score
class GeneralizedScore:
    """Generalized local score of Huang et al. (2018) on fixed data, with per-variable kernel caches.

    Parameters
    ----------
    V : numpy.ndarray, shape (T, d)
        The data the score is computed on (used as given: standardise and subsample beforehand).
    score : {"marginal", "cv"}, default "marginal"
        Marginal likelihood of a GP regression in feature space, or k-fold cross-validated
        likelihood of kernel ridge regression in feature space (module docstring).
    kfold : int, default 10
        Folds of the ``"cv"`` score (contiguous blocks of rows, as in the reference code).
    lam : float, default 0.01
        Kernel ridge parameter of the ``"cv"`` score.
    gamma : float, default 0.01
        Feature-space noise variance of the ``"cv"`` score.
    allowed : bool numpy.ndarray, shape (d, d), optional
        A parent ``p`` of node ``i`` is allowed iff ``allowed[p, i] or allowed[i, p]``; a parent
        set with a forbidden parent scores :data:`_FORBIDDEN` (-1e15) without any computation.
    max_parents : int, optional
        Parent sets larger than this score -1e15 too.

    Notes
    -----
    The marginal score keeps the GP's signal variance at 1. Fitting it too makes every parent set a
    superset model of its subsets (signal variance -> 0 recovers the smaller set), so adding any
    parent never lowers the score and GES adds spurious edges (docs/results.md).

    Each call costs O(T^3) (an eigendecomposition or k Cholesky factorisations of T x T matrices);
    results are not cached here (causal-learn's search caches per (node, parent set)).
    """

    def __init__(self, V: np.ndarray, *, score: GSScore = "marginal", kfold: int = 10, lam: float = 0.01,
                 gamma: float = 0.01, allowed: np.ndarray | None = None, max_parents: int | None = None) -> None:
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
        V = np.asarray(V, dtype=float)
        if V.ndim != 2:
            raise ValueError(f"V must be 2-D (T, d), got shape {V.shape}")
        T, d = V.shape
        if score == "cv" and not (2 <= kfold <= T // 2):
            raise ValueError(f"kfold={kfold}: must be between 2 and T/2 = {T // 2}")
        if T < 4:
            raise ValueError(f"V has {T} rows; the generalized score needs at least 4")
        self.score = score
        self.kfold = int(kfold)
        self.lam = float(lam)
        self.gamma = float(gamma)
        self.max_parents = max_parents
        self.T, self.d = T, d
        self._pair_ok = None if allowed is None else (allowed | allowed.T)
        factor = _WIDTH_FACTOR[score]
        #: uncentred per-variable Gaussian kernels, shape (d, T, T)
        self._k = np.stack([_gauss_kernel(V[:, i], factor * _median_width(V[:, i])) for i in range(d)])
        self._targets: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ helpers
    def _parent_kernel(self, parents: Sequence[int]) -> np.ndarray:
        """Centred product kernel of the parents (a zero matrix for no parents)."""
        k = np.ones((self.T, self.T))
        for p in parents:
            k = k * self._k[p]  # product of Gaussian kernels = ARD Gaussian kernel on the parents
        return _center(k)

    def _feature_targets(self, i: int) -> np.ndarray:
        """Scaled eigen-features of node i's centred kernel, shape (T, q) (marginal score's GP targets)."""
        if i not in self._targets:
            kx = _center(self._k[i])
            evals, evecs = np.linalg.eigh((kx + kx.T) / 2)
            evals, evecs = evals[::-1], evecs[:, ::-1]
            q_max = max(1, min(400, self.T // 4))
            keep = np.flatnonzero(evals[:q_max] > evals[0] * 1e-5)
            if evals[0] <= 0 or keep.size == 0:
                raise ValueError(f"node {i} has a constant kernel (constant column?)")
            lam = evals[keep]
            self._targets[i] = 2.0 * math.sqrt(self.T) * evecs[:, keep] * np.sqrt(lam) / math.sqrt(lam[0])
        return self._targets[i]

    def _marginal(self, i: int, parents: Sequence[int]) -> float:
        y = self._feature_targets(i)
        T, q = y.shape
        kf = np.ones((T, T))
        for p in parents:
            kf = kf * self._k[p]
        s, Q = np.linalg.eigh(kf)
        s = np.clip(s, 0.0, None)
        r = np.sum((Q.T @ y) ** 2, axis=1)  # squared norm of each eigen-coordinate of the targets

        def nlml(log_sn2: float) -> float:
            e = s + math.exp(log_sn2)  # signal variance fixed to 1 (see the class docstring)
            return float(0.5 * np.sum(r / e) + 0.5 * q * np.sum(np.log(e)) + 0.5 * q * T * math.log(2 * math.pi))

        res = minimize_scalar(nlml, bounds=(-15.0, 10.0), method="bounded", options={"xatol": 1e-6})
        return -float(res.fun)

    def _cv(self, i: int, parents: Sequence[int]) -> float:
        kx = _center(self._k[i])
        kp = self._parent_kernel(parents)
        T, lam, gam = self.T, self.lam, self.gamma
        total = 0.0
        for test in np.array_split(np.arange(T), self.kfold):
            train = np.setdiff1d(np.arange(T), test, assume_unique=True)
            n1, nv = len(train), len(test)
            kx_tr, kx_te = kx[np.ix_(train, train)], kx[np.ix_(test, test)]
            a = kx[np.ix_(train, test)]  # feature-space cross products, train x test
            b = kp[np.ix_(train, test)]
            # M1 = (Kpa_tr + n1 lam I)^-1: kernel ridge from parents to the feature map of X_i
            m1 = sla.cho_solve(sla.cho_factor(kp[np.ix_(train, train)] + n1 * lam * np.eye(n1)), np.eye(n1))
            m2 = m1 @ kx_tr @ m1
            c = n1 * lam * lam / gam
            bmat = np.eye(n1) + c * m2
            bfac = sla.cho_factor(bmat)
            # residual of the test features and its projection on the training features
            res_sq = np.trace(kx_te) - 2.0 * np.sum(a * (m1 @ b)) + np.sum(b * (m2 @ b))
            g = m1 @ a - m2 @ b
            quad = (res_sq - c * np.sum(g * sla.cho_solve(bfac, g))) / gam
            half_logdet = float(np.sum(np.log(np.diag(bfac[0]))))
            total += (nv * nv * math.log(2 * math.pi) + nv * half_logdet + quad) / 2.0
        return -total / self.kfold

    # ------------------------------------------------------------------ call
    def __call__(self, i: int, parents: Sequence[int]) -> float:
        """Local score of node ``i`` given ``parents`` (higher is better)."""
        parents = sorted(int(p) for p in parents)
        if self.max_parents is not None and len(parents) > self.max_parents:
            return _FORBIDDEN
        if self._pair_ok is not None and any(not self._pair_ok[p, i] for p in parents):
            return _FORBIDDEN
        return self._marginal(i, parents) if self.score == "marginal" else self._cv(i, parents)

    def as_causallearn(self, name: str):
        """A ``(Data, i, PAi, parameters) -> float`` function named ``name``, for causal-learn's score slot.

        ``Data`` and ``parameters`` are ignored: the score is bound to the data it was built on.
        """
        def local_score(Data: np.ndarray, i: int, PAi: Sequence[int], parameters=None) -> float:  # noqa: N803
            return self(i, PAi)

        local_score.__name__ = name
        return local_score


@contextlib.contextmanager
def _score_in_slot(slot: str, fn):
    """Temporarily bind causal-learn's GES module attribute ``slot`` to ``fn`` (thread-locked)."""
    from causallearn.search.ScoreBased import GES as ges_module

    if not hasattr(ges_module, slot):
        raise RuntimeError(f"causal-learn's GES module has no attribute {slot!r}: the installed version is not "
                           "the pinned one (see pyproject.toml)")
    with _PATCH_LOCK:
        old = getattr(ges_module, slot)
        setattr(ges_module, slot, fn)
        try:
            yield ges_module.ges
        finally:
            setattr(ges_module, slot, old)


# =============================================================================== front
def _check_allowed(allowed: np.ndarray | None, d: int) -> np.ndarray | None:
    if allowed is None:
        return None
    a = np.asarray(allowed)
    if a.shape != (d, d):
        raise ValueError(f"allowed must have shape ({d}, {d}), got {a.shape}")
    if a.dtype != bool:
        vals = np.unique(a)
        if not np.all(np.isin(vals, (0, 1))):
            raise ValueError(f"allowed must be boolean (or 0/1), got values {vals.tolist()[:5]}")
    a = a.astype(bool).copy()
    np.fill_diagonal(a, False)
    return a


def fit_gs_ges(V: np.ndarray, *, score: GSScore = "marginal", allowed: np.ndarray | None = None,
               max_parents: int | None = None, max_samples: int | None = 500, kfold: int = 10,
               lam: float = 0.01, gamma: float = 0.01, seed: int = 0, blas_threads: int | None = 1) -> np.ndarray:
    """Learn a CPDAG over the columns of ``V`` with GES and the (corrected) generalized score.

    Columns are standardised first (the kernel widths follow the median heuristic, but
    standardising keeps the numbers comparable). Constant columns are left out of the search and
    returned as isolated nodes (logged).

    Parameters
    ----------
    V : numpy.ndarray, shape (N, d)
        Data, one column per node (continuous values; discrete codes enter the Gaussian kernel as numbers).
    score : {"marginal", "cv"}, default "marginal"
        Which generalized score (see :class:`GeneralizedScore`).
    allowed : bool numpy.ndarray, shape (d, d), optional
        ``allowed[i, j]`` True if the edge i -> j may exist (e.g. :func:`bipartite_mask`). Forbidden
        adjacencies are excluded during the search; one-way constraints are applied afterwards
        (module docstring).
    max_parents : int, optional
        Largest parent set of any node in the DAGs scored during the search (None: no limit).
    max_samples : int or None, default 500
        Each local score costs O(n^3) in the number of rows, so at most this many rows are used: a
        random subset drawn with ``numpy.random.default_rng(seed)`` (deterministic). None: all rows.
        The row order is shuffled with the same generator either way (the ``"cv"`` folds are
        contiguous blocks of rows).
    kfold, lam, gamma
        Parameters of the ``"cv"`` score (see :class:`GeneralizedScore`).
    seed : int, default 0
        Seed of the row subsample / shuffle.
    blas_threads : int or None, default 1
        BLAS threads while the search runs (:func:`threadpoolctl.threadpool_limits`, restored
        afterwards); None leaves the setting alone. The matrices are at most ``max_samples`` square,
        where threads gain little and cost much when the cores are shared (docs/results.md).

    Returns
    -------
    numpy.ndarray, shape (d, d), int
        CPDAG: ``A[i, j] = 1`` for i -> j, ``A[i, j] = A[j, i] = -1`` for an undirected edge i -- j.

    Raises
    ------
    ValueError
        For a malformed ``V`` / ``allowed``, an unknown ``score`` or non-positive limits.
    """
    V = np.asarray(V, dtype=float)
    if V.ndim != 2:
        raise ValueError(f"V must be 2-D (N, d), got shape {V.shape}")
    if not np.isfinite(V).all():
        raise ValueError("V contains NaN or inf")
    if score not in _SCORES:
        raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
    if max_samples is not None and max_samples < 4:
        raise ValueError(f"max_samples={max_samples}: must be at least 4 (or None)")
    if max_parents is not None and max_parents < 0:
        raise ValueError(f"max_parents={max_parents}: must be non-negative (or None)")
    if blas_threads is not None and blas_threads < 1:
        raise ValueError(f"blas_threads={blas_threads}: must be at least 1 (or None)")
    N, d = V.shape
    allowed = _check_allowed(allowed, d)
    out = np.zeros((d, d), dtype=int)
    if d < 2:
        return out
    rng = np.random.default_rng(seed)
    rows = rng.permutation(N)
    if max_samples is not None and N > max_samples:
        rows = rows[:max_samples]
        logger.info("GS-GES: using %d of %d rows (max_samples)", max_samples, N)
    X = V[rows]
    std = X.std(axis=0)
    active = np.flatnonzero(std > 1e-12)
    for j in sorted(set(range(d)) - set(active.tolist())):
        logger.warning("GS-GES: column %d is constant on the rows used; left out of the search", j)
    if len(active) < 2:
        return out
    X = (X[:, active] - X[:, active].mean(axis=0)) / std[active]
    sub_allowed = None if allowed is None else allowed[np.ix_(active, active)]

    scorer = GeneralizedScore(X, score=score, kfold=kfold, lam=lam, gamma=gamma, allowed=sub_allowed,
                              max_parents=max_parents)
    name, slot = _UPSTREAM_SLOT[score]
    t0 = time.perf_counter()
    params = {"kfold": kfold, "lambda": lam} if score == "cv" else None
    limit = contextlib.nullcontext() if blas_threads is None else threadpool_limits(blas_threads, user_api="blas")
    with limit, _score_in_slot(slot, scorer.as_causallearn(slot)) as ges:
        record = ges(X, score_func=name, maxP=None, parameters=params)
    logger.info("GS-GES (%s score, n=%d, d=%d): score %.4g in %.1f s", score, len(X), len(active),
                float(record["score"]), time.perf_counter() - t0)
    cpdag = endpoints_to_adjacency(np.asarray(record["G"].graph))
    out[np.ix_(active, active)] = cpdag
    if allowed is not None:
        out = _apply_orientation_knowledge(out, allowed)
    return out


def _apply_orientation_knowledge(a: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Orient undirected edges allowed one way only; drop directed edges against ``allowed``."""
    a = a.copy()
    d = len(a)
    for i in range(d):
        for j in range(i + 1, d):
            if a[i, j] == -1:
                if allowed[i, j] and not allowed[j, i]:
                    a[i, j], a[j, i] = 1, 0
                elif allowed[j, i] and not allowed[i, j]:
                    a[i, j], a[j, i] = 0, 1
                elif not (allowed[i, j] or allowed[j, i]):  # cannot happen: excluded in the search
                    a[i, j] = a[j, i] = 0
            for s, t in ((i, j), (j, i)):
                if a[s, t] == 1 and not allowed[s, t]:
                    logger.warning("GS-GES: dropped %d -> %d, which `allowed` forbids", s, t)
                    a[s, t] = 0
    return a
