"""Figures: causal graphs, image grids, the HTML run report."""

from xcausal.viz.graph import draw_graph
from xcausal.viz.grid import image_grid
from xcausal.viz.report import write_report

__all__ = ["draw_graph", "image_grid", "write_report"]
