"""count_accuracy / graph_accuracy against hand-computed examples.

Notation in the comments: cond = true edges, skel = unordered true pairs, TP/FP/R = true
positives / false positives / reversed, P = pred_size, neg = d(d-1)/2 - |cond|.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xcausal.metrics import count_accuracy, graph_accuracy
from xcausal.types import Edge, Graph, Node


def adj(d: int, edges: list[tuple[int, int]], und: list[tuple[int, int]] = (), *,
        both: bool = True) -> np.ndarray:
    """d x d matrix with 1 at directed edges and -1 at undirected pairs (both sides or one)."""
    a = np.zeros((d, d))
    for i, j in edges:
        a[i, j] = 1
    for i, j in und:
        a[i, j] = -1
        if both:
            a[j, i] = -1
    return a


def check(res: dict, fdr: float, tpr: float, fpr: float, shd: int, nnz: int) -> None:
    assert res["fdr"] == pytest.approx(fdr)
    assert res["tpr"] == pytest.approx(tpr)
    assert res["fpr"] == pytest.approx(fpr)
    assert res["shd"] == shd and isinstance(res["shd"], int)
    assert res["nnz"] == nnz and isinstance(res["nnz"], int)
    assert set(res) == {"fdr", "tpr", "fpr", "shd", "nnz"}


def test_perfect_recovery() -> None:
    # true = est = 0->1->2. TP=2, FP=0, R=0, P=2, |cond|=2, neg=3-2=1.
    # fdr=0/2=0, tpr=2/2=1, fpr=0/1=0, shd=0, nnz=2
    t = adj(3, [(0, 1), (1, 2)])
    check(count_accuracy(t, t), 0.0, 1.0, 0.0, 0, 2)


def test_reversed_edge() -> None:
    # true 0->1, est 1->0: (1,0) is in cond_reversed -> R=1, TP=0, FP=0, P=1, neg=1-1=0.
    # fdr=(1+0)/1=1, tpr=0/1=0, fpr=1/max(0,1)=1, skeletons equal -> shd=0+0+1=1, nnz=1
    t = adj(2, [(0, 1)])
    check(count_accuracy(t, t.T), 1.0, 0.0, 1.0, 1, 1)


def test_missing_edge() -> None:
    # true 0->1->2, est 0->1: TP=1, FP=0, R=0, P=1, |cond|=2, neg=1.
    # fdr=0, tpr=1/2, fpr=0, missing pair {1,2} -> shd=1, nnz=1
    t = adj(3, [(0, 1), (1, 2)])
    e = adj(3, [(0, 1)])
    check(count_accuracy(t, e), 0.0, 0.5, 0.0, 1, 1)


def test_extra_edge() -> None:
    # true 0->1, est 0->1 and 0->2: TP=1, FP=1 ({0,2} not in skel), R=0, P=2, neg=3-1=2.
    # fdr=1/2, tpr=1, fpr=1/2, extra pair {0,2} -> shd=1, nnz=2
    t = adj(3, [(0, 1)])
    e = adj(3, [(0, 1), (0, 2)])
    check(count_accuracy(t, e), 0.5, 1.0, 0.5, 1, 2)


@pytest.mark.parametrize("both", [True, False])
@pytest.mark.parametrize("pair", [(0, 1), (1, 0)])
def test_undirected_edge_on_true_edge_is_true_positive(both: bool, pair: tuple[int, int]) -> None:
    # true 0->1, est 0-1 undirected (written on both sides, or on one side either way).
    # TP=1 (either direction in cond), FP=0, R=0 (undirected is never "reversed"), P=1, neg=0.
    # fdr=0, tpr=1, fpr=0/max(0,1)=0, skeletons equal -> shd=0, nnz=1
    t = adj(2, [(0, 1)])
    e = adj(2, [], [pair], both=both)
    check(count_accuracy(t, e), 0.0, 1.0, 0.0, 0, 1)


def test_undirected_edge_without_true_edge_is_false_positive() -> None:
    # true 0->1, est 0->1 plus 1-2 undirected. TP=1, FP=1 ({1,2} not in skel), R=0, P=2,
    # neg=3-1=2. fdr=1/2, tpr=1, fpr=1/2, extra pair {1,2} -> shd=1, nnz=2
    t = adj(3, [(0, 1)])
    e = adj(3, [(0, 1)], [(1, 2)])
    check(count_accuracy(t, e), 0.5, 1.0, 0.5, 1, 2)


def test_mixed_case() -> None:
    # true (d=4): 0->1, 1->2, 2->3, 0->3; |cond|=4, neg=6-4=2.
    # est: 0->1 (right), 2->1 (reversed), 0-3 undirected (on a true edge), 1->3 (extra);
    #      2->3 is missing.
    # TP: (0,1) + undirected {0,3} in skel = 2
    # FP: (1,3) not in skel = 1 ((2,1) is in skel, so it is reversed, not FP)
    # R:  (2,1) = 1
    # P = 3 directed + 1 undirected = 4
    # fdr=(1+1)/4=0.5, tpr=2/4=0.5, fpr=(1+1)/2=1.0
    # skel est {01,12,13,03} vs true {01,12,23,03}: extra {13}=1, missing {23}=1 -> shd=1+1+1=3
    t = adj(4, [(0, 1), (1, 2), (2, 3), (0, 3)])
    e = adj(4, [(0, 1), (2, 1), (1, 3)], [(0, 3)])
    check(count_accuracy(t, e), 0.5, 0.5, 1.0, 3, 4)


def test_two_cycle_counts_twice() -> None:
    # true 0->1, est 0->1 and 1->0: TP=1, R=1, FP=0, P=2, neg=0.
    # fdr=1/2, tpr=1, fpr=1/1=1, skeletons equal -> shd=0+0+1=1, nnz=2
    t = adj(2, [(0, 1)])
    e = adj(2, [(0, 1), (1, 0)])
    check(count_accuracy(t, e), 0.5, 1.0, 1.0, 1, 2)


def test_empty_graphs() -> None:
    # nothing true, nothing predicted: every ratio 0 by the max(., 1) guards
    z = np.zeros((3, 3))
    check(count_accuracy(z, z), 0.0, 0.0, 0.0, 0, 0)


def test_accepts_bool_and_int_arrays() -> None:
    t = adj(3, [(0, 1), (1, 2)])
    assert count_accuracy(t.astype(bool), t.astype(int)) == count_accuracy(t, t)


def _reference(bt: np.ndarray, be: np.ndarray) -> dict:
    """Independent transcription of the definitions on sets of ordered pairs."""
    d = len(bt)
    cond = {(i, j) for i in range(d) for j in range(d) if bt[i, j] == 1}
    cond_rev = {(j, i) for i, j in cond}
    skel = cond | cond_rev
    pred = {(i, j) for i in range(d) for j in range(d) if be[i, j] == 1}
    und = {(min(i, j), max(i, j)) for i in range(d) for j in range(d) if be[i, j] == -1}
    tp = len(pred & cond) + len(und & skel)
    fp = len(pred - skel) + len(und - skel)
    rev = len((pred - cond) & cond_rev)
    p = len(pred) + len(und)
    neg = 0.5 * d * (d - 1) - len(cond)
    s_pred = {frozenset(e) for e in pred | und}
    s_true = {frozenset(e) for e in cond}
    shd = len(s_pred - s_true) + len(s_true - s_pred) + rev
    return {"fdr": (rev + fp) / max(p, 1), "tpr": tp / max(len(cond), 1),
            "fpr": (rev + fp) / max(neg, 1), "shd": shd, "nnz": p}


def test_matches_set_based_reference_on_random_graphs() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        d = int(rng.integers(2, 7))
        perm = rng.permutation(d)
        t = np.triu(rng.random((d, d)) < 0.4, 1).astype(float)[np.ix_(perm, perm)]
        e = np.zeros((d, d))
        for i, j in itertools.combinations(range(d), 2):
            e[i, j], e[j, i] = [(0, 0), (1, 0), (0, 1), (1, 1), (-1, -1), (-1, 0)][rng.integers(6)]
        got, ref = count_accuracy(t, e), _reference(t, e)
        assert got == pytest.approx(ref)


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "true, est, match",
    [
        (np.zeros((2, 3)), np.zeros((2, 3)), r"true_adj must be a square"),
        (np.zeros((2, 2)), np.zeros((3, 3)), r"shape \(2, 2\) but est_adj has shape \(3, 3\)"),
        (np.zeros(4), np.zeros(4), r"true_adj must be a square"),
        (np.array([[0, 2], [0, 0]]), np.zeros((2, 2)), r"binary.*2\.0"),
        (np.array([[0, -1], [0, 0]]), np.zeros((2, 2)), r"binary.*-1\.0"),
        (np.zeros((2, 2)), np.array([[0, 0.5], [0, 0]]), r"\{-1, 0, 1\}.*0\.5"),
        (np.zeros((2, 2)), np.array([[0, np.nan], [0, 0]]), r"est_adj contains NaN"),
        (np.array([[0, 1], [1, 0]]), np.zeros((2, 2)), r"not acyclic"),
        (np.array([[1, 0], [0, 0]]), np.zeros((2, 2)), r"not acyclic"),
        (np.zeros((2, 2)), np.array([[1, 0], [0, 0]]), r"diagonal entry at \[0, 0\]"),
        (np.zeros((2, 2)), np.array([[0, -1], [1, 0]]), r"pair \(0, 1\) is ambiguous"),
    ],
)
def test_bad_input_raises(true: np.ndarray, est: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        count_accuracy(true, est)


# -------------------------------------------------------------------------- graph_accuracy
def _graph(nodes: list[tuple[str, str]], edges: list[tuple[str, str]]) -> Graph:
    return Graph(nodes=[Node(n, k) for n, k in nodes], edges=[Edge(a, b) for a, b in edges])


TRUE = _graph([("a", "observed"), ("b", "observed"), ("z", "latent")],
              [("a", "z"), ("z", "b")])


def test_graph_accuracy_aligns_by_name() -> None:
    # same graph with nodes listed in another order and other weights: perfect
    est = Graph(nodes=[Node("z", "latent"), Node("b", "observed"), Node("a", "observed")],
                edges=[Edge("z", "b", 0.3), Edge("a", "z", -2.0)])
    check(graph_accuracy(TRUE, est), 0.0, 1.0, 0.0, 0, 2)


def test_graph_accuracy_reversed_edge() -> None:
    # est: a->z (right), b->z (reversed). TP=1, R=1, P=2, |cond|=2, neg=1.
    # fdr=1/2, tpr=1/2, fpr=1/1=1, shd=1
    est = _graph([("b", "observed"), ("a", "observed"), ("z", "latent")],
                 [("a", "z"), ("b", "z")])
    check(graph_accuracy(TRUE, est), 0.5, 0.5, 1.0, 1, 2)


def test_graph_accuracy_extra_latent_counts_false_positive() -> None:
    # est has an extra latent w with edge w->a; true is padded with isolated w (d=4).
    # TP=2, FP=1, R=0, P=3, |cond|=2, neg=6-2=4: fdr=1/3, tpr=1, fpr=1/4, shd=1 (extra {w,a})
    est = _graph([("a", "observed"), ("b", "observed"), ("z", "latent"), ("w", "latent")],
                 [("a", "z"), ("z", "b"), ("w", "a")])
    check(graph_accuracy(TRUE, est), 1 / 3, 1.0, 0.25, 1, 3)


def test_graph_accuracy_missing_latent_counts_missing_edges() -> None:
    # est lacks latent z: it is padded as isolated, both true edges missing.
    # TP=0, P=0: fdr=0, tpr=0, fpr=0, shd=2
    est = _graph([("a", "observed"), ("b", "observed")], [])
    check(graph_accuracy(TRUE, est), 0.0, 0.0, 0.0, 2, 0)


def test_graph_accuracy_observed_mismatch_lists_names() -> None:
    est = _graph([("a", "observed"), ("c", "observed"), ("d", "observed"), ("z", "latent")], [])
    with pytest.raises(ValueError, match=r"missing from est: b; not in true: c, d"):
        graph_accuracy(TRUE, est)


def test_graph_accuracy_kind_mismatch() -> None:
    est = _graph([("a", "observed"), ("b", "observed"), ("z", "observed")], [])
    with pytest.raises(ValueError, match=r"'z' is latent in true but observed in est"):
        graph_accuracy(TRUE, est)


def test_graph_accuracy_cyclic_truth() -> None:
    true = _graph([("a", "observed"), ("b", "observed")], [("a", "b"), ("b", "a")])
    with pytest.raises(ValueError, match="not acyclic"):
        graph_accuracy(true, true)


def test_graph_accuracy_scores_marked_undirected_edges_favourably():
    """A CPDAG written as a DAG (pipelines with GES): a negative weight under UNDIRECTED_KEY is an
    undirected edge, counted right whichever way the truth points; unmarked it is a reversed edge."""
    from xcausal.metrics.structure import UNDIRECTED_KEY
    from xcausal.types import Edge, Graph, Node

    nodes = [Node("u", "observed"), Node("z1", "latent"), Node("z2", "latent")]
    truth = Graph(nodes=nodes, edges=[Edge("u", "z1", 1.0)])
    est_edges = [Edge("z1", "u", -1.0)]
    marked = graph_accuracy(truth, Graph(nodes=nodes, edges=est_edges, extra={UNDIRECTED_KEY: "yes"}))
    plain = graph_accuracy(truth, Graph(nodes=nodes, edges=est_edges))
    assert (marked["shd"], marked["tpr"], marked["fdr"]) == (0, 1.0, 0.0)
    assert (plain["shd"], plain["tpr"]) == (1, 0.0)
    # an undirected edge between non-adjacent true nodes is a false positive either way
    wrong = graph_accuracy(truth, Graph(nodes=nodes, edges=[Edge("z2", "u", -1.0)], extra={UNDIRECTED_KEY: "yes"}))
    assert (wrong["shd"], wrong["tpr"], wrong["fdr"]) == (2, 0.0, 1.0)
