"""Background knowledge (exogenous nodes, forbidden and required edges) and the check of the independences a DAG implies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xcausal.structure import (bipartite_mask, dependence_pvalue, editable_mask, exogenous_mask, knowledge_mask,
                               threshold_to_dag, unexplained_dependences)


def test_exogenous_mask_forbids_every_edge_into_the_node():
    base = bipartite_mask(["observed"] * 2 + ["latent"] * 2)
    m = exogenous_mask(base, 4, [1])
    assert not m[:, 1].any()
    assert torch.equal(m[:, [0, 2, 3]], base[:, [0, 2, 3]])  # the rest as given
    assert base[2, 1]  # the input is not modified
    full = exogenous_mask(None, 3, [0])
    assert full.tolist() == [[False, True, True], [False, False, True], [False, True, False]]
    assert exogenous_mask(base, 4, []) is base and exogenous_mask(None, 4, ()) is None
    with pytest.raises(ValueError, match=r"node indices \[4\] outside 0..3"):
        exogenous_mask(base, 4, [4])


def test_editable_mask_is_a_copy_and_writes_out_none():
    assert editable_mask(None, 3).tolist() == [[False, True, True], [True, False, True], [True, True, False]]
    base = bipartite_mask(["observed", "latent"])
    m = editable_mask(base, 2)
    m[0, 1] = False
    assert base[0, 1] and m.dtype == torch.bool
    assert editable_mask(torch.tensor([[0, 1], [0, 0]]), 2).dtype == torch.bool


@pytest.mark.parametrize("kind", ["continuous", "mixed", "discrete"])
def test_dependence_pvalue_by_variable_types(kind):
    rng = np.random.default_rng(0)
    n = 400
    a = rng.integers(0, 3, n).astype(float) if kind != "continuous" else rng.normal(size=n)
    a_disc = kind != "continuous"
    b_disc = kind == "discrete"
    dep = (a + rng.integers(0, 2, n) if b_disc else np.exp(a) + 0.5 * rng.normal(size=n))
    ind = rng.integers(0, 2, n).astype(float) if b_disc else rng.normal(size=n)
    assert dependence_pvalue(a, dep, a_disc, b_disc) < 1e-10
    assert dependence_pvalue(dep, a, b_disc, a_disc) < 1e-10  # either order
    p = [dependence_pvalue(a, np.random.default_rng(s).permutation(ind), a_disc, b_disc) for s in range(20)]
    assert 0.05 < np.mean(p) < 0.95 and min(p) > 1e-4  # independent: p spread over (0, 1)
    assert dependence_pvalue(a, np.ones(n), a_disc, False) == 1.0


def test_unexplained_dependences_tests_the_pairs_the_graph_separates():
    rng = np.random.default_rng(1)
    n = 300
    a = rng.integers(0, 2, n).astype(float)
    b = a + 0.3 * rng.normal(size=n)  # depends on a
    c = rng.normal(size=n)
    cols = np.column_stack([a, b, c])
    disc = [True, False, False]
    adj = np.zeros((4, 4))  # nodes a, b, c, z1; no edges: every pair is separated
    out = unexplained_dependences(adj, cols, disc, alpha=1e-3)
    assert [(i, k) for i, k, _ in out] == [(0, 1)] and out[0][2] < 1e-20
    adj[0, 3] = adj[1, 3] = 0.8  # a -> z1 <- b: a collider, still separated
    assert [(i, k) for i, k, _ in unexplained_dependences(adj, cols, disc, alpha=1e-3)] == [(0, 1)]
    adj[1, 3], adj[3, 1] = 0.0, 0.8  # a -> z1 -> b: the graph explains it
    assert unexplained_dependences(adj, cols, disc, alpha=1e-3) == []
    adj[:] = 0.0
    adj[3, 0] = adj[3, 1] = 0.8  # a <- z1 -> b: a common cause explains it
    assert unexplained_dependences(adj, cols, disc, alpha=1e-3) == []
    # Bonferroni: a p-value below alpha but above alpha / (number of separated pairs) is not reported
    cols2 = np.column_stack([rng.normal(size=n), c + 3.0 * rng.normal(size=n), c])
    p = dependence_pvalue(cols2[:, 1], cols2[:, 2], False, False)
    assert 1e-12 < p < 1e-3
    assert unexplained_dependences(np.zeros((3, 3)), cols2, [False] * 3, alpha=2.5 * p) == []  # 3 pairs: level < p
    assert [(i, k) for i, k, _ in unexplained_dependences(np.zeros((3, 3)), cols2, [False] * 3, alpha=3.5 * p)] == [(1, 2)]
    chain = np.zeros((3, 3))
    chain[0, 1] = 1.0  # u1 -> u2: two separated pairs left, level alpha / 2
    assert [(i, k) for i, k, _ in unexplained_dependences(chain, cols2, [False] * 3, alpha=2.5 * p)] == [(1, 2)]
    with pytest.raises(ValueError, match="2 types for 3 columns"):
        unexplained_dependences(adj, cols, [True, False], alpha=0.01)
    with pytest.raises(ValueError, match="must be finite"):
        dependence_pvalue(np.array([1.0, np.nan, 2.0, 3.0]), np.arange(4.0), False, False)


def test_knowledge_mask_applies_each_tier_and_reopens_a_required_edge():
    """forbidden edges are closed, a required edge is open and its reverse closed, exogenous nodes
    get no parent; a required edge closed by a later step (a repair) is opened again."""
    base = bipartite_mask(["observed", "observed", "latent", "latent"])
    assert knowledge_mask(base, 4) is base  # no knowledge: the mask itself
    m = knowledge_mask(base, 4, exogenous=[0], forbidden=[(1, 2), (1, 3)])
    assert not m[:, 0].any() and not m[1, 2] and not m[1, 3]
    assert m[2, 1] and m[3, 1] and m[0, 2]  # latent -> 1 stays, 0 -> latent stays
    closed = editable_mask(None, 4)
    closed[0, 1] = False
    r = knowledge_mask(closed, 4, required=[(0, 1)])
    assert r[0, 1] and not r[1, 0] and r.sum() == closed.sum()  # reopened, reverse closed
    with pytest.raises(ValueError, match="both required and forbidden"):
        knowledge_mask(None, 4, forbidden=[(0, 1)], required=[(0, 1)])
    with pytest.raises(ValueError, match="both required and forbidden"):
        knowledge_mask(None, 4, exogenous=[1], required=[(0, 1)])
    with pytest.raises(ValueError, match="outside nodes 0..3"):
        knowledge_mask(None, 4, forbidden=[(0, 4)])


def test_threshold_to_dag_keeps_required_edges_below_the_threshold_and_in_cycles():
    W = np.array([[0, 0.1, 0], [0, 0, 0.9], [0.8, 0, 0]], dtype=float)
    plain, _ = threshold_to_dag(W, 0.3)
    assert plain[0, 1] == 0
    kept, dropped = threshold_to_dag(np.array([[0, 0.5, 0], [0, 0, 0.9], [0.8, 0, 0]]), 0.3, keep=[(0, 1)])
    assert kept[0, 1] == 0.5 and dropped == [(2, 0, 0.8)]  # the cycle loses its weakest edge not required
    low, dropped = threshold_to_dag(W, 0.3, keep=[(0, 1)])
    assert low[0, 1] == 0.1 and dropped == [(2, 0, 0.8)]
    with pytest.raises(ValueError, match="edges to keep form a cycle"):
        threshold_to_dag(W, 0.3, keep=[(0, 1), (1, 2), (2, 0)])
