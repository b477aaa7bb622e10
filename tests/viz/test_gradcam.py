"""Grad-CAM++ latent heatmaps: known answer, formula, true gradients, no side effects, fitted models, figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from xcausal.data import dataset_from_arrays
from xcausal.models.cmcl import CMCL
from xcausal.models.representation import ICA, BetaVAE
from xcausal.viz.gradcam import (
    _activations_and_gradients,
    _channel_weights,
    gradcam_pp,
    heatmap_figure,
    latent_heatmaps,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# =============================================================================== hand-built networks
class HalvesNet(nn.Module):
    """Latent 0 sees only the left half of the image, latent 1 only the right half (by construction).

    x (n, 1, 16, 16) -> conv 4×4 stride 2 (4 channels, 8×8) -> fixed spatial mask (channels 0, 1
    keep feature columns < 4, i.e. image columns < 8; channels 2, 3 keep the others) -> ReLU
    (the explained layer) -> global mean -> linear head: z0 = p0 - 0.5 p1, z1 = 0.7 p2 + 1.2 p3.
    Positive conv weights on images in [0, 1] make every unmasked activation positive.
    """

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 4, stride=2, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv.weight.copy_(0.2 * torch.randn(self.conv.weight.shape, generator=gen).abs())
            self.conv.bias.fill_(0.1)
            self.head.weight.copy_(torch.tensor([[1.0, -0.5, 0.0, 0.0], [0.0, 0.0, 0.7, 1.2]]))
            self.head.bias.zero_()
        mask = torch.zeros(1, 4, 1, 8)
        mask[:, :2, :, :4] = 1.0
        mask[:, 2:, :, 4:] = 1.0
        self.register_buffer("mask", mask)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) * self.mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class SmallNet(nn.Module):
    """A generic encoder with batch norm and dropout (so train mode would change results and state)."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.conv = nn.Conv2d(1, 3, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(3, 4, 3)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(4 * 2 * 2, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            self.bn.running_mean.fill_(0.1)
            self.bn.running_var.fill_(0.9)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def rest(self, a: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.tanh(self.conv2(a)).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(self.features(x))


def rand_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


# =============================================================================== known answer
@pytest.mark.parametrize("sign", [1, -1])
def test_left_latent_lights_left_half_and_right_latent_right_half(sign):
    net = HalvesNet().eval()
    x = rand_images(6, 16)
    W = x.shape[-1]
    for target, side in ((0, "left"), (1, "right")):
        if target == 1 and sign == -1:
            continue  # z1 has only positive weights: -z1 has no supporting activation (tested below)
        heat = gradcam_pp(net, net.act, x, target, sign=sign)
        assert heat.shape == (6, 16, 16) and np.isfinite(heat).all()
        assert heat.min() >= 0 and np.allclose(heat.max(axis=(1, 2)), 1.0)
        left = heat[:, :, : W // 2].sum(axis=(1, 2)) / heat.sum(axis=(1, 2))
        if side == "left":
            assert left.min() >= 0.95, left
            assert np.all(heat[:, :, W // 2 + 1:] == 0)  # bilinear upsampling leaks into the seam column only
        else:
            assert left.max() <= 0.05, left
            assert np.all(heat[:, :, : W // 2 - 1] == 0)


def test_sign_selects_the_channels_that_raise_the_score():
    net = HalvesNet().eval()
    x = rand_images(4, 16)
    act, grad, _ = _activations_and_gradients(net, net.act, x, 0, 1)
    w_pos = _channel_weights(act, grad)
    act, grad, _ = _activations_and_gradients(net, net.act, x, 0, -1)
    w_neg = _channel_weights(act, grad)
    # z0 = p0 - 0.5 p1: +z0 is explained by channel 0 only, -z0 by channel 1 only
    assert (w_pos[:, 0] > 0).all() and (w_pos[:, 1:] == 0).all()
    assert (w_neg[:, 1] > 0).all() and (w_neg[:, [0, 2, 3]] == 0).all()
    # nothing raises -z1 (positive weights on positive activations): an all-zero map, not NaN
    heat = gradcam_pp(net, net.act, x, 1, sign=-1)
    assert np.array_equal(heat, np.zeros_like(heat))


# =============================================================================== the formula
def test_weights_equal_the_exponential_derivation_with_autograd_derivatives():
    """Eq. 10 of the paper with the true 1st-3rd derivatives of Y = exp(s), taken by autograd, on a
    piecewise-linear s: alpha = Y'' / (2 Y'' + Σ_ab A_ab Y'''), w = Σ alpha relu(Y'). Our closed
    form uses g = ∂s/∂A only; the two must agree up to the factor exp(s) on w."""
    gen = torch.Generator().manual_seed(3)
    A = torch.rand(1, 2, 3, 3, generator=gen, dtype=torch.float64)
    c = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64)
    v = torch.tensor([0.8, -0.6], dtype=torch.float64)

    def score(a: torch.Tensor) -> torch.Tensor:  # piecewise linear in A, mixed-sign gradients
        return (v[None, :, None, None] * torch.relu(c * a + 0.2)).sum() * 0.5

    a = A.clone().requires_grad_(True)
    Y = torch.exp(score(a))
    (d1,) = torch.autograd.grad(Y, a, create_graph=True)
    d2 = torch.zeros_like(A)
    d3 = torch.zeros_like(A)
    for idx in np.ndindex(*A.shape):  # diagonal 2nd and 3rd derivatives, one entry at a time
        (h,) = torch.autograd.grad(d1[idx], a, create_graph=True)
        d2[idx] = h[idx]
        (t,) = torch.autograd.grad(h[idx], a, retain_graph=True)
        d3[idx] = t[idx]
    alpha = d2 / (2 * d2 + A.sum(dim=(2, 3), keepdim=True) * d3)
    alpha = torch.where(d2 == 0, torch.zeros_like(alpha), alpha)
    w_paper = (alpha * torch.relu(d1.detach())).sum(dim=(2, 3))

    a1 = A.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(score(a1), a1)
    w_ours = _channel_weights(A, g)
    assert (w_ours > 0).all()  # both channels have positions with positive gradient
    torch.testing.assert_close(w_paper / torch.exp(score(A)).item(), w_ours, rtol=1e-10, atol=1e-12)


def test_weights_match_pytorch_grad_cam_transcription():
    """pytorch-grad-cam's GradCAMPlusPlus.get_cam_weights (eq. 19), transcribed in numpy."""
    rng = np.random.default_rng(0)
    acts = rng.random((3, 5, 4, 4))
    grads = rng.normal(size=(3, 5, 4, 4))
    grads[np.abs(grads) < 0.1] = 0.0  # zeros exercise the g = 0 branch; |g| >= 0.1 keeps their eps negligible
    g2 = grads ** 2
    g3 = g2 * grads
    aij = g2 / (2 * g2 + acts.sum(axis=(2, 3))[:, :, None, None] * g3 + 1e-6)
    aij = np.where(grads != 0, aij, 0)
    ref = (np.maximum(grads, 0) * aij).sum(axis=(2, 3))
    ours = _channel_weights(torch.from_numpy(acts), torch.from_numpy(grads)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-9)  # their eps = 1e-6 in the denominator


# =============================================================================== true gradients
def test_captured_gradient_is_the_true_gradient():
    net = SmallNet().double().eval()
    x = rand_images(5, 8).double()
    act, grad, s = _activations_and_gradients(net, net.act, x, 1, -1)
    # the same graph built by hand: autograd.grad of the score w.r.t. the layer's output tensor
    xx = x.clone().requires_grad_(True)
    a = net.features(xx)
    score = -net.rest(a)[:, 1]
    (ref,) = torch.autograd.grad(score.sum(), a)
    torch.testing.assert_close(act, a.detach(), rtol=0, atol=0)
    torch.testing.assert_close(s, score.detach(), rtol=0, atol=0)
    torch.testing.assert_close(grad, ref, rtol=1e-12, atol=1e-14)
    # and central finite differences on a few entries (per image: the images do not interact in eval mode)
    eps = 1e-6
    for idx in [(0, 0, 1, 1), (2, 1, 3, 0), (4, 2, 2, 3)]:
        ap, am = a.detach().clone(), a.detach().clone()
        ap[idx] += eps
        am[idx] -= eps
        with torch.no_grad():
            fd = (-net.rest(ap)[idx[0], 1] + net.rest(am)[idx[0], 1]) / (2 * eps)
        assert abs(float(fd) - float(grad[idx])) < 1e-7, (idx, float(fd), float(grad[idx]))
    assert grad.abs().sum() > 0


# =============================================================================== no side effects
def _state(net: nn.Module):
    return ({n: m.training for n, m in net.named_modules()},
            {n: (p.requires_grad, None if p.grad is None else p.grad.clone()) for n, p in net.named_parameters()},
            {n: b.clone() for n, b in net.named_buffers()})


def _assert_same_state(net: nn.Module, before) -> None:
    modes, params, buffers = _state(net)
    assert modes == before[0]
    assert {n: rg for n, (rg, _) in params.items()} == {n: rg for n, (rg, _) in before[1].items()}
    for n, (_, g) in params.items():  # .grad untouched (None, or what training left there)
        g0 = before[1][n][1]
        assert (g is None and g0 is None) or (g is not None and g0 is not None and torch.equal(g, g0)), n
    for n, b in buffers.items():
        assert torch.equal(b, before[2][n]), n
    for m in net.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks


def test_no_side_effects_and_train_mode_is_restored():
    net = SmallNet()
    net.train()
    net.drop.eval()  # mixed flags must come back as they were
    net.conv.weight.requires_grad_(False)  # frozen parameters too
    before = _state(net)
    x = rand_images(4, 8)
    x0 = x.clone()
    h1 = gradcam_pp(net, net.act, x, 0)
    _assert_same_state(net, before)
    assert torch.equal(x, x0) and not x.requires_grad
    # eval mode inside the call: dropout and batch statistics off, so the result is deterministic
    h2 = gradcam_pp(net, net.act, x, 0)
    np.testing.assert_array_equal(h1, h2)
    # a plain callable: modes are the caller's business, `model=` hands them over
    h3 = gradcam_pp(lambda t: net(t), net.act, x, 0, model=net)
    np.testing.assert_array_equal(h1, h3)
    _assert_same_state(net, before)
    # also under no_grad / inference mode of the caller
    with torch.inference_mode():
        h4 = gradcam_pp(net, net.act, x, 0)
    np.testing.assert_array_equal(h1, h4)
    _assert_same_state(net, before)


def test_hooks_removed_and_modes_restored_after_an_error_inside_forward():
    net = SmallNet().train()
    before = _state(net)

    def broken(t: torch.Tensor) -> torch.Tensor:
        net.features(t)  # the hooked layer has run
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        gradcam_pp(broken, net.act, rand_images(2, 8), 0, model=net)
    _assert_same_state(net, before)
    assert not net.act._forward_hooks


@pytest.mark.parametrize("kwargs, match", [
    (dict(target=2), "target=2: forward has 2 outputs"),
    (dict(target=0, sign=0), "sign=0"),
    (dict(target=0, layer="unused"), "ran 0 times"),
])
def test_bad_arguments_fail_loudly(kwargs, match):
    net = HalvesNet().eval()
    layer = nn.ReLU() if kwargs.pop("layer", None) else net.act
    with pytest.raises(ValueError, match=match):
        gradcam_pp(net, layer, rand_images(2, 16), **kwargs)
    assert not layer._forward_hooks and not net.act._forward_hooks
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        gradcam_pp(net, net.act, torch.rand(16, 16), 0)


# =============================================================================== fitted models
def tiny_dataset(n: int = 32, size: int = 8, seed: int = 0):
    """Left-half brightness follows a, right-half brightness follows b."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.integers(0, 2, n)
    img = np.full((n, 1, size, size), 0.2, dtype=np.float32)
    img[:, 0, :, : size // 2] += 0.6 / (1 + np.exp(-a))[:, None, None]
    img[:, 0, :, size // 2:] += 0.3 * b[:, None, None]
    img += 0.05 * rng.random(img.shape).astype(np.float32)
    return dataset_from_arrays(np.clip(img, 0, 1), pd.DataFrame({"a": a, "b": b}))


FAST = dict(latent_dim=2, epochs=2, batch_size=16, device="cpu")


@pytest.fixture(scope="module")
def ds():
    return tiny_dataset()


@pytest.fixture(scope="module")
def cmcl(ds):
    return CMCL(**FAST).fit(ds)


@pytest.fixture(scope="module")
def betavae(ds):
    return BetaVAE(**FAST).fit(ds)


@pytest.mark.parametrize("which", ["cmcl", "betavae"])
def test_latent_heatmaps_of_fitted_models(which, request, ds):
    model = request.getfixturevalue(which)
    net = model.net_
    net.train()  # whatever the mode, it comes back
    before = _state(net)
    rows = [0, 3, 5, 7, 11]
    images, heat = latent_heatmaps(model, ds, "z2", rows=rows, batch_size=2)
    assert images.shape == (5, 1, 8, 8) and heat.shape == (5, 8, 8)
    np.testing.assert_array_equal(images, ds.images(np.array(rows)))
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    _assert_same_state(net, before)
    # the index form and one big batch give the same maps
    _, heat_idx = latent_heatmaps(model, ds, 1, rows=rows)
    np.testing.assert_allclose(heat_idx, heat, atol=1e-6)
    with pytest.raises(ValueError, match="z1, z2"):
        latent_heatmaps(model, ds, "z9", rows=rows)
    with pytest.raises(ValueError, match="z1, z2"):
        latent_heatmaps(model, ds, 2, rows=rows)
    with pytest.raises(ValueError, match=r"rows \[40\]"):
        latent_heatmaps(model, ds, "z1", rows=[0, 40])


def test_latent_heatmaps_rejects_models_without_a_conv_encoder(ds):
    with pytest.raises(ValueError, match="got ICA"):
        latent_heatmaps(ICA(latent_dim=2), ds, "z1", rows=[0])
    with pytest.raises(ValueError, match="not fitted"):
        latent_heatmaps(CMCL(**FAST), ds, "z1", rows=[0])


# =============================================================================== figure
@pytest.mark.parametrize("channels", [1, 3])
def test_heatmap_figure_writes_one_png_atomically(tmp_path, channels):
    rng = np.random.default_rng(0)
    images = rng.random((3, channels, 8, 8))
    heat = rng.random((3, 8, 8))
    out = heatmap_figure(images, heat, tmp_path / "fig" / "z1.png", titles=["a", "b", "c"], title="z1")
    assert out == tmp_path / "fig" / "z1.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "fig").iterdir()] == ["z1.png"]


def test_heatmap_figure_leaves_nothing_on_error(tmp_path):
    images = np.zeros((2, 1, 8, 8))
    with pytest.raises(ValueError):
        heatmap_figure(images, np.zeros((2, 8, 8)), tmp_path / "z1.notaformat")
    with pytest.raises(ValueError, match="heat must be"):
        heatmap_figure(images, np.zeros((2, 4, 4)), tmp_path / "z1.png")
    with pytest.raises(ValueError, match="titles"):
        heatmap_figure(images, np.zeros((2, 8, 8)), tmp_path / "z1.png", titles=["a"])
    assert list(tmp_path.iterdir()) == []
