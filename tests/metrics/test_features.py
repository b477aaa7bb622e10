"""Matching discovered binary features, clustering accuracy, skeleton and CPDAG SHD."""

from __future__ import annotations

import numpy as np
import pytest

from xcausal.evaluate import evaluate_features
from xcausal.metrics.features import clustering_accuracy, cpdag_shd, dag_to_cpdag, match_features, skeleton_shd
from xcausal.types import Graph, Node


def _adj(n, edges):
    a = np.zeros((n, n))
    for i, j in edges:
        a[i, j] = 1
    return a


def test_match_features_finds_permutation_and_flips():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, (500, 3))
    e = np.stack([1 - t[:, 2], t[:, 0], t[:, 1]], 1)
    e[:25, 1] ^= 1  # 5% errors on the node of feature 0
    m = match_features(t, e)
    assert m.nodes == (1, 2, 0)
    assert m.flipped == (False, False, True)
    assert m.accuracy == pytest.approx((0.95, 1.0, 1.0))
    with pytest.raises(ValueError, match="0/1"):
        match_features(t, e * 2)


def test_clustering_accuracy_is_label_permutation_invariant():
    t = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    p = np.array([5, 5, 7, 7, 1, 1, 7, 0])
    assert clustering_accuracy(t, p) == pytest.approx(7 / 8)
    assert clustering_accuracy(t, t) == 1.0


def test_cpdag_of_v_structure_chain_and_fork():
    v = dag_to_cpdag(_adj(3, [(0, 2), (1, 2)]))
    assert v.tolist() == [[0, 0, 1], [0, 0, 1], [0, 0, 0]]  # compelled
    chain = dag_to_cpdag(_adj(3, [(0, 1), (1, 2)]))
    assert chain[0, 1] == chain[1, 0] == -1 and chain[1, 2] == chain[2, 1] == -1  # reversible
    fork = _adj(3, [(1, 0), (1, 2)])
    assert cpdag_shd(_adj(3, [(0, 1), (1, 2)]), fork) == 0  # Markov equivalent
    assert cpdag_shd(_adj(3, [(0, 2), (1, 2)]), fork) == 3  # v-structure vs fork: 3 marks differ
    assert skeleton_shd(_adj(3, [(0, 2), (1, 2)]), _adj(3, [(2, 0), (2, 1)])) == 0
    assert skeleton_shd(_adj(3, [(0, 2)]), _adj(3, [(0, 1), (2, 0)])) == 1


def test_evaluate_features_renames_learned_edges_through_the_matching():
    rng = np.random.default_rng(1)
    tf = rng.integers(0, 2, (300, 3)).astype(float)
    truth = Graph(nodes=[Node("hue", "latent"), Node("radius", "latent"), Node("shift", "latent")], edges=[],
                  method="truth")
    truth = Graph.from_adjacency(_adj(3, [(0, 2), (1, 2)]), truth.nodes, method="truth")
    # learned: f1 = shift, f2 = not hue, f3 = radius; edges f2 -> f1 <- f3
    probs = np.stack([tf[:, 2], 1 - tf[:, 0], tf[:, 1]], 1) * 0.98 + 0.01
    est = Graph.from_adjacency(_adj(3, [(1, 0), (2, 0)]), [Node(f"f{k}", "latent") for k in (1, 2, 3)],
                               method="causal-pima")
    res = evaluate_features(est, probs, truth, tf)
    assert res["matching"] == {"hue": ["f2", True], "radius": ["f3", False], "shift": ["f1", False]}
    assert res["node_accuracy"] == 1.0 and res["cluster_accuracy"] == 1.0 and res["joint_accuracy"] == 1.0
    assert res["skeleton_shd"] == 0 and res["cpdag_shd"] == 0 and res["shd"] == 0
    assert sorted((a, b) for a, b, _ in res["edges"]) == [("hue", "shift"), ("radius", "shift")]
    reversed_est = Graph.from_adjacency(_adj(3, [(0, 1), (0, 2)]), est.nodes, method="causal-pima")
    res2 = evaluate_features(reversed_est, probs, truth, tf)
    assert res2["skeleton_shd"] == 0 and res2["cpdag_shd"] == 2 and res2["shd"] == 2
