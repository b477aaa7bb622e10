"""causalPIMA: a multimodal VAE whose Gaussian-mixture prior is tied to a learned DAG.

Reconstruction (arXiv 2310.18471 gives only its abstract and summary here; docs/methods/causal_pima.md):

* one encoder per modality — a conv encoder for the image, an MLP for each 1-D curve — each
  giving a diagonal Gaussian, fused by a product of experts (precision-weighted mean);
* decoders per modality: a conv decoder (Bernoulli) for the image; for a curve either an MLP
  decoder of z (Gaussian) or a *physics expert*: a parametric curve E(t; θ_c) per mixture
  component (``linear``: θ·t; ``strain-hardening``: PIMA's piecewise-linear form, slope y0/x0
  below the yield point x0 and y0 + θ(t − x0) above), t = linspace(0, 1, L);
* prior: a Gaussian mixture with one component per joint outcome b ∈ {0,1}^n of n binary
  feature nodes (K = 2^n); the weights π_c = Π_j p(b_j | b_pa(j)) come from a DAG learned by
  graph gradient (:class:`xcausal.structure.GraphGradientDAG`), acyclic by construction;
* one ELBO: reconstruction + E_q[log q(z|x)] − E_q[log Σ_c π_c N(z; μ_c, Σ_c) p(y_phys | θ_c)]
  — the component is summed out exactly (VaDE's optimal responsibilities), in log space;
* training: pre-train the encoders/decoders as a plain multimodal VAE (N(0, I) prior), fit the
  mixture to the pre-trained embedding by EM with restarts, then alternate gradient epochs on
  the encoders/decoders with closed-form (EM) updates of the component means, variances and
  physics parameters and a block-coordinate update of the DAG on the expected outcome counts,
  annealing the gate temperature τ.

Departure, for identifiability of the nodes: by default the component means are *additive* in
the node outcomes, μ_c = a + Σ_j b_j(c) Δ_j, so every node is one direction in latent space and
its outcome is a property of the sample, not an arbitrary label of a cluster (``means="free"``
gives the unconstrained mixture; its node outcomes are then arbitrary bits of the cluster
index). The closed-form M-step for the additive means is a weighted least-squares fit per
latent dimension (:func:`em_update`).

Nodes are named ``f1..fn`` (kind "latent"); ``transform`` returns p(f_j = 1 | x) per sample.
Structured variables in the table are not used (the method is fully unsupervised).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize_scalar
from torch import nn
from torch.nn import functional as F

from xcausal import __version__
from xcausal.data.dataset import CrossModalDataset
from xcausal._runtime import fit_progress, load_net_state
from xcausal._runtime import resolve_device as _resolve_device
from xcausal.nn.blocks import MLP, ConvDecoder, ConvEncoder
from xcausal.structure.graph_gradient import GraphGradientDAG, binary_outcomes, sample_outcomes
from xcausal.types import Graph, Node

__all__ = ["CausalPIMA", "PIMA", "CausalPIMANet", "PhysicsExpert", "fit_expert", "em_update", "PHYSICS_FORMS",
           "strain_hardening"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
PHYSICS_FORMS = ("linear", "strain-hardening")
_LOG2PI = math.log(2 * math.pi)
_VAR_FLOOR = 1e-4


# =============================================================================== physics experts
def strain_hardening(t: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """PIMA's piecewise-linear strain-hardening curve, broadcast over leading dims of the params.

    ``E(t) = (y0 / x0)·t`` for ``t < x0``, ``y0 + θ·(t − x0)`` for ``t ≥ x0``.
    Parameters of shape (K,) give (K, L) for ``t`` of shape (L,).
    """
    x0, y0, theta = x0[..., None], y0[..., None], theta[..., None]
    return (y0 / x0) * torch.minimum(t, x0) + theta * F.relu(t - x0)


def _expert_curves(form: str, t: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """(K, L) curves from (K, P) parameters."""
    if form == "linear":
        return params[:, :1] * t[None, :]
    return strain_hardening(t, params[:, 0], params[:, 1], params[:, 2])


def fit_expert(form: str, t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares parameters of a physics expert for each curve of ``y``.

    Parameters
    ----------
    form : "linear" or "strain-hardening"
    t : (L,) abscissae
    y : (K, L) target curves (e.g. responsibility-weighted mean curves of the components)

    Returns
    -------
    (K, P) parameters: linear P = 1 (θ); strain-hardening P = 3 (x0, y0, θ). Linear is closed
    form; strain-hardening is closed form in (y0, θ) for a fixed yield point x0, which is found by
    a grid search refined by bounded Brent minimisation (scipy).
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if form not in PHYSICS_FORMS:
        raise ValueError(f"physics form '{form}': must be one of {', '.join(PHYSICS_FORMS)}")
    if form == "linear":
        return (y @ t / max(float(t @ t), 1e-12))[:, None]

    def solve(x0: float, yk: np.ndarray) -> tuple[float, np.ndarray]:
        basis = np.stack([np.minimum(t, x0) / x0, np.maximum(t - x0, 0.0)], axis=1)  # y0, θ
        coef, *_ = np.linalg.lstsq(basis, yk, rcond=None)
        return float(((basis @ coef - yk) ** 2).sum()), coef

    lo, hi = float(t[1]) if len(t) > 2 else float(t.min()) + 1e-3, float(t[-2]) if len(t) > 2 else float(t.max())
    grid = np.linspace(lo, hi, 64)
    out = np.zeros((len(y), 3))
    for k, yk in enumerate(y):
        errs = [solve(x0, yk)[0] for x0 in grid]
        i = int(np.argmin(errs))
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        x0 = float(minimize_scalar(lambda v: solve(v, yk)[0], bounds=(a, b), method="bounded",
                                   options={"xatol": 1e-10}).x)
        _, coef = solve(x0, yk)
        out[k] = (x0, coef[0], coef[1])
    return out


class PhysicsExpert(nn.Module):
    """One parametric curve E(t; θ_c) per mixture component; parameters are buffers (EM-updated)."""

    def __init__(self, form: str, length: int, n_components: int) -> None:
        super().__init__()
        if form not in PHYSICS_FORMS:
            raise ValueError(f"physics form '{form}': must be one of {', '.join(PHYSICS_FORMS)}")
        self.form = form
        p = 1 if form == "linear" else 3
        init = torch.zeros(n_components, p)
        if form == "strain-hardening":
            init[:, 0] = 0.3
        self.register_buffer("t", torch.linspace(0.0, 1.0, length))
        self.register_buffer("params", init)
        self.register_buffer("chol", torch.eye(length))  # Cholesky factor of the residual covariance

    def curves(self) -> torch.Tensor:
        """(K, L) curves of every component, in data units."""
        return _expert_curves(self.form, self.t, self.params)

    def log_lik(self, y: torch.Tensor) -> torch.Tensor:
        """(B, K): log N(y; E_c, Σ) for curves y (B, L), Σ = chol·cholᵀ shared by the components.

        Σ is a full covariance, not σ²I: a sample's own parameters scatter around its
        component's, so its residual is a smooth curve, correlated across t. With independent
        points the curve outvotes the image (docs/methods/causal_pima.md); a
        residual-variance-weighted count of points (participation ratio) under-weights it
        instead (the discriminative directions have small residual variance).
        """
        e = self.curves()
        r = (y[:, None, :] - e[None, :, :])  # (B, K, L)
        b, k, length = r.shape
        w = torch.linalg.solve_triangular(self.chol, r.reshape(b * k, length).T, upper=False)  # (L, B·K)
        maha = w.pow(2).sum(0).reshape(b, k)
        logdet = 2 * torch.log(torch.diagonal(self.chol)).sum()
        return -0.5 * (maha + logdet + length * _LOG2PI)


# =============================================================================== mixture
def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                         z_var: torch.Tensor | None = None) -> torch.Tensor:
    """(B, K): log N(z_b; μ_c, diag exp(logvar_c)); with ``z_var`` the expectation over
    z ~ N(z_b, diag z_var) (VaDE's analytic term)."""
    var = logvar.exp()[None]
    sq = (z[:, None, :] - mu[None]).pow(2)
    if z_var is not None:
        sq = sq + z_var[:, None, :]
    return -0.5 * (sq / var + logvar[None] + _LOG2PI).sum(-1)


def em_update(m: torch.Tensor, s2: torch.Tensor, gamma: torch.Tensor, outcomes: torch.Tensor, logvar: torch.Tensor,
              *, means: Literal["additive", "free"]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form M-step for the mixture's means and variances.

    Parameters
    ----------
    m, s2 : (N, D) posterior means and variances of q(z | x)
    gamma : (N, K) responsibilities (rows sum to 1)
    outcomes : (K, n) binary outcome of each component
    logvar : (K, D) current component log-variances (the weights of the additive fit)
    means : "free" — μ_c = Σ_i γ_ic m_i / N_c; "additive" — μ_c = a + Σ_j b_j(c) Δ_j, the
        weighted least-squares fit of E_q Σ_i Σ_c γ_ic log N(z_i; μ_c, σ_c²) in (a, Δ) per dimension

    Returns
    -------
    mu (K, D), new logvar (K, D) = log(Σ_i γ_ic (s2_i + (m_i − μ_c)²) / N_c) floored, and for
    "additive" the (n + 1, D) coefficients [a; Δ] (for "free" the means themselves).
    """
    nk = gamma.sum(0)  # (K,)
    safe = nk.clamp_min(1e-8)
    ybar = (gamma.T @ m) / safe[:, None]  # (K, D)
    if means == "free":
        mu = torch.where(nk[:, None] > 1e-8, ybar, torch.zeros_like(ybar))
        coef = mu
    else:
        x = torch.cat([torch.ones(len(outcomes), 1, dtype=m.dtype, device=m.device), outcomes.to(m.dtype)], dim=1)
        w = nk[:, None] / logvar.exp()  # (K, D)
        coef = torch.empty(x.shape[1], m.shape[1], dtype=m.dtype, device=m.device)
        ridge = 1e-6 * torch.eye(x.shape[1], dtype=m.dtype, device=m.device)
        for d in range(m.shape[1]):
            xtw = x.T * w[:, d][None, :]
            coef[:, d] = torch.linalg.solve(xtw @ x + ridge, xtw @ ybar[:, d])
        mu = x @ coef
    dev2 = (gamma.T @ (s2 + m.pow(2))) - 2 * mu * (gamma.T @ m) + nk[:, None] * mu.pow(2)
    var = (dev2 / safe[:, None]).clamp_min(_VAR_FLOOR)
    var = torch.where(nk[:, None] > 1e-8, var, logvar.exp())
    return mu, var.log(), coef


# =============================================================================== network
class CausalPIMANet(nn.Module):
    """Encoders, decoders, the mixture prior and the DAG; see the module docstring."""

    def __init__(self, *, image: tuple[int, int] | None, curves: Mapping[str, int], physics: Mapping[str, str],
                 latent_dim: int, n_nodes: int, plan: str | Sequence[int], prior: str, means: str,
                 curve_hidden: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        self.latent_dim, self.n_nodes = latent_dim, n_nodes
        self.prior_kind, self.means_kind = prior, means
        self.has_image = image is not None
        self.curve_names = list(curves)
        self.physics_forms = dict(physics)
        k = 2 ** n_nodes
        self.encoders = nn.ModuleDict()
        self.decoders = nn.ModuleDict()
        self.aux = nn.ModuleDict()  # MLP decoders for physics curves, used only while pre-training
        self.experts = nn.ModuleDict()
        self.curve_log_sigma = nn.ParameterDict()
        if image is not None:
            c, s = image
            self.encoders["image"] = ConvEncoder(in_channels=c, image_size=s, latent_dim=latent_dim, plan=plan)
            self.decoders["image"] = ConvDecoder(out_channels=c, image_size=s, latent_dim=latent_dim, plan=plan)
        for name, length in curves.items():
            self.encoders[name] = MLP(length, 2 * latent_dim, curve_hidden)
            self.register_buffer(f"cmean_{name}", torch.zeros(length))
            self.register_buffer(f"cstd_{name}", torch.ones(length))
            if name in self.physics_forms:
                self.aux[name] = MLP(latent_dim, length, curve_hidden)
                self.experts[name] = PhysicsExpert(self.physics_forms[name], length, k)
            else:
                self.decoders[name] = MLP(latent_dim, length, curve_hidden)
                self.curve_log_sigma[name] = nn.Parameter(torch.zeros(()))
        self.dag = GraphGradientDAG(n_nodes) if prior == "dag" else None
        self.register_buffer("log_pi_free", torch.full((k,), -math.log(k)))
        self.register_buffer("outcomes", binary_outcomes(n_nodes))
        self.register_buffer("mu", torch.zeros(k, latent_dim))
        self.register_buffer("logvar", torch.zeros(k, latent_dim))

    # ------------------------------------------------------------------ helpers
    def curve_stats(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"cmean_{name}"), getattr(self, f"cstd_{name}")

    def log_pi(self) -> torch.Tensor:
        return self.dag.log_weights() if self.dag is not None else self.log_pi_free

    def encode(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Product of experts over the modalities present: (mu, logvar), each (B, D)."""
        precs, wmu = [], []
        for name, enc in self.encoders.items():
            x = batch[name]
            if name != "image":
                mean, std = self.curve_stats(name)
                x = (x - mean) / std
            out = enc(x)
            mu, lv = out if isinstance(out, tuple) else out.chunk(2, dim=1)
            lv = lv.clamp(-12.0, 8.0)
            p = torch.exp(-lv)
            precs.append(p)
            wmu.append(mu * p)
        prec = torch.stack(precs).sum(0)
        return torch.stack(wmu).sum(0) / prec, -torch.log(prec)

    def recon_nll(self, z: torch.Tensor, batch: Mapping[str, torch.Tensor], *, pretrain: bool) -> torch.Tensor:
        """(B,) negative log-likelihood of the modalities that z decodes (physics curves excluded
        after pre-training: they enter the mixture term)."""
        nll = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        if self.has_image:
            x = batch["image"]
            nll = nll + F.binary_cross_entropy_with_logits(self.decoders["image"](z), x, reduction="none").flatten(1).sum(1)
        for name in self.curve_names:
            mean, std = self.curve_stats(name)
            y = (batch[name] - mean) / std
            if name in self.decoders:
                ls = self.curve_log_sigma[name].clamp(-5.0, 3.0)
                pred = self.decoders[name](z)
            elif pretrain:
                ls = torch.zeros((), device=z.device)
                pred = self.aux[name](z)
            else:
                continue
            nll = nll + (0.5 * (y - pred).pow(2) / torch.exp(2 * ls) + ls + 0.5 * _LOG2PI).sum(1)
        return nll

    def physics_log_lik(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """(B, K) Σ over physics curves of log p(y | θ_c), or None without physics curves."""
        out = None
        for name, ex in self.experts.items():
            ll = ex.log_lik(batch[name])
            out = ll if out is None else out + ll
        return out

    def component_log_joint(self, z: torch.Tensor, batch: Mapping[str, torch.Tensor],
                            z_var: torch.Tensor | None = None, log_pi: torch.Tensor | None = None) -> torch.Tensor:
        """(B, K): log π_c + log N(z; μ_c, Σ_c) + log p(y_phys | c); ``log_pi`` if given, else :meth:`log_pi`."""
        lp = self.log_pi() if log_pi is None else log_pi
        lj = lp[None] + gaussian_log_density(z, self.mu, self.logvar, z_var)
        pl = self.physics_log_lik(batch)
        return lj if pl is None else lj + pl


# =============================================================================== estimator
class CausalPIMA:
    """causalPIMA (and its PIMA / single-modality baselines by option).

    Parameters
    ----------
    n_nodes : int
        Binary feature nodes n (K = 2^n mixture components).
    latent_dim : int or None
        Size of z; default max(8, 2n + 2).
    modalities : sequence of str or None
        Which modalities to use: "image" and/or curve names; None = every one in the dataset.
    physics : mapping curve name -> "linear" | "strain-hardening"
        Curves decoded by a physics expert (the others by an MLP of z).
    prior : "dag" (causalPIMA) or "free" (PIMA: free mixture weights, no DAG)
    means : "additive" (default; μ_c = a + Σ_j b_j Δ_j) or "free"
    pretrain_epochs, epochs : int
        Plain-VAE pre-training epochs, then joint (mixture + DAG) epochs.
    tau_start, tau_end : float
        Gate temperature, annealed geometrically over the joint epochs.
    lambda1 : float
        L1 weight on the soft adjacency (nats per sample).
    w_threshold : float
        |w_ij| (logit units) below which a hardened edge is dropped.
    em_restarts : int
        Random restarts of the EM that initialises the mixture on the pre-trained embedding; the
        one with the highest likelihood is kept. A restart can settle on a wrong assignment of
        clusters to joint outcomes (one node mixing two features), hence many restarts
        (docs/methods/causal_pima.md).
    dag_restarts : int
        After training, the DAG is re-learned this many times from random node scores on the
        final expected outcome counts (the same annealed objective, cheap: it sees only the 2^n
        counts); the hardened graph with the best penalized likelihood is kept, the jointly
        trained one included. The score order is a non-convex search: one run can settle on a
        wrong order and pay with an extra edge (docs/methods/causal_pima.md).
    """

    method_name = "causal-pima"

    def __init__(self, *, n_nodes: int = 3, latent_dim: int | None = None, modalities: Sequence[str] | None = None,
                 physics: Mapping[str, str] | None = None, prior: Literal["dag", "free"] = "dag",
                 means: Literal["additive", "free"] = "additive", pretrain_epochs: int = 20, epochs: int = 40,
                 batch_size: int = 64, lr: float = 1e-3, dag_lr: float = 0.05, dag_steps: int = 50,
                 tau_start: float = 1.0, tau_end: float = 0.05, lambda1: float = 0.01, w_threshold: float = 0.5,
                 em_restarts: int = 40, dag_restarts: int = 10, channel_plan: str | Sequence[int] = "synthetic", seed: int = 0,
                 device: str = "auto", progress: bool = False) -> None:
        self.n_nodes = n_nodes
        self.latent_dim = latent_dim
        self.modalities = modalities
        self.physics = physics
        self.prior = prior
        self.means = means
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.dag_lr = dag_lr
        self.dag_steps = dag_steps
        self.tau_start = tau_start
        self.tau_end = tau_end
        self.lambda1 = lambda1
        self.w_threshold = w_threshold
        self.em_restarts = em_restarts
        self.dag_restarts = dag_restarts
        self.channel_plan = channel_plan
        self.seed = seed
        self.device = device
        self.progress = progress

    _PARAMS = ("n_nodes", "latent_dim", "modalities", "physics", "prior", "means", "pretrain_epochs", "epochs",
               "batch_size", "lr", "dag_lr", "dag_steps", "tau_start", "tau_end", "lambda1", "w_threshold",
               "em_restarts", "dag_restarts", "channel_plan", "seed", "device", "progress")

    def get_params(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self._PARAMS}
        out["modalities"] = None if self.modalities is None else list(self.modalities)
        out["physics"] = None if self.physics is None else dict(self.physics)
        if not isinstance(self.channel_plan, str):
            out["channel_plan"] = list(self.channel_plan)
        return out

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        if not isinstance(self.n_nodes, int) or not 1 <= self.n_nodes <= 10:
            raise ValueError(f"n_nodes = {self.n_nodes}: must be an integer in 1..10 (2^n mixture components)")
        if self.prior not in ("dag", "free"):
            raise ValueError(f"prior = '{self.prior}': must be 'dag' or 'free'")
        if self.means not in ("additive", "free"):
            raise ValueError(f"means = '{self.means}': must be 'additive' or 'free'")
        for k in ("pretrain_epochs", "epochs"):
            if getattr(self, k) < 0:
                raise ValueError(f"{k} = {getattr(self, k)}: must be >= 0")
        if self.batch_size < 2:
            raise ValueError(f"batch_size = {self.batch_size}: must be >= 2")
        if not (0 < self.tau_end <= self.tau_start):
            raise ValueError(f"tau_end = {self.tau_end}, tau_start = {self.tau_start}: need 0 < tau_end <= tau_start")
        for name, form in (self.physics or {}).items():
            if form not in PHYSICS_FORMS:
                raise ValueError(f"physics decoder for '{name}': '{form}' is not one of {', '.join(PHYSICS_FORMS)}")

    def _resolve_modalities(self, ds: CrossModalDataset) -> tuple[bool, dict[str, int]]:
        avail = ["image"] + list(getattr(ds, "modalities", {}) or {})
        wanted = list(self.modalities) if self.modalities is not None else avail
        for m in wanted:
            if m not in avail:
                raise ValueError(f"{ds.source}: modality '{m}' not in the dataset (available: {', '.join(avail)})")
        for name in self.physics or {}:
            if name not in wanted or name == "image":
                raise ValueError(f"physics decoder for '{name}': not a curve modality in use ({', '.join(wanted)})")
        if not wanted:
            raise ValueError("no modality selected")
        curves = {m: int(ds.modalities[m].shape[1]) for m in wanted if m != "image"}
        return "image" in wanted, curves

    # ------------------------------------------------------------------ data
    def _arrays(self, ds: CrossModalDataset, idx=None) -> dict[str, torch.Tensor]:
        idx = np.arange(len(ds)) if idx is None else np.asarray(idx, dtype=int)
        out: dict[str, torch.Tensor] = {}
        if self.use_image_:
            out["image"] = torch.from_numpy(ds.images(idx)).to(self.device_)
        for name in self.curves_:
            out[name] = torch.from_numpy(np.asarray(ds.modalities[name][idx], dtype=np.float32)).to(self.device_)
        return out

    def _build_net(self) -> CausalPIMANet:
        return CausalPIMANet(image=(self.channels_, self.image_size_) if self.use_image_ else None,
                             curves=self.curves_, physics=dict(self.physics or {}), latent_dim=self.latent_dim_,
                             n_nodes=self.n_nodes, plan=self.channel_plan, prior=self.prior, means=self.means)

    # ------------------------------------------------------------------ fit
    def fit(self, ds: CrossModalDataset) -> "CausalPIMA":
        """Pre-train, initialise the mixture, train jointly; returns self.

        Learned state: ``net_``, ``graph_obj_`` (nodes f1..fn), ``adjacency_``, ``history_``.
        """
        self._validate()
        self.use_image_, self.curves_ = self._resolve_modalities(ds)
        self.latent_dim_ = int(self.latent_dim or max(8, 2 * self.n_nodes + 2))
        self.image_size_, self.channels_ = ds.image_size, ds.channels
        self.device_ = _resolve_device(self.device)
        if len(ds) < 2 ** self.n_nodes:
            raise ValueError(f"{ds.source}: {len(ds)} rows for {2 ** self.n_nodes} mixture components")
        data = self._arrays(ds)
        self.n_samples_ = len(ds)
        with torch.random.fork_rng(devices=[self.device_] if self.device_.type == "cuda" else []):
            torch.manual_seed(self.seed)
            self.net_ = self._build_net().to(self.device_)
            for name in self.curves_:
                mean, std = self.net_.curve_stats(name)
                y = data[name]
                mean.copy_(y.mean(0))
                std.copy_(y.std(0).clamp_min(1e-3 * float(y.std()) + 1e-8))
            self._train(data)
        self._finalise()
        return self

    def _batches(self, n: int, gen: torch.Generator):
        perm = torch.randperm(n, generator=gen)
        return [idx for idx in perm.split(self.batch_size) if len(idx) >= 2 or n < 2]

    def _train(self, data: dict[str, torch.Tensor]) -> None:
        net = self.net_
        n = len(next(iter(data.values())))
        gen = torch.Generator().manual_seed(self.seed + 1)
        params = [p for name, p in net.named_parameters() if not name.startswith("dag.")]
        opt = torch.optim.Adam(params, lr=self.lr)
        rows: list[dict[str, Any]] = []
        bar = fit_progress(self.progress, self.pretrain_epochs + self.epochs, "fit causal-pima", _describe)
        for epoch in range(self.pretrain_epochs):
            sums = self._epoch(data, n, gen, opt, pretrain=True)
            rows.append({"phase": "pretrain", "epoch": epoch + 1, **sums})
            _check_finite(rows[-1])
            if bar is not None:
                bar.update(rows[-1])
        self._init_mixture(data)
        dag_opt = torch.optim.Adam(net.dag.parameters(), lr=self.dag_lr) if net.dag is not None else None
        if net.dag is not None:
            self._dag_mstep(dag_opt, self.tau_start)
        for epoch in range(self.epochs):
            tau = self.tau_start * (self.tau_end / self.tau_start) ** (epoch / max(1, self.epochs - 1))
            if net.dag is not None:
                net.dag.set_tau(tau)
            sums = self._epoch(data, n, gen, opt, pretrain=False)
            self._em_step(data)
            if net.dag is not None:
                self._dag_mstep(dag_opt, tau)
            edges = int((net.dag.hard_adjacency(self.w_threshold) != 0).sum()) if net.dag is not None else 0
            rows.append({"phase": "joint", "epoch": self.pretrain_epochs + epoch + 1, **sums, "tau": tau,
                         "edges": edges})
            _check_finite(rows[-1])
            if bar is not None:
                bar.update(rows[-1])
        if bar is not None:
            bar.close()
        if net.dag is not None and self.dag_restarts > 0:
            self._restart_dag()
        self.history_ = pd.DataFrame(rows)

    def _refit_structure(self, mask: np.ndarray, init: GraphGradientDAG | None = None,
                         steps: int = 300) -> tuple[float, torch.Tensor, torch.Tensor]:
        """Maximum-likelihood bias and weights for a fixed acyclic edge set on the expected counts.

        Returns (BIC in nats per sample, weights (n, n), bias (n,)); BIC = −Σ_c π̂_c log π_c +
        log(N)/(2N) · (n + #edges): the parameters of the logistic conditionals.
        """
        dev = self.net_.mu.device
        target = self._dag_target.to(dev).double()
        m = torch.as_tensor(mask, dtype=torch.float64, device=dev)
        w = (init.weights.detach().double().clone() if init is not None else torch.zeros_like(m)).requires_grad_(True)
        b = (init.bias.detach().double().clone() if init is not None else torch.zeros(self.n_nodes, dtype=torch.float64,
                                                                                       device=dev)).requires_grad_(True)
        outcomes = self.net_.outcomes.double()
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

        def nll() -> torch.Tensor:
            logits = b[None, :] + outcomes @ (w * m)
            logc = outcomes * F.logsigmoid(logits) + (1 - outcomes) * F.logsigmoid(-logits)
            return -(target * torch.log_softmax(logc.sum(1), 0)).sum()

        def closure():
            opt.zero_grad()
            loss = nll()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            val = float(nll())
        n_obs = max(int(self.n_samples_), 2)
        bic = val + math.log(n_obs) / (2 * n_obs) * (self.n_nodes + float(m.sum()))
        return bic, (w * m).detach().float(), b.detach().float()

    def _select_structure(self, candidates: list[np.ndarray]) -> tuple[np.ndarray, float, torch.Tensor, torch.Tensor]:
        """Refine each candidate DAG by hill climbing on BIC (delete, reverse or add one edge, keeping
        the graph acyclic); equal-score moves (Markov-equivalent graphs) are taken tabu-style for a
        few steps, since a dense DAG in a wrong order reaches a sparser true one only through its
        equivalence class. Returns the best graph found."""
        import networkx as nx

        seen: dict[bytes, tuple[float, torch.Tensor, torch.Tensor]] = {}

        def score(mask: np.ndarray):
            key = mask.astype(bool).tobytes()
            if key not in seen:
                seen[key] = self._refit_structure(mask)
            return seen[key]

        def acyclic(mask: np.ndarray) -> bool:
            g = nx.DiGraph()
            g.add_nodes_from(range(len(mask)))
            g.add_edges_from(zip(*np.nonzero(mask)))
            return nx.is_directed_acyclic_graph(g)

        def neighbours(mask: np.ndarray):
            n = len(mask)
            for i in range(n):
                for j in range(n):
                    if i == j:
                        continue
                    if mask[i, j]:
                        t = mask.copy()
                        t[i, j] = 0
                        yield t  # delete
                        t = t.copy()
                        t[j, i] = 1
                        if acyclic(t):
                            yield t  # reverse
                    elif not mask[j, i]:
                        t = mask.copy()
                        t[i, j] = 1
                        if acyclic(t):
                            yield t  # add

        best_mask, best = None, None
        for cand in candidates:
            mask = (cand != 0).astype(float)
            cur = score(mask)
            visited = {mask.astype(bool).tobytes()}
            local_mask, local = mask, cur
            sideways = 0
            while True:
                moves = [(score(t), t) for t in neighbours(mask) if t.astype(bool).tobytes() not in visited]
                if not moves:
                    break
                r, t = min(moves, key=lambda mv: (mv[0][0], int(mv[1].sum())))
                if r[0] < local[0] - 1e-9:
                    sideways = 0
                elif r[0] <= local[0] + 1e-6 and sideways < 4 * self.n_nodes:
                    sideways += 1  # a Markov-equivalent graph (equal score): walk the class, tabu-style
                else:
                    break
                mask, cur = t, r
                visited.add(mask.astype(bool).tobytes())
                if cur[0] < local[0] - 1e-9 or (cur[0] <= local[0] + 1e-9 and mask.sum() < local_mask.sum()):
                    local_mask, local = mask, cur
            if best is None or local[0] < best[0] - 1e-9:
                best_mask, best = local_mask, local
        assert best is not None and best_mask is not None
        return best_mask, best[0], best[1], best[2]

    def _restart_dag(self) -> None:
        """Re-learn the DAG from random scores on the final counts; keep the best hardened graph.

        Every run (the jointly trained DAG and ``dag_restarts`` fresh ones) gives a hardened DAG;
        each is refined by hill climbing on BIC (one-edge deletions, reversals and additions, the
        weights refitted by maximum likelihood on the expected counts). L1 alone cannot choose
        between them: it charges edge *magnitudes*, and a denser DAG in a wrong order can have a
        smaller total weight than the true one (docs/methods/causal_pima.md).
        """
        net = self.net_
        candidates = [net.dag.hard_adjacency(self.w_threshold)]
        stages = max(2, min(self.epochs, 20))
        for _ in range(self.dag_restarts):
            cand = GraphGradientDAG(self.n_nodes).to(net.mu.device)
            opt = torch.optim.Adam(cand.parameters(), lr=self.dag_lr)
            saved, net.dag = net.dag, cand
            try:
                for k in range(stages):
                    self._dag_mstep(opt, self.tau_start * (self.tau_end / self.tau_start) ** (k / (stages - 1)))
            finally:
                net.dag = saved
            candidates.append(cand.hard_adjacency(self.w_threshold))
        mask, bic, w, b = self._select_structure(candidates)
        # scores that realise the chosen DAG's order, weights/bias at their maximum likelihood
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(range(self.n_nodes))
        g.add_edges_from(zip(*np.nonzero(mask)))
        order = list(nx.lexicographical_topological_sort(g))
        with torch.no_grad():
            for rank, node in enumerate(order):
                net.dag.scores[node] = float(rank)
            net.dag.weights.copy_(w.to(net.dag.weights.device))
            net.dag.bias.copy_(b.to(net.dag.bias.device))
            net.dag.set_tau(self.tau_end)
        self.dag_bic_ = bic

    def _epoch(self, data, n, gen, opt, *, pretrain: bool) -> dict[str, float]:
        net = self.net_
        net.train()
        sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0}
        nb = 0
        # the DAG is updated only in its M-step, so π is constant over the epoch: compute it once,
        # without a graph into the DAG's parameters (they are not in this optimiser)
        log_pi = None if pretrain else net.log_pi().detach()
        for idx in self._batches(n, gen):
            idx = idx.to(self.device_)
            batch = {k: v[idx] for k, v in data.items()}
            mu, lv = net.encode(batch)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * lv)
            rec = net.recon_nll(z, batch, pretrain=pretrain)
            if pretrain:
                kl = 0.5 * (mu.pow(2) + lv.exp() - 1 - lv).sum(1)
            else:
                entropy = 0.5 * (1 + _LOG2PI + lv).sum(1)
                kl = -entropy - torch.logsumexp(net.component_log_joint(z, batch, log_pi=log_pi), dim=1)
            loss = (rec + kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 100.0)
            opt.step()
            sums["loss"] += float(loss.detach())
            sums["rec"] += float(rec.mean().detach())
            sums["kl"] += float(kl.mean().detach())
            nb += 1
        return {k: v / max(nb, 1) for k, v in sums.items()}

    @torch.no_grad()
    def _posterior(self, data: dict[str, torch.Tensor], batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        self.net_.eval()
        n = len(next(iter(data.values())))
        ms, vs = [], []
        for s in range(0, n, batch_size):
            mu, lv = self.net_.encode({k: v[s:s + batch_size] for k, v in data.items()})
            ms.append(mu)
            vs.append(lv.exp())
        return torch.cat(ms), torch.cat(vs)

    @torch.no_grad()
    def _responsibilities(self, data, m=None, s2=None) -> torch.Tensor:
        """(N, K) γ_ic from the analytic E_q log N(z; μ_c, Σ_c), log π_c and the physics curves."""
        if m is None:
            m, s2 = self._posterior(data)
        lj = self.net_.component_log_joint(m, data, s2)
        return torch.softmax(lj, dim=1)

    @torch.no_grad()
    def _init_mixture(self, data: dict[str, torch.Tensor]) -> None:
        """EM with restarts on the pre-trained embedding (latents only), then the physics experts."""
        net = self.net_
        m, s2 = self._posterior(data)
        m64, s64 = m.double(), s2.double()
        outcomes = net.outcomes.double()
        k, n = outcomes.shape[0], len(m64)
        best, best_ll = None, -math.inf
        log_pi = torch.full((k,), -math.log(k), dtype=torch.float64, device=m.device)
        for _ in range(max(1, self.em_restarts)):
            if self.means == "additive":
                i1 = torch.randint(n, (self.n_nodes,)).to(m.device)
                i2 = torch.randint(n, (self.n_nodes,)).to(m.device)
                delta = m64[i1] - m64[i2]
                base = m64.mean(0) - 0.5 * delta.sum(0)
                mu = base[None] + outcomes @ delta
            else:
                mu = m64[torch.randperm(n)[:k].to(m.device)]
            logvar = torch.log(m64.var(0, keepdim=True).expand(k, -1) / k + _VAR_FLOOR).clone()
            lp = log_pi.clone()
            for _it in range(100):
                lj = lp[None] + gaussian_log_density(m64, mu, logvar, s64)
                gamma = torch.softmax(lj, dim=1)
                mu, logvar, _ = em_update(m64, s64, gamma, outcomes, logvar, means=self.means)
                lp = torch.log(gamma.mean(0).clamp_min(1e-8))
                lp = lp - torch.logsumexp(lp, 0)
            ll = float(torch.logsumexp(lp[None] + gaussian_log_density(m64, mu, logvar, s64), dim=1).sum())
            if ll > best_ll:
                best_ll, best = ll, (mu, logvar, lp)
        mu, logvar, lp = best
        net.mu.copy_(mu.float())
        net.logvar.copy_(logvar.float())
        net.log_pi_free.copy_(lp.float())
        self._dag_target = lp.exp().float()
        gamma = torch.softmax(lp[None] + gaussian_log_density(m64, mu, logvar, s64), dim=1).float()
        self._fit_experts(data, gamma)
        self._em_step(data)

    @torch.no_grad()
    def _fit_experts(self, data, gamma: torch.Tensor) -> None:
        for name, ex in self.net_.experts.items():
            y = data[name].double()
            g = gamma.double()
            nk = g.sum(0).clamp_min(1e-8)
            ybar = (g.T @ y) / nk[:, None]
            params = torch.as_tensor(fit_expert(ex.form, ex.t.cpu().numpy(), ybar.cpu().numpy()), dtype=torch.float32)
            keep = (g.sum(0) > 1e-6).cpu()
            ex.params[keep] = params[keep].to(ex.params.device)
            e = ex.curves().double()
            cov = torch.zeros(y.shape[1], y.shape[1], dtype=torch.float64, device=y.device)
            for c in range(e.shape[0]):
                r = y - e[c]
                cov += (r * g[:, c:c + 1]).T @ r
            cov /= len(y)
            ridge = 1e-3 * float(torch.diagonal(cov).mean()) + 1e-10
            cov += ridge * torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
            ex.chol.copy_(torch.linalg.cholesky(cov).float())

    @torch.no_grad()
    def _em_step(self, data) -> None:
        """One closed-form M-step: component means/variances, physics experts, free weights."""
        net = self.net_
        m, s2 = self._posterior(data)
        gamma = self._responsibilities(data, m, s2)
        mu, logvar, _ = em_update(m.double(), s2.double(), gamma.double(), net.outcomes.double(),
                                  net.logvar.double(), means=self.means)
        net.mu.copy_(mu.float())
        net.logvar.copy_(logvar.float())
        self._fit_experts(data, gamma)
        gamma = self._responsibilities(data, m, s2)
        counts = gamma.mean(0)
        net.log_pi_free.copy_(torch.log(counts.clamp_min(1e-8)) - torch.log(counts.clamp_min(1e-8).sum()))
        self._dag_target = counts

    def _dag_mstep(self, opt: torch.optim.Optimizer, tau: float) -> None:
        """Block-coordinate update of the DAG: maximise Σ_c N̄_c log π_c / N − λ Σ|A| by Adam."""
        dag = self.net_.dag
        target = self._dag_target.detach().to(dag.weights.device)
        dag.set_tau(tau)
        for _ in range(self.dag_steps):
            loss = -(target * dag.log_weights()).sum() + self.lambda1 * dag.l1()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    # ------------------------------------------------------------------ results
    def _node_names(self) -> list[str]:
        return [f"f{j + 1}" for j in range(self.n_nodes)]

    def _finalise(self) -> None:
        self.net_.eval()
        names = self._node_names()
        if self.net_.dag is not None:
            w = self.net_.dag.hard_adjacency(self.w_threshold)
        else:
            w = np.zeros((self.n_nodes, self.n_nodes))
        self.adjacency_ = pd.DataFrame(w, index=names, columns=names)
        self.graph_obj_ = Graph.from_adjacency(w, [Node(n, "latent") for n in names], method=self.method_name)

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError("this CausalPIMA instance is not fitted yet; call fit(dataset) first")

    def _check_compatible(self, ds: CrossModalDataset) -> None:
        if self.use_image_ and (ds.channels, ds.image_size) != (self.channels_, self.image_size_):
            raise ValueError(f"{ds.source}: images are {ds.channels}×{ds.image_size}² but the model was fitted on "
                             f"{self.channels_}×{self.image_size_}²")
        for name, length in self.curves_.items():
            arr = (getattr(ds, "modalities", {}) or {}).get(name)
            if arr is None or arr.shape[1] != length:
                raise ValueError(f"{ds.source}: needs modality '{name}' with {length} columns")

    def _batched(self, ds: CrossModalDataset, rows: Sequence[int], batch_size: int = 256):
        for s in range(0, len(rows), batch_size):
            yield self._arrays(ds, rows[s:s + batch_size])

    @torch.no_grad()
    def embed(self, ds: CrossModalDataset) -> np.ndarray:
        """Posterior means of z, (N, latent_dim)."""
        self._check_fitted()
        self._check_compatible(ds)
        self.net_.eval()
        return torch.cat([self.net_.encode(b)[0].cpu() for b in self._batched(ds, list(range(len(ds))))]).double().numpy()

    @torch.no_grad()
    def responsibilities(self, ds: CrossModalDataset) -> np.ndarray:
        """(N, K) posterior probability of each joint outcome (component)."""
        self._check_fitted()
        self._check_compatible(ds)
        out = [self._responsibilities(b).cpu() for b in self._batched(ds, list(range(len(ds))))]
        return torch.cat(out).double().numpy()

    def predict(self, ds: CrossModalDataset) -> np.ndarray:
        """Most probable joint outcome per sample, (N, n) of 0/1."""
        c = self.responsibilities(ds).argmax(1)
        return self.net_.outcomes.cpu().numpy()[c].astype(int)

    def transform(self, ds: CrossModalDataset) -> np.ndarray:
        """p(f_j = 1 | sample), (N, n): the node outcomes' posterior probabilities."""
        return np.clip(self.responsibilities(ds) @ self.net_.outcomes.cpu().double().numpy(), 0.0, 1.0)

    def _node_index(self, name: str) -> int:
        names = self._node_names()
        if name not in names:
            raise ValueError(f"unknown node '{name}' (nodes: {', '.join(names)})")
        return names.index(name)

    @torch.no_grad()
    def counterfactual(self, ds: CrossModalDataset, values: Mapping[str, Any], *, rows: Sequence[int] | None = None,
                       seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
        """Every modality regenerated under do(f_j = b).

        Each sample keeps its own offset from its component mean (z' = z − μ_c + μ_c'); the
        intervened nodes take the given values, their descendants in the learned DAG are redrawn
        from their conditionals (``seed`` fixes those draws), other nodes keep their outcome.

        Returns ``{"original", "reconstruction", "counterfactual"}`` images (N, C, H, W) (when the
        image is modelled), ``"curves": {name: {"original", "reconstruction", "counterfactual"}}``,
        and ``"outcomes"`` / ``"outcomes_cf"`` (N, n) of 0/1.
        """
        self._check_fitted()
        self._check_compatible(ds)
        rows = list(range(len(ds))) if rows is None else [int(r) for r in rows]
        do: dict[int, int] = {}
        for name, v in values.items():
            j = self._node_index(name)
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"node '{name}': value '{v}' must be 0 or 1") from None
            if fv not in (0.0, 1.0):
                raise ValueError(f"node '{name}': value '{v}' must be 0 or 1")
            do[j] = int(fv)
        net = self.net_
        net.eval()
        adj = net.dag.hard_adjacency(self.w_threshold) if net.dag is not None else np.zeros((self.n_nodes,) * 2)
        bias = net.dag.bias if net.dag is not None else torch.zeros(self.n_nodes)
        gen = torch.Generator().manual_seed(int(seed))
        powers = (2 ** torch.arange(self.n_nodes, device=self.device_)).float()
        res: dict[str, list] = {"original": [], "reconstruction": [], "counterfactual": [], "outcomes": [],
                                "outcomes_cf": []}
        curves: dict[str, dict[str, list]] = {n: {"original": [], "reconstruction": [], "counterfactual": []}
                                              for n in self.curves_}
        for b in self._batched(ds, rows, batch_size):
            m, lv = net.encode(b)
            c = self._responsibilities(b, m, lv.exp()).argmax(1)
            bits = net.outcomes[c]
            bits_cf = sample_outcomes(bits.cpu(), adj, bias.cpu(), do, generator=gen).to(self.device_)
            c_cf = (bits_cf @ powers).round().long()
            z_cf = m - net.mu[c] + net.mu[c_cf]
            res["outcomes"].append(bits.cpu())
            res["outcomes_cf"].append(bits_cf.cpu())
            if self.use_image_:
                res["original"].append(b["image"].cpu())
                res["reconstruction"].append(torch.sigmoid(net.decoders["image"](m)).cpu())
                res["counterfactual"].append(torch.sigmoid(net.decoders["image"](z_cf)).cpu())
            for name in self.curves_:
                curves[name]["original"].append(b[name].cpu())
                if name in net.experts:
                    e = net.experts[name].curves()
                    rec, cf = e[c], e[c_cf]
                else:
                    mean, std = net.curve_stats(name)
                    rec = net.decoders[name](m) * std + mean
                    cf = net.decoders[name](z_cf) * std + mean
                curves[name]["reconstruction"].append(rec.cpu())
                curves[name]["counterfactual"].append(cf.cpu())
        out: dict[str, Any] = {k: torch.cat(v).numpy() for k, v in res.items() if v}
        out["outcomes"] = out["outcomes"].astype(int)
        out["outcomes_cf"] = out["outcomes_cf"].astype(int)
        out["curves"] = {n: {k: torch.cat(v).numpy() for k, v in d.items()} for n, d in curves.items()}
        return out

    def intervene(self, values: Mapping[str, Any], ds: CrossModalDataset, *, rows: Sequence[int] | None = None,
                  seed: int = 0) -> np.ndarray:
        """Images under do(values) for the given rows, (N, C, H, W) in [0, 1]."""
        if not self.use_image_:
            raise ValueError("this model was fitted without the image modality; use counterfactual() for curves")
        return self.counterfactual(ds, values, rows=rows, seed=seed)["counterfactual"]

    # ------------------------------------------------------------------ persistence
    def _meta(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "method": self.method_name, "xcausal_version": __version__,
                "params": self.get_params(), "use_image": self.use_image_, "curves": self.curves_,
                "latent_dim": self.latent_dim_, "image_size": self.image_size_, "channels": self.channels_}

    def save(self, path: str | Path) -> None:
        """Write ``path`` (tensors only, loadable with weights_only=True) and ``path.json`` (config)."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)  # like the CLI's run directory
        torch.save({f"net.{k}": v.detach().cpu() for k, v in self.net_.state_dict().items()}, path)
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(self._meta(), indent=2))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> "CausalPIMA":
        from xcausal.io import checkpoint_errors, read_checkpoint_meta

        path = Path(path)
        meta = read_checkpoint_meta(path, cls.method_name, FORMAT_VERSION)
        with checkpoint_errors(path):
            params = dict(meta["params"])
            params["device"] = device
            if isinstance(params.get("channel_plan"), list):
                params["channel_plan"] = tuple(params["channel_plan"])
            obj = cls(**params)
            obj.use_image_, obj.curves_ = bool(meta["use_image"]), {k: int(v) for k, v in meta["curves"].items()}
            obj.latent_dim_, obj.image_size_, obj.channels_ = meta["latent_dim"], meta["image_size"], meta["channels"]
            obj.device_ = _resolve_device(device)
            obj.net_ = load_net_state(obj._build_net(), path, obj.device_)
            obj._finalise()
            return obj

    def run_result(self, ds: CrossModalDataset, *, extra_config: Mapping[str, Any] | None = None):
        """The :class:`xcausal.run.RunResult` for this fit on ``ds``."""
        from xcausal.run import RunResult

        net = self.net_
        extra: dict[str, Any] = {
            "mixture": {"log_pi": net.log_pi().detach().cpu().tolist(), "mu": net.mu.cpu().tolist()},
            "scores": net.dag.scores.detach().cpu().tolist() if net.dag is not None else None,
        }
        config = {"method": self.method_name, "params": self.get_params(),
                  "resolved": {"latent_dim": self.latent_dim_, "modalities": (["image"] if self.use_image_ else [])
                               + list(self.curves_), "device": str(self.device_)},
                  "data": ds.summary(), "model": extra, **(extra_config or {})}
        return RunResult(graph=self.graph_obj_, latents=self.transform(ds), config=config, history=self.history_,
                         save_checkpoint=self.save)


def _check_finite(row: Mapping[str, Any]) -> None:
    bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise FloatingPointError(f"loss term {', '.join(bad)} became NaN/inf at epoch {row.get('epoch')}; "
                                 "try a smaller --lr")


def _describe(row: Mapping[str, Any]) -> str:
    info = f"{row['phase']} loss={row['loss']:.4g}"
    if "edges" in row:
        info += f" tau={row['tau']:.3g} edges={row['edges']}"
    return info


class PIMA(CausalPIMA):
    """PIMA baseline (Trask et al. 2022): the same multimodal VAE and physics experts with a
    Gaussian mixture of K = 2^n free components — free weights (closed-form M-step), free means,
    no DAG. Its "nodes" f1..fn are the bits of the component index (arbitrary labels), and its
    graph has no edges; it measures what the DAG and the additive node structure add."""

    method_name = "pima"

    def __init__(self, *, prior: Literal["dag", "free"] = "free", means: Literal["additive", "free"] = "free",
                 **kwargs: Any) -> None:
        super().__init__(prior=prior, means=means, **kwargs)
