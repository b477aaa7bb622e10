"""The final DAG refit: after joint training, solve the DAG once more, full batch (L-BFGS-B
NOTEARS), on the final posterior means, and make it the model's DAG.

Joint training moves the DAG by stochastic steps on a moving representation; the refit solves its
objective for the representation training ended with. Three things happen around the solve:
pairwise orientation of variable-latent pairs (:mod:`~xcausal.models.cmcl.orientation`), checked
after the solve against the score's resampling noise (``orient_resamples``),
``min_effect`` pruning of variable -> latent edges weaker than the model's own resolution, and the
``exogenous`` repair (a root that depends on an exogenous variable is solved again as a child of the
latents). The background knowledge (``exogenous``, ``measured_from_image``, ``forbid``, ``require``)
is applied to the refit's edge mask first and again after the repair, which opens edges. With the
pose decoder the refit runs in the object's and the image's axes and keeps one
(:func:`choose_pose_frame`).
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from xcausal.data.dataset import CrossModalDataset
from xcausal.models.cmcl.config import DEPENDENCE_ALPHA
from xcausal.models.cmcl.losses import dag_input
from xcausal.models.cmcl.orientation import MarginNoise, check_refit_edges, open_pairs, orientation_mask
from xcausal.nn.blocks import PoseDecoder
from xcausal.structure import (NotearsMLP, bipartite_mask, editable_mask, threshold_to_dag,
                               unexplained_dependences)
from xcausal.types import VarType

if TYPE_CHECKING:
    from xcausal.models.cmcl.estimator import CMCL

logger = logging.getLogger("xcausal.models.cmcl")


@dataclass
class RefitSolution:
    """One solved refit: the DAG model, its variable -> latent effect ratios, the edges ``min_effect``
    pruned (source, target, ratio), the dependences it leaves unexplained, seconds, outer iterations,
    and the resampling check of the edges the pairwise score oriented (:func:`check_refit_edges`)."""

    model: Any  # a NotearsMLP (anything with adjacency() in tests)
    effect_ratios: dict[tuple[int, int], float]
    pruned: list[tuple[str, str, float]]
    seconds: float
    n_outer: int
    unexplained_dependences: list[tuple[str, str, float]] = field(default_factory=list)
    orientation_checks: list[MarginNoise] = field(default_factory=list)


def effect_spread(effect_ratios: Mapping[tuple[int, int], float]) -> float:
    """Sum over variables of the effective number of latents each one moves: for a variable whose
    edges to latents have effect ratios r_k, ``(sum r)^2 / sum r^2`` (1 when one latent takes all of
    its effect, k when k latents take equal shares)."""
    by_var: dict[int, list[float]] = {}
    for (i, _j), r in effect_ratios.items():
        by_var.setdefault(i, []).append(max(float(r), 0.0))
    return float(sum(sum(rs) ** 2 / sum(r * r for r in rs) for rs in by_var.values() if any(rs)))


def choose_pose_frame(solutions: Mapping[str, RefitSolution], w_threshold: float) -> str:
    """"object" or "image": the axes whose refit leaves fewer unexplained dependences, then has
    fewer edges, then spreads the variables' effects over fewer latents; the object's on a tie."""
    def key(f: str) -> tuple:
        sol = solutions[f]
        edges = int((sol.model.adjacency().detach().abs() > w_threshold).sum())
        return len(sol.unexplained_dependences), edges, effect_spread(sol.effect_ratios)

    return "image" if key("image") < key("object") else "object"


def refit_dag(model: CMCL, ds: CrossModalDataset) -> None:
    """Solve the DAG again on the final latents and keep it (:func:`refit_solution`, :func:`keep_refit`).

    With the pose decoder (and the DAG prior) the refit is solved with the shift latents read in the
    object's axes and in the image's, and the axes of :func:`choose_pose_frame` are kept
    (``pose_frame_``). With ``prior="ivae"`` the DAG sees latents standardised by statistics of the
    object's axes, which would put the two frames on different scales: the object's are kept.
    """
    net = model.net_
    model._refit_started = time.monotonic()
    if not (model.use_cm and isinstance(net.dec, PoseDecoder)) or not model._dag_prior:
        keep_refit(model, refit_solution(model, ds))
        _stage(model, "done")
        return
    solutions = {}
    try:
        for frame in ("object", "image"):
            net.dec.image_frame.fill_(frame == "image")
            solutions[frame] = refit_solution(model, ds, label=f" (shift in the {frame}'s axes)")
    except BaseException:
        net.dec.image_frame.fill_(False)  # as trained: the DAG from training reads the object's axes
        raise
    kept = choose_pose_frame(solutions, model.w_threshold)
    other = "object" if kept == "image" else "image"
    net.dec.image_frame.fill_(kept == "image")
    edges = {f: int((s.model.adjacency().detach().abs() > model.w_threshold).sum()) for f, s in solutions.items()}
    logger.info("shift latents z2, z3 read in the %s's axes: the DAG has %d edges there (effect spread %.3f), "
                "%d in the %s's (%.3f)", kept, edges[kept], effect_spread(solutions[kept].effect_ratios),
                edges[other], other, effect_spread(solutions[other].effect_ratios))
    keep_refit(model, solutions[kept], extra_seconds=solutions[other].seconds)
    _stage(model, f"done (shift latents read in the {kept}'s axes)")


def _stage(model: CMCL, text: str) -> None:
    """One stderr line naming a stage of the final refit when progress is shown (the refit can take
    minutes on many variables and latents; a log otherwise shows nothing between the last epoch and
    the outputs)."""
    if model.progress:
        start = getattr(model, "_refit_started", None)
        clock = "" if start is None else f" [{time.monotonic() - start:.0f} s]"
        sys.stderr.write(f"final refit: {text}{clock}\n")
        sys.stderr.flush()


def latent_table(model: CMCL, ds: CrossModalDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, post_var): the DAG's columns on (at most 5,000 of) the rows, float64, and each latent's
    mean posterior variance in the DAG's units."""
    net, enc = model.net_, model.encoding_
    n = len(ds)
    idx = np.arange(n) if n <= 5000 else np.sort(np.random.default_rng(model.seed).choice(n, 5000, replace=False))
    was_training = net.training
    net.eval()
    cols = []
    post_var = torch.zeros(model.n_latents_, dtype=torch.float64)
    with torch.no_grad():
        for s0 in range(0, len(idx), 256):
            x, u = model._tensors(ds, idx[s0:s0 + 256])
            e = net.encode(x, enc.net_columns(u), sample=False)
            cols.append(dag_input(model, u, e["muq"]).cpu().double())
            post_var += e["lvq"].exp().sum(0).cpu().double()
        post_var /= len(idx)
        if not model._dag_prior:  # the DAG sees standardised latents: the posterior variance in its units
            post_var /= (net.znorm.running_var.cpu().double() + net.znorm.eps)
    net.train(was_training)
    return torch.cat(cols), post_var


def refit_solution(model: CMCL, ds: CrossModalDataset, label: str = "") -> RefitSolution:
    """The refit on the latents as the network now gives them, with ``min_effect``'s rounds and the
    exogenous repair; changes nothing in the model. ``label`` is appended to its log messages."""
    from xcausal.structure import fit_notears

    enc = model.encoding_
    d = len(enc.variables)
    _stage(model, f"encoding the rows{label}")
    V, post_var = latent_table(model, ds)
    kinds = ["observed"] * d + ["latent"] * model.n_latents_
    exo = model._exogenous_idx()
    allowed = model._knowledge_mask(None if model.allow_all_edges else bipartite_mask(kinds), V.shape[1])
    scored: list[tuple[int, int]] = []
    if model.refit_orient == "anm":
        _stage(model, f"orienting variable–latent pairs{label}")
        scored = open_pairs(model, editable_mask(allowed, V.shape[1]))  # the pairs orientation_mask scores
        allowed = orientation_mask(model, V.numpy(), allowed)
    refit = functools.partial(
        fit_notears, V, [v.type for v in enc.variables] + [VarType.CONTINUOUS] * model.n_latents_,
        n_categories=[v.n_categories for v in enc.variables] + [1] * model.n_latents_,
        hidden=tuple(model.dag_hidden), lambda1=model.lambda1, h_func=model.h_func,
        w_threshold=model.w_threshold, standardize=False, seed=model.seed, device="cpu")
    names = [v.name for v in enc.variables] + [f"z{j + 1}" for j in range(model.n_latents_)]

    def solve(allowed: torch.Tensor | None) -> RefitSolution:
        return _solve_with_min_effect(model, refit, allowed, V, post_var, names, label)

    sol = solve(allowed)
    conflicts = _unexplained(model, sol.model, V, exo)
    forced = _forced_children(model, sol.model, conflicts, exo)
    if forced:
        _log_forced(model, sol.model, forced, conflicts, exo, names, label)
        allowed = editable_mask(allowed, V.shape[1])
        for b in forced:
            allowed[b, :] = False
            allowed[d:, b] = True  # both directions were open before the pairwise orientation
        allowed = model._knowledge_mask(allowed, V.shape[1])  # the loop above may re-allow a forbidden edge
        seconds = sol.seconds
        _stage(model, f"solving again with {len(forced)} root(s) that depend on an exogenous variable made "
                      f"children of the latents{label}")
        sol = solve(allowed)
        sol.seconds += seconds
        conflicts = _unexplained(model, sol.model, V, exo)
    for i, k, p in conflicts:
        logger.warning("%s and %s are dependent (p = %.2g), but the DAG%s says they are independent (no common "
                       "cause, neither causes the other): an edge is missing or points the wrong way%s",
                       names[i], names[k], p, label, "" if (i in exo or k in exo) else
                       "; a variable known not to be caused by the image can be declared exogenous")
    sol.unexplained_dependences = [(names[i], names[k], float(p)) for i, k, p in conflicts]
    scored = [(i, j) for i, j in scored if i not in forced]  # those are oriented by the repair
    if scored and model.orient_resamples > 0:
        _stage(model, f"checking the oriented edges on {model.orient_resamples} resamples{label}")
        sol.orientation_checks = check_refit_edges(model, V.numpy(), sol.model.adjacency().detach().cpu().numpy(),
                                                   scored, label)
    return sol


def _solve_with_min_effect(model: CMCL, refit: Any, allowed: torch.Tensor | None, V: torch.Tensor,
                           post_var: torch.Tensor, names: Sequence[str], label: str) -> RefitSolution:
    """Solve; then, up to three times, leave out the variable -> latent edges below ``min_effect``
    and solve again (a refit without the weak edges may lean on another edge)."""
    _stage(model, f"solving the DAG over {len(names)} nodes{label}")
    res = refit(allowed=allowed)
    seconds = res.seconds
    ratios = effect_ratios(model, res.model, V, post_var)
    pruned = []
    for rounds in range(4):
        weak = [(i, j) for (i, j), r in ratios.items() if r < model.min_effect]
        if not weak:
            break
        if rounds == 3:
            logger.warning("after 3 rounds of leaving weak edges out, the refit%s still has %d edge(s) below "
                           "min_effect=%g, kept: %s", label, len(weak), model.min_effect,
                           ", ".join(f"{names[i]} -> {names[j]} ({ratios[(i, j)]:.2f})" for i, j in weak))
            break
        allowed = editable_mask(allowed, V.shape[1])
        for i, j in weak:
            allowed[i, j] = False
            pruned.append((names[i], names[j], float(ratios[(i, j)])))
            logger.info("edge %s -> %s left out%s: the variance of the latent's mean it accounts for is %.2f × "
                        "the latent's posterior variance (min_effect %g)", names[i], names[j], label,
                        ratios[(i, j)], model.min_effect)
        _stage(model, f"solving again without {len(weak)} edge(s) below min_effect (round {rounds + 1} of at "
                      f"most 3){label}")
        res = refit(allowed=allowed)
        seconds += res.seconds
        ratios = effect_ratios(model, res.model, V, post_var)
    return RefitSolution(model=res.model, effect_ratios=ratios, pruned=pruned, seconds=seconds, n_outer=res.n_outer)


def _forced_children(model: CMCL, dag: NotearsMLP, conflicts: Sequence[tuple[int, int, float]],
                     exo: Sequence[int]) -> list[int]:
    """Roots of ``dag`` that depend on an exogenous variable: two roots are independent, so under the
    bipartite assumption each must be a child of latents."""
    roots = _roots(model, dag)
    return sorted({b for i, k, _ in conflicts for a, b in ((i, k), (k, i)) if a in exo and b not in exo
                   and b in roots})


def _log_forced(model: CMCL, dag: NotearsMLP, forced: Sequence[int], conflicts: Sequence[tuple[int, int, float]],
                exo: Sequence[int], names: Sequence[str], label: str) -> None:
    W = dag.adjacency().detach().cpu().numpy()
    for b in forced:
        a, p = next((a, p) for i, k, p in conflicts for a, bb in ((i, k), (k, i)) if bb == b and a in exo)
        lost = [names[j] for j in range(W.shape[1]) if abs(W[b, j]) > model.w_threshold]
        logger.info("%s is a root of the refit%s but depends on the exogenous %s (p = %.2g): solved again "
                    "with %s a child of the latents (giving up %s)", names[b], label, names[a], p, names[b],
                    ", ".join(f"{names[b]} -> {z}" for z in lost) or "no edge")


def _roots(model: CMCL, dag: NotearsMLP) -> set[int]:
    """Variables (node indices) with no parent above ``w_threshold`` in ``dag``."""
    W = np.abs(dag.adjacency().detach().cpu().numpy()) > model.w_threshold
    return {i for i in range(len(model.encoding_.variables)) if not W[:, i].any()}


def _unexplained(model: CMCL, dag: NotearsMLP, V: torch.Tensor, exo: Sequence[int]) -> list[tuple[int, int, float]]:
    """:func:`xcausal.structure.unexplained_dependences` of ``dag`` (edges above ``w_threshold``,
    cycles broken as the reported graph breaks them) on the variables' columns of ``V``, without
    pairs of two exogenous variables. Repeated rows (a bootstrap resample's) are tested once:
    duplicates would make the p-values too small."""
    d = len(model.encoding_.variables)
    W, _ = threshold_to_dag(dag.adjacency().detach().cpu().numpy().astype(float), model.w_threshold,
                            keep=model._knowledge().required)
    cols = np.unique(V.numpy(), axis=0)[:, :d]
    found = unexplained_dependences(W, cols, [v.type is not VarType.CONTINUOUS for v in model.encoding_.variables],
                                    alpha=DEPENDENCE_ALPHA)
    return [(i, k, p) for i, k, p in found if not (i in exo and k in exo)]


def keep_refit(model: CMCL, sol: RefitSolution, extra_seconds: float = 0.0) -> None:
    """Make a :func:`refit_solution` the model's DAG (the one interventions use)."""
    net = model.net_
    model.effect_ratios_ = sol.effect_ratios
    model.unexplained_dependences_ = list(sol.unexplained_dependences)
    model.pruned_edges_ = list(sol.pruned)
    model.orient_margins_ = [(model._node_name(c.variable), model._node_name(c.latent), c.margin, c.sd, c.resamples,
                              c.undetermined) for c in sol.orientation_checks]
    dev = next(net.dag.parameters()).device
    net.dag.load_state_dict({k: v.to(device=dev, dtype=torch.float32) if v.is_floating_point() else v.to(dev)
                             for k, v in sol.model.state_dict().items()})
    net.dag.set_input_mask(sol.model.input_mask)
    seconds = sol.seconds + extra_seconds
    logger.info("DAG refitted on the final latents in %.1f s (%d outer iterations)", seconds, sol.n_outer)
    parts = {**getattr(model, "time_parts_", {}), "dag_refit": seconds}
    total = sum(parts.values()) or 1.0
    model.time_parts_ = parts
    model.time_share_ = {k: v / total for k, v in parts.items()}


def effect_ratios(model: CMCL, dag: NotearsMLP, V: torch.Tensor, post_var: torch.Tensor) -> dict[tuple[int, int], float]:
    """For each variable -> latent edge of ``dag`` above ``w_threshold``: the variance of the
    latent's predicted mean that the variable accounts for, over the latent's mean posterior
    variance ``post_var`` (in the DAG's units). The variance is measured by permutation: with the
    variable's column shuffled (a fixed permutation from ``seed``), half the mean squared change of
    the latent's prediction (for an additive effect g(u) that is exactly Var g(u))."""
    d = len(model.encoding_.variables)
    W = dag.adjacency().detach().cpu().numpy()
    edges = [(i, j) for i in range(d) for j in range(d, V.shape[1]) if abs(W[i, j]) > model.w_threshold]
    if not edges:
        return {}
    perm = torch.as_tensor(np.random.default_rng(model.seed).permutation(len(V)))
    out = {}
    with torch.no_grad():
        dag = dag.to(V.dtype)
        base = dag.predict(V)
        for i in sorted({i for i, _ in edges}):
            Vp = V.clone()
            Vp[:, i] = V[perm, i]
            moved = dag.predict(Vp)
            for j in (j for k, j in edges if k == i):
                var = 0.5 * float((base[:, j] - moved[:, j]).pow(2).mean())
                out[(i, j)] = var / max(float(post_var[j - d]), 1e-12)
    return out
