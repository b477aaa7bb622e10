"""CMCL's objective, term by term: the two ELBOs, the DAG's likelihood and acyclicity penalty, the
anchor, and the counterfactual contrastive regularizer CR with the counterfactual latents it needs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import torch
from torch.nn import functional as F

from xcausal.models.cmcl.anchor import anchor_pixels
from xcausal.structure import h_expm, h_logdet

if TYPE_CHECKING:
    from xcausal.models.cmcl.estimator import CMCL


def bce(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) under a Bernoulli likelihood, summed over pixels, mean over the batch."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)


def gauss(logits: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """-log N(x; sigmoid(logits), sigma²) up to a constant, summed over pixels, mean over the batch."""
    return 0.5 * (torch.sigmoid(logits) - x).pow(2).sum() / (sigma ** 2 * len(x))


def kl_std(mu: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mu.pow(2) + lv.exp() - 1.0 - lv).sum() / len(mu)


def kl_gauss(mq, lq, mp, lp) -> torch.Tensor:
    return 0.5 * (lp - lq + (lq.exp() + (mq - mp).pow(2)) / lp.exp() - 1.0).sum() / len(mq)



@dataclass
class CRBatch:
    """What CR needs beyond this process's rows: the encoded variables of the batch's first
    ``cr_batch`` rows (all processes'), this process's place, and CR's generator."""

    u: torch.Tensor
    rank: int
    world: int
    gen: torch.Generator | None


def reconstruction(model: CMCL, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The image's negative log-likelihood under ``model.likelihood``."""
    logits = logits.float()
    return bce(logits, x) if model.likelihood == "bernoulli" else gauss(logits, x, model.pixel_sigma)

def acyclicity(model: CMCL, w: torch.Tensor) -> torch.Tensor:
    """h(W) by ``model.h_func``: 0 exactly when W is a DAG."""
    return h_logdet(w) if model.h_func == "logdet" else h_expm(w)


def dag_input(model: CMCL, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The DAG's columns [encoded variables, latents] (latents standardised unless the DAG is the prior)."""
    zz = z if model._dag_prior else model.net_.znorm(z)
    return torch.cat([model.encoding_.dag_columns(u), zz], dim=1)


def step_losses(model: CMCL, x, u, alm, t_parts, *, cr: bool, kl_w: float, anchor=None, anchor_w: float = 0.0,
                 noise: tuple[torch.Tensor, torch.Tensor] | None = None, cr_ctx: "CRBatch | None" = None,
                 share: float = 1.0, world: int = 1) -> dict[str, torch.Tensor]:
    """Loss terms of one step on this process's rows (``x``, ``u``) of the batch, each weighted
    by this process's part: terms averaged over samples by ``share`` (its fraction of the batch
    rows), terms of the parameters alone (L2, the acyclicity penalty, h) by 1 / ``world``, CR by
    its share of CR's pairs. Summed over processes they are the whole batch's terms."""
    net = model.net_
    enc = model.encoding_
    t0 = time.perf_counter()
    u_net = enc.net_columns(u)
    e = net.encode(x, u_net, sample=True, noise=noise)
    rec0 = reconstruction(model, net.dec0(e["z0"]), x)
    kl0 = kl_std(e["mu0"].float(), e["lv0"].float())
    loss = rec0 + kl_w * kl0
    terms = {"rec0": rec0, "kl0": kl0}
    if anchor is not None:
        src = (anchor_pixels(x.float()) - anchor[0]) @ anchor[1]
        l_anchor = (e["muq"].float() - src).pow(2).sum(1).mean()
        loss = loss + anchor_w * l_anchor
        terms["anchor"] = l_anchor
    d = len(enc.variables)
    rec = reconstruction(model, net.dec(e["z"]), x) if net.use_cm else None
    t1 = time.perf_counter()
    # the DAG in full precision (its acyclicity function and NLLs are sensitive to rounding)
    with torch.autocast(device_type=x.device.type, enabled=False):
        zq = {k: e[k].float() for k in ("z", "muq", "lvq")}
        if model._dag_prior:
            node_nll = net.dag.node_nll(dag_input(model, u, zq["z"]))
            # -log p(z | pa(z)) - H(q(z | x)), the KL to the DAG prior up to constants
            kl = node_nll[:, d:].sum(1).mean() - 0.5 * zq["lvq"].sum(1).mean()
            loss = loss + rec + kl_w * kl
            # the variables' terms get the same warm-up weight as the latents', so neither
            # orientation is cheaper while the KL ramps up
            nll = kl_w * node_nll[:, :d].sum(1).mean()
            terms.update(rec=rec, kl=kl)
        else:
            if net.use_cm:
                mp, lp = net.prior_params(u_net)
                kl = kl_gauss(zq["muq"], zq["lvq"], mp.float(), lp.float())
                loss = loss + rec + kl_w * kl
                terms.update(rec=rec, kl=kl)
            nll = net.dag.node_nll(dag_input(model, u, zq["muq"])).sum(1).mean()
        w = net.dag.adjacency()
        # the L1 term is applied as a proximal step after opt.step() (see the trainer): a subgradient
        # leaves absent edges jittering at ~lr, so h(W) stalls and rho grows until it crushes true edges
        l_params = model.lambda2 * net.dag.l2_reg()
        h = acyclicity(model, w)
        if alm is not None:
            l_params = l_params + alm.penalty(h)
        loss = share * (loss + model.dag_weight * nll) + model.dag_weight * l_params / world
        terms = {k: share * v.detach() for k, v in terms.items()}
        terms.update(dag_nll=share * nll.detach(), h_batch=h.detach() / world)
        t2 = time.perf_counter()
        if cr:
            l_cr = cr_loss(model, u, e, w.detach(), cr_ctx)
            if l_cr is not None:
                loss = loss + model.cr_weight * l_cr
                terms["cr"] = l_cr.detach()
    t3 = time.perf_counter()
    t_parts["vae"] += t1 - t0
    t_parts["dag"] += t2 - t1
    t_parts["cr"] += t3 - t2
    terms["loss"] = loss
    return terms

# ------------------------------------------------------------------ CR
def omega(model: CMCL, w: np.ndarray | torch.Tensor) -> tuple[list[int], list[int]]:
    """Ω+ (variables that are parents of a latent) and Ω- (children of a latent), by index."""
    w = np.abs(np.asarray(w.cpu() if isinstance(w, torch.Tensor) else w)) > model.w_threshold
    d = len(model.encoding_.variables)
    plus = [i for i in range(d) if w[i, d:].any()]
    minus = [i for i in range(d) if w[d:, i].any() and i not in plus]
    return plus, minus

def cr_loss(model: CMCL, u, e, w, ctx: "CRBatch | None" = None) -> torch.Tensor | None:
    """Eq. 12-13 on the first ``cr_batch`` rows of the batch: for each variable in Ω+ (label 1)
    and Ω- (label 0), give those rows another row's value of it (a permutation from ``ctx.gen``),
    regenerate and re-encode, and classify the change of representation. Returns this
    process's share of the mean cross-entropy (its rows r, r+W, ... among the CR rows)."""
    plus, minus = omega(model, w)
    if not plus or not minus:
        return None  # a classifier needs both classes; CR is inactive until both exist
    net = model.net_
    if ctx is None:  # one process, draws from the global generator
        k = min(model.cr_batch, len(u))
        ctx = CRBatch(u=u[:k], rank=0, world=1, gen=None)
    k = len(ctx.u)
    local = torch.arange(ctx.rank, k, ctx.world, device=u.device)  # global CR positions of my rows
    mine = torch.arange(len(local), device=u.device)  # ... and their rows in my batch
    pool = plus + minus
    if model.cr_vars != "all" and len(pool) > model.cr_vars:
        # this step's share of the variables, drawn uniformly without replacement: the mean over
        # the drawn pairs has the expectation of the mean over all of them
        drawn = {pool[int(t)] for t in torch.randperm(len(pool), generator=ctx.gen)[:model.cr_vars]}
        plus, minus = [i for i in plus if i in drawn], [i for i in minus if i in drawn]
    reps, labels = [], []
    for group, label in ((plus, 1.0), (minus, 0.0)):
        for i in group:
            p = torch.randperm(k, generator=ctx.gen).to(u.device)
            if not len(local):
                continue
            u_cf = u[mine].clone()
            u_cf[:, i] = ctx.u[p[local], i]  # another sample's value
            z_cf = counterfactual_z(model, u[mine], e["muq"][mine].float(), u_cf)
            x_cf = torch.sigmoid(net.decode(z_cf))
            e_cf = net.encode(x_cf, model.encoding_.net_columns(u_cf), sample=False)
            reps.append(e_cf["muq"].float() - e["muq"][mine].float())
            labels.append(torch.full((len(local), 1), label, device=u.device))
    n_pairs = k * (len(plus) + len(minus))
    if not reps:
        return sum(q.sum() for q in net.cls.parameters()) * 0.0  # no CR rows here: zero, same gradients
    logits = net.cls(torch.cat(reps)).float()
    return F.binary_cross_entropy_with_logits(logits, torch.cat(labels), reduction="sum") / n_pairs

# ------------------------------------------------------------------ counterfactuals
def counterfactual_z(model: CMCL, u: torch.Tensor, muq: torch.Tensor, u_cf: torch.Tensor) -> torch.Tensor:
    """Abduction-action-prediction on the learned DAG: keep each latent's residual, change
    the variables, recompute descendants in topological order. Returns latents in model scale."""
    net = model.net_
    d = len(model.encoding_.variables)
    m = model.n_latents_
    v = dag_input(model, u, muq)
    v_cf = torch.cat([model.encoding_.dag_columns(u_cf), v[:, d:]], dim=1)
    changed = (u_cf != u).any(0)
    if not bool(changed.any()):
        return muq
    w = net.dag.adjacency().detach().abs().cpu().numpy() > model.w_threshold
    g = nx.DiGraph(w.astype(int))
    start = [i for i in range(d) if bool(changed[i])]
    desc = set().union(*(nx.descendants(g, i) for i in start)) if start else set()
    order = [j for j in nx.topological_sort(g) if j in desc] if nx.is_directed_acyclic_graph(g) else sorted(desc)
    pred = net.dag.predict_continuous(v)  # (N, d+m) predicted means of continuous nodes
    for j in order:
        if j < d:
            continue  # discrete/structured descendants keep their factual values (they do not touch the image)
        pred_cf = net.dag.predict_continuous(v_cf)
        v_cf = v_cf.clone()
        v_cf[:, j] = pred_cf[:, j] + (v[:, j] - pred[:, j])
    z_std = v_cf[:, d:]
    bn = net.znorm
    if model._dag_prior:
        out = z_std
    else:
        if bn.training:
            mean, var = muq.mean(0), muq.var(0, unbiased=False)
        else:
            mean, var = bn.running_mean, bn.running_var
        out = z_std * torch.sqrt(var + bn.eps) + mean
    keep = torch.ones(m, dtype=torch.bool, device=out.device)
    for j in order:
        if j >= d:
            keep[j - d] = False
    return torch.where(keep, muq, out)
