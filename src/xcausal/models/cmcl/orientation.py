"""Orientation of variable-latent pairs by a pairwise score, shared by training and the final refit.

The DAG's own likelihood barely separates the two directions of a near-linear pair, so each
continuous variable-latent pair with an edge in play is oriented by the pairwise score
``anm_method`` (:func:`xcausal.structure.anm.anm_direction`), and only that direction stays allowed.
:func:`orient_pairs` is the one pair loop; :func:`orient_during_training` and
:func:`orientation_mask` (the refit) decide which pairs it scores and apply its verdicts. To change
the score itself, see :mod:`xcausal.structure.anm`.

The final refit then checks each variable-latent edge it kept in the score's direction against the
score's own resampling noise (:func:`margin_noise`, :func:`check_refit_edges`, option
``orient_resamples``): where the margin between the two directions is within that noise the edge is
reported undetermined, an undirected edge in graph.json, instead of a guessed arrow.
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
from xcausal.structure import editable_mask
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


def open_pairs(model: CMCL, mask: torch.Tensor) -> list[tuple[int, int]]:
    """The (variable, latent node) pairs the pairwise score orients: a continuous variable and a
    latent that ``mask`` (nodes × nodes, variables first) allows both ways."""
    d = len(model.encoding_.variables)
    return [(i, j) for i, var in enumerate(model.encoding_.variables) if var.type is VarType.CONTINUOUS
            for j in range(d, mask.shape[0]) if mask[i, j] and mask[j, i]]


def orientation_mask(model: CMCL, V: np.ndarray, allowed: torch.Tensor | None) -> torch.Tensor:
    """``allowed`` (None: every pair) with each continuous variable-latent pair that is allowed both
    ways restricted to its scored direction on the DAG's columns ``V`` (N, nodes). It only removes
    edges: a pair that ``allowed`` (with the background knowledge applied) closes one way is not
    scored, so no forbidden direction is re-allowed."""
    d = len(model.encoding_.variables)
    mask = editable_mask(allowed, V.shape[1]).fill_diagonal_(False)
    for v in orient_pairs(model, V[:, :d], V[:, d:], open_pairs(model, mask)):
        if v.direction == 1:
            mask[v.latent, v.variable] = False
        else:
            mask[v.variable, v.latent] = False
    return mask


ORIENT_Z = 2.0
"""A pair is undetermined when its score margin is less than this many standard deviations of its
resampling noise (:func:`margin_noise`): about the two-sided 95% band of a normal margin, so a pair
whose data decide it is rarely left undetermined, while a margin one noise-width from zero, which
the next sample of the same size would reverse about one time in six, is not reported as an arrow."""
RESAMPLE_ROWS = 1000
"""Largest subsample :func:`margin_noise` scores (half the rows up to twice this): the score of a
pair costs about linearly in its rows, and the noise at all rows is extrapolated from it."""
MIN_RESAMPLE_ROWS = 20
"""Below this many rows per subsample the noise is not estimated and the pair is undetermined."""


@dataclass(frozen=True)
class MarginNoise:
    """A pair's score margin on all rows, ``score_zu - score_uz`` (> 0 favours variable -> latent,
    since the lower score is the more plausible direction), and the standard deviation ``sd`` of
    that margin over resamples of the rows, at the number of rows it was computed on (inf when it
    could not be estimated); ``resamples`` counts those that scored the pair."""

    variable: int
    latent: int
    margin: float
    sd: float
    resamples: int

    @property
    def direction(self) -> int:
        """1 for variable -> latent, -1 for latent -> variable (as :class:`PairVerdict`)."""
        return 1 if self.margin >= 0 else -1

    @property
    def undetermined(self) -> bool:
        """|margin| < :data:`ORIENT_Z` · sd: within the noise, the data do not decide the direction."""
        return not abs(self.margin) >= ORIENT_Z * self.sd


def margin_noise(model: CMCL, u: np.ndarray, Z: np.ndarray, pairs: Sequence[tuple[int, int]], resamples: int, *,
                 rows: int = RESAMPLE_ROWS) -> list[MarginNoise]:
    """Each pair's score margin on all N rows of ``u`` (N, d) and ``Z`` (N, m), and its noise.

    The whole scoring (:func:`orient_pairs`: strata, decontamination, normal scores, the score) is
    repeated on ``resamples`` random subsamples of k = min(N // 2, ``rows``) rows drawn without
    replacement (a bootstrap's repeated rows would bias the k-nearest-neighbour regression and the
    spacing entropies), from a generator seeded by the model's ``seed``. Their margins' standard
    deviation s is scaled to N rows as ``s · sqrt(k / (N - k))``: for a score whose noise shrinks
    as 1/sqrt(N), subsamples of k of the N rows vary around the all-rows value with variance
    scaling. The subsamples are scored with the model's own options; with ``anm_entropy="auto"`` a
    subsample (or stratum) of fewer than 1000 rows is scored with Vasicek's spacings where all rows
    used the Gaussian mixture. That errs towards "undetermined": the spacings' margin is as noisy as
    the mixture's on a clearly oriented pair and noisier on a near-linear one (docs/methods/cmcl.md),
    and forcing the mixture on every subsample and stratum would cost many times the refit. A pair
    whose latent is constant on all rows is skipped, as :func:`orient_pairs` skips it.

    Why the margin against its noise and not the share of resamples that agree in sign: that share
    describes a score on k rows, not on the N rows the verdict uses, and so depends on k.
    """
    pairs = list(pairs)
    if not pairs:
        return []
    n = len(u)
    full = {(v.variable, v.latent): v.score_zu - v.score_uz for v in orient_pairs(model, u, Z, pairs)}
    k = min(n // 2, int(rows))
    margins: dict[tuple[int, int], list[float]] = {p: [] for p in full}
    if resamples > 0 and k >= MIN_RESAMPLE_ROWS:
        rng = np.random.default_rng(model.seed)
        for _ in range(resamples):
            idx = np.sort(rng.choice(n, k, replace=False))  # table order: the mixture's start depends on it
            for v in orient_pairs(model, u[idx], Z[idx], list(full)):
                margins[(v.variable, v.latent)].append(v.score_zu - v.score_uz)
    out = []
    for (i, j), m0 in full.items():
        ms = margins[(i, j)]
        sd = float(np.std(ms, ddof=1) * np.sqrt(k / (n - k))) if len(ms) >= 2 else float("inf")
        out.append(MarginNoise(i, j, float(m0), sd, len(ms)))
    return out


def check_refit_edges(model: CMCL, V: np.ndarray, W: np.ndarray, scored: Iterable[tuple[int, int]],
                      label: str = "") -> list[MarginNoise]:
    """The final refit's check of its pairwise orientations (``orient_resamples`` resamples).

    ``W`` is the solved DAG's weights, ``V`` (N, nodes) its columns, ``scored`` the pairs (variable,
    latent node) the refit oriented by the score. Each such pair with an edge above ``w_threshold``
    in the score's direction gets :func:`margin_noise`; an edge against the score's direction was
    set by something else (the exogenous repair) and is left alone. Returned: the checked pairs;
    those :attr:`MarginNoise.undetermined` are reported as undirected edges. The DAG itself keeps
    the score's direction for them (interventions need a DAG; it is the refit as without the check).
    """
    d = len(model.encoding_.variables)
    thr = model.w_threshold
    edges = [(i, j) for i, j in scored if abs(W[i, j]) > thr or abs(W[j, i]) > thr]
    checked = []
    for r in margin_noise(model, V[:, :d], V[:, d:], edges, model.orient_resamples):
        if (abs(W[r.variable, r.latent]) > thr) != (r.direction == 1):
            continue
        checked.append(r)
        a, b = model._node_name(r.variable), model._node_name(r.latent)
        noise = f"margin {r.margin:.3f} ± {r.sd:.3f} over {r.resamples} resamples"
        if r.undetermined:
            logger.info("orient: %s – %s undetermined (%s)%s", a, b, noise, label)
        else:
            src, dst = (a, b) if r.direction == 1 else (b, a)
            logger.info("orient: %s -> %s (%s)%s", src, dst, noise, label)
    return checked


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
