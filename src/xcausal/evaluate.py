"""Scoring a run (or a bare graph.json) against a dataset's ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xcausal.io import DataError, read_json
from xcausal.metrics import align_graph, count_accuracy, graph_accuracy, match_latents, matched_mean, mcc
from xcausal.run import read_run
from xcausal.types import Graph, Relation

__all__ = ["load_truth", "evaluate_graph", "evaluate_run", "evaluate_features", "evaluate_feature_interventions",
           "FEATURE_METHODS"]


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
            rel = Path(str(lat))
            lp = path.parent / rel
            if rel.is_absolute() or ".." in rel.parts or not lp.resolve().is_relative_to(path.parent.resolve()):
                raise DataError(f"{path}: latents file '{lat}' must be inside {path.parent}")
            if not lp.is_file():
                raise DataError(f"{path}: latents file '{lat}' not found")
            try:
                latents = np.load(lp, allow_pickle=False).astype(float)
            except (OSError, ValueError, TypeError) as exc:
                raise DataError(f"{lp}: not a readable numeric .npy array ({exc})") from None
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
        out["mic"] = matched_mean(matched, scores)  # = xcausal.metrics.mean_mic, without a second MIC matrix
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
    # undetermined: the learned graph left the direction open; not a right verdict, not a wrong one
    out["n_undetermined"] = sum(v["found"] == Relation.UNDETERMINED.value for v in verdicts.values())
    out["n_variables"] = len(verdicts)
    return out


def _is_dataset(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() or path.suffix == ".npz"


def evaluate_run(run: str | Path, truth_path: str | Path) -> dict[str, Any]:
    """Evaluate a run directory or a bare graph.json against ``truth_path``."""
    rd = read_run(run)
    truth, true_latents = load_truth(truth_path)
    fc = rd.config.get("fit_config", {}) if isinstance(rd.config, dict) else {}
    if fc.get("missing") == "drop" and _is_dataset(truth_path):
        # the run dropped rows with missing cells: the truth's latents must drop the same rows
        from xcausal.api import load_run_dataset

        true_latents = load_run_dataset(run, truth_path).true_latents
    if rd.graph.method in FEATURE_METHODS:
        if true_latents is None or rd.latents is None:
            raise DataError(f"{run}: scoring discovered features needs the run's latents.csv and the true feature "
                            "values (latents.npy)")
        res = evaluate_features(rd.graph, rd.latents, truth, true_latents)
        res["method"] = rd.graph.method
        return res
    res = evaluate_graph(rd.graph, truth, est_latents=rd.latents, true_latents=true_latents)
    res["method"] = rd.graph.method
    return res


def evaluate_counterfactuals(model: Any, ds: Any, truth: Graph | None, *, samples: int = 64, grid: int = 9,
                             seed: int = 0) -> dict[str, dict[str, float]]:
    """Counterfactual soundness per structured variable, without any learned judge (docs/cli.md).

    On ``samples`` rows spread evenly over ``ds`` (images in [0, 1]; every L1 in 0-255 units):

    * ``effectiveness_r`` / ``effectiveness_mae`` (a variable whose image transform is known: the
      ``angle`` of ``mnist-rotate``, the ``v`` of ``mnist-shift``): for ``grid`` values spanning
      the variable's observed range, the rotation (degrees) or vertical shift (pixels) measured by
      registration of each counterfactual image against the model's own reconstruction of its
      source (:func:`xcausal.metrics.estimate_rotation` / ``estimate_shift``), against the intended
      change ``f(value) - f(observed value)``: Pearson r and mean absolute error over all pairs.
    * ``invariance_l1`` (a variable with no latent child in the learned graph): the reconstruction
      against the image under do(variable = another sample's value); eq. 16 says 0.
    * ``composition_l1_1`` / ``composition_l1_10``: the null intervention do(variable = its own
      value) applied once / ten times in a row (each time to the previous output), against the
      original image (Monteiro et al. 2023).
    * ``reversibility_l1``: x -> do(variable = another sample's value) -> do(variable = its own
      value), against the original.

    ``model`` needs ``counterfactual(ds, values)`` (CMCL). Returns ``{variable: {metric: value}}``.
    """
    import dataclasses

    from xcausal.metrics.counterfactual import estimate_rotation, estimate_shift, l1_255

    n = len(ds)
    idx = np.linspace(0, n - 1, num=min(samples, n)).round().astype(int)
    sub = ds.subset(idx)
    x = sub.images()
    recon = model.counterfactual(sub, {})["reconstruction"]
    graph = model.graph_obj_
    lat = set(graph.latent)
    perm = np.random.default_rng(seed).permutation(len(idx))
    kind = truth.extra.get("kind") if truth is not None else None
    driven = {"rotate": "angle", "shift": "v"}.get(str(kind))
    out: dict[str, dict[str, float]] = {}
    for j, var in enumerate(sub.variables):
        name = var.name
        own = sub.table[name].to_numpy()
        other = own[perm]
        res: dict[str, float] = {}
        x_other = model.counterfactual(sub, {name: other})["counterfactual"]
        if not any(e.source == name and e.target in lat for e in graph.edges):
            res["invariance_l1"] = float(l1_255(x_other, recon))
        u_other = sub.u.copy()
        u_other[:, j] = sub.u[perm, j]
        t_other = sub.table.copy()
        t_other[name] = other
        moved = dataclasses.replace(sub, image_array=x_other, image_paths=None, u=u_other, table=t_other)
        res["reversibility_l1"] = float(l1_255(model.counterfactual(moved, {name: own})["counterfactual"], x))
        cur = sub
        for t in range(10):
            x_t = model.counterfactual(cur, {name: own})["counterfactual"]
            if t == 0:
                res["composition_l1_1"] = float(l1_255(x_t, x))
            cur = dataclasses.replace(sub, image_array=x_t, image_paths=None)
        res["composition_l1_10"] = float(l1_255(x_t, x))
        if name == driven:
            from xcausal.data.mnist import MNIST_SIZE, rotation_of_angle

            scale = sub.image_size / MNIST_SIZE
            f = rotation_of_angle if kind == "rotate" else (lambda v: np.asarray(v, dtype=float) * scale)
            est = estimate_rotation if kind == "rotate" else estimate_shift
            measured, intended = [], []
            for v in np.linspace(float(own.min()), float(own.max()), grid):
                x_v = model.counterfactual(sub, {name: float(v)})["counterfactual"]
                measured.append(np.asarray(est(x_v, recon), dtype=float))
                intended.append(f(float(v)) - f(own.astype(float)))
            m, t_ = np.concatenate(measured), np.concatenate(intended)
            ok = np.isfinite(m)
            r = np.corrcoef(m[ok], t_[ok])[0, 1] if ok.sum() > 2 and m[ok].std() > 0 else 0.0
            res["effectiveness_r"] = float(r)
            res["effectiveness_mae"] = float(np.mean(np.abs(m[ok] - t_[ok])))
        out[name] = res
    return out


# --------------------------------------------------------------------------- discovered binary features
#: methods whose nodes are discovered binary features f1..fn (no structured variables)
FEATURE_METHODS = ("causal-pima", "pima")


def evaluate_features(est: Graph, est_probs: np.ndarray, truth: Graph, true_features: np.ndarray) -> dict[str, Any]:
    """Score discovered binary feature nodes against the true features (causalPIMA, PIMA).

    Parameters
    ----------
    est : learned graph over nodes f1..fn
    est_probs : (N, n) p(f_j = 1 | sample) (a run's latents.csv); outcomes = probability > 1/2
    truth : true feature DAG (nodes = features, in the column order of ``true_features``)
    true_features : (N, m) 0/1

    Returns
    -------
    dict with ``cluster_accuracy`` (Hungarian map of learned joint outcomes to true ones),
    ``joint_accuracy`` (every feature right after node matching), ``node_accuracy`` (mean over
    features of the matched node's agreement, flips allowed) and ``node_accuracies``,
    ``matching`` {feature: [node, flipped]}, ``skeleton_shd``, ``cpdag_shd`` (orientation
    compared only where the Markov equivalence class fixes it), ``shd`` (directed, NOTEARS
    convention) and ``edges`` (learned edges renamed to features).
    """
    from xcausal.metrics.features import clustering_accuracy, cpdag_shd, match_features, skeleton_shd

    tf = np.asarray(true_features)
    if not np.isin(tf, (0, 1)).all():
        raise DataError("true latents are not binary features (0/1): this run's nodes are binary features")
    probs = np.asarray(est_probs, dtype=float)
    if len(probs) != len(tf):
        raise DataError(f"latents.csv has {len(probs)} rows but the truth has {len(tf)}")
    bits = (probs > 0.5).astype(int)
    if bits.shape[1] < tf.shape[1]:
        raise DataError(f"{bits.shape[1]} learned node(s) for {tf.shape[1]} true feature(s)")
    match = match_features(tf, bits)
    names = truth.latent or truth.node_names
    aligned = bits[:, list(match.nodes)] ^ np.asarray(match.flipped, dtype=int)[None, :]
    powers = 2 ** np.arange(bits.shape[1])
    out: dict[str, Any] = {
        "cluster_accuracy": clustering_accuracy(tf @ powers[:tf.shape[1]], bits @ powers),
        "joint_accuracy": float((aligned == tf).all(1).mean()),
        "node_accuracy": float(np.mean(match.accuracy)),
        "node_accuracies": {n: a for n, a in zip(names, match.accuracy)},
        "matching": {n: [est.latent[j], f] for n, j, f in zip(names, match.nodes, match.flipped)},
    }
    est_names = est.node_names
    node_of = {est.latent[j]: names[k] for k, j in enumerate(match.nodes)}
    m = len(names)
    est_adj = np.zeros((m, m))
    t_adj = (truth.adjacency() != 0).astype(float)
    t_order = truth.node_names
    t_idx = [t_order.index(n) for n in names]
    t_adj = t_adj[np.ix_(t_idx, t_idx)]
    extra_edges = 0
    edges = []
    for e in est.edges:
        a, b = node_of.get(e.source), node_of.get(e.target)
        if a is None or b is None:
            extra_edges += 1  # an edge touching an unmatched node
            continue
        est_adj[names.index(a), names.index(b)] = 1.0
        edges.append([a, b, float(e.weight)])
    out["skeleton_shd"] = skeleton_shd(t_adj, est_adj) + extra_edges
    out["cpdag_shd"] = cpdag_shd(t_adj, est_adj) + extra_edges
    out["shd"] = int(count_accuracy(t_adj, est_adj)["shd"]) + extra_edges
    out["edges"] = edges
    out["n_nodes"] = len(est_names)
    return out


def evaluate_feature_interventions(model: Any, ds: Any, truth: Graph, matching: dict[str, list], *,
                                   samples: int = 200, seed: int = 0) -> dict[str, dict[str, Any]]:
    """do(feature) on a causalPIMA model, measured from the regenerated images' pixels (circles).

    For each true feature k and value v ∈ {0, 1}, the matched node is set to v (through its flip)
    on ``samples`` rows spread evenly over ``ds``; the circle's hue, radius and shift are measured from the
    counterfactual images (:func:`xcausal.metrics.circle_features`). Reports per feature:

    * ``target_accuracy``: share of images whose measured feature equals v (both values pooled);
    * ``others_unchanged``: for every feature that is not a descendant of k in the *true* graph,
      the share equal to its value measured on the model's reconstruction of the same sample;
    * ``descendant_effect``: for each true descendant d, P(d = 1 | do(k = 1)) − P(d = 1 | do(k = 0))
      measured in the images, beside ``descendant_effect_data``, the same contrast of the data's
      conditionals P(d = 1 | k) (equal to the interventional one when k has no parents, as for
      every feature with descendants in the circles DAGs).
    """
    import networkx as nx

    from xcausal.data.circles import CIRCLE_FEATURES
    from xcausal.metrics.circles import circle_features

    names = list(truth.latent or truth.node_names)
    if set(names) != set(CIRCLE_FEATURES):
        raise DataError("the interventional check measures circles images (features hue, radius, shift); "
                        f"this truth has features {', '.join(names)}")
    col = {f: i for i, f in enumerate(CIRCLE_FEATURES)}
    idx = np.linspace(0, len(ds) - 1, num=min(samples, len(ds))).round().astype(int)
    g = truth.to_networkx()
    base = model.counterfactual(ds, {}, rows=idx, seed=seed)
    base_feat = circle_features(base["reconstruction"])
    true_feat = np.asarray(ds.true_latents)[:, [names.index(f) for f in CIRCLE_FEATURES]] if ds.true_latents is not None else None
    out: dict[str, dict[str, Any]] = {}
    for f in names:
        node, flipped = matching[f]
        desc = nx.descendants(g, f)
        hits, same, p1 = [], {o: [] for o in names if o != f and o not in desc}, {}
        for v in (0, 1):
            cf = model.counterfactual(ds, {node: v ^ int(flipped)}, rows=idx, seed=seed)
            meas = circle_features(cf["counterfactual"])
            hits.append(meas[:, col[f]] == v)
            for o in same:
                same[o].append(meas[:, col[o]] == base_feat[:, col[o]])
            p1[v] = {d: float(meas[:, col[d]].mean()) for d in desc}
        res: dict[str, Any] = {"target_accuracy": float(np.concatenate(hits).mean()),
                               "others_unchanged": {o: float(np.concatenate(s).mean()) for o, s in same.items()},
                               "descendant_effect": {d: p1[1][d] - p1[0][d] for d in desc}}
        if true_feat is not None and desc:
            tf = true_feat
            res["descendant_effect_data"] = {
                d: float(tf[tf[:, col[f]] == 1, col[d]].mean() - tf[tf[:, col[f]] == 0, col[d]].mean()) for d in desc}
        out[f] = res
    return out
