"""Drawing a cross-modal causal graph: observed variables left (boxes), latents right (circles)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import networkx as nx

from xcausal.types import Graph

__all__ = ["draw_graph"]

_OBS = "#f4a261"
_LAT = "#8ecae6"


def _column_positions(names: list[str], x: float) -> dict[str, tuple[float, float]]:
    n = max(len(names), 1)
    return {name: (x, 1.0 - (i + 0.5) / n) for i, name in enumerate(names)}


def draw_graph(graph: Graph, path: str | Path | None = None, *, title: str | None = None,
               show_isolated: bool = True) -> Figure:
    """Draw ``graph`` and optionally save it as PNG.

    Observed nodes are orange boxes in the left column, latent nodes blue circles in the right
    column; edges are labelled with their weights (width grows with |weight|). Edges between
    two nodes of the same kind (``--allow-all-edges``) are drawn as arcs.
    """
    g = graph.to_networkx()
    names = graph.node_names
    if not show_isolated:
        keep = {n for e in graph.edges for n in (e.source, e.target)}
        names = [n for n in names if n in keep]
    obs = [n for n in graph.observed if n in names]
    lat = [n for n in graph.latent if n in names]
    pos = {**_column_positions(obs, 0.0), **_column_positions(lat, 1.0)}
    height = max(3.0, 0.45 * max(len(obs), len(lat), 1) + 1.0)
    # a Figure of its own with the Agg canvas: no pyplot state, no global backend switch
    fig = Figure(figsize=(6.0, height))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    sub = g.subgraph(names)
    nx.draw_networkx_nodes(sub, pos, nodelist=obs, node_shape="s", node_color=_OBS, node_size=900, ax=ax)
    nx.draw_networkx_nodes(sub, pos, nodelist=lat, node_shape="o", node_color=_LAT, node_size=900, ax=ax)
    nx.draw_networkx_labels(sub, pos, font_size=8, ax=ax)
    edges = list(sub.edges(data="weight"))
    if edges:
        wmax = max(abs(w) for _, _, w in edges) or 1.0
        same = [(a, b) for a, b, _ in edges if graph.kind_of(a) == graph.kind_of(b)]
        cross = [(a, b) for a, b, _ in edges if graph.kind_of(a) != graph.kind_of(b)]
        widths = {(a, b): 0.8 + 2.5 * abs(w) / wmax for a, b, w in edges}
        for elist, style in ((cross, "arc3,rad=0.0"), (same, "arc3,rad=0.35")):
            if elist:
                nx.draw_networkx_edges(sub, pos, edgelist=elist, width=[widths[e] for e in elist],
                                       arrowsize=16, node_size=900, connectionstyle=style, ax=ax)
        labels = {(a, b): f"{w:.2f}" for a, b, w in edges if (a, b) in cross}
        nx.draw_networkx_edge_labels(sub, pos, edge_labels=labels, font_size=7, label_pos=0.3, ax=ax)
    ax.text(0.0, 1.04, "structured variables", ha="center", fontsize=9, color="#b5651d", transform=ax.transData)
    ax.text(1.0, 1.04, "image latents", ha="center", fontsize=9, color="#1d6fa5", transform=ax.transData)
    ax.set_xlim(-0.35, 1.35)
    ax.set_ylim(-0.05, 1.1)
    ax.set_axis_off()
    ax.set_title(title or f"{graph.method or 'graph'}: {len(graph.edges)} edge(s)", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
