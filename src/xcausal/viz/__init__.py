"""Figures: causal graphs, image grids."""

from xcausal.viz.graph import draw_graph

__all__ = ["draw_graph"]
