"""Chest-radiograph-like phantoms with a known causal graph: the researcher's-workflow test bed.

Each sample is a grayscale image ``(1, S, S)`` in ``[0, 1]`` that looks roughly like a
posterior-anterior chest X-ray, plus a table of four variables a clinical study would record.
Nothing here comes from real radiographs; every shape is an analytic function of a few
per-sample parameters, all documented in ``info`` (see :func:`simulate_xray_phantom`).

Variables and ground truth (``truth.json``)::

    infected -> z1 (opacity) -> opacity_score
    age      -> z2 (lung_size)
    site                                   (no edges)

* ``infected`` (binary 0/1, ``Bernoulli(0.4)``) causes **z1**, the amount of peripheral
  opacity: ``z1 = exp(log m + s eps)``, ``eps ~ N(0, 1)``, with median ``m = 0.8`` and
  ``s = 0.3`` when infected, ``m = 0.08`` and ``s = 0.5`` otherwise (faint at most). z1 scales
  the brightness of six soft blobs near the outer (lateral) edges of the two lung fields.
* ``age`` (years, ``U(20, 85)``, continuous) causes **z2**, the lung-field scale:
  ``z2 = 1.05 - 0.0035 (age - 20) + N(0, 0.03^2)``, clipped to ``[0.7, 1.2]``. z2 scales both
  lung ellipses (their medial edges stay beside the mediastinum, their apices at a fixed height).
* ``opacity_score`` (continuous, 0–10) is **anti-causal**: a reader's score measured *from the
  rendered image*: the mean intensity of the peripheral lung zones minus that of the central
  lung zones (zones in each sample's own lung coordinates), mapped linearly to the 0–10 range
  and given measurement noise N(0, 0.3^2), then clipped to ``[0, 10]``.
* ``site`` (categorical ``"A"``, ``"B"``, ``"C"``, uniform) is unrelated to everything.

Coordinates: ``x`` (columns, left to right as displayed) and ``y`` (rows, top to bottom) are
fractions of the image side; pixel ``(i, j)`` has its centre at ``((j + 0.5) / S, (i + 0.5) / S)``.
The image is composed additively (an attenuation-like sum) and then clipped; see
:func:`simulate_xray_phantom` for the layers and ``info["image"]`` for their parameters.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from xcausal.data.simulate import MIN_SAMPLES, SimulatedData, check_int
from xcausal.types import Edge, Graph, Node

__all__ = [
    "simulate_xray_phantom",
    "XRAY_VARIABLES",
    "XRAY_LATENTS",
    "XRAY_SITES",
    "MIN_IMAGE_SIZE",
]

logger = logging.getLogger(__name__)

XRAY_VARIABLES: tuple[str, ...] = ("infected", "age", "opacity_score", "site")
"""Structured variables (table columns after ``id``), in order."""
XRAY_LATENTS: dict[str, str] = {
    "z1": "opacity: amount of peripheral lung opacity (brightness scale of the lateral blobs)",
    "z2": "lung_size: scale of both lung fields (1 = reference size)",
}
"""Latent (truth) nodes and their meaning, in the column order of ``latents``."""
XRAY_SITES: tuple[str, ...] = ("A", "B", "C")
"""Levels of the unrelated ``site`` variable."""
MIN_IMAGE_SIZE = 32
"""Smallest image side: below it ribs and blobs are under a pixel wide."""

# ----------------------------------------------------------------- causal mechanisms
_P_INFECTED = 0.4
_AGE_RANGE = (20.0, 85.0)  # uniform, years
_OPACITY_MEDIAN = (0.08, 0.8)  # z1 median for infected = 0, 1 (log-normal)
_OPACITY_LOG_SD = (0.5, 0.3)  # z1 sd of log for infected = 0, 1
_LUNG_BASE, _LUNG_SLOPE, _LUNG_AGE0 = 1.05, -0.0035, 20.0  # z2 = base + slope * (age - age0) + noise
_LUNG_NOISE = 0.03
_LUNG_CLIP = (0.7, 1.2)
# opacity_score = clip(gain * (raw - offset) + N(0, sd^2), 0, 10); raw = peripheral - central mean
_SCORE_OFFSET = 0.063
_SCORE_GAIN = 60.0
_SCORE_NOISE = 0.3
_SCORE_RANGE = (0.0, 10.0)

# ----------------------------------------------------------------- anatomy (fractions of S)
_BACKGROUND = 0.03
_EDGE = 0.012  # soft-edge width of the body outline
_POSE_SD = 0.015  # sd of the patient-position shift (x and y), applied to all anatomy
_BODY = {"center": (0.5, 0.56), "semi_axes": (0.43, 0.52), "width_sd": 0.03, "value": 0.55}
_LUNG = {
    "medial_gap": 0.055,  # half-distance between the lungs' medial edges at the midline
    "semi_axis_x": 0.13,  # times z2
    "semi_axis_y": 0.30,  # times z2
    "apex_y": 0.16,  # top of both lungs
    "base_widening": 0.18,  # half-width factor (1 + w * eta): lungs widen towards the base
    "edge": 0.06,  # soft-edge width in normalised lung radius
    "value": -0.36,  # added inside the lungs (air: darker)
}
_HEART = {"center": (0.56, 0.63), "semi_axes": (0.13, 0.11), "size_sd": 0.05, "edge": 0.10, "value": 0.20}
_MEDIASTINUM = {"half_width": 0.05, "y_range": (0.06, 0.70), "edge": 0.012, "value": 0.16}
_RIBS = {
    "period": 0.07,  # vertical spacing of the ribs
    "sharpness": 3,  # band profile ((1 + cos) / 2) ** sharpness
    "curve": (-0.10, 1.40),  # centre line y = y_k + c1 * d + c2 * d^2, d = |x - midline|
    "phase_jitter": 0.01,  # half-width of the uniform vertical offset of the rib pattern
    "y_range": (0.12, 0.80),
    "edge": 0.02,
    "value": 0.08,
}
_CLAVICLE = {"y": 0.13, "curve": 0.6, "d_center": 0.2, "d_range": (0.04, 0.36), "edge": 0.01, "width": 0.012,
             "value": 0.12}
_FIELD = {"waves": 3, "max_frequency": 1.0, "amplitude": 0.03}  # multiplicative (1 + field)
_PIXEL_NOISE = 0.02
# ----------------------------------------------------------------- opacities
_BLOBS_PER_LUNG = 3
_BLOB_XI = (0.55, 0.85)  # lateral position in lung coordinates (0 = lung centre, 1 = outer edge)
_BLOB_ETA = (-0.6, 0.6)  # vertical position in lung coordinates (-1 = apex, 1 = base)
_BLOB_SIGMA = (0.35, 0.60)  # Gaussian sd, in units of the lung half-width 0.13 z2
_BLOB_WEIGHT = (0.6, 1.0)
_BLOB_VALUE = 0.25  # peak brightness per unit of z1 and weight
# ----------------------------------------------------------------- measurement zones (lung coordinates)
_ZONE_EDGE = 0.05
_PERIPHERAL_ZONE = {"xi": (0.5, 0.95), "eta": (-0.7, 0.7)}
_CENTRAL_ZONE = {"xi": (-0.35, 0.25), "eta": (-0.7, 0.0)}  # above the heart

_CHUNK = 64  # samples rendered at once (bounds memory at ~ 64 * S^2 * 4 bytes per array)


def simulate_xray_phantom(n: int, *, seed: int, image_size: int = 128) -> SimulatedData:
    """Simulate chest-radiograph-like phantoms with infection, age, a score and a site.

    Parameters
    ----------
    n : int
        Number of samples, ``>= 10``.
    seed : int
        Non-negative seed; everything random comes from ``np.random.default_rng(seed)``, one
        child stream per part (variables, mechanisms, pose, blobs and rib offset, intensity
        field, pixel noise, score noise), each drawn once with ``n`` rows (the pixel noise once
        per sample), so sample ``l`` is the same for every ``n > l``.
    image_size : int, optional
        Side ``S`` of the images, ``>= 32``.

    Returns
    -------
    SimulatedData
        ``images`` (n, 1, S, S) float32 in [0, 1]; ``table`` with columns ``id`` (``"x0"``,
        ``"x1"``, ...), ``infected`` (int 0/1), ``age`` (years, one decimal),
        ``opacity_score`` (0–10, two decimals) and ``site`` (``"A"``/``"B"``/``"C"``);
        ``latents`` (n, 2) float64, columns ``z1`` (opacity amount) and ``z2`` (lung scale);
        ``truth`` with observed nodes ``infected, age, opacity_score, site``, latent nodes
        ``z1, z2`` and edges ``infected -> z1``, ``age -> z2``, ``z1 -> opacity_score``
        (weight 1.0, ``method="truth"``); ``info`` (JSON-able: every parameter below, the
        latent meanings and the per-sample raw score).

    Raises
    ------
    ValueError
        On ``n < 10``, a negative seed or ``image_size < 32``.

    Notes
    -----
    Layers, summed in this order (values are added intensities; ``body``, ``lung`` etc. are
    soft masks in ``[0, 1]``; all positions move with a per-sample pose shift ``N(0, 0.015^2)``
    in x and y; ``d`` is the distance from the midline):

    1. background 0.03;
    2. body: an ellipse (centre (0.5, 0.56), semi-axes (0.43 w, 0.52), ``w ~ N(1, 0.03^2)``),
       +0.55 with a soft edge;
    3. lungs (times ``body``): two egg-shaped ellipses of half-width ``0.13 z2 (1 + 0.18 eta)``
       and half-height ``0.30 z2``, apex at ``y = 0.16``, medial edges ``0.055`` from the
       midline, -0.36 (air is dark);
    4. mediastinum (a soft band ``d < 0.05`` for ``y`` in 0.06..0.70, +0.16) and heart (an
       ellipse centred (0.56, 0.63), semi-axes (0.13, 0.11) times ``N(1, 0.05^2)``, +0.20),
       both times ``body``;
    5. ribs: bands ``((1 + cos(2 pi (y - y_c) / 0.07)) / 2) ** 3`` along the curves
       ``y_c = y_k - 0.10 d + 1.40 d^2`` (vertical offset ``U(-0.01, 0.01)``), for ``y`` in
       0.12..0.80, +0.08 times ``body``; two clavicles (Gaussian lines, +0.12);
    6. opacities (times ``lung``): three Gaussian blobs per lung at lung coordinates
       ``xi ~ U(0.55, 0.85)`` (lateral), ``eta ~ U(-0.6, 0.6)``, sd ``U(0.35, 0.60)`` lung
       half-widths ``0.13 z2``, peak ``0.25 z1 U(0.6, 1.0)``;
    7. a smooth multiplicative field ``1 + sum of 3 plane waves`` (frequencies ``U(-1, 1)``
       cycles per image in x and y, amplitude 0.03 each, random phase);
    8. pixel noise ``N(0, 0.02^2)``, then clip to ``[0, 1]``.

    The score is measured on the final image. Lung coordinates: ``xi`` (0 at the lung centre,
    1 at its outer edge, -1 at its medial edge) and ``eta`` (-1 apex, 1 base). Peripheral zone
    ``0.5 < xi < 0.95``, ``|eta| < 0.7``; central zone ``-0.35 < xi < 0.25``,
    ``-0.7 < eta < 0`` (above the heart); soft windows pooled over both lungs;
    ``raw = mean(peripheral) - mean(central)`` and
    ``opacity_score = clip(60 (raw - 0.063) + N(0, 0.3^2), 0, 10)``: healthy lungs score about
    1, infected ones about 2 to 9. Because the zones follow each sample's lungs and the blobs
    scale with them, the score depends on ``z2`` only weakly (partial correlation given ``z1``
    about -0.03 at n = 1000).
    """
    n, seed = check_int("n", n, MIN_SAMPLES), check_int("seed", seed, 0)
    image_size = check_int("image_size", image_size, MIN_IMAGE_SIZE)
    n, seed, size = int(n), int(seed), int(image_size)

    rng = np.random.default_rng(seed)
    var_rng, mech_rng, pose_rng, blob_rng, field_rng, pixel_rng, score_rng = rng.spawn(7)

    # ----------------------------------------------------------------- variables and latents
    u = var_rng.random((n, 3))
    infected = (u[:, 0] < _P_INFECTED).astype(np.int64)
    age = _AGE_RANGE[0] + (_AGE_RANGE[1] - _AGE_RANGE[0]) * u[:, 1]
    site = np.asarray(XRAY_SITES)[np.minimum((u[:, 2] * len(XRAY_SITES)).astype(int), len(XRAY_SITES) - 1)]
    eps = mech_rng.standard_normal((n, 2))
    z1 = np.exp(np.log(np.asarray(_OPACITY_MEDIAN)[infected]) + np.asarray(_OPACITY_LOG_SD)[infected] * eps[:, 0])
    z2 = np.clip(_LUNG_BASE + _LUNG_SLOPE * (age - _LUNG_AGE0) + _LUNG_NOISE * eps[:, 1], *_LUNG_CLIP)

    # ----------------------------------------------------------------- per-sample nuisance
    pose = pose_rng.standard_normal((n, 4))  # shift x, shift y, body width, heart size
    shift = _POSE_SD * pose[:, :2]
    body_w = 1.0 + _BODY["width_sd"] * pose[:, 2]
    heart_s = 1.0 + _HEART["size_sd"] * pose[:, 3]
    k = 2 * _BLOBS_PER_LUNG
    ub = blob_rng.random((n, 1 + 4 * k))  # one draw per stream: rows do not depend on n
    rib_phase = _RIBS["phase_jitter"] * (2.0 * ub[:, 0] - 1.0)

    blobs = {
        "xi": _scale(ub[:, 1:1 + k], _BLOB_XI),
        "eta": _scale(ub[:, 1 + k:1 + 2 * k], _BLOB_ETA),
        "sigma": _scale(ub[:, 1 + 2 * k:1 + 3 * k], _BLOB_SIGMA),
        "weight": _scale(ub[:, 1 + 3 * k:], _BLOB_WEIGHT),
    }
    waves, fmax = _FIELD["waves"], _FIELD["max_frequency"]
    uf = field_rng.random((n, 3 * waves))
    field = {
        "fx": _scale(uf[:, :waves], (-fmax, fmax)),
        "fy": _scale(uf[:, waves:2 * waves], (-fmax, fmax)),
        "phase": _scale(uf[:, 2 * waves:], (0.0, 2.0 * np.pi)),
    }

    # ----------------------------------------------------------------- render in chunks
    images = np.empty((n, 1, size, size), dtype=np.float32)
    raw = np.empty(n)
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, min(lo + _CHUNK, n))
        img, r = _render(size, z1[sl], z2[sl], shift[sl], body_w[sl], heart_s[sl], rib_phase[sl],
                         {a: b[sl] for a, b in blobs.items()}, {a: b[sl] for a, b in field.items()},
                         pixel_rng)
        images[sl, 0] = img
        raw[sl] = r

    score = np.clip(_SCORE_GAIN * (raw - _SCORE_OFFSET) + _SCORE_NOISE * score_rng.standard_normal(n),
                    *_SCORE_RANGE)

    # ----------------------------------------------------------------- outputs
    table = pd.DataFrame({
        "id": [f"x{i}" for i in range(n)],
        "infected": infected,
        "age": np.round(age, 1),
        "opacity_score": np.round(score, 2),
        "site": site,
    })
    latents = np.column_stack([z1, z2])
    edges = (("infected", "z1"), ("age", "z2"), ("z1", "opacity_score"))
    truth = Graph(
        nodes=[Node(v, "observed") for v in XRAY_VARIABLES] + [Node(z, "latent") for z in XRAY_LATENTS],
        edges=[Edge(a, b, 1.0) for a, b in edges],
        method="truth",
        extra={"generator": "xray-phantom", "latent_meaning": dict(XRAY_LATENTS),
               "note": "opacity_score is anti-causal: measured from the image (z1 -> opacity_score); "
                       "site has no edges"},
    )
    info: dict[str, Any] = {
        "generator": "xray-phantom",
        "seed": seed,
        "n": n,
        "image_size": size,
        "channels": 1,
        "variables": list(XRAY_VARIABLES),
        "latents": dict(XRAY_LATENTS),
        "edges": [list(e) for e in edges],
        "mechanisms": {
            "infected": f"Bernoulli({_P_INFECTED})",
            "age": f"Uniform({_AGE_RANGE[0]}, {_AGE_RANGE[1]}) years, rounded to 0.1 in the table",
            "site": f"uniform over {list(XRAY_SITES)}, independent of everything",
            "z1": "exp(log(median[infected]) + log_sd[infected] * N(0, 1))",
            "z1_median": list(_OPACITY_MEDIAN),
            "z1_log_sd": list(_OPACITY_LOG_SD),
            "z2": f"clip({_LUNG_BASE} + ({_LUNG_SLOPE}) * (age - {_LUNG_AGE0}) + N(0, {_LUNG_NOISE}^2), "
                  f"{_LUNG_CLIP[0]}, {_LUNG_CLIP[1]})",
            "opacity_score": f"clip({_SCORE_GAIN} * (raw - ({_SCORE_OFFSET})) + N(0, {_SCORE_NOISE}^2), "
                             f"{_SCORE_RANGE[0]}, {_SCORE_RANGE[1]}), rounded to 0.01; raw = mean image "
                             "intensity in the peripheral lung zones minus that in the central lung zones",
        },
        "frequencies": {"infected": float(infected.mean()),
                        "site": {s: float(np.mean(site == s)) for s in XRAY_SITES}},
        "image": {
            "coordinates": "x = (column + 0.5) / S left to right, y = (row + 0.5) / S top to bottom",
            "composition": "background + body + lungs + mediastinum + heart + ribs + clavicles + "
                           "opacities, times (1 + field), plus pixel noise, clipped to [0, 1]",
            "background": _BACKGROUND,
            "pose_shift_sd": _POSE_SD,
            "body": {**_BODY, "edge": _EDGE},
            "lungs": {**_LUNG, "scale": "z2 multiplies semi_axis_x and semi_axis_y",
                      "shape": "((x - cx) / (ax (1 + base_widening * eta)))^2 + eta^2 < 1, "
                               "eta = (y - cy) / ay, cx = midline +- (medial_gap + ax), cy = apex_y + ay"},
            "mediastinum": _MEDIASTINUM,
            "heart": _HEART,
            "ribs": {**_RIBS, "profile": "((1 + cos(2 pi (y - y_center(d) - offset) / period)) / 2) ** sharpness"},
            "clavicles": {**_CLAVICLE, "line": "y_line = y + curve * (d - d_center)^2, Gaussian profile of sd "
                                               "width, for d in d_range"},
            "opacities": {"blobs_per_lung": _BLOBS_PER_LUNG, "xi": list(_BLOB_XI), "eta": list(_BLOB_ETA),
                          "sigma_in_lung_half_widths": list(_BLOB_SIGMA), "weight": list(_BLOB_WEIGHT),
                          "peak_per_unit_z1": _BLOB_VALUE, "masked_by": "lung mask",
                          "position": "x = cx + side * xi * ax (1 + base_widening * eta), y = cy + eta * ay"},
            "field": {**_FIELD, "form": "1 + sum_k amplitude cos(2 pi (fx_k x + fy_k y) + phase_k)"},
            "pixel_noise_sd": _PIXEL_NOISE,
            "clip": [0.0, 1.0],
        },
        "score": {
            "zones": {"peripheral": _PERIPHERAL_ZONE, "central": _CENTRAL_ZONE, "edge": _ZONE_EDGE,
                      "coordinates": "per lung: xi = side * (x - cx) / (ax (1 + base_widening * eta)) "
                                     "(0 centre, 1 outer edge), eta = (y - cy) / ay (-1 apex, 1 base); "
                                     "soft windows, both lungs pooled"},
            "gain": _SCORE_GAIN,
            "offset": _SCORE_OFFSET,
            "noise_sd": _SCORE_NOISE,
            "range": list(_SCORE_RANGE),
            "raw_per_sample": [float(v) for v in raw],
        },
    }
    logger.debug("simulated %d x-ray phantoms at %d px, seed=%d", n, size, seed)
    return SimulatedData(images=images, table=table, latents=latents, truth=truth, info=info)


# ------------------------------------------------------------------ helpers
def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, elementwise."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _scale(u: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    """Map uniforms ``u`` in ``[0, 1)`` to ``U(lo, hi)``."""
    return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * u


def _window(t: np.ndarray, lo: float, hi: float, edge: float) -> np.ndarray:
    """Soft indicator of ``lo < t < hi`` with logistic edges of width ``edge``."""
    return _sigmoid((t - lo) / edge) * _sigmoid((hi - t) / edge)


def _render(
    size: int,
    z1: np.ndarray,
    z2: np.ndarray,
    shift: np.ndarray,
    body_w: np.ndarray,
    heart_s: np.ndarray,
    rib_phase: np.ndarray,
    blobs: dict[str, np.ndarray],
    field: dict[str, np.ndarray],
    pixel_rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one chunk of ``c`` phantoms and measure their raw opacity score.

    Parameters
    ----------
    size : int
        Image side ``S``.
    z1, z2 : ndarray, shape (c,)
        Opacity amount and lung scale.
    shift : ndarray, shape (c, 2)
        Pose shift (x, y), fractions of ``S``.
    body_w, heart_s, rib_phase : ndarray, shape (c,)
        Body width factor, heart size factor and vertical rib offset.
    blobs : dict of ndarray, shape (c, 2 * blobs_per_lung)
        ``xi``, ``eta``, ``sigma``, ``weight`` of every opacity blob; the first half sits in the
        left lung (as displayed), the second in the right.
    field : dict of ndarray, shape (c, waves)
        ``fx``, ``fy``, ``phase`` of the smooth intensity field.
    pixel_rng : Generator
        Stream of the pixel noise, one ``(S, S)`` draw per sample, in sample order.

    Returns
    -------
    images : ndarray, shape (c, S, S), float32 in [0, 1]
    raw : ndarray, shape (c,)
        Mean intensity of the peripheral minus the central lung zones.
    """
    f32 = np.float32
    c = len(z1)
    g = ((np.arange(size, dtype=f32) + f32(0.5)) / f32(size))
    x = g[None, None, :]  # (1, 1, S)
    y = g[None, :, None]  # (1, S, 1)

    def col(v: np.ndarray) -> np.ndarray:
        return np.asarray(v, dtype=f32)[:, None, None]

    mid = col(0.5 + shift[:, 0])
    dy = col(shift[:, 1])
    d = np.abs(x - mid)  # (c, 1, S)

    # body
    bcx, bcy = _BODY["center"]
    bax, bay = _BODY["semi_axes"]
    rho_b = np.sqrt(((x - (mid + f32(bcx - 0.5))) / (f32(bax) * col(body_w))) ** 2
                    + ((y - (f32(bcy) + dy)) / f32(bay)) ** 2)
    body = _sigmoid((f32(1.0) - rho_b) * f32(bax) / f32(_EDGE))
    img = f32(_BACKGROUND) + f32(_BODY["value"]) * body

    # lungs, with their own coordinates (xi lateral, eta vertical) for blobs and zones
    ax = col(_LUNG["semi_axis_x"] * z2)
    ay = col(_LUNG["semi_axis_y"] * z2)
    cy = f32(_LUNG["apex_y"]) + dy + ay
    eta = (y - cy) / ay  # (c, S, 1)
    half_w = ax * (f32(1.0) + f32(_LUNG["base_widening"]) * eta)  # (c, S, 1)
    lungs = []
    for side in (-1.0, 1.0):
        cx = mid + f32(side) * (f32(_LUNG["medial_gap"]) + ax)
        xi = f32(side) * (x - cx) / half_w  # (c, S, S): 0 centre, 1 outer edge, -1 medial edge
        rho = np.sqrt(xi ** 2 + eta ** 2)
        mask = _sigmoid((f32(1.0) - rho) / f32(_LUNG["edge"]))
        lungs.append((cx, xi, mask))
    lung = lungs[0][2] + lungs[1][2]
    img += f32(_LUNG["value"]) * lung * body

    # mediastinum and heart
    med = _window(d, -1.0, _MEDIASTINUM["half_width"], _MEDIASTINUM["edge"]) \
        * _window(y - dy, *_MEDIASTINUM["y_range"], _MEDIASTINUM["edge"])
    hcx, hcy = _HEART["center"]
    hax, hay = _HEART["semi_axes"]
    rho_h = np.sqrt(((x - (mid + f32(hcx - 0.5))) / (f32(hax) * col(heart_s))) ** 2
                    + ((y - (f32(hcy) + dy)) / (f32(hay) * col(heart_s))) ** 2)
    heart = _sigmoid((f32(1.0) - rho_h) / f32(_HEART["edge"]))
    img += (f32(_MEDIASTINUM["value"]) * med + f32(_HEART["value"]) * heart) * body

    # ribs and clavicles
    c1, c2 = _RIBS["curve"]
    phase = (y - dy - f32(c1) * d - f32(c2) * d ** 2 - col(rib_phase)) / f32(_RIBS["period"])
    ribs = (f32(0.5) + f32(0.5) * np.cos(f32(2 * np.pi) * phase)) ** _RIBS["sharpness"]
    ribs *= _window(y - dy, *_RIBS["y_range"], _RIBS["edge"])
    img += f32(_RIBS["value"]) * ribs * body
    cl = _CLAVICLE
    cl_y = f32(cl["y"]) + dy + f32(cl["curve"]) * (d - f32(cl["d_center"])) ** 2
    clav = np.exp(-0.5 * ((y - cl_y) / f32(cl["width"])) ** 2) * _window(d, *cl["d_range"], cl["edge"])
    img += f32(cl["value"]) * clav * body

    # opacities: Gaussian blobs near the lateral lung edges, inside the lungs
    opac = np.zeros((c, size, size), dtype=f32)
    k = blobs["xi"].shape[1]
    for j in range(k):
        side_i = 0 if j < k // 2 else 1
        side = -1.0 if side_i == 0 else 1.0
        cx = lungs[side_i][0][:, 0, 0]
        e = blobs["eta"][:, j]
        by = _LUNG["apex_y"] + shift[:, 1] + _LUNG["semi_axis_y"] * z2 * (1.0 + e)
        bx = cx + side * blobs["xi"][:, j] * _LUNG["semi_axis_x"] * z2 * (1.0 + _LUNG["base_widening"] * e)
        s2 = col(-0.5 / (blobs["sigma"][:, j] * _LUNG["semi_axis_x"] * z2) ** 2)
        amp = col(_BLOB_VALUE * z1 * blobs["weight"][:, j])
        opac += amp * np.exp(s2 * ((x - col(bx)) ** 2 + (y - col(by)) ** 2))
    img += opac * lung

    # smooth field, pixel noise, clip
    fld = np.ones((c, size, size), dtype=f32)
    for w in range(field["fx"].shape[1]):
        arg = f32(2 * np.pi) * (col(field["fx"][:, w]) * x + col(field["fy"][:, w]) * y) + col(field["phase"][:, w])
        fld += f32(_FIELD["amplitude"]) * np.cos(arg)
    img *= fld
    # one draw per sample (not per chunk), so sample l's noise does not depend on the chunking
    for i in range(c):
        img[i] += pixel_rng.standard_normal((size, size), dtype=f32) * f32(_PIXEL_NOISE)
    np.clip(img, 0.0, 1.0, out=img)

    # measurement: peripheral minus central lung zones (both lungs pooled)
    wp = np.zeros_like(img)
    wc = np.zeros_like(img)
    pe, ce = _PERIPHERAL_ZONE, _CENTRAL_ZONE
    for _, xi, _mask in lungs:
        wp += _window(xi, *pe["xi"], _ZONE_EDGE) * _window(eta, *pe["eta"], _ZONE_EDGE)
        wc += _window(xi, *ce["xi"], _ZONE_EDGE) * _window(eta, *ce["eta"], _ZONE_EDGE)
    mean_p = (img * wp).sum(axis=(1, 2), dtype=np.float64) / wp.sum(axis=(1, 2), dtype=np.float64)
    mean_c = (img * wc).sum(axis=(1, 2), dtype=np.float64) / wc.sum(axis=(1, 2), dtype=np.float64)
    return img, mean_p - mean_c
