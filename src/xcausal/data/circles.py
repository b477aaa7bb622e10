"""Coloured circles with three binary causes and a physics curve: a causalPIMA test bed.

Each sample is an RGB image of one filled circle on a black background, plus a 1-D modality,
a stress–strain curve. Three binary latent features, linked by a known DAG, drive both:

* ``hue``: 0 = red-ish, 1 = blue-ish circle (:data:`HUE_COLORS`, per-channel jitter);
* ``radius``: 0 = small (``0.16 S``), 1 = large (``0.28 S``) (:data:`RADIUS_LEVELS`, jitter);
* ``shift``: centre left (``0.38 S``) or right (``0.62 S``) (:data:`SHIFT_LEVELS`, uniform
  jitter ``+-0.03 S``); the vertical centre is ``S / 2`` plus a little Gaussian jitter.

Positions are continuous pixel coordinates: pixel ``(i, j)`` (row ``i`` from the top, column
``j``) covers ``[j, j + 1) x [i, i + 1)``, so its centre is ``(j + 0.5, i + 0.5)`` and the image
spans ``[0, S]``. A pixel's coverage is ``clip(r - d + 0.5, 0, 1)`` with ``d`` the distance of
its centre to the circle's centre (a one-pixel linear ramp: a slightly anti-aliased edge); its
value is ``coverage * colour + N(0, 0.02)``, clipped to ``[0, 1]``.

DAGs (:data:`CIRCLE_DAGS`), with ``sigmoid(x) = 1 / (1 + exp(-x))``:

* ``"v-structure"``: ``hue -> shift <- radius``; ``hue, radius ~ Bernoulli(0.5)``,
  ``p(shift = 1 | hue, radius) = sigmoid(-2.5 + 2.5 hue + 2.5 radius)``. ``hue`` and ``radius``
  are independent, and the collider makes the orientation identifiable from observations.
* ``"chain"``: ``hue -> radius -> shift``; ``hue ~ Bernoulli(0.5)``, each child has
  ``p(child = 1 | parent) = sigmoid(-2 + 4 parent)`` (0.12 or 0.88).
* ``"independent"``: no edges, every feature ``Bernoulli(0.5)``.

Physics modality ``curve`` (PIMA's piecewise-linear strain-hardening model, Trask et al. 2022):
on ``t = linspace(0, 1, L)``, :func:`strain_hardening_curve` gives ``E(t) = (y0 / x0) t`` for
``t < x0`` (elastic) and ``y0 + theta (t - x0)`` for ``t >= x0`` (hardening), with yield stress
``y0 = 1.0 + 0.5 radius``, hardening slope ``theta = 0.5 + 1.0 hue`` and yield strain
``x0 = 0.2 + 0.1 shift``, each plus Gaussian jitter (sd 0.04, 0.04, 0.02), then additive noise
N(0, 0.01) per point. Every feature thus shows in both modalities.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd

from xcausal.data.simulate import MIN_SAMPLES, SimulatedData, check_int
from xcausal.types import Edge, Graph, Node

__all__ = [
    "simulate_circles",
    "strain_hardening_curve",
    "feature_thresholds",
    "hue_score",
    "CIRCLE_DAGS",
    "CIRCLE_FEATURES",
    "HUE_COLORS",
    "RADIUS_LEVELS",
    "SHIFT_LEVELS",
    "MIN_IMAGE_SIZE",
]

logger = logging.getLogger(__name__)

CircleDag = Literal["v-structure", "chain", "independent"]
CIRCLE_DAGS: tuple[str, ...] = ("v-structure", "chain", "independent")
"""The DAGs :func:`simulate_circles` can draw the features from."""
CIRCLE_FEATURES: tuple[str, ...] = ("hue", "radius", "shift")
"""Feature (truth node) names, in the column order of ``latents``."""
HUE_COLORS: tuple[tuple[float, float, float], tuple[float, float, float]] = (
    (0.90, 0.20, 0.15),  # hue = 0: red-ish
    (0.15, 0.30, 0.90),  # hue = 1: blue-ish
)
"""RGB colour of the circle for ``hue`` = 0 and 1, before jitter."""
RADIUS_LEVELS: tuple[float, float] = (0.16, 0.28)
"""Radius for ``radius`` = 0 and 1, as a fraction of the image side ``S``."""
SHIFT_LEVELS: tuple[float, float] = (0.38, 0.62)
"""Horizontal centre for ``shift`` = 0 and 1, as a fraction of ``S``."""
MIN_IMAGE_SIZE = 16
"""Smallest image side: the small circle still has a radius of about 2.5 px."""

_COLOR_JITTER = 0.03  # sd of the per-channel colour jitter
_RADIUS_JITTER = 0.01  # sd of the radius jitter, fraction of S
_SHIFT_JITTER = 0.03  # half-width of the uniform horizontal-centre jitter, fraction of S
_CENTER_Y = 0.5  # vertical centre, fraction of S
_CENTER_Y_JITTER = 0.02  # sd of the vertical-centre jitter, fraction of S
_PIXEL_NOISE = 0.02  # sd of the additive pixel noise
# Physics curve: parameter = base + step * feature + N(0, sd^2)
_CURVE_PARAMS = {  # name: (feature, base, step, jitter sd)
    "y0": ("radius", 1.0, 0.5, 0.04),
    "theta": ("hue", 0.5, 1.0, 0.04),
    "x0": ("shift", 0.2, 0.1, 0.02),
}
_X0_MIN = 0.05  # x0 is clipped below at this (about 7 sd under the smallest mean)
_CURVE_NOISE = 0.01  # sd of the additive noise on every curve point
_ROOT_P = 0.5
_V_LOGIT = (-2.5, 2.5, 2.5)  # v-structure: shift logit = a + b * hue + c * radius
_CHAIN_LOGIT = (-2.0, 4.0)  # chain: child logit = a + b * parent
_DAG_EDGES: dict[str, tuple[tuple[str, str], ...]] = {
    "v-structure": (("hue", "shift"), ("radius", "shift")),
    "chain": (("hue", "radius"), ("radius", "shift")),
    "independent": (),
}


def strain_hardening_curve(
    t: np.ndarray, x0: np.ndarray | float, y0: np.ndarray | float, theta: np.ndarray | float
) -> np.ndarray:
    """PIMA's piecewise-linear strain-hardening stress–strain curve.

    ``E(t) = (y0 / x0) t`` for ``t < x0`` and ``y0 + theta (t - x0)`` for ``t >= x0``:
    continuous at the yield point ``(x0, y0)``.

    Parameters
    ----------
    t : ndarray, shape (L,)
        Strain values.
    x0, y0, theta : float or ndarray, shape (...)
        Yield strain (``> 0``), yield stress and hardening slope; broadcast against each other.

    Returns
    -------
    ndarray, shape (..., L), float64
        One curve per broadcast parameter set; shape (L,) for scalar parameters.
    """
    t = np.asarray(t, dtype=np.float64)
    x0, y0, theta = (np.asarray(a, dtype=np.float64)[..., None] for a in (x0, y0, theta))
    return np.where(t < x0, (y0 / x0) * t, y0 + theta * (t - x0))


def hue_score(rgb: np.ndarray) -> np.ndarray:
    """Blue-vs-red score ``B / (R + B)`` of RGB colours, in ``[0, 1]`` (NaN where ``R + B = 0``).

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)

    Returns
    -------
    ndarray, shape (...)
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    den = rgb[..., 0] + rgb[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, rgb[..., 2] / den, np.nan)


def feature_thresholds(image_size: int) -> dict[str, float]:
    """Midpoints between the two levels of each feature, in measurement units.

    Parameters
    ----------
    image_size : int
        Side ``S`` of the images the measurements come from, in pixels.

    Returns
    -------
    dict
        ``"hue"``: midpoint of :func:`hue_score` of the two :data:`HUE_COLORS`; ``"radius"``
        and ``"shift"`` (the horizontal centre): midpoints of :data:`RADIUS_LEVELS` and
        :data:`SHIFT_LEVELS` times ``S``, in pixels.
    """
    s = float(image_size)
    return {
        "hue": float(np.mean(hue_score(np.asarray(HUE_COLORS)))),
        "radius": float(np.mean(RADIUS_LEVELS)) * s,
        "shift": float(np.mean(SHIFT_LEVELS)) * s,
    }


def simulate_circles(
    n: int,
    *,
    seed: int,
    image_size: int = 32,
    dag: CircleDag = "v-structure",
    curve_length: int = 64,
) -> SimulatedData:
    """Simulate coloured circles with binary causes hue, radius, shift and a physics curve.

    Parameters
    ----------
    n : int
        Number of samples, ``>= 10``.
    seed : int
        Non-negative seed; everything random comes from ``np.random.default_rng(seed)``, one
        child stream per part (features, colours, geometry, pixel noise, curve parameters, curve
        noise), so row ``l`` is the same for every ``n > l``.
    image_size : int, optional
        Side ``S`` of the images, ``>= 16``.
    dag : {"v-structure", "chain", "independent"}, optional
        How the features depend on each other; see the module docstring.
    curve_length : int, optional
        Number of points ``L >= 2`` of the ``curve`` modality.

    Returns
    -------
    SimulatedData
        ``images`` (n, 3, S, S) float32 in [0, 1]; ``table`` with only an ``id`` column
        (``"c0"``, ``"c1"``, ...; no structured variables); ``latents`` (n, 3) float64, the 0/1
        features ``hue, radius, shift``; ``truth`` with latent nodes ``hue, radius, shift`` and
        the DAG's edges (weight 1.0, ``method="truth"``); ``modalities["curve"]`` (n, L)
        float32; ``info`` (JSON-able: every level and jitter, the DAG and its conditional
        probabilities, the physics model and the per-sample curve parameters).

    Raises
    ------
    ValueError
        On ``n < 10``, a negative seed, ``image_size < 16``, ``curve_length < 2`` or an unknown
        ``dag``.
    """
    n, seed = check_int("n", n, MIN_SAMPLES), check_int("seed", seed, 0)
    image_size = check_int("image_size", image_size, MIN_IMAGE_SIZE)
    curve_length = check_int("curve_length", curve_length, 2)
    if dag not in CIRCLE_DAGS:
        raise ValueError(f"dag must be one of {', '.join(map(repr, CIRCLE_DAGS))}, got {dag!r}")
    n, seed, size, length = int(n), int(seed), int(image_size), int(curve_length)

    rng = np.random.default_rng(seed)
    # One child stream per draw, each drawn once with n rows: row l is the same for any n > l.
    feat_rng, color_rng, geom_rng, shift_rng, pixel_rng, param_rng, curve_rng = rng.spawn(7)

    feats = _sample_features(dag, feat_rng.random((n, 3)))
    hue, radius, shift = feats.T

    # ----------------------------------------------------------------- images
    colors = np.asarray(HUE_COLORS)[hue.astype(int)] + _COLOR_JITTER * color_rng.standard_normal((n, 3))
    np.clip(colors, 0.0, 1.0, out=colors)
    geom = geom_rng.standard_normal((n, 2))
    r = (np.asarray(RADIUS_LEVELS)[radius.astype(int)] + _RADIUS_JITTER * geom[:, 0]) * size
    cx = (np.asarray(SHIFT_LEVELS)[shift.astype(int)] + shift_rng.uniform(-_SHIFT_JITTER, _SHIFT_JITTER, n)) * size
    cy = (_CENTER_Y + _CENTER_Y_JITTER * geom[:, 1]) * size
    centers = np.arange(size) + 0.5
    dist = np.sqrt((centers[None, None, :] - cx[:, None, None]) ** 2
                   + (centers[None, :, None] - cy[:, None, None]) ** 2)  # (n, row, col)
    coverage = np.clip(r[:, None, None] - dist + 0.5, 0.0, 1.0)
    images = (coverage[:, None] * colors[:, :, None, None]).astype(np.float32)
    images += (_PIXEL_NOISE * pixel_rng.standard_normal(images.shape)).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)

    # ----------------------------------------------------------------- curves
    t = np.linspace(0.0, 1.0, length)
    jitter = param_rng.standard_normal((n, len(_CURVE_PARAMS)))
    params: dict[str, np.ndarray] = {}
    for k, (name, (feature, base, step, sd)) in enumerate(_CURVE_PARAMS.items()):
        params[name] = base + step * feats[:, CIRCLE_FEATURES.index(feature)] + sd * jitter[:, k]
    params["x0"] = np.maximum(params["x0"], _X0_MIN)
    curve = strain_hardening_curve(t, params["x0"], params["y0"], params["theta"])
    curve = (curve + _CURVE_NOISE * curve_rng.standard_normal((n, length))).astype(np.float32)

    # ----------------------------------------------------------------- truth
    edges = _DAG_EDGES[dag]
    truth = Graph(
        nodes=[Node(f, "latent") for f in CIRCLE_FEATURES],
        edges=[Edge(a, b, 1.0) for a, b in edges],
        method="truth",
        extra={"generator": "circles", "dag": dag,
               "note": "binary latent features; with binary nodes only the Markov equivalence class "
                       "is identifiable from observational data (v-structures are oriented)"},
    )
    table = pd.DataFrame({"id": [f"c{i}" for i in range(n)]})
    info: dict[str, Any] = {
        "generator": "circles",
        "seed": seed,
        "n": n,
        "image_size": size,
        "dag": dag,
        "edges": [list(e) for e in edges],
        "features": list(CIRCLE_FEATURES),
        "conditionals": _conditionals_doc(dag),
        "frequencies": {f: float(feats[:, j].mean()) for j, f in enumerate(CIRCLE_FEATURES)},
        "image": {
            "channels": 3,
            "background": 0.0,
            "coordinates": "pixel (i, j) covers [j, j+1) x [i, i+1); row 0 at the top; sizes in px = fraction * S",
            "hue_colors_rgb": [list(c) for c in HUE_COLORS],
            "color_jitter_sd": _COLOR_JITTER,
            "radius_levels": list(RADIUS_LEVELS),
            "radius_jitter_sd": _RADIUS_JITTER,
            "shift_levels": list(SHIFT_LEVELS),
            "shift_jitter_uniform_halfwidth": _SHIFT_JITTER,
            "center_y": _CENTER_Y,
            "center_y_jitter_sd": _CENTER_Y_JITTER,
            "antialias": "coverage = clip(r - d + 0.5, 0, 1), d = distance of the pixel centre",
            "pixel_noise_sd": _PIXEL_NOISE,
            "clip": [0.0, 1.0],
        },
        "modalities": {
            "curve": {
                "model": "strain_hardening: E(t) = (y0/x0) t for t < x0, y0 + theta (t - x0) for t >= x0",
                "t": f"linspace(0, 1, {length})",
                "length": length,
                "parameters": {name: {"feature": f, "base": b, "step": st, "jitter_sd": sd}
                               for name, (f, b, st, sd) in _CURVE_PARAMS.items()},
                "x0_min": _X0_MIN,
                "noise_sd": _CURVE_NOISE,
                "per_sample": {name: [float(v) for v in vals] for name, vals in params.items()},
            },
        },
    }
    logger.debug("simulated circles (%s) with n=%d, seed=%d", dag, n, seed)
    return SimulatedData(images=images, table=table, latents=feats, truth=truth, info=info,
                         modalities={"curve": curve})


# ------------------------------------------------------------------ helpers
def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _sample_features(dag: str, u: np.ndarray) -> np.ndarray:
    """(n, 3) 0/1 features ``hue, radius, shift`` from uniforms ``u`` (n, 3), in DAG order."""
    n = len(u)
    out = np.zeros((n, 3))
    out[:, 0] = u[:, 0] < _ROOT_P
    if dag == "v-structure":
        out[:, 1] = u[:, 1] < _ROOT_P
        a, b, c = _V_LOGIT
        out[:, 2] = u[:, 2] < _sigmoid(a + b * out[:, 0] + c * out[:, 1])
    elif dag == "chain":
        a, b = _CHAIN_LOGIT
        out[:, 1] = u[:, 1] < _sigmoid(a + b * out[:, 0])
        out[:, 2] = u[:, 2] < _sigmoid(a + b * out[:, 1])
    else:
        out[:, 1] = u[:, 1] < _ROOT_P
        out[:, 2] = u[:, 2] < _ROOT_P
    return out


def _conditionals_doc(dag: str) -> dict[str, str]:
    """The DAG's conditional probabilities as formulas (JSON-able)."""
    if dag == "v-structure":
        a, b, c = _V_LOGIT
        return {"hue": f"Bernoulli({_ROOT_P})", "radius": f"Bernoulli({_ROOT_P})",
                "shift": f"Bernoulli(sigmoid({a} + {b} hue + {c} radius))"}
    if dag == "chain":
        a, b = _CHAIN_LOGIT
        return {"hue": f"Bernoulli({_ROOT_P})", "radius": f"Bernoulli(sigmoid({a} + {b} hue))",
                "shift": f"Bernoulli(sigmoid({a} + {b} radius))"}
    return {f: f"Bernoulli({_ROOT_P})" for f in CIRCLE_FEATURES}
