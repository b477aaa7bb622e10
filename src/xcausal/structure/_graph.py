"""Turning a learned weighted adjacency into a DAG, and edge masks."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import networkx as nx
import numpy as np
import torch

__all__ = ["threshold_to_dag", "bipartite_mask", "editable_mask", "exogenous_mask", "knowledge_mask", "dependence_pvalue",
           "unexplained_dependences"]

logger = logging.getLogger(__name__)


def threshold_to_dag(W: np.ndarray, threshold: float, keep: Sequence[tuple[int, int]] = ()
                     ) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Keep ``|W| > threshold`` and break remaining cycles by dropping their weakest edges.

    While the kept graph has a cycle, the cycle found by :func:`networkx.find_cycle` loses its edge
    of smallest ``|W|`` (ties broken by (source, target) index). This is greedy, not a minimum
    feedback arc set. Self-loops count as cycles and are dropped the same way.

    ``keep``: edges (i, j) kept whatever their weight (required background knowledge) as long as
    ``W[i, j] != 0``; a cycle loses its weakest edge not in ``keep``. ValueError when they form a
    cycle themselves.

    Parameters
    ----------
    W : numpy.ndarray, shape (d, d)
        Weighted adjacency, ``W[i, j]`` for edge i -> j. Not modified.
    threshold : float
        Non-negative; entries with ``|W| <= threshold`` are set to 0.

    Returns
    -------
    W_dag : numpy.ndarray, shape (d, d), float64
        Thresholded, acyclic copy of ``W`` (original weights on kept edges).
    dropped : list of (int, int, float)
        Edges ``(i, j, W[i, j])`` removed to break cycles, in removal order (callers log them).

    Raises
    ------
    ValueError
        If ``W`` is not a finite square matrix or ``threshold`` is negative / not finite.
    """
    w = np.array(W, dtype=float, copy=True)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"threshold_to_dag: W must be a square matrix, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("threshold_to_dag: W contains NaN or inf")
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold_to_dag: threshold must be a non-negative finite number, got {threshold}")
    kept = {(int(i), int(j)) for i, j in keep if w[i, j] != 0}
    below = np.abs(w) <= threshold
    for i, j in kept:
        below[i, j] = False
    w[below] = 0.0
    g = nx.DiGraph()
    g.add_nodes_from(range(w.shape[0]))
    src, dst = np.nonzero(w)
    g.add_edges_from(zip(src.tolist(), dst.tolist()))
    dropped: list[tuple[int, int, float]] = []
    while True:
        try:
            cycle = nx.find_cycle(g, orientation="original")
        except nx.NetworkXNoCycle:
            break
        free = [(e[0], e[1]) for e in cycle if (e[0], e[1]) not in kept]
        if not free:
            raise ValueError(f"threshold_to_dag: the edges to keep form a cycle {[(e[0], e[1]) for e in cycle]}")
        i, j = min(free, key=lambda e: (abs(w[e[0], e[1]]), e[0], e[1]))
        dropped.append((int(i), int(j), float(w[i, j])))
        g.remove_edge(i, j)
        w[i, j] = 0.0
        logger.debug("threshold_to_dag: dropped %d -> %d (|W| = %.4g) to break a cycle", i, j, abs(dropped[-1][2]))
    return w, dropped


def bipartite_mask(kinds: Sequence[str]) -> torch.Tensor:
    """Edge mask allowing only observed -> latent and latent -> observed edges (CMCL Assumption 2).

    Parameters
    ----------
    kinds : sequence of {"observed", "latent"}
        Kind of each node, in node order.

    Returns
    -------
    torch.BoolTensor, shape (d, d)
        ``mask[i, j]`` is True iff an edge i -> j is allowed (kinds differ; hence a False diagonal).

    Raises
    ------
    ValueError
        If a kind is not "observed" or "latent".
    """
    kinds = list(kinds)
    bad = sorted({str(k) for k in kinds if k not in ("observed", "latent")})
    if bad:
        raise ValueError(f"bipartite_mask: unknown node kinds {bad} (expected 'observed' or 'latent')")
    latent = torch.tensor([k == "latent" for k in kinds], dtype=torch.bool)
    return latent[:, None] != latent[None, :]


def editable_mask(allowed: torch.Tensor | None, n_nodes: int) -> torch.Tensor:
    """A boolean copy of the edge mask ``allowed`` to modify; None (every off-diagonal edge
    allowed) becomes that mask written out."""
    if allowed is None:
        return torch.ones(n_nodes, n_nodes, dtype=torch.bool).fill_diagonal_(False)
    return allowed.clone().bool()


def exogenous_mask(allowed: torch.Tensor | None, n_nodes: int, exogenous: Sequence[int]) -> torch.Tensor | None:
    """``allowed`` (None: every off-diagonal edge) with every edge into the ``exogenous`` nodes
    forbidden: background knowledge that nothing in the graph causes them (age, sex or site is
    not caused by an image). Returns ``allowed`` itself when ``exogenous`` is empty.

    Raises
    ------
    ValueError
        If a node index is outside ``range(n_nodes)``.
    """
    exogenous = [int(i) for i in exogenous]
    if not exogenous:
        return allowed
    bad = [i for i in exogenous if not 0 <= i < n_nodes]
    if bad:
        raise ValueError(f"exogenous_mask: node indices {bad} outside 0..{n_nodes - 1}")
    mask = editable_mask(allowed, n_nodes)
    mask[:, exogenous] = False
    return mask


def knowledge_mask(allowed: torch.Tensor | None, n_nodes: int, *, exogenous: Sequence[int] = (),
                   forbidden: Sequence[tuple[int, int]] = (), required: Sequence[tuple[int, int]] = ()
                   ) -> torch.Tensor | None:
    """``allowed`` (None: every off-diagonal edge) with background knowledge applied, in the manner
    of causal-learn's ``BackgroundKnowledge``: no edge into the ``exogenous`` nodes
    (:func:`exogenous_mask`), none of the ``forbidden`` edges (i, j), and for each ``required`` edge
    (i, j) its reverse forbidden and the edge itself allowed. Callers apply it after every change of
    a mask, so that no later step (orientation, a repair) re-allows what the knowledge excludes.
    Returns ``allowed`` itself when there is no knowledge.

    Raises
    ------
    ValueError
        If a node index is outside ``range(n_nodes)``, or an edge is both required and forbidden
        (forbidden directly, or by an exogenous target).
    """
    forbidden = [(int(i), int(j)) for i, j in forbidden]
    required = [(int(i), int(j)) for i, j in required]
    if not (len(exogenous) or forbidden or required):
        return allowed
    bad = [e for e in forbidden + required if not (0 <= e[0] < n_nodes and 0 <= e[1] < n_nodes)]
    if bad:
        raise ValueError(f"knowledge_mask: edge {bad[0]} outside nodes 0..{n_nodes - 1}")
    clash = [e for e in required if e in forbidden or e[1] in set(int(k) for k in exogenous) or e[0] == e[1]]
    if clash:
        raise ValueError(f"knowledge_mask: edge {clash[0]} is both required and forbidden")
    mask = editable_mask(exogenous_mask(allowed, n_nodes, exogenous), n_nodes)
    for i, j in forbidden:
        mask[i, j] = False
    for i, j in required:
        mask[j, i] = False
        mask[i, j] = True
    return mask


def dependence_pvalue(a: np.ndarray, b: np.ndarray, a_discrete: bool, b_discrete: bool) -> float:
    """p-value of a test of marginal independence of two variables, chosen by their types:
    Spearman's rank correlation (both continuous), Kruskal-Wallis of the continuous one across
    the discrete one's levels, or the chi-squared test of their contingency table (both discrete).
    1.0 when a variable is constant (nothing to test). These tests see monotone and location
    dependence only, so a small p is evidence of dependence and a large one is not proof of
    independence.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(a) != len(b):
        raise ValueError(f"dependence_pvalue: lengths differ ({len(a)} vs {len(b)})")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("dependence_pvalue: values must be finite (NaN or inf given)")
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0
    if a_discrete and b_discrete:
        return float(stats.chi2_contingency(stats.contingency.crosstab(a, b).count).pvalue)
    if a_discrete or b_discrete:
        levels, cont = (a, b) if a_discrete else (b, a)
        groups = [cont[levels == v] for v in np.unique(levels)]
        if len(groups) < 2:
            return 1.0
        return float(stats.kruskal(*groups).pvalue)
    return float(stats.spearmanr(a, b).pvalue)


def unexplained_dependences(adjacency: np.ndarray, columns: np.ndarray, discrete: Sequence[bool], *,
                            alpha: float) -> list[tuple[int, int, float]]:
    """Pairs of observed variables that the graph says are independent and the data say are not.

    In a DAG over all the variables (no hidden common cause) two nodes that are d-separated by the
    empty set (neither is an ancestor of the other and they share no ancestor; two roots, for
    example) are independent. A test that rejects that at level ``alpha`` shows an edge the graph
    lacks or one that points the wrong way.

    Parameters
    ----------
    adjacency : (D, D) the graph's weighted adjacency (nonzero = edge i -> j), acyclic; its first
        ``d`` nodes are the variables.
    columns : (n, d) the variables' values (discrete ones as codes), finite.
    discrete : (d,) whether each variable is binary / categorical.
    alpha : family-wise level over the d-separated pairs tested (Bonferroni: each pair's
        :func:`dependence_pvalue` is compared with ``alpha`` / the number of such pairs).

    Returns
    -------
    list of (i, k, p) with i < k, ordered by p (the uncorrected p-values).
    """
    adjacency = np.asarray(adjacency)
    columns = np.asarray(columns, dtype=float)
    d = columns.shape[1]
    if len(discrete) != d:
        raise ValueError(f"unexplained_dependences: {len(discrete)} types for {d} columns")
    g = nx.DiGraph()
    g.add_nodes_from(range(adjacency.shape[0]))
    src, dst = np.nonzero(adjacency)
    g.add_edges_from(zip(src.tolist(), dst.tolist()))
    pairs = [(i, k) for i in range(d) for k in range(i + 1, d) if nx.is_d_separator(g, {i}, {k}, set())]
    level = alpha / max(len(pairs), 1)
    out = []
    for i, k in pairs:
        p = dependence_pvalue(columns[:, i], columns[:, k], bool(discrete[i]), bool(discrete[k]))
        if p < level:
            out.append((i, k, p))
    return sorted(out, key=lambda t: (t[2], t[0], t[1]))
