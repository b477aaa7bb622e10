"""Grad-CAM++ heatmaps of where a latent lives in the image (CMCL paper, Figure 5).

Grad-CAM++ (Chattopadhay et al. 2018, "Grad-CAM++: Improved Visual Explanations for Deep
Convolutional Networks", WACV) explains a scalar score s by the activation maps A_k (k =
channels) of a convolutional layer::

    g      = ∂s / ∂A                                   (n, K, h, w)
    alpha  = g² / (2 g² + Σ_ab A_ab · g³)               per position (eq. 19; 0 where the
                                                       denominator is 0, as in the reference code)
    w_k    = Σ_ij alpha_ij · relu(g_ij)                 per channel
    cam    = relu(Σ_k w_k A_k)                          (n, h, w)

then upsampled bilinearly to the input size and min-max normalised to [0, 1] per image (an
all-constant map, e.g. a score that no activation increases, becomes all zeros).

The closed form for alpha comes from the paper's "exponential output" assumption: the explained
output is Y = exp(s), and for a piecewise-linear network (ReLU) the k-th derivative of Y with
respect to A is exp(s) · g^k. The reference implementation (adityac94/Grad_CAM_plus_plus,
``misc/utils.py``) computes exactly those: ``exp(cost) * grad``, ``exp(cost) * grad**2``,
``exp(cost) * grad**3`` with ``grad`` the gradient of the raw score. In alpha the common factor
exp(s) cancels, and in w_k it is one positive factor per image, which the per-image
normalisation removes. So this module uses g = ∂s/∂A directly and never evaluates exp(s) (which
overflows float32 for s > 88). Feeding ∂exp(s)/∂A = exp(s)·g into the alpha formula instead would
put an extra exp(s) on the Σ A·g³ term, which is not the paper's derivation. Two further choices:
the reference code also divides alpha by its sum over positions, which the paper's eq. 19 does
not (nor does pytorch-grad-cam); we follow the paper. The formula assumes A ≥ 0, so hook the
rectified output of a convolution (the ReLU after it): :func:`latent_heatmaps` does.

The explained score is s = sign · z_j, with z_j the posterior mean of latent j. The sign of a
learned latent is arbitrary (flipping z_j and every weight that reads it leaves the objective
unchanged: a standard-normal prior, or the DAG's first layer, absorbs the flip), and Grad-CAM++
only credits activations that *increase* s (relu(g)): ``sign=-1`` shows where the image pushes
the latent down instead.

pytorch-grad-cam needs torchvision, which xcausal does not depend on, and captum has no
Grad-CAM++, hence this short implementation with a forward hook.
"""

from __future__ import annotations

import logging
import numbers
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["gradcam_pp", "latent_heatmaps", "heatmap_figure"]

logger = logging.getLogger(__name__)


# =============================================================================== core
def _check_sign(sign: int) -> int:
    if isinstance(sign, bool) or sign not in (1, -1):
        raise ValueError(f"sign={sign!r}: must be +1 or -1")
    return int(sign)


def _activations_and_gradients(forward: Callable[[torch.Tensor], torch.Tensor], layer: nn.Module,
                               images: torch.Tensor, target: int, sign: int
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``forward`` once with a hook on ``layer``; return (A, ∂s/∂A, s), s = sign · out[:, target].

    A and its gradient are (n, K, h, w); s is (n,). The hook replaces the layer's output by a
    detached copy that requires grad, so the gradient is taken with respect to exactly that tensor
    (no gradients reach the parameters or the images, and frozen parameters do not matter). The
    per-image gradients come from one ``autograd.grad`` of Σ_i s_i, valid when the images do not
    interact (eval mode: no batch statistics). The hook is removed even if ``forward`` raises.
    """
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"layer {type(layer).__name__} returned {type(output).__name__}, not a tensor")
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()  # downstream in-place ops then never touch the captured leaf

    handle = layer.register_forward_hook(hook)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            out = forward(images.detach().clone())
            if len(captured) != 1:
                raise ValueError(f"layer {type(layer).__name__} ran {len(captured)} times during forward; "
                                 "Grad-CAM++ needs exactly one call (is it part of the forward pass?)")
            if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != images.shape[0]:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(f"forward must return (n, m) = ({images.shape[0]}, m) outputs, got {shape}")
            if not 0 <= target < out.shape[1]:
                raise ValueError(f"target={target}: forward has {out.shape[1]} outputs (0..{out.shape[1] - 1})")
            act = captured[0]
            if act.ndim != 4:
                raise ValueError(f"layer {type(layer).__name__} output has shape {tuple(act.shape)}; "
                                 "Grad-CAM++ needs a (n, K, h, w) feature map")
            score = sign * out[:, target]
            (grad,) = torch.autograd.grad(score.sum(), act, allow_unused=True)
            if grad is None:  # the target does not depend on this layer at all
                grad = torch.zeros_like(act)
    finally:
        handle.remove()
    return act.detach(), grad.detach(), score.detach()


def _channel_weights(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights w (n, K) from activations A and gradients g = ∂s/∂A (n, K, h, w).

    alpha = g² / (2 g² + Σ_ab A_ab g³) (0 where the denominator is 0), w = Σ_ij alpha · relu(g),
    computed in float64 (g³ of small gradients underflows float32).
    """
    a = act.double()
    g = grad.double()
    g2 = g * g
    g3 = g2 * g
    denom = 2.0 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3
    ok = denom != 0
    alpha = torch.where(ok, g2 / torch.where(ok, denom, torch.ones_like(denom)), torch.zeros_like(denom))
    return (alpha * torch.relu(g)).sum(dim=(2, 3))


def _cam_from(act: torch.Tensor, grad: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Grad-CAM++ map (n, H, W) in [0, 1] from activations and gradients (n, K, h, w), in float64."""
    weights = _channel_weights(act, grad)  # (n, K)
    cam = torch.relu((weights[:, :, None, None] * act.double()).sum(dim=1))  # (n, h, w)
    cam = F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = cam.amin(dim=(1, 2), keepdim=True)
    span = cam.amax(dim=(1, 2), keepdim=True) - lo
    return torch.where(span > 0, (cam - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(cam))


def _module_states(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(m, m.training) for m in model.modules()]


def gradcam_pp(forward: Callable[[torch.Tensor], torch.Tensor], layer: nn.Module, images: torch.Tensor,
               target: int, *, sign: int = 1, model: nn.Module | None = None) -> np.ndarray:
    """Grad-CAM++ of output ``target`` of ``forward`` with respect to the output of ``layer``.

    Parameters
    ----------
    forward : callable
        ``forward(images) -> (n, m)`` tensor; must run ``layer`` exactly once.
    layer : nn.Module
        The module whose output (n, K, h, w) is the explained feature map. The formula assumes
        non-negative activations: pass the ReLU after the last convolution.
    images : Tensor (n, C, H, W)
        Inputs (not modified).
    target : int
        Column of the output to explain, 0-based.
    sign : +1 or -1
        The explained score is ``sign * forward(images)[:, target]`` (see the module docstring).
    model : nn.Module, optional
        Put in eval mode for the call (every submodule's train/eval flag is restored afterwards,
        also on error). Default: ``forward`` itself when it is a module; otherwise the caller is
        responsible for eval mode (batch statistics would couple the images' gradients).

    Returns
    -------
    ndarray (n, H, W), float64 in [0, 1]
        One map per image, upsampled bilinearly to the input size, min-max normalised per image.

    Nothing global is changed: the hook is removed, parameters' ``requires_grad`` and ``.grad``
    are untouched, no gradient reaches the parameters.
    """
    sign = _check_sign(sign)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be an (n, C, H, W) tensor, got {shape}")
    if isinstance(target, bool) or not isinstance(target, numbers.Integral):
        raise ValueError(f"target={target!r}: must be an integer output index")
    if model is None and isinstance(forward, nn.Module):
        model = forward
    states = _module_states(model) if model is not None else []
    try:
        if model is not None:
            model.eval()
        act, grad, _ = _activations_and_gradients(forward, layer, images, int(target), sign)
    finally:
        for m, training in states:
            m.training = training
    return _cam_from(act, grad, (images.shape[2], images.shape[3])).cpu().numpy()


# =============================================================================== fitted models
def _last_conv_activation(features: nn.Sequential) -> nn.Module:
    """The module after the last Conv2d of ``features`` if it is a ReLU (the rectified map), else the conv."""
    mods = list(features)
    convs = [i for i, m in enumerate(mods) if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the encoder has no Conv2d layer")
    i = convs[-1]
    if i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU):
        return mods[i + 1]
    return mods[i]


def _latent_index(latent: str | int, m: int) -> int:
    names = [f"z{j + 1}" for j in range(m)]
    if isinstance(latent, str) and latent in names:
        return names.index(latent)
    if isinstance(latent, numbers.Integral) and not isinstance(latent, bool) and 0 <= int(latent) < m:
        return int(latent)
    raise ValueError(f"latent {latent!r}: the model's latents are {', '.join(names)} (or an index 0..{m - 1})")


def _encoder_parts(model: Any, ds: Any) -> tuple[nn.Module, nn.Module, int, Callable[[np.ndarray], tuple]]:
    """(network, hooked layer, number of latents, rows -> (x, forward)) for a fitted model."""
    from xcausal.models.cmcl import CMCL
    from xcausal.models.pipeline import Pipeline
    from xcausal.models.representation import _ConvVAEBase

    if isinstance(model, Pipeline):
        model._check_fitted()
        model = model.rep_
    if isinstance(model, CMCL):
        model._check_fitted()
        model._check_compatible(ds)
        net = model.net_
        enc = model.encoding_

        def batch(idx: np.ndarray):
            x, u = model._tensors(ds, idx)
            u_net = enc.net_columns(u)
            return x, lambda xx: net.encode(xx, u_net, sample=False)["muq"]

        return net, _last_conv_activation(net.enc0.features), int(model.n_latents_), batch
    if isinstance(model, _ConvVAEBase):
        model._check(ds)
        net = model.net_

        def batch(idx: np.ndarray):
            x, u = model._tensors(ds, idx, model.device_)
            return x, lambda xx: net.encode(xx, u)[0]

        return net, _last_conv_activation(net.features), int(model.n_latents_), batch
    raise ValueError(f"latent heatmaps need a fitted CMCL, a conv VAE representation (BetaVAE, FactorVAE, TCVAE, "
                     f"IVAE) or a Pipeline over one; got {type(model).__name__}")


def latent_heatmaps(model: Any, ds: Any, latent: str | int, *, rows: Sequence[int], sign: int = 1,
                    batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM++ of one latent's posterior mean over the given images of ``ds``.

    Parameters
    ----------
    model : fitted :class:`xcausal.models.cmcl.CMCL`, conv VAE from
        :mod:`xcausal.models.representation` (BetaVAE, FactorVAE, TCVAE, IVAE) or a
        :class:`xcausal.models.pipeline.Pipeline` over one.
    ds : CrossModalDataset
        Data with the fitted model's variables and image size.
    latent : "z1".."zm" (the graph's names) or a 0-based index.
    rows : sequence of int
        Table rows to explain.
    sign : +1 or -1
        Explain ``sign * z_j`` (a latent's sign is arbitrary).
    batch_size : int
        Images per forward/backward pass.

    Returns
    -------
    images : ndarray (n, C, H, W), float32 in [0, 1]
    heat : ndarray (n, H, W), float64 in [0, 1]

    The explained layer is the ReLU after the last convolution of the image encoder (CMCL: the
    embedding encoder ``net_.enc0``, whose z0 feeds the causal posterior q(z | z0); the baselines:
    ``net_.features``). The model's train/eval flags are restored afterwards.
    """
    sign = _check_sign(sign)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be a positive integer")
    net, layer, m, batch = _encoder_parts(model, ds)
    j = _latent_index(latent, m)
    idx = np.asarray(list(rows), dtype=np.int64)
    if idx.ndim != 1 or len(idx) == 0:
        raise ValueError("rows: give at least one row index")
    bad = idx[(idx < 0) | (idx >= len(ds))]
    if len(bad):
        raise ValueError(f"rows {bad.tolist()}: out of range for {len(ds)} samples")
    images, heat = [], []
    for s in range(0, len(idx), batch_size):
        x, forward = batch(idx[s:s + batch_size])
        heat.append(gradcam_pp(forward, layer, x, j, sign=sign, model=net))
        images.append(x.detach().cpu().numpy())
    return np.concatenate(images).astype(np.float32), np.concatenate(heat)


# =============================================================================== figure
def heatmap_figure(images: np.ndarray, heat: np.ndarray, out_path: str | Path, *,
                   titles: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Inputs (top row) and their heatmap overlays (bottom row), written atomically to ``out_path``.

    Parameters
    ----------
    images : ndarray (n, C, H, W), C = 1 (grey) or 3 (RGB), values in [0, 1].
    heat : ndarray (n, H, W), values in [0, 1] (e.g. from :func:`latent_heatmaps`).
    out_path : file to write; its suffix sets the format (png, pdf, svg...). Parent folders are
        created. The figure is saved to a temporary file in the same folder, then renamed.
    titles : one per column, optional. title : figure title, optional.

    Uses matplotlib's object API with the Agg canvas directly: no pyplot state, no backend switch.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = np.asarray(images, dtype=np.float64)
    heat = np.asarray(heat, dtype=np.float64)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
        raise ValueError(f"images must be (n, C, H, W) with n >= 1 and C in (1, 3), got {images.shape}")
    n, _, h, w = images.shape
    if heat.shape != (n, h, w):
        raise ValueError(f"heat must be (n, H, W) = {(n, h, w)} to match the images, got {heat.shape}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles: {len(titles)} given for {n} images")
    out_path = Path(out_path)
    fmt = out_path.suffix[1:].lower() or "png"

    fig = Figure(figsize=(1.3 * n + 0.4, 2.8 + (0.3 if title else 0)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        img = np.clip(images[i], 0, 1)
        show = dict(cmap="gray", vmin=0, vmax=1) if img.shape[0] == 1 else {}
        pic = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
        axes[0, i].imshow(pic, interpolation="nearest", **show)
        axes[1, i].imshow(pic, interpolation="nearest", **show)
        axes[1, i].imshow(np.clip(heat[i], 0, 1), cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=7)
    axes[0, 0].set_ylabel("input", fontsize=7)
    axes[1, 0].set_ylabel("Grad-CAM++", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()

    out_path.parent.mkdir(parents=True, exist_ok=True)
    # a named temporary in the same folder (so os.replace is atomic), created with the umask's
    # permissions (tempfile.mkstemp would leave the figure readable by its owner only)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fig.savefig(fh, format=fmt, dpi=110)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("wrote %s", out_path)
    return out_path
