"""GS-GES: causal-learn endpoint conversion, the corrected generalized score, the collider test."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from xcausal.structure import GeneralizedScore, endpoints_to_adjacency, fit_gs_ges, pdag_to_dag
from xcausal.structure.ges import _center

COLLIDER = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 0]])


def collider_data(n: int = 250, seed: int = 0) -> np.ndarray:
    """0 -> 2 <- 1 with nonlinear mechanisms, standardised."""
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    x2 = np.tanh(x0) + x1 ** 2 + 0.1 * rng.normal(size=n)
    v = np.c_[x0, x1, x2]
    return (v - v.mean(0)) / v.std(0)


# ------------------------------------------------------------------ endpoints
def test_endpoints_hand_made():
    g = np.zeros((4, 4), dtype=int)
    g[2, 0], g[0, 2] = 1, -1  # 0 -> 2
    g[1, 3] = g[3, 1] = -1  # 1 -- 3
    g[1, 2], g[2, 1] = 1, -1  # 2 -> 1
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 2] = 1
    expected[2, 1] = 1
    expected[1, 3] = expected[3, 1] = -1
    np.testing.assert_array_equal(endpoints_to_adjacency(g), expected)
    np.testing.assert_array_equal(endpoints_to_adjacency(np.zeros((3, 3))), np.zeros((3, 3)))


@pytest.mark.parametrize("a,b", [(1, 1), (2, -1), (-1, 0), (1, 0)])
def test_endpoints_reject_non_cpdag_marks(a, b):
    g = np.zeros((2, 2), dtype=int)
    g[0, 1], g[1, 0] = a, b
    with pytest.raises(ValueError, match=r"pair \(0, 1\)"):
        endpoints_to_adjacency(g)


def test_endpoints_reject_bad_shape_and_diagonal():
    with pytest.raises(ValueError, match="square"):
        endpoints_to_adjacency(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="diagonal"):
        endpoints_to_adjacency(np.eye(2))


def test_endpoint_convention_matches_installed_causallearn():
    from causallearn.graph.Edge import Edge
    from causallearn.graph.Endpoint import Endpoint
    from causallearn.graph.GeneralGraph import GeneralGraph
    from causallearn.graph.GraphNode import GraphNode

    nodes = [GraphNode(f"X{i}") for i in range(3)]
    g = GeneralGraph(nodes)
    g.add_directed_edge(nodes[0], nodes[2])  # 0 -> 2
    g.add_edge(Edge(nodes[1], nodes[2], Endpoint.TAIL, Endpoint.TAIL))  # 1 -- 2
    a = endpoints_to_adjacency(g.graph)
    assert a[0, 2] == 1 and a[2, 0] == 0
    assert a[1, 2] == a[2, 1] == -1
    assert np.count_nonzero(a) == 3


# ------------------------------------------------------------------ the score
def test_centering_is_the_matrix_product():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    k = np.exp(-((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    h = np.eye(30) - np.ones((30, 30)) / 30
    np.testing.assert_allclose(_center(k), h @ k @ h, atol=1e-12)
    assert np.abs(h * k * h - h @ k @ h).max() > 0.1  # the upstream elementwise version is far off


def _reference_cv(v: np.ndarray, i: int, pa: list[int], k: int = 10, lam: float = 0.01, gam: float = 0.01) -> float:
    """The CV score written with explicit inverses, straight from the formula (Huang et al. 2018)."""
    T = len(v)
    h = np.eye(T) - np.ones((T, T)) / T

    def gk(col):
        d2 = (col[:, None] - col[None, :]) ** 2
        pos = d2[np.triu_indices(T, 1)]
        w = 2.0 * math.sqrt(0.5 * np.median(pos[pos > 0]))
        return np.exp(-d2 / (2 * w * w))

    kx = h @ gk(v[:, i]) @ h
    kp = np.ones((T, T))
    for p in pa:
        kp = kp * gk(v[:, p])
    kp = h @ kp @ h
    cv = 0.0
    for te in np.array_split(np.arange(T), k):
        tr = np.setdiff1d(np.arange(T), te)
        n1, nv = len(tr), len(te)
        t1 = np.linalg.inv(kp[np.ix_(tr, tr)] + n1 * lam * np.eye(n1))
        t2 = t1 @ kx[np.ix_(tr, tr)] @ t1
        c = n1 * lam ** 2 / gam
        t3 = t1 @ np.linalg.inv(np.eye(n1) + c * t2) @ t1
        a, b, kxtr = kx[np.ix_(tr, te)], kp[np.ix_(tr, te)], kx[np.ix_(tr, tr)]
        A = (kx[np.ix_(te, te)] + b.T @ t2 @ b - 2 * a.T @ t1 @ b - c * a.T @ t3 @ a
             - c * b.T @ t1 @ kxtr @ t3 @ kxtr @ t1 @ b + 2 * c * a.T @ t3 @ kxtr @ t1 @ b) / gam
        logdet_b = np.linalg.slogdet(np.eye(n1) + c * t2)[1]
        cv += (nv * nv * math.log(2 * math.pi) + nv * logdet_b / 2 + np.trace(A)) / 2
    return -cv / k


@pytest.mark.parametrize("i,pa", [(2, []), (2, [0]), (2, [0, 1]), (0, [1])])
def test_cv_score_matches_explicit_formula(i, pa):
    v = collider_data(n=60, seed=1)
    ours = GeneralizedScore(v, score="cv")(i, pa)
    assert ours == pytest.approx(_reference_cv(v, i, pa), rel=1e-8, abs=1e-6)


def test_marginal_score_is_the_gp_marginal_likelihood_at_its_optimum():
    v = collider_data(n=60, seed=2)
    sc = GeneralizedScore(v, score="marginal")
    y = sc._feature_targets(2)
    T, q = y.shape
    assert np.allclose(y.mean(axis=0), 0.0, atol=1e-8)  # eigen-features of a centred kernel

    def w(col):
        d2 = (col[:, None] - col[None, :]) ** 2
        pos = d2[np.triu_indices(T, 1)]
        return d2, 2.5 * math.sqrt(0.5 * np.median(pos[pos > 0]))

    kf = np.ones((T, T))
    for p in (0, 1):
        d2, wid = w(v[:, p])
        kf = kf * np.exp(-d2 / (2 * wid * wid))

    def loglik(sn2):
        K = kf + sn2 * np.eye(T)
        sign, logdet = np.linalg.slogdet(K)
        return -(0.5 * np.trace(y.T @ np.linalg.solve(K, y)) + 0.5 * q * logdet + 0.5 * q * T * math.log(2 * math.pi))

    best = max(loglik(s) for s in np.exp(np.linspace(-8, 3, 400)))
    ours = sc(2, [0, 1])
    assert ours >= best - 1e-6  # at least as good as a fine grid over the noise variance
    assert ours - best < 0.05  # and no better than the grid allows (grid step 2.8 % in the variance)
    assert sc(2, [0, 1]) > sc(2, [0]) > sc(2, [])  # both parents explain x2


def test_forbidden_parents_and_max_parents_score_prohibitively():
    v = collider_data(n=40)
    allowed = np.ones((3, 3), dtype=bool)
    allowed[0, 2] = allowed[2, 0] = False
    sc = GeneralizedScore(v, allowed=allowed, max_parents=1)
    assert sc(2, [0]) == sc(0, [2]) == -1e15
    assert sc(2, [0, 1]) == -1e15  # too many parents
    assert sc(2, [1]) > -1e6


# ------------------------------------------------------------------ the collider
@pytest.mark.parametrize("score", ["marginal", "cv"])
def test_collider_recovered_as_v_structure(score):
    for seed in (0, 1):
        a = fit_gs_ges(collider_data(n=250, seed=seed), score=score)
        np.testing.assert_array_equal(a, COLLIDER, err_msg=f"{score} score, seed {seed}")


def test_upstream_generalized_scores_miss_the_collider():
    """causal-learn's own scores (elementwise H * K * H) do not find 0 -> 2 <- 1 on the same data."""
    from causallearn.search.ScoreBased.GES import ges

    for seed in (0, 1):
        v = collider_data(n=250, seed=seed)
        for name in ("local_score_marginal_general", "local_score_CV_general"):
            with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
                warnings.simplefilter("ignore")
                a = endpoints_to_adjacency(ges(v, score_func=name)["G"].graph)
            # the v-structure (both arrowheads into 2) is what the broken score misses
            assert not (a[0, 2] == 1 and a[1, 2] == 1), f"upstream {name} found the collider (seed {seed})"
    # the search itself is upstream's; only the score slot is swapped, and it is restored
    import causallearn.search.ScoreBased.GES as mod
    from causallearn.score.LocalScoreFunction import local_score_cv_general, local_score_marginal_general

    fit_gs_ges(collider_data(n=40), score="cv")
    fit_gs_ges(collider_data(n=40), score="marginal")
    assert mod.local_score_cv_general is local_score_cv_general
    assert mod.local_score_marginal_general is local_score_marginal_general


# ------------------------------------------------------------------ options
def test_allowed_excludes_pairs_during_search():
    v = collider_data(n=200)
    allowed = np.ones((3, 3), dtype=bool)
    allowed[0, 2] = allowed[2, 0] = False
    a = fit_gs_ges(v, allowed=allowed)
    assert a[0, 2] == a[2, 0] == 0
    assert a[1, 2] != 0 or a[2, 1] != 0  # the other edge is still found


def test_one_way_constraint_orients_an_undirected_edge():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=200)
    v = np.c_[x0, np.sin(2 * x0) + 0.2 * rng.normal(size=200)]
    free = fit_gs_ges(v)
    assert free[0, 1] == free[1, 0] == -1  # two nodes: Markov equivalent, undirected
    a = fit_gs_ges(v, allowed=np.array([[False, False], [True, False]]))
    np.testing.assert_array_equal(a, [[0, 0], [1, 0]])


def test_max_parents_forbids_the_v_structure():
    a = fit_gs_ges(collider_data(n=200), max_parents=1)
    assert not (a[0, 2] == 1 and a[1, 2] == 1)


def test_subsample_is_deterministic_and_constant_columns_are_isolated():
    rng = np.random.default_rng(3)
    v = np.c_[collider_data(n=300, seed=3), np.full(300, 2.0)]
    a1 = fit_gs_ges(v, max_samples=120, seed=5)
    a2 = fit_gs_ges(v, max_samples=120, seed=5)
    np.testing.assert_array_equal(a1, a2)
    assert a1.shape == (4, 4) and not a1[3].any() and not a1[:, 3].any()
    np.testing.assert_array_equal(a1[:3, :3], COLLIDER)
    assert fit_gs_ges(rng.normal(size=(20, 1))).shape == (1, 1)


def test_bad_input_names_the_value():
    v = collider_data(n=30)
    with pytest.raises(ValueError, match="'bic'"):
        fit_gs_ges(v, score="bic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        fit_gs_ges(v, allowed=np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="max_samples=2"):
        fit_gs_ges(v, max_samples=2)
    with pytest.raises(ValueError, match="NaN"):
        fit_gs_ges(np.full((10, 2), np.nan))


# ------------------------------------------------------------------ PDAG -> DAG
def _v_structures(dag: np.ndarray) -> set[tuple[int, int, int]]:
    d = len(dag)
    return {(a, c, b) for c in range(d) for a in range(d) for b in range(a + 1, d)
            if dag[a, c] and dag[b, c] and not (dag[a, b] or dag[b, a])}


def test_pdag_to_dag_is_a_consistent_extension():
    import networkx as nx

    # CPDAG of 0 -> 2 <- 1, 2 -> 3, plus an undirected chain 4 - 5 - 6
    a = np.zeros((7, 7), dtype=int)
    a[0, 2] = a[1, 2] = a[2, 3] = 1
    a[4, 5] = a[5, 4] = a[5, 6] = a[6, 5] = -1
    dag = pdag_to_dag(a)
    assert nx.is_directed_acyclic_graph(nx.DiGraph(dag))
    assert dag[0, 2] == dag[1, 2] == dag[2, 3] == 1  # directed edges kept
    np.testing.assert_array_equal((dag + dag.T) > 0, (a != 0) | (a.T != 0))  # same skeleton
    assert _v_structures(dag) == {(0, 2, 1)}  # no new v-structure on 4 - 5 - 6
    np.testing.assert_array_equal(pdag_to_dag(a), dag)  # deterministic


def test_pdag_to_dag_without_consistent_extension_stays_acyclic():
    import networkx as nx

    # a 4-cycle of undirected edges has no extension without a new v-structure
    a = np.zeros((4, 4), dtype=int)
    for i, j in ((0, 1), (1, 2), (2, 3), (3, 0)):
        a[i, j] = a[j, i] = -1
    dag = pdag_to_dag(a)
    assert nx.is_directed_acyclic_graph(nx.DiGraph(dag)) and dag.sum() == 4
    with pytest.raises(ValueError, match="cycle"):
        pdag_to_dag(np.array([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="both sides"):
        pdag_to_dag(np.array([[0, -1], [0, 0]]))
