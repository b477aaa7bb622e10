"""Structure-recovery metrics: FDR, TPR, FPR, SHD and the number of predicted edges.

The definitions are those of ``count_accuracy`` in the NOTEARS reference utilities (Zheng et
al., 2018), re-implemented here on boolean matrices:

* ``cond``: the true edges, ``cond_reversed`` the true edges reversed.
* ``pred``: the directed predicted edges, ``pred_und`` the undirected (CPDAG) ones, one per pair.
* true positives: directed predictions in ``cond`` plus undirected predictions whose *either*
  direction is in ``cond`` (undirected edges are scored favourably).
* false positives: directed predictions in neither ``cond`` nor ``cond_reversed`` plus undirected
  predictions whose pair carries no true edge.
* reversed: directed predictions in ``cond_reversed`` (and not in ``cond``).
* ``fdr = (reversed + false_pos) / max(pred_size, 1)``,
  ``tpr = true_pos / max(|cond|, 1)``,
  ``fpr = (reversed + false_pos) / max(d (d - 1) / 2 - |cond|, 1)``.
* ``shd``: on the skeletons (unordered pairs), extra pairs + missing pairs + reversed edges, so a
  reversed edge costs 1, not 2.
* ``nnz = pred_size = |pred| + |pred_und|``.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from xcausal.types import UNDIRECTED_KEY, UNDIRECTED_WEIGHT, Graph, Node  # noqa: F401 (UNDIRECTED_WEIGHT re-exported)

__all__ = ["count_accuracy", "graph_accuracy"]


def _as_matrix(a: np.ndarray, name: str) -> np.ndarray:
    """A finite, square, two-dimensional float copy of ``a`` (ValueError otherwise)."""
    try:
        m = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array, got {type(a).__name__}") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be a square (d, d) matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name} contains NaN or infinite entries")
    return m


def _bad_values(m: np.ndarray, allowed: tuple[float, ...]) -> list[float]:
    """Sorted distinct entries of ``m`` outside ``allowed`` (at most five, for messages)."""
    bad = np.unique(m[~np.isin(m, allowed)])
    return [float(v) for v in bad[:5]]


def count_accuracy(true_adj: np.ndarray, est_adj: np.ndarray) -> dict[str, float | int]:
    """Compare an estimated graph with the true DAG (NOTEARS ``count_accuracy``).

    Parameters
    ----------
    true_adj : np.ndarray, shape (d, d)
        Binary adjacency of the true DAG, ``true_adj[i, j] == 1`` iff ``i -> j``. Must be acyclic
        (which also excludes self-loops).
    est_adj : np.ndarray, shape (d, d)
        Estimated graph with entries in {-1, 0, 1}: ``1`` at ``[i, j]`` is a directed edge
        ``i -> j``; ``-1`` marks an undirected (CPDAG) edge ``i - j``. An undirected edge may be
        written at both ``[i, j]`` and ``[j, i]`` or at only one of them (the NOTEARS convention);
        either way it counts once. A pair with ``-1`` on one side and ``1`` on the other is
        ambiguous and rejected. Both ``[i, j] == 1`` and ``[j, i] == 1`` is a 2-cycle: two
        directed predictions. Unlike the NOTEARS utility, a cyclic estimate is accepted: every
        metric is well defined for any directed graph. The diagonal must be zero.

    Returns
    -------
    dict
        ``"fdr"``, ``"tpr"``, ``"fpr"`` (float) and ``"shd"``, ``"nnz"`` (int), as defined in the
        module docstring.

    Raises
    ------
    ValueError
        If a matrix is not square and finite, the shapes differ, ``true_adj`` is not a binary
        DAG, ``est_adj`` has values outside {-1, 0, 1}, a nonzero diagonal or an ambiguous pair.

    Examples
    --------
    >>> t = np.array([[0, 1], [0, 0]])
    >>> count_accuracy(t, t.T)["shd"]  # the edge reversed
    1
    """
    t = _as_matrix(true_adj, "true_adj")
    e = _as_matrix(est_adj, "est_adj")
    if t.shape != e.shape:
        raise ValueError(f"true_adj has shape {t.shape} but est_adj has shape {e.shape}")
    bad = _bad_values(t, (0.0, 1.0))
    if bad:
        raise ValueError(f"true_adj must be binary (0/1), found value(s) {bad}")
    bad = _bad_values(e, (-1.0, 0.0, 1.0))
    if bad:
        raise ValueError(f"est_adj must take values in {{-1, 0, 1}}, found value(s) {bad}")
    d = t.shape[0]
    if d and np.any(np.diag(e) != 0):
        i = int(np.flatnonzero(np.diag(e))[0])
        raise ValueError(f"est_adj has a nonzero diagonal entry at [{i}, {i}] (self-loop)")
    if not nx.is_directed_acyclic_graph(nx.DiGraph(t)):
        raise ValueError("true_adj is not acyclic (it must be a DAG)")

    directed = e == 1
    und_any = (e == -1) | (e.T == -1)  # symmetric
    clash = und_any & (directed | directed.T)
    if clash.any():
        i, j = (int(v) for v in np.argwhere(clash)[0])
        raise ValueError(
            f"est_adj pair ({i}, {j}) is ambiguous: -1 (undirected) on one side and 1 on the other"
        )
    upper = np.triu(np.ones((d, d), dtype=bool), 1)
    undirected = und_any & upper  # one representative per undirected pair

    cond = t == 1
    cond_rev = cond.T
    cond_skel = cond | cond_rev

    true_pos = int((directed & cond).sum() + (undirected & cond_skel).sum())
    false_pos = int((directed & ~cond_skel).sum() + (undirected & ~cond_skel).sum())
    # cond and cond_rev are disjoint for a DAG, so "in cond_reversed, not in cond" is just this:
    reverse = int((directed & cond_rev & ~cond).sum())

    n_cond = int(cond.sum())
    pred_size = int(directed.sum() + undirected.sum())
    cond_neg_size = 0.5 * d * (d - 1) - n_cond
    fdr = float(reverse + false_pos) / max(pred_size, 1)
    tpr = float(true_pos) / max(n_cond, 1)
    fpr = float(reverse + false_pos) / max(cond_neg_size, 1)

    pred_skel = (directed | directed.T | und_any) & upper
    true_skel = cond_skel & upper
    extra = int((pred_skel & ~true_skel).sum())
    missing = int((true_skel & ~pred_skel).sum())
    shd = extra + missing + reverse
    return {"fdr": fdr, "tpr": tpr, "fpr": fpr, "shd": shd, "nnz": pred_size}


# UNDIRECTED_KEY / UNDIRECTED_WEIGHT: graph.json's undirected edges, defined with Graph in xcausal.types


def graph_accuracy(true: Graph, est: Graph) -> dict[str, float | int]:
    """:func:`count_accuracy` for two :class:`~xcausal.types.Graph` objects, matched by name.

    ``est`` is re-indexed to ``true``'s node order by node name; edge weights are ignored (any
    edge counts as 1), except in a graph whose ``extra`` holds :data:`UNDIRECTED_KEY` (a CPDAG
    written as a DAG): there an edge with a negative weight is undirected and scored favourably,
    as :func:`count_accuracy` does with -1 entries. Otherwise an edge present in both
    directions is a 2-cycle, i.e. two directed predictions.

    Node sets may differ only in latent nodes, and only in the stricter direction:

    * a latent node of ``est`` that ``true`` lacks (e.g. an unmatched learned latent after
      :func:`~xcausal.metrics.align_graph`) is added to ``true`` as an isolated node, so every
      edge touching it is a false positive (this also enlarges ``d`` and hence the FPR
      denominator);
    * a latent node of ``true`` that ``est`` lacks is added to ``est`` as an isolated node, so all
      its true edges count as missing.

    Observed variables must match exactly.

    Parameters
    ----------
    true : Graph
        Ground truth; must be acyclic.
    est : Graph
        Estimated graph over the same observed variables.

    Returns
    -------
    dict
        As :func:`count_accuracy`: ``"fdr"``, ``"tpr"``, ``"fpr"``, ``"shd"``, ``"nnz"``.

    Raises
    ------
    ValueError
        If observed variables are missing from or extra in ``est`` (all are listed), a node has
        a different kind in the two graphs, or ``true`` is cyclic.
    """
    true_names = set(true.node_names)
    est_names = set(est.node_names)
    missing_obs = [n for n in true.observed if n not in est_names]
    extra_obs = [n for n in est.observed if n not in true_names]
    problems = []
    if missing_obs:
        problems.append(f"missing from est: {', '.join(missing_obs)}")
    if extra_obs:
        problems.append(f"not in true: {', '.join(extra_obs)}")
    if problems:
        raise ValueError("observed variables differ between graphs (" + "; ".join(problems) + ")")
    clashes = [n for n in true.node_names if n in est_names and est.kind_of(n) != true.kind_of(n)]
    if clashes:
        desc = ", ".join(f"'{n}' is {true.kind_of(n)} in true but {est.kind_of(n)} in est"
                         for n in clashes)
        raise ValueError(f"node kinds differ between graphs: {desc}")

    extra_lat = [n for n in est.latent if n not in true_names]
    missing_lat = [n for n in true.latent if n not in est_names]
    order = true.node_names + extra_lat
    t_full = Graph(nodes=list(true.nodes) + [Node(n, "latent") for n in extra_lat],
                   edges=list(true.edges))
    e_full = Graph(nodes=list(est.nodes) + [Node(n, "latent") for n in missing_lat],
                   edges=list(est.edges))
    pos = {n: i for i, n in enumerate(e_full.node_names)}
    perm = np.array([pos[n] for n in order], dtype=int)
    est_adj = e_full.adjacency()[np.ix_(perm, perm)] if len(perm) else e_full.adjacency()
    if est.extra.get(UNDIRECTED_KEY) and len(perm):
        # a CPDAG written as a DAG (xcausal.models.pipeline): negative weights mark undirected edges
        w = e_full.adjacency(weighted=True)[np.ix_(perm, perm)]
        und = (w < 0) | (w.T < 0)
        est_adj = np.where(und, -1, est_adj)
    return count_accuracy(t_full.adjacency(), est_adj)
