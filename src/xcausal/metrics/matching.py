"""Renaming learned latent nodes after the true latents they recover.

Learned latents come in no particular order, so before a learned graph can be compared with the
true one its latent nodes must be named after the true latents they were matched to (see
:func:`~xcausal.metrics.representation.match_latents`).
"""

from __future__ import annotations

import numpy as np

from xcausal.metrics.representation import Score, match_latents
from xcausal.types import Graph, Node

__all__ = ["latent_name_mapping", "align_graph"]


def _check_latent_columns(graph: Graph, z: np.ndarray, gname: str, zname: str) -> None:
    a = np.asarray(z)
    cols = 1 if a.ndim == 1 else (a.shape[1] if a.ndim == 2 else -1)
    if cols != len(graph.latent):
        raise ValueError(
            f"{zname} has shape {a.shape} but {gname} has {len(graph.latent)} latent node(s) "
            f"{graph.latent}: need one column per latent node, in node order"
        )


def latent_name_mapping(est: Graph, z_true: np.ndarray, z_est: np.ndarray, true: Graph, *,
                        score: Score = "mic", matched: list[int] | None = None) -> dict[str, str]:
    """New names for ``est``'s latent nodes: the matched true latent, or a fresh ``extra_*`` name.

    Parameters
    ----------
    est : Graph
        Learned graph; its latent nodes, in node order, are the columns of ``z_est``.
    z_true : np.ndarray, shape (N, m)
        True latents, columns in the order of ``true.latent``.
    z_est : np.ndarray, shape (N, k)
        Learned latents, columns in the order of ``est.latent``.
    true : Graph
        Ground truth with ``m`` latent nodes.
    score : {"mic", "pearson", "spearman"}, default "mic"
        Similarity used for the Hungarian matching.
    matched : list of int, optional
        A matching already computed by :func:`~xcausal.metrics.representation.match_latents` on
        the same latents (MIC matrices are costly: pass it to avoid computing one twice).

    Returns
    -------
    dict of str to str
        One entry per latent node of ``est``. Matched nodes map to their true latent's name;
        unmatched ones (when ``k > m``) to ``"extra_<name>"`` (with a numeric suffix if needed),
        a name used by no node of either graph.

    Raises
    ------
    ValueError
        If the column counts do not match the graphs' latent nodes, or as
        :func:`~xcausal.metrics.representation.match_latents`.
    """
    _check_latent_columns(true, z_true, "true", "z_true")
    _check_latent_columns(est, z_est, "est", "z_est")
    est_lat, true_lat = est.latent, true.latent
    if not est_lat or not true_lat:
        matched = [-1] * len(true_lat)
    elif matched is None:
        matched, _ = match_latents(z_true, z_est, score=score)
    elif len(matched) != len(true_lat) or any(i >= len(est_lat) for i in matched):
        raise ValueError(f"matched has {len(matched)} entries for {len(true_lat)} true latents "
                         f"or refers to a column beyond the {len(est_lat)} learned ones")
    mapping = {est_lat[i]: true_lat[j] for j, i in enumerate(matched) if i >= 0}
    taken = set(est.node_names) | set(true.node_names)
    for name in est_lat:
        if name in mapping:
            continue
        new, k = f"extra_{name}", 1
        while new in taken:
            new, k = f"extra_{name}_{k}", k + 1
        taken.add(new)
        mapping[name] = new
    return mapping


def align_graph(est: Graph, z_true: np.ndarray, z_est: np.ndarray, true: Graph, *,
                score: Score = "mic", matched: list[int] | None = None) -> Graph:
    """``est`` with its latent nodes renamed after the true latents they were matched to.

    Matching is :func:`~xcausal.metrics.representation.match_latents` on ``score`` (Hungarian,
    maximising the summed similarity). Learned latents left unmatched (``k > m``) are kept under
    fresh ``extra_*`` names, so :func:`~xcausal.metrics.graph_accuracy` counts their edges as
    false positives; true latents left unmatched (``k < m``) are added as isolated latent nodes,
    so their true edges count as missing.

    Parameters
    ----------
    est : Graph
        Learned graph; its latent nodes, in node order, are the columns of ``z_est``.
    z_true : np.ndarray, shape (N, m)
        True latents, columns in the order of ``true.latent``.
    z_est : np.ndarray, shape (N, k)
        Learned latents, columns in the order of ``est.latent``.
    true : Graph
        Ground truth.
    score : {"mic", "pearson", "spearman"}, default "mic"
        Similarity used for the matching.
    matched : list of int, optional
        A precomputed matching (see :func:`latent_name_mapping`).

    Returns
    -------
    Graph
        Nodes of ``true`` present after renaming, in ``true``'s order (unmatched true latents
        included as isolated nodes), followed by the remaining nodes of ``est`` (the ``extra_*``
        latents, and any observed node ``true`` lacks) in ``est``'s order. Edges, weights,
        ``method`` and ``extra`` are kept.

    Raises
    ------
    ValueError
        As :func:`latent_name_mapping`, or if a new latent name collides with an observed node
        of ``est``.
    """
    mapping = latent_name_mapping(est, z_true, z_est, true, score=score, matched=matched)
    renamed = est.renamed(mapping)
    present = {n.name: n for n in renamed.nodes}
    nodes = []
    for n in true.nodes:
        if n.name in present:
            nodes.append(present.pop(n.name))
        elif n.kind == "latent":
            nodes.append(Node(n.name, "latent"))
    nodes.extend(n for n in renamed.nodes if n.name in present)
    return Graph(nodes=nodes, edges=list(renamed.edges), method=renamed.method,
                 extra=dict(renamed.extra))
