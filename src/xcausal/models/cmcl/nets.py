"""CMCL's networks: the two VAE modules, the conditional prior, the DAG and CR's classifier, and
how the variables are encoded for them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xcausal.data.dataset import CrossModalDataset, Variable
from xcausal.nn.blocks import MLP, ConvDecoder, ConvEncoder, PoseDecoder
from xcausal.structure import NotearsMLP, bipartite_mask, knowledge_mask
from xcausal.types import VarType

if TYPE_CHECKING:
    from xcausal.models.cmcl.estimator import CMCL


class CMCLNet(nn.Module):
    """All CMCL parameters. ``u_in`` is the width of the network encoding of u (one-hot categoricals)."""

    def __init__(self, *, channels: int, image_size: int, u_in: int, node_types: Sequence[VarType],
                 n_categories: Sequence[int], latent_dim: int, embed_dim: int, use_cm: bool,
                 allow_all_edges: bool, plan: str | Sequence[int], dag_hidden: Sequence[int],
                 convs_per_stage: int = 1, posterior_uses_u: bool = False, ivae_prior: bool = True,
                 decoder: str = "conv", exogenous: Sequence[int] = (), forbidden: Sequence[tuple[int, int]] = (),
                 required: Sequence[tuple[int, int]] = ()) -> None:
        super().__init__()
        self.use_cm = use_cm
        self.posterior_uses_u = posterior_uses_u
        self.latent_dim = latent_dim if use_cm else embed_dim
        conv = {"plan": plan, "convs_per_stage": convs_per_stage, "image_size": image_size}
        self.enc0 = ConvEncoder(in_channels=channels, latent_dim=embed_dim, **conv)
        self.dec0 = ConvDecoder(out_channels=channels, latent_dim=embed_dim, **conv)
        m = self.latent_dim
        if use_cm:
            self.post = MLP(embed_dim + (u_in if posterior_uses_u else 0), 2 * m, hidden=(50, 50, 50))
            if ivae_prior:
                self.prior = MLP(max(u_in, 1), 2 * m, hidden=(50, 50, 50))
            self.dec = (PoseDecoder if decoder == "pose" else ConvDecoder)(out_channels=channels, latent_dim=m, **conv)
        self.znorm = nn.BatchNorm1d(m, affine=False, momentum=0.05)
        d = len(node_types)
        types = list(node_types) + [VarType.CONTINUOUS] * m
        ncat = list(n_categories) + [1] * m
        kinds = ["observed"] * d + ["latent"] * m
        # background knowledge (xcausal.structure.knowledge_mask): exogenous nodes, forbidden and required edges
        allowed = knowledge_mask(None if allow_all_edges else bipartite_mask(kinds), d + m, exogenous=exogenous,
                                 forbidden=forbidden, required=required)
        self.dag = NotearsMLP(node_types=types, n_categories=ncat, hidden=tuple(dag_hidden), allowed=allowed)
        self.cls = MLP(m, 1, hidden=(10, 10, 10))

    # ------------------------------------------------------------------ encoders
    def encode(self, x: torch.Tensor, u_net: torch.Tensor, *, sample: bool,
               noise: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Posterior means and (``sample``) reparametrised samples. ``noise`` = (eps0, eps), the
        standard normal draws for z0 and z (training passes them so that they come from its own
        generator and do not depend on how a batch is split over processes); None: drawn here."""
        mu0, lv0 = self.enc0(x)
        if sample and noise is None:
            noise = (torch.randn_like(mu0), torch.randn(len(mu0), self.latent_dim, device=mu0.device, dtype=mu0.dtype))
        z0 = mu0 + noise[0].to(mu0) * torch.exp(0.5 * lv0) if sample else mu0
        out = {"mu0": mu0, "lv0": lv0, "z0": z0}
        if self.use_cm:
            inp = torch.cat([z0, u_net], dim=1) if self.posterior_uses_u else z0
            muq, lvq = self.post(inp).chunk(2, dim=1)
            lvq = lvq.clamp(-12.0, 8.0)
            z = muq + noise[1].to(muq) * torch.exp(0.5 * lvq) if sample else muq
            if isinstance(self.dec, PoseDecoder) and bool(self.dec.image_frame):
                # the pose latents with the shift read in the image's axes (CMCL.pose_frame_)
                dec, dt = self.dec, muq.dtype
                lvq = dec.image_frame_variances(muq.float(), lvq.float().exp()).log().to(dt)
                muq, z = dec.to_image_frame(muq.float()).to(dt), dec.to_image_frame(z.float()).to(dt)
            out.update(muq=muq, lvq=lvq, z=z)
        else:
            out.update(muq=mu0, lvq=lv0, z=z0)
        return out

    def prior_params(self, u_net: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inp = u_net if u_net.shape[1] else torch.zeros(len(u_net), 1, device=u_net.device, dtype=u_net.dtype)
        mu, lv = self.prior(inp).chunk(2, dim=1)
        return mu, lv.clamp(-8.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Image logits from latents z (the causal representation, or z0 when CM is off)."""
        return self.dec(z) if self.use_cm else self.dec0(z)



@dataclass
class Encoding:
    """How u is encoded for the networks and for the DAG (fitted on the training data)."""

    variables: list[Variable]
    mean: np.ndarray  # (d,) for continuous columns, 0 elsewhere
    std: np.ndarray  # (d,) for continuous columns, 1 elsewhere

    def dag_columns(self, u: torch.Tensor) -> torch.Tensor:
        """Continuous standardised, binary 0/1, categorical integer codes (as float)."""
        mean = torch.as_tensor(self.mean, dtype=u.dtype, device=u.device)
        std = torch.as_tensor(self.std, dtype=u.dtype, device=u.device)
        return (u - mean) / std

    def net_columns(self, u: torch.Tensor) -> torch.Tensor:
        """As dag_columns but categorical one-hot: the input of the posterior and prior MLPs."""
        v = self.dag_columns(u)
        cols = []
        for j, var in enumerate(self.variables):
            if var.type is VarType.CATEGORICAL:
                cols.append(F.one_hot(v[:, j].round().long().clamp(0, var.n_categories - 1), var.n_categories).to(v.dtype))
            else:
                cols.append(v[:, j:j + 1])
        return torch.cat(cols, dim=1) if cols else v

    @property
    def net_width(self) -> int:
        return sum(v.n_categories if v.type is VarType.CATEGORICAL else 1 for v in self.variables)

    def to_dict(self) -> dict:
        return {"variables": [v.to_dict() for v in self.variables], "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Encoding":
        return cls([Variable.from_dict(v) for v in d["variables"]], np.asarray(d["mean"], float), np.asarray(d["std"], float))



def build_net(model: CMCL) -> CMCLNet:
    """The network of ``model`` for its fitted encoding, sizes and options."""
    enc = model.encoding_
    return CMCLNet(channels=model.channels_, image_size=model.image_size_, u_in=enc.net_width,
                   node_types=[v.type for v in enc.variables],
                   n_categories=[v.n_categories for v in enc.variables], latent_dim=model.n_latents_,
                   embed_dim=model.embed_dim_, use_cm=model.use_cm, allow_all_edges=model.allow_all_edges,
                   plan=model.channel_plan, dag_hidden=model.dag_hidden, convs_per_stage=model.convs_per_stage,
                   posterior_uses_u=model.posterior_uses_u, ivae_prior=model.prior == "ivae", decoder=model.decoder,
                   **model._knowledge()._asdict())


def init_decoder_bias(model: CMCL, ds: CrossModalDataset) -> None:
    """Both decoders start at the training images' mean intensity per channel (on at most 5,000
    images); see :meth:`xcausal.nn.ConvDecoder.init_output_bias` for why."""
    n = len(ds)
    idx = np.arange(n) if n <= 5000 else np.sort(np.random.default_rng(model.seed).choice(n, 5000, replace=False))
    total = np.zeros(model.channels_)
    for s0 in range(0, len(idx), 512):
        total += ds.images(idx[s0:s0 + 512]).astype(np.float64).sum(axis=(0, 2, 3))
    mean = torch.as_tensor(total / (len(idx) * model.image_size_ ** 2))
    model.net_.dec0.init_output_bias(mean)
    if model.net_.use_cm:
        model.net_.dec.init_output_bias(mean)
