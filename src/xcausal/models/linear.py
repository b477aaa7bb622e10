"""Linear ICA of the pixels as a representation learner (``method`` name ``ica``).

Not in the CMCL paper. It is here because it is the first thing to try and, on the paper's own
simulator, a hard baseline: the Appendix-E generator writes each latent into its own image cell,
so the pixels are close to a linear mixture of independent, non-Gaussian (monotone-warped)
sources, which is what FastICA assumes. Pipelines ``ica+notears`` / ``ica+ges`` use it
like any other representation learner (same interface as :mod:`xcausal.models.representation`).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from xcausal import __version__
from xcausal.data.dataset import CrossModalDataset

__all__ = ["ICA"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_SIDE = 32
"""Images larger than this are average-pooled to MAX_SIDE × MAX_SIDE before the ICA."""


def _pixels(x: np.ndarray) -> np.ndarray:
    """(n, C, H, W) images → (n, P) float64 pixel rows (pooled to at most 32×32)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if t.shape[-1] > MAX_SIDE:
        t = F.adaptive_avg_pool2d(t, MAX_SIDE)
    return t.reshape(len(t), -1).double().numpy()


class ICA:
    """FastICA of the flattened images; latents are the unit-variance sources.

    Parameters (keyword-only)
    ----------
    latent_dim : int or None
        Number of sources m. None: :func:`xcausal.models.cmcl.default_latent_dim` of the number of
        variables (8 when the table has none).
    max_samples : int
        At most this many images (a seeded subsample) are used to fit the unmixing.
    max_iter, tol : FastICA's.
    seed : int
    epochs, batch_size, lr, device, progress : accepted for interface compatibility with the
        neural representation learners; unused.
    """

    method_name = "ica"

    def __init__(self, *, latent_dim: int | None = None, max_samples: int = 5000, max_iter: int = 1000,
                 tol: float = 1e-4, seed: int = 0, epochs: int | None = None, batch_size: int = 64,
                 lr: float = 1e-3, device: str = "auto", progress: bool = False) -> None:
        self.latent_dim = latent_dim
        self.max_samples = max_samples
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.progress = progress

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("latent_dim", "max_samples", "max_iter", "tol", "seed", "epochs",
                                               "batch_size", "lr", "device", "progress")}

    def fit(self, ds: CrossModalDataset) -> "ICA":
        """Fit the unmixing on (a subsample of) the images; returns self."""
        from sklearn.decomposition import FastICA

        from xcausal.models.cmcl import default_latent_dim

        if self.latent_dim is not None and self.latent_dim < 1:
            raise ValueError(f"latent_dim={self.latent_dim}: must be at least 1")
        m = self.latent_dim or (default_latent_dim(len(ds.variables)) if ds.variables else 8)
        n = len(ds)
        idx = np.arange(n) if n <= self.max_samples else np.sort(
            np.random.default_rng(self.seed).choice(n, self.max_samples, replace=False))
        px = np.concatenate([_pixels(ds.images(idx[s:s + 512])) for s in range(0, len(idx), 512)])
        if m >= min(px.shape):
            raise ValueError(f"{ds.source}: latent_dim={m} needs more than {m} images and pixels "
                             f"(have {px.shape[0]} × {px.shape[1]})")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ica = FastICA(m, whiten="unit-variance", random_state=self.seed, max_iter=self.max_iter, tol=self.tol)
            src = ica.fit_transform(px)
        converged = not any("converge" in str(w.message) for w in caught)
        if not converged:
            logger.warning("FastICA did not converge in %d iterations; using its last estimate", self.max_iter)
        scale = src.std(0)
        self.mean_ = ica.mean_.copy()
        self.unmixing_ = ica.components_.T / scale[None, :]  # (P, m): (pixels - mean) @ unmixing = sources
        self.mixing_ = ica.mixing_ * scale[None, :]  # (P, m): sources @ mixing.T + mean ≈ pixels
        self.n_latents_ = m
        self.image_size_ = ds.image_size
        self.channels_ = ds.channels
        self.history_ = pd.DataFrame([{"epoch": 1, "n_iter": int(ica.n_iter_), "converged": converged}])
        return self

    def _check(self, ds: CrossModalDataset) -> None:
        if not hasattr(self, "unmixing_"):
            raise ValueError("this ICA instance is not fitted yet; call fit(dataset) first")
        if (ds.channels, ds.image_size) != (self.channels_, self.image_size_):
            raise ValueError(f"{ds.source}: images are {ds.channels}×{ds.image_size}² but the model was fitted on "
                             f"{self.channels_}×{self.image_size_}²")

    def transform(self, ds: CrossModalDataset, *, batch_size: int = 512) -> np.ndarray:
        """Sources (N, m) in table order."""
        self._check(ds)
        out = [(_pixels(ds.images(range(s, min(len(ds), s + batch_size)))) - self.mean_) @ self.unmixing_
               for s in range(0, len(ds), batch_size)]
        return np.concatenate(out).astype(np.float64)

    def reconstruct(self, ds: CrossModalDataset, rows=None) -> np.ndarray:
        """Images rebuilt from the sources, (n, C, H', W') with H' = min(H, 32), clipped to [0, 1]."""
        self._check(ds)
        rows = list(range(len(ds))) if rows is None else list(rows)
        px = _pixels(ds.images(rows))
        rec = ((px - self.mean_) @ self.unmixing_) @ self.mixing_.T + self.mean_
        side = min(self.image_size_, MAX_SIDE)
        return np.clip(rec, 0, 1).reshape(len(rows), self.channels_, side, side).astype(np.float32)

    def save(self, path: str | Path) -> None:
        """``path``: tensors only (weights_only loadable); ``path.json``: the config."""
        if not hasattr(self, "unmixing_"):
            raise ValueError("this ICA instance is not fitted yet; call fit(dataset) first")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)  # like the CLI's run directory
        torch.save({"mean": torch.from_numpy(self.mean_), "unmixing": torch.from_numpy(self.unmixing_),
                    "mixing": torch.from_numpy(self.mixing_)}, path)
        meta = {"format": FORMAT_VERSION, "method": self.method_name, "xcausal_version": __version__,
                "params": self.get_params(), "n_latents": self.n_latents_, "image_size": self.image_size_,
                "channels": self.channels_, "history": self.history_.to_dict(orient="records")}
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> "ICA":
        from xcausal.io import checkpoint_errors, read_checkpoint_meta

        path = Path(path)
        meta = read_checkpoint_meta(path, cls.method_name, FORMAT_VERSION)
        with checkpoint_errors(path):
            obj = cls(**{**meta["params"], "device": device})
            state = torch.load(path, map_location="cpu", weights_only=True)
            obj.mean_ = state["mean"].numpy()
            obj.unmixing_ = state["unmixing"].numpy()
            obj.mixing_ = state["mixing"].numpy()
            obj.n_latents_ = meta["n_latents"]
            obj.image_size_ = meta["image_size"]
            obj.channels_ = meta["channels"]
            obj.history_ = pd.DataFrame(meta["history"])
            return obj
