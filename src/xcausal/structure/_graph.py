"""Turning a learned weighted adjacency into a DAG, and edge masks."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import networkx as nx
import numpy as np
import torch

__all__ = ["threshold_to_dag", "bipartite_mask"]

logger = logging.getLogger(__name__)


def threshold_to_dag(W: np.ndarray, threshold: float) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Keep ``|W| > threshold`` and break remaining cycles by dropping their weakest edges.

    While the kept graph has a cycle, the cycle found by :func:`networkx.find_cycle` loses its edge
    of smallest ``|W|`` (ties broken by (source, target) index). This is greedy, not a minimum
    feedback arc set. Self-loops count as cycles and are dropped the same way.

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
    w[np.abs(w) <= threshold] = 0.0
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
        i, j = min(((e[0], e[1]) for e in cycle), key=lambda e: (abs(w[e[0], e[1]]), e[0], e[1]))
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
