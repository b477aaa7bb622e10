"""Building blocks: MLPs and conv encoders/decoders whose depth follows the image size.

Channel plans follow CMCL Appendix D.3, read as one entry per resolution stage (two 3×3 convs
per stage, the second with stride 2): synthetic data "16/16/32/32/64/64" -> (16, 32, 64); MNIST
"32/32/64/64/256/256" -> (32, 64, 256); X-ray "32/32/64/64/256/256/512/512" -> (32, 64, 256, 512).
The number of stages is chosen so the bottleneck is about 4×4: log2(size / 4) stages (at least
1); a plan shorter than that repeats its last entry, a longer one is truncated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MLP", "ConvEncoder", "ConvDecoder", "PoseDecoder", "POSE_LATENTS", "CHANNEL_PLANS", "channel_plan", "n_stages"]

CHANNEL_PLANS: dict[str, tuple[int, ...]] = {
    "synthetic": (16, 32, 64),
    "mnist": (32, 64, 256),
    "xray": (32, 64, 256, 512),
}


def n_stages(image_size: int) -> int:
    """Down-sampling stages that bring ``image_size`` to about 4 pixels."""
    return max(1, int(round(math.log2(max(image_size, 4) / 4))))


def channel_plan(plan: str | Sequence[int], image_size: int) -> tuple[int, ...]:
    if isinstance(plan, str) and plan not in CHANNEL_PLANS:
        raise ValueError(f"unknown channel plan '{plan}' (known: {', '.join(CHANNEL_PLANS)})")
    base = CHANNEL_PLANS[plan] if isinstance(plan, str) else tuple(int(c) for c in plan)
    if not base or min(base) < 1:
        raise ValueError(f"channel plan {base}: needs positive channel counts")
    k = n_stages(image_size)
    return tuple(base[i] if i < len(base) else base[-1] for i in range(k))


class MLP(nn.Sequential):
    """Fully connected network ``in -> hidden... -> out`` with ReLU (or given) activations."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (50, 50, 50),
                 activation: type[nn.Module] = nn.ReLU) -> None:
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), activation()]
            d = h
        layers.append(nn.Linear(d, out_dim))
        super().__init__(*layers)


class ConvEncoder(nn.Module):
    """x (N, C, S, S) -> (mu, logvar), each (N, latent_dim).

    ``convs_per_stage=1`` (default): one 4×4 stride-2 conv per stage. ``2``: the paper's reading of
    D.3, a 3×3 conv then a 3×3 stride-2 conv per stage. The single-conv form is several times faster
    per step with the same channel widths (docs/methods/cmcl.md).
    """

    def __init__(self, *, in_channels: int, image_size: int, latent_dim: int,
                 plan: str | Sequence[int] = "synthetic", convs_per_stage: int = 1) -> None:
        super().__init__()
        if convs_per_stage not in (1, 2):
            raise ValueError(f"convs_per_stage={convs_per_stage}: must be 1 or 2")
        chans = channel_plan(plan, image_size)
        layers: list[nn.Module] = []
        c = in_channels
        for ch in chans:
            if convs_per_stage == 1:
                layers += [nn.Conv2d(c, ch, 4, stride=2, padding=1), nn.ReLU()]
            else:
                layers += [nn.Conv2d(c, ch, 3, padding=1), nn.ReLU(),
                           nn.Conv2d(ch, ch, 3, stride=2, padding=1), nn.ReLU()]
            c = ch
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            self.flat = int(self.features(torch.zeros(1, in_channels, image_size, image_size)).numel())
        self.head = nn.Linear(self.flat, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)


class ConvDecoder(nn.Module):
    """z (N, latent_dim) -> image logits (N, C, S, S) (Bernoulli likelihood on pixels in [0, 1]).

    Mirrors :class:`ConvEncoder`: one 4×4 stride-2 transposed conv per stage (default), or
    nearest upsampling + two 3×3 convs per stage (``convs_per_stage=2``).
    """

    def __init__(self, *, out_channels: int, image_size: int, latent_dim: int,
                 plan: str | Sequence[int] = "synthetic", convs_per_stage: int = 1) -> None:
        super().__init__()
        if convs_per_stage not in (1, 2):
            raise ValueError(f"convs_per_stage={convs_per_stage}: must be 1 or 2")
        chans = tuple(reversed(channel_plan(plan, image_size)))
        self.image_size = image_size
        self.base = max(1, math.ceil(image_size / 2 ** len(chans)))
        self.c0 = chans[0]
        self.fc = nn.Linear(latent_dim, self.c0 * self.base * self.base)
        layers: list[nn.Module] = []
        c = chans[0]
        outs = list(chans[1:]) + [out_channels]
        for k, ch in enumerate(outs):
            last = k == len(outs) - 1
            if convs_per_stage == 1:
                layers += [nn.ReLU(), nn.ConvTranspose2d(c, ch, 4, stride=2, padding=1)]
            else:
                mid = c if last else ch
                layers += [nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, mid, 3, padding=1),
                           nn.ReLU(), nn.Conv2d(mid, ch, 3, padding=1)]
            c = ch
        self.net = nn.Sequential(*layers)

    @torch.no_grad()
    def init_output_bias(self, channel_mean: torch.Tensor | Sequence[float]) -> None:
        """Start the output at the data's mean intensity: the last layer's bias per channel set to
        ``logit(channel_mean)`` (clipped to [1e-3, 1 - 1e-3]).

        Why: with bias 0 every output pixel starts at sigmoid(0) = 0.5. On images that are mostly
        background (MNIST: about 80% of pixels are 0) the first Adam steps then drive all logits far
        negative, and under a Gaussian likelihood on sigmoid outputs the gradient
        (sigmoid(l) - x) * sigmoid'(l) of a saturated pixel vanishes even where x = 1: training can
        stay at an all-dark image for good (docs/methods/cmcl.md).
        """
        last = [m for m in self.net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
        p = torch.as_tensor(channel_mean, dtype=last.bias.dtype).reshape(-1).clamp(1e-3, 1 - 1e-3)
        if p.numel() != last.bias.numel():
            raise ValueError(f"channel_mean has {p.numel()} values; the decoder has {last.bias.numel()} channels")
        last.bias.copy_(torch.log(p / (1 - p)).to(last.bias.device))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.c0, self.base, self.base)
        out = self.net(h)
        if out.shape[-1] != self.image_size:
            out = F.interpolate(out, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return out


POSE_LATENTS = ("rotation", "shift_x", "shift_y")
"""The pose latents of :class:`PoseDecoder`, in order: they are the decoder's first latents."""


class PoseDecoder(nn.Module):
    """z (N, latent_dim) -> image logits: a :class:`ConvDecoder` draws the image from the latents
    after the first three, and those three move and turn what it drew.

    ``z[:, 1]`` and ``z[:, 2]`` shift the drawn image horizontally and vertically (``shift_scale``
    of the half-width per unit, right and down positive), then ``z[:, 0]`` turns it about the
    frame's centre (``rotation_scale`` radians per unit); the scales are learned, starting at 0.1
    and 0.3 rad. The warp is bilinear resampling of the logits
    (:func:`torch.nn.functional.grid_sample`, border padding: beyond the frame the image continues
    its edge, the background on centred content).

    Why: when a variable turns or moves what the image shows, a plain conv decoder spreads that
    change over every latent, because the pixels change differently for each object; no change of
    latent basis undoes it (docs/methods/cmcl.md). Here one latent can carry the transform for
    every object alike, so such a variable can be the parent of one latent.

    Which latents follow a variable also depends on the axes in which the shift is read, because the
    model also uses the pose latents to tilt and place each object. With the shift in the drawn
    object's axes (before the turn; ``image_frame`` False, the default and the way it trains) a
    rotation about the frame's centre is carried by z1 alone, but a vertical shift of a tilted
    object is a diagonal one in those axes and moves both shift latents. With the shift read in the
    image's axes (``image_frame`` True: z2, z3 are ``A^T t``, the same warp written as a turn
    followed by a shift) the vertical shift is z3 alone, but a turn about the frame's centre also
    moves an object placed off-centre, so a rotation moves z2 and z3 too. Both are the same decoder,
    one set of latents rotated into the other per image (:meth:`to_image_frame`); CMCL reads them in
    whichever axes its final DAG needs fewer edges (``CMCL.pose_frame_``).
    """

    def __init__(self, *, out_channels: int, image_size: int, latent_dim: int,
                 plan: str | Sequence[int] = "synthetic", convs_per_stage: int = 1) -> None:
        super().__init__()
        k = len(POSE_LATENTS)
        if latent_dim <= k:
            raise ValueError(f"latent_dim={latent_dim}: the pose decoder needs more than {k} latents "
                             f"({k} pose latents plus at least one for the content)")
        self.content = ConvDecoder(out_channels=out_channels, image_size=image_size, latent_dim=latent_dim - k,
                                   plan=plan, convs_per_stage=convs_per_stage)
        self.log_rotation_scale = nn.Parameter(torch.tensor(math.log(0.3)))
        self.log_shift_scale = nn.Parameter(torch.tensor(math.log(0.1)))
        # False: z2, z3 shift in the drawn object's axes (before the turn); True: in the image's axes
        self.register_buffer("image_frame", torch.tensor(False))

    def init_output_bias(self, channel_mean: torch.Tensor | Sequence[float]) -> None:
        self.content.init_output_bias(channel_mean)

    def pose_matrix(self, z: torch.Tensor) -> torch.Tensor:
        """(N, 2, 3) affine matrices mapping output coordinates p to the drawn image's:
        q = A p - t, with A the rotation and t the shift (grid_sample's coordinates, [-1, 1])."""
        phi = z[:, 0] * self.log_rotation_scale.exp()
        t = z[:, 1:3] * self.log_shift_scale.exp()
        cos, sin = torch.cos(phi), torch.sin(phi)
        return torch.stack([torch.stack([cos, -sin, -t[:, 0]], dim=1),
                            torch.stack([sin, cos, -t[:, 1]], dim=1)], dim=1)

    def turn(self, z: torch.Tensor) -> torch.Tensor:
        """(N,) the turn of each row's rotation latent, in radians."""
        return z[:, 0] * self.log_rotation_scale.exp()

    def to_image_frame(self, z: torch.Tensor) -> torch.Tensor:
        """Latents with the shift read in the object's axes -> in the image's axes: the warp
        ``p = A^-1 (q + t)`` (shift, then turn) is ``p = A^-1 q + t'`` with ``t' = A^T t`` (turn,
        then shift); z2, z3 become ``t'`` in the same units, z1 and the content are unchanged."""
        return self._rotate_shift(z, transpose=True)

    def from_image_frame(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_image_frame`."""
        return self._rotate_shift(z, transpose=False)

    def _rotate_shift(self, z: torch.Tensor, *, transpose: bool) -> torch.Tensor:
        phi = self.turn(z)
        c, s = torch.cos(phi), torch.sin(phi)
        s = s if transpose else -s
        x, y = z[:, 1], z[:, 2]
        return torch.cat([z[:, :1], torch.stack([c * x + s * y, c * y - s * x], dim=1), z[:, 3:]], dim=1)

    def image_frame_variances(self, z: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """Posterior variances ``var`` of latents ``z`` (object's axes, independent per latent) in
        the image's axes, to first order: each shift's variance mixes in the other axis's by the
        turn, plus the turn's own variance times the squared rate at which it moves that shift
        (d z2' / d z1 = k z3', d z3' / d z1 = -k z2', k = radians per unit of z1)."""
        phi = self.turn(z)
        c2, s2 = torch.cos(phi) ** 2, torch.sin(phi) ** 2
        rate2 = self.log_rotation_scale.exp() ** 2 * var[:, 0]
        zi = self.to_image_frame(z)
        vx, vy = var[:, 1], var[:, 2]
        return torch.cat([var[:, :1], torch.stack([c2 * vx + s2 * vy + rate2 * zi[:, 2] ** 2,
                                                   s2 * vx + c2 * vy + rate2 * zi[:, 1] ** 2], dim=1),
                          var[:, 3:]], dim=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = len(POSE_LATENTS)
        logits = self.content(z[:, k:])  # the content latents are the same in both frames
        # the warp in float32 also under bf16 autocast: a bf16 grid is off by 0.1 px at 28 px, 0.6 px at 128 px
        with torch.autocast(logits.device.type, enabled=False):
            zf = self.from_image_frame(z.float()) if bool(self.image_frame) else z.float()
            grid = F.affine_grid(self.pose_matrix(zf), list(logits.shape), align_corners=False)
            return F.grid_sample(logits.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
