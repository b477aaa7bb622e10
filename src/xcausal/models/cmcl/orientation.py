"""Orientation of variable-latent pairs by a pairwise score, shared by training and the final refit.

The DAG's own likelihood barely separates the two directions of a near-linear pair, so each
continuous variable-latent pair with an edge in play is oriented by the pairwise score
``anm_method`` (:func:`xcausal.structure.anm.anm_direction`), and only that direction stays allowed.
:func:`orient_pairs` is the one pair loop; :func:`orient_during_training` and
:func:`orientation_mask` (the refit) decide which pairs it scores and apply its verdicts. To change
the score itself, see :mod:`xcausal.structure.anm`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from xcausal.data.dataset import CrossModalDataset, Variable
from xcausal.nn.blocks import POSE_LATENTS
from xcausal.types import VarType

if TYPE_CHECKING:
    from xcausal.models.cmcl.estimator import CMCL

logger = logging.getLogger("xcausal.models.cmcl")


@dataclass(frozen=True)
class PairVerdict:
    """The score's verdict on one pair: ``direction`` 1 for variable -> latent, else latent -> variable."""

    variable: int  # node index of the variable
    latent: int  # node index of the latent (number of variables + latent column)
    direction: int
    score_uz: float
    score_zu: float


def discrete_strata(variables: Sequence[Variable], u: np.ndarray, zj: np.ndarray) -> np.ndarray | None:
    """Joint levels (N,) of the binary / categorical variables associated with the latent values
    ``zj`` (one-way ANOVA across the variable's levels, p < 0.01); None when there are none. ``u``
    holds the variables' columns (N, d), discrete ones as integer codes.

    The pair is scored within these strata: a discrete cause of the latent would otherwise enter the
    pair's "noise". They are chosen by association because the DAG is not yet known when the
    orientation is needed; the cost is that a discrete child of the latent is conditioned on too.
    """
    from scipy.stats import f_oneway

    cols = []
    for b, var in enumerate(variables):
        if var.type is VarType.CONTINUOUS:
            continue
        groups = [zj[u[:, b] == level] for level in np.unique(u[:, b])]
        groups = [g for g in groups if len(g) > 1]
        if len(groups) < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant groups: p is NaN, not associated
            p = f_oneway(*groups).pvalue
        if np.isfinite(p) and p < 0.01:
            cols.append(b)
    if not cols:
        return None
    return np.unique(np.round(np.asarray(u, dtype=float)[:, cols]), axis=0, return_inverse=True)[1].ravel()


def pair_latent(model: CMCL, ui: np.ndarray, Z: np.ndarray, k: int, strata: np.ndarray | None, fits: dict,
                i: int) -> np.ndarray:
    """Latent column k of ``Z`` as the score sees it next to variable i (values ``ui``).

    With ``anm_decontaminate``, cleaned of the other latents' linear share
    (:func:`xcausal.structure.anm.decontaminate`; ``fits`` caches the regressions per variable and
    strata); with ``anm_latent_scale`` "normal" (or "auto" with the "pnl" score), mapped to normal
    scores over all rows, because a learned latent is identified only up to a monotone warp. A pose
    decoder's turn and shift latents move the image linearly, so they have no warp to undo.
    """
    from xcausal.structure.anm import decontaminate, fold_regressions, normal_scores

    zk = Z[:, k]
    if model.anm_decontaminate:
        key = (i, None if strata is None else np.asarray(strata).tobytes())
        if key not in fits:
            fits[key] = fold_regressions(ui, Z, strata=strata)
        zk = decontaminate(ui, Z, k, fits=fits[key])
    scale = model.anm_latent_scale
    if scale == "auto":
        scale = "normal" if model.anm_method == "pnl" else "raw"
    pose = model.decoder == "pose" and k < len(POSE_LATENTS)
    return normal_scores(zk) if scale == "normal" and not pose else zk


def orient_pairs(model: CMCL, u: np.ndarray, Z: np.ndarray, pairs: Iterable[tuple[int, int]]) -> list[PairVerdict]:
    """Score each (variable i, latent node j) of ``pairs`` on the variables' columns ``u`` (N, d) and
    the latents ``Z`` (N, m); a latent that is constant on these rows is skipped."""
    from xcausal.structure.anm import anm_direction

    d = u.shape[1]
    strata: dict[int, np.ndarray | None] = {}
    fits: dict = {}
    out = []
    for i, j in pairs:
        k = j - d
        if np.std(Z[:, k]) == 0:
            continue
        if j not in strata:  # per latent, not per pair: the same for every variable
            strata[j] = discrete_strata(model.encoding_.variables, u, Z[:, k])
        zk = pair_latent(model, u[:, i], Z, k, strata[j], fits, i)
        direction, s_uz, s_zu = anm_direction(u[:, i], zk, method=model.anm_method, strata=strata[j],
                                              entropy=model.anm_entropy)
        out.append(PairVerdict(i, j, direction, s_uz, s_zu))
    return out


def orientation_mask(model: CMCL, V: np.ndarray, allowed: torch.Tensor | None) -> torch.Tensor:
    """``allowed`` (None: every pair) with each continuous variable-latent pair that is allowed both
    ways restricted to its scored direction on the DAG's columns ``V`` (N, nodes). It only removes
    edges: a pair that ``allowed`` (with the background knowledge applied) closes one way is not
    scored, so no forbidden direction is re-allowed."""
    d = len(model.encoding_.variables)
    D = V.shape[1]
    mask = torch.ones(D, D, dtype=torch.bool) if allowed is None else allowed.clone().bool()
    mask.fill_diagonal_(False)
    pairs = [(i, j) for i, var in enumerate(model.encoding_.variables) if var.type is VarType.CONTINUOUS
             for j in range(d, D) if mask[i, j] and mask[j, i]]
    for v in orient_pairs(model, V[:, :d], V[:, d:], pairs):
        if v.direction == 1:
            mask[v.latent, v.variable] = False
        else:
            mask[v.variable, v.latent] = False
    return mask


@torch.no_grad()
def orient_during_training(model: CMCL, ds: CrossModalDataset, x_all: torch.Tensor | None,
                           u_all: torch.Tensor | None, log: bool = True) -> None:
    """Fix the direction of the continuous variable-latent pairs that have an edge in play (weight
    above ``w_threshold / 2`` either way) or were oriented before, on the current posterior means of
    at most 2,000 rows; verdicts may change at each call. A pair the background knowledge closes one
    way (``measured_from_image``, ``forbid``, ``exogenous``) is never scored: ``allow_edge`` here
    must not re-open a forbidden direction."""
    net = model.net_
    dag = net.dag
    d = len(model.encoding_.variables)
    D = d + model.n_latents_
    w = dag.adjacency().detach().cpu().numpy()
    allowed = dag.allowed.cpu().numpy()
    known = model._knowledge_mask(None, D)
    free = np.ones((D, D), dtype=bool) if known is None else known.cpu().numpy()
    oriented = model._anm_pairs
    cand = [(i, j) for i, var in enumerate(model.encoding_.variables) if var.type is VarType.CONTINUOUS
            for j in range(d, D) if free[i, j] and free[j, i]
            and ((i, j) in oriented
                 or (allowed[i, j] and allowed[j, i] and max(w[i, j], w[j, i]) > 0.5 * model.w_threshold))]
    if not cand:
        return
    n = len(ds)
    idx = np.arange(n) if n <= 2000 else np.random.default_rng(model.seed).choice(n, 2000, replace=False)
    was_training = net.training
    net.eval()
    zs = []
    for s0 in range(0, len(idx), 256):
        b = idx[s0:s0 + 256]
        xb, ub = (x_all[b], u_all[b]) if x_all is not None else model._tensors(ds, b)
        zs.append(net.encode(xb, model.encoding_.net_columns(ub), sample=False)["muq"].cpu())
    net.train(was_training)
    for v in orient_pairs(model, ds.u[idx], torch.cat(zs).numpy(), cand):
        i, j = v.variable, v.latent
        src, dst = (i, j) if v.direction == 1 else (j, i)
        if (i, j) in oriented and bool(dag.allowed[src, dst]):
            continue  # verdict unchanged
        dag.allow_edge(src, dst)
        dag.forbid_edge(dst, src)
        oriented.add((i, j))
        if log:
            logger.info("oriented %s -> %s by ANM score (u->z %.3f, z->u %.3f)", model._node_name(src),
                        model._node_name(dst), v.score_uz, v.score_zu)
