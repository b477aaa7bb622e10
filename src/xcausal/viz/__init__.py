"""Figures: causal graphs, image grids."""

from xcausal.viz.graph import draw_graph
from xcausal.viz.grid import image_grid

__all__ = ["draw_graph", "image_grid"]
