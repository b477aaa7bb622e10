"""Representation learners of the CMCL paper's two-stage baselines (plus linear ICA).

Each learns image features that :class:`xcausal.models.pipeline.Pipeline` hands to a structure
learner. All four neural ones share one conv VAE (:class:`RepresentationNet`, built from
:mod:`xcausal.nn.blocks` exactly like CMCL's, with CMCL's Gaussian pixel likelihood
N(x; sigmoid(logits), pixel_sigma²)) and one training loop (:class:`_ConvVAEBase`); they differ in
the regulariser added to the reconstruction term:

* :class:`BetaVAE` (``betavae``, Higgins et al. 2017): ``beta * KL(q(z|x) || N(0, I))``.
* :class:`FactorVAE` (``factorvae``, Kim & Mnih 2018): ``KL + gamma * TC``, TC estimated with a
  discriminator between q(z) samples and dimension-wise permuted ones (density-ratio trick).
* :class:`TCVAE` (``tcvae``, Chen et al. 2018): ``alpha * MI + beta * TC + gamma * dim-wise KL``
  with the minibatch-weighted-sampling (MWS) estimates of log q(z) and Σ_j log q(z_j).
* :class:`IVAE` (``ivae``, Khemakhem et al. 2020): encoder q(z | x, u), conditional prior
  p(z | u) = N(μ(u), diag exp(logvar(u))), closed-form Gaussian KL.

Common interface (the one :class:`xcausal.models.pipeline.Pipeline` uses, shared with
:class:`xcausal.models.linear.ICA`): keyword-only hyperparameters stored as given; ``fit(ds)``
returns self; ``transform(ds)`` the posterior means (N, m) float64 in table order;
``save(path)`` / ``load(path)`` a flat tensor dict plus a ``path.json`` sidecar.

All regularisers are scaled by a linear warm-up from 0 to their weight over the first
``kl_warmup`` of the epochs (as CMCL: the images' signal is small next to the KL cost at the start,
and without it the posterior can collapse to the prior).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from xcausal import __version__
from xcausal.data.dataset import CrossModalDataset
from xcausal.models.linear import ICA
from xcausal._runtime import fit_progress, load_net_state, resolve_device
from xcausal.nn.blocks import MLP, ConvDecoder, ConvEncoder
from xcausal.types import VarType

__all__ = ["BetaVAE", "FactorVAE", "TCVAE", "IVAE", "ICA", "REPRESENTATIONS", "RepresentationNet",
           "gaussian_kl", "gaussian_log_density", "mws_decomposition", "permute_dims", "density_ratio_tc",
           "discriminator_loss"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_IN_MEMORY_BYTES = 2 * 1024 ** 3
"""Training images up to this size are moved to the device once; larger datasets are decoded per batch."""
_LOG_2PI = math.log(2.0 * math.pi)


# =============================================================================== loss functions
def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
                ) -> torch.Tensor:
    """KL(N(mu_q, diag e^logvar_q) || N(mu_p, diag e^logvar_p)) per row, shape (n,) from (n, m) inputs.

    ``mu_p``/``logvar_p`` broadcast against the posterior's (zeros give the standard normal prior).
    """
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0).sum(-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise log N(z; mu, e^logvar) (broadcasting)."""
    return -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp())


def mws_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, n_data: int
                      ) -> dict[str, torch.Tensor]:
    """beta-TCVAE's KL decomposition with minibatch-weighted sampling (Chen et al. 2018, eq. 7 + §4.1).

    Parameters
    ----------
    z, mu, logvar : (M, m)
        Posterior samples z_i ~ q(z | x_i) and the posterior parameters of the same minibatch.
    n_data : int
        Dataset size N.

    Returns
    -------
    dict with batch means ``mi`` (index-code mutual information), ``tc`` (total correlation) and
    ``dwkl`` (dimension-wise KL), each a 0-d tensor. ``mi + tc + dwkl`` equals the Monte-Carlo
    estimate of KL(q(z|x) || N(0, I)) exactly.

    Notes
    -----
    log q(z_i) ≈ logsumexp_j log q(z_i | x_j) - log(N M) and log q(z_ik) likewise per dimension,
    the paper's estimator as written and as in its reference code. The shared ``log(N M)``
    normaliser shifts the three terms by constants (``mi`` by +log N, ``tc`` by (m-1) log N,
    ``dwkl`` by -m log N when the minibatch resolves q(z)); they carry no gradient, so training is
    unaffected, but the values in ``history_`` are not the terms themselves.
    """
    M, m = z.shape
    if M < 2:
        raise ValueError(f"mws_decomposition needs a minibatch of at least 2 samples, got {M}")
    if n_data < M:
        raise ValueError(f"n_data={n_data}: the dataset cannot be smaller than the minibatch ({M})")
    mat = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])  # (M, M, m): log q(z_i | x_j)
    log_nm = math.log(n_data * M)
    log_qz = torch.logsumexp(mat.sum(2), dim=1) - log_nm
    log_prod_qzj = (torch.logsumexp(mat, dim=1) - log_nm).sum(1)
    log_qz_x = gaussian_log_density(z, mu, logvar).sum(1)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    return {"mi": (log_qz_x - log_qz).mean(), "tc": (log_qz - log_prod_qzj).mean(),
            "dwkl": (log_prod_qzj - log_pz).mean()}


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each column of ``z`` (n, m) shuffled independently: samples of Π_j q(z_j) (Kim & Mnih, Alg. 1)."""
    n, m = z.shape
    cols = [z[torch.randperm(n, generator=generator).to(z.device), j] for j in range(m)]
    return torch.stack(cols, dim=1)


def density_ratio_tc(disc: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """TC ≈ E_q(z)[log D(z) / (1 - D(z))]: the mean logit of a discriminator (joint = class 1)."""
    return disc(z).squeeze(-1).mean()


def discriminator_loss(disc: nn.Module, z: torch.Tensor, z_perm: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``disc``: ``z`` (samples of q(z)) labelled 1, ``z_perm`` labelled 0."""
    a, b = disc(z).squeeze(-1), disc(z_perm).squeeze(-1)
    bce = nn.functional.binary_cross_entropy_with_logits
    return 0.5 * (bce(a, torch.ones_like(a)) + bce(b, torch.zeros_like(b)))


def _gauss_rec(logits: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """-log N(x; sigmoid(logits), sigma²) up to a constant, summed over pixels, mean over the batch."""
    return 0.5 * (torch.sigmoid(logits) - x).pow(2).sum() / (sigma ** 2 * len(x))


# =============================================================================== network
class RepresentationNet(nn.Module):
    """Conv VAE: ``encode(x[, u]) -> (mu, logvar)``, ``decode(z) -> logits``; optional parts.

    The conv stack is :class:`xcausal.nn.blocks.ConvEncoder`'s; its linear head takes the flattened
    features concatenated with ``u_in`` encoded variables (0 for the unconditional VAEs).
    ``conditional_prior`` adds an MLP u -> (μ(u), logvar(u)) (iVAE); ``disc_hidden`` a TC
    discriminator MLP z -> logit (FactorVAE).
    """

    def __init__(self, *, channels: int, image_size: int, latent_dim: int, u_in: int = 0,
                 conditional_prior: bool = False, disc_hidden: Sequence[int] | None = None,
                 plan: str | Sequence[int] = "synthetic", convs_per_stage: int = 1) -> None:
        super().__init__()
        conv = {"plan": plan, "convs_per_stage": convs_per_stage, "image_size": image_size}
        enc = ConvEncoder(in_channels=channels, latent_dim=latent_dim, **conv)
        self.features = enc.features  # its conv stack; enc.head is replaced by one that can also take u
        self.head = nn.Linear(enc.flat + u_in, 2 * latent_dim)
        self.decoder = ConvDecoder(out_channels=channels, latent_dim=latent_dim, **conv)
        self.prior = MLP(u_in, 2 * latent_dim, hidden=(50, 50, 50)) if conditional_prior else None
        self.disc = MLP(latent_dim, 1, hidden=tuple(disc_hidden)) if disc_hidden is not None else None

    def encode(self, x: torch.Tensor, u: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        if u is not None:
            h = torch.cat([h, u], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def prior_params(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.prior is None:
            raise RuntimeError("this network has no conditional prior")
        mu, logvar = self.prior(u).chunk(2, dim=1)
        return mu, logvar.clamp(-8.0, 8.0)

    def vae_parameters(self) -> Iterator[nn.Parameter]:
        """All parameters but the discriminator's (it has its own optimiser)."""
        return (p for name, p in self.named_parameters() if not name.startswith("disc."))


# =============================================================================== shared estimator
class _ConvVAEBase:
    """Training loop, transform and persistence shared by the four VAE baselines.

    Subclasses set ``method_name`` and ``_own_params`` (their extra hyperparameter names), define
    ``__init__`` with explicit keyword-only arguments, and implement :meth:`_regularisers`.

    Parameters common to all four (keyword-only)
    --------------------------------------------
    latent_dim : int or None
        Number of latents m. None: :func:`xcausal.models.cmcl.default_latent_dim` of the number of
        variables (8 when the table has none).
    epochs : int or None
        None: :func:`xcausal.models.cmcl.default_epochs` of the data size.
    batch_size, lr : Adam optimisation (batches drawn with a private generator seeded by ``seed``).
    pixel_sigma : float, default 0.1
        Std of CMCL's Gaussian pixel likelihood N(x; sigmoid(logits), pixel_sigma²).
    kl_warmup : float, default 0.2
        Fraction of the epochs over which the regulariser's weight ramps linearly from 0 to 1.
    channel_plan, convs_per_stage : conv architecture (:mod:`xcausal.nn.blocks`), as CMCL's.
    seed : int; device : "auto", "cpu", "cuda", ...; progress : show a progress bar.
    """

    method_name: ClassVar[str] = ""
    _own_params: ClassVar[tuple[str, ...]] = ()
    _common_params: ClassVar[tuple[str, ...]] = ("latent_dim", "epochs", "batch_size", "lr", "pixel_sigma",
                                                 "kl_warmup", "channel_plan", "convs_per_stage", "seed", "device",
                                                 "progress")
    uses_u: ClassVar[bool] = False

    def _init_common(self, latent_dim: int | None, epochs: int | None, batch_size: int, lr: float,
                     pixel_sigma: float, kl_warmup: float, channel_plan: str | Sequence[int], convs_per_stage: int,
                     seed: int, device: str, progress: bool) -> None:
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.pixel_sigma = pixel_sigma
        self.kl_warmup = kl_warmup
        self.channel_plan = channel_plan
        self.convs_per_stage = convs_per_stage
        self.seed = seed
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ params
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as JSON-serialisable values (tuples as lists)."""
        out = {k: getattr(self, k) for k in self._common_params + self._own_params}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def _validate(self) -> None:
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ValueError(f"latent_dim={self.latent_dim}: must be at least 1")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs={self.epochs}: must be at least 1")
        if self.batch_size < 2:
            raise ValueError(f"batch_size={self.batch_size}: must be at least 2")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr}: must be positive")
        if not self.pixel_sigma > 0:
            raise ValueError(f"pixel_sigma={self.pixel_sigma}: must be positive")
        if not 0 <= self.kl_warmup < 1:
            raise ValueError(f"kl_warmup={self.kl_warmup}: must be in [0, 1)")
        if self.convs_per_stage not in (1, 2):
            raise ValueError(f"convs_per_stage={self.convs_per_stage}: must be 1 or 2")
        for name in self._own_params:
            val = getattr(self, name)
            if isinstance(val, (int, float)) and not isinstance(val, bool) and not val >= 0:
                raise ValueError(f"{name}={val}: must be non-negative")

    # ------------------------------------------------------------------ hooks
    def _net_options(self) -> dict[str, Any]:
        """Extra :class:`RepresentationNet` arguments (conditional prior, discriminator)."""
        return {}

    def _regularisers(self, net: RepresentationNet, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                      u: torch.Tensor | None, weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(weighted regulariser added to the reconstruction term, its parts for the history)."""
        raise NotImplementedError

    def _after_step(self, net: RepresentationNet, z: torch.Tensor) -> dict[str, float]:
        """Called after each VAE step with the step's (detached) samples; returns history terms."""
        return {}

    def _start(self, net: RepresentationNet) -> None:
        """Called once before training (optimisers of auxiliary parts)."""

    # ------------------------------------------------------------------ fit
    def fit(self, ds: CrossModalDataset) -> "_ConvVAEBase":
        """Train on the images of ``ds`` (and ``ds.u`` for iVAE); returns self.

        Learned state: ``net_`` (:class:`RepresentationNet`), ``n_latents_``, ``epochs_``,
        ``history_`` (one row per epoch: ``loss``, ``rec`` and the method's terms, batch means),
        ``device_``, ``image_size_``, ``channels_``, ``u_encoding_`` (iVAE).
        """
        from xcausal.models.cmcl.config import default_epochs, default_latent_dim
        from xcausal.models.cmcl.nets import Encoding

        self._validate()
        if self.uses_u and len(ds.variables) == 0:
            raise ValueError(f"{ds.source}: the table has no structured variables; {self.method_name} needs at "
                             "least one (it conditions on u)")
        m = self.latent_dim or (default_latent_dim(len(ds.variables)) if ds.variables else 8)
        epochs = self.epochs or default_epochs(len(ds), ds.image_size)
        dev = resolve_device(self.device)
        self.n_latents_ = int(m)
        self.epochs_ = int(epochs)
        self.image_size_ = int(ds.image_size)
        self.channels_ = int(ds.channels)
        self.device_ = dev
        if self.uses_u:
            cont = np.array([v.type is VarType.CONTINUOUS for v in ds.variables])
            self.u_encoding_ = Encoding(list(ds.variables), np.where(cont, ds.u.mean(0), 0.0),
                                         np.where(cont, ds.u.std(0) + 1e-8, 1.0))
        else:
            self.u_encoding_ = None
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(self.seed)
            self.net_ = self._build_net().to(dev)
            self._train(ds, epochs, dev)
        return self

    def _build_net(self) -> RepresentationNet:
        return RepresentationNet(channels=self.channels_, image_size=self.image_size_, latent_dim=self.n_latents_,
                                 u_in=self.u_encoding_.net_width if self.u_encoding_ is not None else 0,
                                 plan=self.channel_plan, convs_per_stage=self.convs_per_stage, **self._net_options())

    def _tensors(self, ds: CrossModalDataset, idx: np.ndarray, dev: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = torch.from_numpy(ds.images(idx)).to(dev)
        if self.u_encoding_ is None:
            return x, None
        u = torch.from_numpy(ds.u[idx].astype(np.float32)).to(dev)
        return x, self.u_encoding_.net_columns(u)

    def _train(self, ds: CrossModalDataset, epochs: int, dev: torch.device) -> None:
        net = self.net_
        n = len(ds)
        self._n_data = n
        self._gen = torch.Generator(device="cpu").manual_seed(self.seed)
        in_memory = n * ds.channels * ds.image_size ** 2 * 4 <= MAX_IN_MEMORY_BYTES  # else decode per batch
        x_all, u_all = None, None
        if in_memory:
            x_all, u_all = self._tensors(ds, np.arange(n), dev)
        opt = torch.optim.Adam(net.vae_parameters(), lr=self.lr)
        self._start(net)
        bar = fit_progress(self.progress, epochs, self.method_name, _describe)
        rows = []
        for epoch in range(epochs):
            net.train()
            weight = min(1.0, (epoch + 1) / max(1.0, self.kl_warmup * epochs))
            sums: dict[str, float] = {}
            nb = 0
            for idx in torch.randperm(n, generator=self._gen).split(self.batch_size):
                if len(idx) < 2:  # a last batch of one sample: no batch statistics for TC
                    continue
                if in_memory:
                    ii = idx.to(dev)
                    xb, ub = x_all[ii], (u_all[ii] if u_all is not None else None)
                else:
                    xb, ub = self._tensors(ds, idx.numpy(), dev)
                mu, logvar = net.encode(xb, ub)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
                rec = _gauss_rec(net.decode(z), xb, self.pixel_sigma)
                reg, parts = self._regularisers(net, z, mu, logvar, ub, weight)
                loss = rec + reg
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(list(net.vae_parameters()), 100.0)
                opt.step()
                terms = {"loss": float(loss.detach()), "rec": float(rec.detach()),
                         **{k: float(v.detach()) for k, v in parts.items()}}
                terms.update(self._after_step(net, z.detach()))
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                nb += 1
            row = {"epoch": epoch + 1, "reg_weight": weight, **{k: v / max(nb, 1) for k, v in sums.items()}}
            rows.append(row)
            if bar is not None:
                bar.update(row)
            bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
            if bad:
                if bar is not None:
                    bar.close()
                raise FloatingPointError(f"{self.method_name}: loss term {', '.join(bad)} became NaN/inf at epoch "
                                         f"{epoch + 1}; try a smaller lr")
        if bar is not None:
            bar.close()
        self.history_ = pd.DataFrame(rows)
        logger.info("%s: %d epochs, final loss %.4g", self.method_name, epochs, rows[-1].get("loss", float("nan")))

    # ------------------------------------------------------------------ use
    def _check(self, ds: CrossModalDataset) -> None:
        if not hasattr(self, "net_"):
            raise ValueError(f"this {type(self).__name__} instance is not fitted yet; call fit(dataset) first")
        if (ds.channels, ds.image_size) != (self.channels_, self.image_size_):
            raise ValueError(f"{ds.source}: images are {ds.channels}×{ds.image_size}² but the model was fitted on "
                             f"{self.channels_}×{self.image_size_}²")
        if self.u_encoding_ is not None:
            names = [v.name for v in self.u_encoding_.variables]
            if ds.variable_names != names:
                raise ValueError(f"{ds.source}: variables {ds.variable_names} differ from the fitted ones {names}")

    @torch.no_grad()
    def transform(self, ds: CrossModalDataset, *, batch_size: int = 256) -> np.ndarray:
        """Posterior means, (N, m) float64, rows in table order (iVAE: of q(z | x, u))."""
        self._check(ds)
        was_training = self.net_.training
        self.net_.eval()
        out = []
        for s in range(0, len(ds), batch_size):
            x, u = self._tensors(ds, np.arange(s, min(len(ds), s + batch_size)), self.device_)
            out.append(self.net_.encode(x, u)[0].cpu())
        self.net_.train(was_training)
        if not out:
            return np.zeros((0, self.n_latents_))
        return torch.cat(out).numpy().astype(np.float64)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """``path``: the network's tensors (``torch.load(weights_only=True)``); ``path.json``: the config."""
        if not hasattr(self, "net_"):
            raise ValueError(f"this {type(self).__name__} instance is not fitted yet; call fit(dataset) first")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)  # like the CLI's run directory
        torch.save({f"net.{k}": v.detach().cpu() for k, v in self.net_.state_dict().items()}, path)
        meta = {"format": FORMAT_VERSION, "method": self.method_name, "xcausal_version": __version__,
                "params": self.get_params(), "n_latents": self.n_latents_, "epochs": self.epochs_,
                "image_size": self.image_size_, "channels": self.channels_,
                "u_encoding": self.u_encoding_.to_dict() if self.u_encoding_ is not None else None,
                "history": self.history_.to_dict(orient="records")}
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> "_ConvVAEBase":
        """Rebuild a model written by :meth:`save`; ValueError for another method's checkpoint."""
        from xcausal.models.cmcl.nets import Encoding

        from xcausal.io import checkpoint_errors, read_checkpoint_meta

        path = Path(path)
        meta = read_checkpoint_meta(path, cls.method_name, FORMAT_VERSION)
        with checkpoint_errors(path):
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()}
            params["device"] = device
            obj = cls(**params)
            obj.n_latents_ = int(meta["n_latents"])
            obj.epochs_ = int(meta["epochs"])
            obj.image_size_ = int(meta["image_size"])
            obj.channels_ = int(meta["channels"])
            obj.u_encoding_ = Encoding.from_dict(meta["u_encoding"]) if meta.get("u_encoding") else None
            obj.device_ = resolve_device(device)
            obj.history_ = pd.DataFrame(meta.get("history", []))
            obj.net_ = load_net_state(obj._build_net(), path, obj.device_)
            obj.net_.eval()
            return obj


def _describe(row) -> str:
    return " ".join(f"{k}={row[k]:.3g}" for k in ("loss", "rec") if k in row)


# =============================================================================== the four methods
class BetaVAE(_ConvVAEBase):
    """beta-VAE (Higgins et al. 2017): loss = rec + beta * KL(q(z|x) || N(0, I)).

    Parameters (keyword-only; stored as given, checked in :meth:`fit`; the common ones
    ``latent_dim, epochs, batch_size, lr, seed, device, progress, pixel_sigma, kl_warmup,
    channel_plan, convs_per_stage`` are described in :class:`_ConvVAEBase`)
    ----------
    beta : float, default 4.0
        Weight of the KL term (β = 4 is the paper's choice for its 2D-shapes/faces experiments).
    """

    method_name = "betavae"
    _own_params = ("beta",)

    def __init__(self, *, latent_dim: int | None = None, epochs: int | None = None, batch_size: int = 64,
                 lr: float = 1e-3, seed: int = 0, device: str = "auto", progress: bool = False,
                 beta: float = 4.0, pixel_sigma: float = 0.1, kl_warmup: float = 0.2,
                 channel_plan: str | Sequence[int] = "synthetic", convs_per_stage: int = 1) -> None:
        self._init_common(latent_dim, epochs, batch_size, lr, pixel_sigma, kl_warmup, channel_plan, convs_per_stage,
                          seed, device, progress)
        self.beta = beta

    def _regularisers(self, net, z, mu, logvar, u, weight):
        kl = gaussian_kl(mu, logvar, torch.zeros_like(mu), torch.zeros_like(logvar)).mean()
        return weight * self.beta * kl, {"kl": kl}


class FactorVAE(_ConvVAEBase):
    """FactorVAE (Kim & Mnih 2018): loss = rec + KL + gamma * TC, TC from a density-ratio discriminator.

    The discriminator D (MLP ``disc_hidden`` -> one logit) is trained with its own Adam optimiser
    (``disc_lr``, betas (0.5, 0.9) as in the paper) after every VAE step, on the same minibatch's
    detached samples z ~ q(z) (label 1) against a dimension-wise permutation of them (label 0;
    permutations from the private generator). The VAE step uses TC ≈ mean logit D(z).

    Parameters (keyword-only; stored as given, checked in :meth:`fit`; the common ones
    ``latent_dim, epochs, batch_size, lr, seed, device, progress, pixel_sigma, kl_warmup,
    channel_plan, convs_per_stage`` are described in :class:`_ConvVAEBase`)
    ----------
    gamma : float, default 10.0
        Weight of the TC term. The paper found γ ≈ 35-40 best on 64×64 dSprites (4,096 Bernoulli
        pixels); the default images here are 32×32 (a quarter of the pixels, so a quarter of the
        reconstruction term's weight against a TC term of the same size), hence 40 / 4 = 10.
    disc_hidden : tuple of int, default (256, 256, 256)
        Discriminator widths (the paper: 6 × 1000; smaller here for CPU training on few latents).
    disc_lr : float, default 1e-4
    """

    method_name = "factorvae"
    _own_params = ("gamma", "disc_hidden", "disc_lr")

    def __init__(self, *, latent_dim: int | None = None, epochs: int | None = None, batch_size: int = 64,
                 lr: float = 1e-3, seed: int = 0, device: str = "auto", progress: bool = False,
                 gamma: float = 10.0, disc_hidden: Sequence[int] = (256, 256, 256), disc_lr: float = 1e-4,
                 pixel_sigma: float = 0.1, kl_warmup: float = 0.2,
                 channel_plan: str | Sequence[int] = "synthetic", convs_per_stage: int = 1) -> None:
        self._init_common(latent_dim, epochs, batch_size, lr, pixel_sigma, kl_warmup, channel_plan, convs_per_stage,
                          seed, device, progress)
        self.gamma = gamma
        self.disc_hidden = disc_hidden
        self.disc_lr = disc_lr

    def _validate(self) -> None:
        super()._validate()
        if not self.disc_lr > 0:
            raise ValueError(f"disc_lr={self.disc_lr}: must be positive")
        if len(self.disc_hidden) == 0 or min(int(h) for h in self.disc_hidden) < 1:
            raise ValueError(f"disc_hidden={self.disc_hidden}: needs at least one positive width")

    def _net_options(self) -> dict[str, Any]:
        return {"disc_hidden": tuple(int(h) for h in self.disc_hidden)}

    def _start(self, net) -> None:
        self._disc_opt = torch.optim.Adam(net.disc.parameters(), lr=self.disc_lr, betas=(0.5, 0.9))

    def _regularisers(self, net, z, mu, logvar, u, weight):
        kl = gaussian_kl(mu, logvar, torch.zeros_like(mu), torch.zeros_like(logvar)).mean()
        tc = density_ratio_tc(net.disc, z)
        return weight * (kl + self.gamma * tc), {"kl": kl, "tc": tc}

    def _after_step(self, net, z) -> dict[str, float]:
        z_perm = permute_dims(z, self._gen)
        loss = discriminator_loss(net.disc, z, z_perm)
        self._disc_opt.zero_grad(set_to_none=True)
        loss.backward()
        self._disc_opt.step()
        return {"disc_loss": float(loss.detach())}


class TCVAE(_ConvVAEBase):
    """beta-TCVAE (Chen et al. 2018): loss = rec + alpha * MI + beta * TC + gamma * dim-wise KL.

    The three terms come from :func:`mws_decomposition` (minibatch-weighted sampling with the
    dataset size N); see there for the constant offsets their logged values carry.

    Parameters (keyword-only; stored as given, checked in :meth:`fit`; the common ones
    ``latent_dim, epochs, batch_size, lr, seed, device, progress, pixel_sigma, kl_warmup,
    channel_plan, convs_per_stage`` are described in :class:`_ConvVAEBase`)
    ----------
    alpha, beta, gamma : float, defaults 1, 6, 1 (α = γ = 1 as in the paper; β > 1 penalises TC only).
    """

    method_name = "tcvae"
    _own_params = ("alpha", "beta", "gamma")

    def __init__(self, *, latent_dim: int | None = None, epochs: int | None = None, batch_size: int = 64,
                 lr: float = 1e-3, seed: int = 0, device: str = "auto", progress: bool = False,
                 alpha: float = 1.0, beta: float = 6.0, gamma: float = 1.0, pixel_sigma: float = 0.1,
                 kl_warmup: float = 0.2, channel_plan: str | Sequence[int] = "synthetic",
                 convs_per_stage: int = 1) -> None:
        self._init_common(latent_dim, epochs, batch_size, lr, pixel_sigma, kl_warmup, channel_plan, convs_per_stage,
                          seed, device, progress)
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma

    def _regularisers(self, net, z, mu, logvar, u, weight):
        t = mws_decomposition(z, mu, logvar, self._n_data)
        reg = weight * (self.alpha * t["mi"] + self.beta * t["tc"] + self.gamma * t["dwkl"])
        return reg, t


class IVAE(_ConvVAEBase):
    """iVAE (Khemakhem et al. 2020): q(z | x, u), prior p(z | u) = N(μ(u), diag exp(logvar(u))).

    loss = rec + KL(q(z|x,u) || p(z|u)), the KL in closed form (:func:`gaussian_kl`). u enters the
    networks as CMCL encodes it: continuous columns standardised, binary 0/1, categorical one-hot.
    The encoder's linear head sees the conv features concatenated with u; the prior is an MLP
    (3 × 50) of u. :meth:`transform` returns the posterior mean of q(z | x, u), so it needs the
    dataset's variables (the same ones as in fit).

    Parameters (keyword-only; stored as given, checked in :meth:`fit`; the common ones
    ``latent_dim, epochs, batch_size, lr, seed, device, progress, pixel_sigma, kl_warmup,
    channel_plan, convs_per_stage`` are described in :class:`_ConvVAEBase`)
    ----------
    beta : float, default 1.0
        Weight of the KL term (1: the ELBO, as in the paper).
    """

    method_name = "ivae"
    _own_params = ("beta",)
    uses_u = True

    def __init__(self, *, latent_dim: int | None = None, epochs: int | None = None, batch_size: int = 64,
                 lr: float = 1e-3, seed: int = 0, device: str = "auto", progress: bool = False,
                 beta: float = 1.0, pixel_sigma: float = 0.1, kl_warmup: float = 0.2,
                 channel_plan: str | Sequence[int] = "synthetic", convs_per_stage: int = 1) -> None:
        self._init_common(latent_dim, epochs, batch_size, lr, pixel_sigma, kl_warmup, channel_plan, convs_per_stage,
                          seed, device, progress)
        self.beta = beta

    def _net_options(self) -> dict[str, Any]:
        return {"conditional_prior": True}

    def _regularisers(self, net, z, mu, logvar, u, weight):
        mu_p, logvar_p = net.prior_params(u)
        kl = gaussian_kl(mu, logvar, mu_p, logvar_p).mean()
        return weight * self.beta * kl, {"kl": kl}


#: representation name -> class (what ``Pipeline(representation=...)`` looks up)
REPRESENTATIONS: dict[str, type] = {"betavae": BetaVAE, "factorvae": FactorVAE, "tcvae": TCVAE, "ivae": IVAE,
                                    "ica": ICA}
