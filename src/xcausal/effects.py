"""Which way an intervention moves the image, measured on the images, and whether the data agree.

An intervention grid shows do(var = first value) ... do(var = last value). :func:`image_change`
measures, on the generated images, whether the last value makes them brighter, darker, or neither
overall (brighter in one place and darker in another: a change of shape or position), and where.
:func:`data_trend` measures the same pixels in the real images against the variable (Spearman's ρ
for a continuous variable, the standardised difference of means between the two categories
otherwise), so that a grid whose direction contradicts the data can be said to do so instead of
being shown as the variable's effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ImageChange", "image_change", "DataTrend", "data_trend", "check_against_data", "region_name",
           "UNCHANGED_GREY", "DOMINANCE"]

#: mean |change| below this many grey levels (of 255) per pixel counts as no change
UNCHANGED_GREY = 0.5
#: the brightening (or darkening) must carry at least this multiple of the opposite change for the
#: images to be called brighter (or darker) overall
DOMINANCE = 2.0
#: share of pixels (the most changed ones) that locate a change and are measured in the data
HOT_SHARE = 0.1


def region_name(weights: np.ndarray) -> str:
    """Where the hottest tenth of a non-negative (H, W) map lies: "upper-left region", "central
    region", ... (the whole map's centre of mass would put a small corner marker over diffuse
    low-level change in the middle)."""
    w = np.clip(np.nan_to_num(np.asarray(weights, dtype=np.float64)), 0, None)
    if w.sum() <= 0:
        return "no particular region"
    w = np.where(w >= np.quantile(w, 1 - HOT_SHARE), w, 0.0)
    total = w.sum()
    h, wd = w.shape
    ys, xs = np.mgrid[0:h, 0:wd]
    cy = float((w * ys).sum() / total) / max(h - 1, 1)
    cx = float((w * xs).sum() / total) / max(wd - 1, 1)
    vert = "upper" if cy < 0.4 else "lower" if cy > 0.6 else ""
    horiz = "left" if cx < 0.4 else "right" if cx > 0.6 else ""
    if vert and horiz:
        return f"{vert}-{horiz} region"
    return f"{vert or horiz or 'central'} region"


def _hot(weights: np.ndarray) -> np.ndarray:
    """(H, W) bool: the most changed HOT_SHARE of the pixels with a positive weight."""
    w = np.clip(weights, 0, None)
    if not (w > 0).any():
        return np.zeros(w.shape, bool)
    return (w >= np.quantile(w[w > 0], 1 - HOT_SHARE)) & (w > 0)


@dataclass(frozen=True)
class ImageChange:
    """How the generated images change from the first to the last value of an intervention.

    ``direction``: "brighter", "darker", "rearranged" (brighter in ``where_up``, darker in
    ``where_down``, neither dominating) or "unchanged"; ``level``: mean |change| in grey levels per
    pixel (of 255); ``up`` / ``down``: (H, W) masks of the pixels that brighten / darken most."""

    direction: str
    level: float
    where_up: str
    where_down: str
    up: np.ndarray
    down: np.ndarray

    @property
    def where(self) -> str:
        return self.where_down if self.direction == "darker" else self.where_up

    @property
    def sign(self) -> int:
        """+1 brighter, -1 darker, 0 otherwise."""
        return {"brighter": 1, "darker": -1}.get(self.direction, 0)


def image_change(signed: np.ndarray) -> ImageChange:
    """``signed``: (n, C, H, W) images under do(last value) minus images under do(first value), in
    [-1, 1], for the same n rows."""
    signed = np.asarray(signed, dtype=np.float64)
    level = 255.0 * float(np.abs(signed).mean())
    mean = signed.mean(axis=(0, 1))  # (H, W) per-pixel change, averaged over rows and channels
    up, down = np.clip(mean, 0, None), np.clip(-mean, 0, None)
    total_up, total_down = float(up.sum()), float(down.sum())
    if level < UNCHANGED_GREY:
        direction = "unchanged"
    elif total_up >= DOMINANCE * total_down:
        direction = "brighter"
    elif total_down >= DOMINANCE * total_up:
        direction = "darker"
    else:
        direction = "rearranged"
    return ImageChange(direction, level, region_name(up), region_name(down), _hot(up), _hot(down))


@dataclass(frozen=True)
class DataTrend:
    """How the real images' mean intensity over some pixels goes with a variable: ``statistic`` is
    Spearman's ρ (continuous) or the difference of means over its standard error (two categories);
    ``sign`` is +1 / -1 when it clears ``threshold`` (about two standard errors), else 0."""

    statistic: float
    threshold: float
    rows: int
    kind: str  # "spearman" or "difference"

    @property
    def sign(self) -> int:
        if not np.isfinite(self.statistic) or abs(self.statistic) < self.threshold:
            return 0
        return 1 if self.statistic > 0 else -1

    def text(self) -> str:
        if self.kind == "spearman":
            return f"Spearman ρ = {self.statistic:+.2f} over {self.rows} rows"
        return f"difference of means {self.statistic:+.1f} standard errors over {self.rows} rows"


def data_trend(images: np.ndarray, values: np.ndarray, mask: np.ndarray, *, continuous: bool,
               first: float | None = None, last: float | None = None) -> DataTrend | None:
    """The trend of the real ``images`` (n, C, H, W)' mean intensity over ``mask`` (H, W) with the
    variable's ``values`` (n,): Spearman's ρ when ``continuous``, else the rows whose code is
    ``last`` against those whose code is ``first``. None when the mask is empty or too few rows."""
    if not mask.any():
        return None
    a = np.asarray(images, dtype=np.float64)[:, :, mask].mean(axis=(1, 2))
    v = np.asarray(values, dtype=np.float64)
    if continuous:
        if len(a) < 10 or np.ptp(v) == 0 or np.ptp(a) == 0:
            return None
        from scipy.stats import spearmanr

        rho = float(spearmanr(v, a).statistic)
        return DataTrend(rho, 2.0 / np.sqrt(len(a)), len(a), "spearman")
    hi, lo = a[v == last], a[v == first]
    if len(hi) < 3 or len(lo) < 3:
        return None
    se = float(np.sqrt(hi.var(ddof=1) / len(hi) + lo.var(ddof=1) / len(lo)))
    stat = float((hi.mean() - lo.mean()) / se) if se > 0 else 0.0
    return DataTrend(stat, 2.0, len(hi) + len(lo), "difference")


#: rows of real images a data check reads (evenly spaced over the table)
TREND_ROWS = 1000


def check_against_data(ds, var_name: str, values, change: ImageChange) -> DataTrend | None:
    """The real images' trend, over the pixels that brighten (or darken) most under the
    intervention, with variable ``var_name`` of dataset ``ds``: compare its ``sign`` with
    ``change.sign``. For a categorical variable the rows at ``values[-1]`` are compared with those at
    ``values[0]``. None when the change is not simply brighter or darker, or nothing can be measured."""
    if change.direction not in ("brighter", "darker"):
        return None
    from xcausal.types import VarType

    mask = change.up if change.direction == "brighter" else change.down
    j = ds.variable_names.index(var_name)
    var = ds.variables[j]
    idx = [int(i) for i in np.linspace(0, len(ds) - 1, num=min(len(ds), TREND_ROWS)).round()]
    continuous = var.type is VarType.CONTINUOUS
    first = last = None
    if not continuous:
        cats = [str(c) for c in var.categories]
        first, last = float(cats.index(str(values[0]))), float(cats.index(str(values[-1])))
    return data_trend(ds.images(idx), np.asarray(ds.u[idx, j]), mask, continuous=continuous, first=first, last=last)
