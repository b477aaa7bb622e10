"""Scoring a run (or a bare graph.json) against a dataset's ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xcausal.io import DataError, read_json
from xcausal.metrics import align_graph, graph_accuracy, match_latents, mcc
from xcausal.run import read_run
from xcausal.types import Graph

__all__ = ["load_truth", "evaluate_graph", "evaluate_run"]


def load_truth(path: str | Path) -> tuple[Graph, np.ndarray | None]:
    """Ground truth from a dataset directory, an ``.npz`` or a ``truth.json`` file.

    Returns the true graph and the true latents (N, m) or None. Images are not read.
    """
    path = Path(path)
    if path.is_dir():
        tj = path / "truth.json"
        if not tj.is_file():
            raise DataError(f"{path}: no truth.json (ground truth is only known for simulated data)")
        path = tj
    if path.suffix == ".json" and path.is_file():
        try:
            truth = Graph.from_dict(read_json(path), where=str(path))
        except ValueError as exc:
            raise DataError(str(exc)) from None
        lat = truth.extra.get("latents")
        latents = None
        if lat:
            lp = path.parent / str(lat)
            if not lp.is_file():
                raise DataError(f"{path}: latents file '{lat}' not found")
            latents = np.load(lp, allow_pickle=False).astype(float)
        return truth, latents
    if path.suffix == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if "truth" not in z.files:
                raise DataError(f"{path}: no 'truth' array (ground truth is only known for simulated data)")
            try:
                truth = Graph.from_dict(json.loads(str(z["truth"])), where=f"{path}:truth")
            except (ValueError, json.JSONDecodeError) as exc:
                raise DataError(f"{path}: 'truth' is not a valid graph JSON string ({exc})") from None
            latents = z["latents"].astype(float) if "latents" in z.files else None
        return truth, latents
    raise DataError(f"{path}: expected a dataset directory, a .npz or a truth.json")


def _partners(graph: Graph, var: str) -> list[str]:
    lat = set(graph.latent)
    return sorted({e.target for e in graph.edges if e.source == var and e.target in lat}
                  | {e.source for e in graph.edges if e.target == var and e.source in lat})


def evaluate_graph(est: Graph, truth: Graph, *, est_latents: np.ndarray | None = None,
                   true_latents: np.ndarray | None = None,
                   mic_match: tuple[list[int], np.ndarray] | None = None) -> dict[str, Any]:
    """Structure metrics, latent recovery and per-variable verdicts.

    Learned latents are unordered: when both latent matrices are given, each true latent is
    matched to a learned one (Hungarian on MIC) and the learned graph renamed before scoring.
    Without latents the latent node names must already be the true ones. ``mic_match`` is
    ``xcausal.metrics.match_latents(true_latents, est_latents, score="mic")`` when the caller
    already has it (several graphs scored on the same latents: the MIC matrix is the slow part).
    """
    missing_obs = [v for v in truth.observed if v not in est.observed]
    if missing_obs:
        raise DataError(f"graph lacks observed variable(s) of the truth: {', '.join(missing_obs)}")
    out: dict[str, Any] = {}
    if est_latents is not None and true_latents is not None:
        if len(est_latents) != len(true_latents):
            raise DataError(f"latents.csv has {len(est_latents)} rows but the truth has {len(true_latents)}")
        matched, scores = mic_match if mic_match is not None else match_latents(true_latents, est_latents,
                                                                                  score="mic")
        aligned = align_graph(est, true_latents, est_latents, truth, score="mic", matched=matched)
        out["mcc"] = float(mcc(true_latents, est_latents))
        # mean MIC over the true latents, unmatched ones counting 0 (as xcausal.metrics.mean_mic)
        out["mic"] = float(sum(scores[j, i] for j, i in enumerate(matched) if i >= 0) / max(1, len(matched)))
    else:
        unknown = [z for z in est.latent if z not in truth.latent]
        if unknown:
            raise DataError(f"latent node(s) {', '.join(unknown)} are not in the truth and no latents "
                            "were given to match them (evaluate a run directory with latents.csv)")
        aligned = est
        out["mcc"] = None
        out["mic"] = None
    acc = graph_accuracy(truth, aligned)
    out = {k: acc[k] for k in ("shd", "tpr", "fpr", "fdr", "nnz")} | out
    verdicts = {}
    for v in truth.observed:
        found, true = aligned.relation(v), truth.relation(v)
        verdicts[v] = {"found": found.value, "true": true.value, "agree": found == true,
                       "found_latents": _partners(aligned, v), "true_latents": _partners(truth, v)}
    out["variables"] = verdicts
    out["n_agree"] = sum(v["agree"] for v in verdicts.values())
    out["n_variables"] = len(verdicts)
    return out


def evaluate_run(run: str | Path, truth_path: str | Path) -> dict[str, Any]:
    """Evaluate a run directory or a bare graph.json against ``truth_path``."""
    rd = read_run(run)
    truth, true_latents = load_truth(truth_path)
    res = evaluate_graph(rd.graph, truth, est_latents=rd.latents, true_latents=true_latents)
    res["method"] = rd.graph.method
    return res
