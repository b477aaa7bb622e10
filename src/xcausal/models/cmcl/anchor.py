"""The linear anchor of CMCL's latents during the DAG warm-up.

Before training, a linear decomposition of the (flattened, at most 32×32) images gives m
unit-variance sources: varimax-rotated factor analysis ("varimax": each source drives its own group
of pixels) or FastICA ("ica"); "auto" picks varimax when m principal components explain at least
:data:`~xcausal.models.cmcl.config.AUTO_LINEAR_R2` of the pixel variance. During the warm-up the
posterior mean is pulled towards them (the "anchor" loss term). Why: the VAE objective is invariant
to rotations of Gaussian latents, and without an anchor training settles in a rotated, entangled
solution (docs/methods/cmcl.md).
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from xcausal.data.dataset import CrossModalDataset
from xcausal.models.cmcl.config import ANCHOR_WEIGHT, AUTO_LINEAR_R2

if TYPE_CHECKING:
    from xcausal.models.cmcl.estimator import CMCL

logger = logging.getLogger("xcausal.models.cmcl")


def anchor_pixels(x: torch.Tensor) -> torch.Tensor:
    """Images (n, C, H, W) as the flat pixel vectors the anchor (FastICA or varimax) works on (at most 32×32)."""
    if x.shape[-1] > 32:
        x = F.adaptive_avg_pool2d(x, 32)
    return x.reshape(len(x), -1)


def build_anchor(model: CMCL, ds: CrossModalDataset, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(mean, unmixing) such that ``(pixels - mean) @ unmixing`` are the unit-variance sources
    of the anchor: FastICA ("ica") or varimax-rotated factor analysis ("varimax"); "auto"
    picks by :data:`AUTO_LINEAR_R2`. Sets ``anchor_`` (method, linear R², weight)."""
    from sklearn.decomposition import PCA, FactorAnalysis, FastICA

    m = model.net_.latent_dim
    n = len(ds)
    what = f"init='{model.init}'"
    idx = np.arange(n) if n <= 5000 else np.sort(np.random.default_rng(model.seed).choice(n, 5000, replace=False))
    px = torch.cat([anchor_pixels(torch.from_numpy(ds.images(idx[s:s + 512])))
                    for s in range(0, len(idx), 512)]).double().numpy()
    if m >= min(px.shape):
        logger.warning("%s skipped: %d latents but only %d images × %d pixels", what, m, *px.shape)
        return None
    # constant pixels (e.g. MNIST's empty border) make FastICA's whitening return NaN: leave them out
    keep = px.std(0) > 1e-8
    if m >= min(len(px), int(keep.sum())):
        logger.warning("%s skipped: %d latents but only %d non-constant pixels", what, m, int(keep.sum()))
        return None
    mean = px.mean(0)
    r2 = None
    method = model.init
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if method == "auto":
                r2 = float(PCA(m, random_state=model.seed).fit(px[:, keep]).explained_variance_ratio_.sum())
                method = "varimax" if r2 >= AUTO_LINEAR_R2 else "ica"
            if method == "varimax":
                fa = FactorAnalysis(m, rotation="varimax", random_state=model.seed).fit(px[:, keep])
                # FA's factor scores are linear in the pixels: E[f | x] = (x - mean) Psi^-1 L (I + L' Psi^-1 L)^-1
                load = fa.components_  # (m, pixels), rotated
                wl = load / fa.noise_variance_[None, :]
                lin = wl.T @ np.linalg.inv(np.eye(m) + wl @ load.T)
                src = (px[:, keep] - mean[keep]) @ lin
            else:
                ica = FastICA(m, whiten="unit-variance", random_state=model.seed, max_iter=1000, tol=1e-4)
                src = ica.fit_transform(px[:, keep])
                lin = ica.components_.T
        except (ValueError, np.linalg.LinAlgError) as exc:
            logger.warning("%s skipped: the decomposition failed (%s)", what, exc)
            return None
    if not np.isfinite(src).all() or not (src.std(0) > 0).all():
        logger.warning("%s skipped: non-finite or constant sources", what)
        return None
    if any("converge" in str(w.message) for w in caught):
        logger.warning("%s: the decomposition did not converge; using its last estimate", what)
    weight = float(model.init_weight) if model.init_weight is not None else ANCHOR_WEIGHT[method]
    model.anchor_ = {"method": method, "linear_r2": r2, "weight": weight}
    if r2 is None:
        logger.info("anchor: %s, weight %g", method, weight)
    else:
        logger.info("anchor: %s (%d linear components explain %.1f%% of the pixel variance), weight %g",
                    method, m, 100 * r2, weight)
    unmix = np.zeros((px.shape[1], m))
    unmix[keep] = lin / src.std(0)[None, :]
    return (torch.as_tensor(mean, dtype=torch.float32, device=dev),
            torch.as_tensor(unmix, dtype=torch.float32, device=dev))
