"""Scoring discovered binary features (causalPIMA nodes) against true binary features.

Learned nodes are unordered and their outcomes may be flipped (node f = 1 where the true feature
is 0), so nodes are matched to true features first (Hungarian on agreement, allowing flips);
structure is then compared on the skeleton and on the CPDAG (with binary nodes only the Markov
equivalence class is identifiable from observational data: orientation is scored only where
the class fixes it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["FeatureMatch", "match_features", "clustering_accuracy", "dag_to_cpdag", "skeleton_shd", "cpdag_shd"]


@dataclass(frozen=True)
class FeatureMatch:
    """``nodes[k]`` = learned node index matched to true feature k; ``flipped[k]`` its outcomes are
    inverted; ``accuracy[k]`` agreement after the flip."""

    nodes: tuple[int, ...]
    flipped: tuple[bool, ...]
    accuracy: tuple[float, ...]


def _bits(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected (N, n) outcomes, got shape {a.shape}")
    u = np.unique(a)
    if not set(u.tolist()) <= {0, 1}:
        raise ValueError(f"{name}: outcomes must be 0/1, found {u[:5].tolist()}")
    return a.astype(int)


def match_features(true_bits: np.ndarray, est_bits: np.ndarray) -> FeatureMatch:
    """Match each true feature (columns of ``true_bits``) to a distinct learned node.

    Parameters
    ----------
    true_bits : (N, m) 0/1
    est_bits : (N, n) 0/1 with n >= m
    """
    t, e = _bits(true_bits, "true outcomes"), _bits(est_bits, "learned outcomes")
    if len(t) != len(e):
        raise ValueError(f"{len(t)} true rows but {len(e)} learned rows")
    if e.shape[1] < t.shape[1]:
        raise ValueError(f"{e.shape[1]} learned node(s) for {t.shape[1]} true feature(s)")
    same = (t[:, :, None] == e[:, None, :]).mean(0)  # (m, n)
    agree = np.maximum(same, 1 - same)
    rows, cols = linear_sum_assignment(-agree)
    order = np.argsort(rows)
    cols = cols[order]
    return FeatureMatch(nodes=tuple(int(c) for c in cols),
                        flipped=tuple(bool(same[k, c] < 0.5) for k, c in enumerate(cols)),
                        accuracy=tuple(float(agree[k, c]) for k, c in enumerate(cols)))


def clustering_accuracy(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """Unsupervised clustering accuracy: the best one-to-one map of predicted to true clusters."""
    t, p = np.asarray(true_labels).ravel(), np.asarray(pred_labels).ravel()
    if len(t) != len(p) or len(t) == 0:
        raise ValueError(f"clustering_accuracy: {len(t)} true and {len(p)} predicted labels")
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    conf = np.zeros((ti.max() + 1, pi.max() + 1))
    np.add.at(conf, (ti, pi), 1)
    r, c = linear_sum_assignment(-conf)
    return float(conf[r, c].sum() / len(t))


def dag_to_cpdag(adj: np.ndarray) -> np.ndarray:
    """CPDAG of a DAG: ``A[i, j] = 1`` compelled i -> j; ``A[i, j] = A[j, i] = -1`` reversible.

    Uses causal-learn's ``dag2cpdag`` (Chickering's edge labelling) and our endpoint conversion.
    """
    from causallearn.graph.Dag import Dag
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.utils.DAG2CPDAG import dag2cpdag

    from xcausal.structure.ges import endpoints_to_adjacency

    a = (np.asarray(adj) != 0).astype(int)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"dag_to_cpdag: adjacency must be square, got shape {a.shape}")
    nodes = [GraphNode(f"X{i + 1}") for i in range(len(a))]
    dag = Dag(nodes)
    for i, j in zip(*np.nonzero(a)):
        dag.add_directed_edge(nodes[i], nodes[j])
    return endpoints_to_adjacency(dag2cpdag(dag).graph)


def _skeleton(a: np.ndarray) -> np.ndarray:
    s = np.asarray(a) != 0
    return s | s.T


def skeleton_shd(true_adj: np.ndarray, est_adj: np.ndarray) -> int:
    """Unordered pairs adjacent in one graph but not the other."""
    st, se = _skeleton(true_adj), _skeleton(est_adj)
    if st.shape != se.shape:
        raise ValueError(f"skeleton_shd: shapes {st.shape} and {se.shape} differ")
    return int(np.triu(st != se, 1).sum())


def cpdag_shd(true_dag: np.ndarray, est_dag: np.ndarray) -> int:
    """Unordered pairs whose CPDAG marks differ (missing / extra / differently oriented edge: 1 each)."""
    ct, ce = dag_to_cpdag(true_dag), dag_to_cpdag(est_dag)
    if ct.shape != ce.shape:
        raise ValueError(f"cpdag_shd: shapes {ct.shape} and {ce.shape} differ")
    n = len(ct)
    return int(sum((ct[i, j], ct[j, i]) != (ce[i, j], ce[j, i]) for i in range(n) for j in range(i + 1, n)))
