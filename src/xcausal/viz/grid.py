"""Image grids: rows = samples, columns = intervened values (first column the original)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

__all__ = ["image_grid", "show_image"]


def show_image(ax, img: np.ndarray) -> None:
    """Draw one (C, H, W) image in [0, 1] on ``ax`` (grey or RGB), without ticks."""
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def image_grid(columns: Sequence[np.ndarray], col_titles: Sequence[str], path: str | Path | None = None, *,
               row_titles: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Draw a grid; ``columns[k]`` is an (R, C, H, W) array in [0, 1] shown as column k."""
    rows = len(columns[0])
    ncol = len(columns)
    # a Figure of its own with the Agg canvas: no pyplot state, no global backend switch
    fig = Figure(figsize=(1.1 * ncol + 0.6, 1.1 * rows + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, ncol, squeeze=False)
    for c, (imgs, t) in enumerate(zip(columns, col_titles)):
        for r in range(rows):
            show_image(axes[r, c], imgs[r])
        axes[0, c].set_title(t, fontsize=7)
    if row_titles is not None:
        for r, t in enumerate(row_titles):
            axes[r, 0].set_ylabel(t, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
