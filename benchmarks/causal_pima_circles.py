"""causalPIMA on the circles benchmark, with the PIMA and single-modality baselines.

    python benchmarks/causal_pima_circles.py --seeds 0,1,2 --n 2000 --jobs 2 --out benchmarks/results/causal_pima_circles

For each seed: `simulate_circles(n, seed)` (hue -> shift <- radius by default, an RGB image and a
stress-strain curve per sample), then every variant is fitted and scored with
`xcausal.evaluate.evaluate_features` (cluster / node accuracy, skeleton and CPDAG SHD) and, where
the image is modelled, `evaluate_feature_interventions` (do(feature) measured from the
regenerated pixels). Writes results.csv (one row per cell), results.json and results.md (mean
per variant, per-seed table, machine and commit). Cells are cached in OUT/cells: a rerun skips
finished ones (delete them after a model change).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sys

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

VARIANTS: dict[str, tuple[str, dict]] = {
    # name: (class, options)
    "causal-pima": ("CausalPIMA", {}),
    "causal-pima+physics": ("CausalPIMA", {"physics": {"curve": "strain-hardening"}}),
    "causal-pima image-only": ("CausalPIMA", {"modalities": ["image"]}),
    "pima": ("PIMA", {}),
}


def run_cell(variant: str, seed: int, n: int, dag: str, epochs: int | None, pretrain: int | None,
             rows: int, threads: int = 1) -> dict:
    torch.set_num_threads(threads)  # a worker process of its own
    from xcausal.data import dataset_from_arrays
    from xcausal.data.circles import simulate_circles
    from xcausal.evaluate import evaluate_feature_interventions, evaluate_features
    from xcausal.models import causal_pima

    sim = simulate_circles(n, seed=seed, dag=dag)  # type: ignore[arg-type]
    ds = dataset_from_arrays(sim.images, sim.table, truth=sim.truth, latents=sim.latents, modalities=sim.modalities,
                             source=f"circles:{dag}:{seed}")
    cls_name, opts = VARIANTS[variant]
    kw = dict(opts)
    if epochs is not None:
        kw["epochs"] = epochs
    if pretrain is not None:
        kw["pretrain_epochs"] = pretrain
    t0 = time.perf_counter()
    model = getattr(causal_pima, cls_name)(n_nodes=3, seed=seed, device="cpu", **kw).fit(ds)
    fit_s = time.perf_counter() - t0
    res = evaluate_features(model.graph_obj_, model.transform(ds), sim.truth, sim.latents)
    row = {"variant": variant, "seed": seed, "n": n, "dag": dag, "fit_s": round(fit_s, 1),
           **{k: res[k] for k in ("cluster_accuracy", "joint_accuracy", "node_accuracy", "skeleton_shd",
                                  "cpdag_shd", "shd")},
           **{f"acc_{k}": v for k, v in res["node_accuracies"].items()},
           "edges": "; ".join(f"{a}->{b}" for a, b, _ in res["edges"]) or "none"}
    if model.use_image_:
        iv = evaluate_feature_interventions(model, ds, sim.truth, res["matching"], samples=rows, seed=seed)
        for f, d in iv.items():
            row[f"do_{f}_target"] = d["target_accuracy"]
            row[f"do_{f}_others"] = float(np.mean(list(d["others_unchanged"].values()))) if d["others_unchanged"] else None
            for dd, eff in d["descendant_effect"].items():
                row[f"do_{f}_effect_on_{dd}"] = eff
                row[f"do_{f}_effect_on_{dd}_data"] = d.get("descendant_effect_data", {}).get(dd)
    return row


def _markdown(df: pd.DataFrame) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.3f}"
        return str(v)

    head = "| " + " | ".join(df.columns) + " |\n" + "|---" * len(df.columns) + "|\n"
    return head + "\n".join("| " + " | ".join(fmt(v) for v in r) + " |" for r in df.itertuples(index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--dag", default="v-structure", choices=["v-structure", "chain", "independent"])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--epochs", type=int, default=None, help="joint epochs (default: the model's)")
    ap.add_argument("--pretrain-epochs", type=int, default=None)
    ap.add_argument("--rows", type=int, default=200, help="samples per do() check")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    variants = [v.strip() for v in a.variants.split(",")]
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant '{v}' (known: {', '.join(VARIANTS)})")
    cells_dir = a.out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    todo, rows = [], []
    for seed in seeds:
        for v in variants:
            p = cells_dir / f"{v.replace(' ', '_').replace('+', '_')}_{a.dag}_n{a.n}_s{seed}.json"
            if p.is_file():
                rows.append(json.loads(p.read_text()))
            else:
                todo.append((v, seed, p))
    if todo:
        from joblib import Parallel, delayed

        def one(v, seed, p):
            row = run_cell(v, seed, a.n, a.dag, a.epochs, a.pretrain_epochs, a.rows)
            tmp = p.with_suffix(".tmp")
            tmp.write_text(json.dumps(row))
            tmp.replace(p)
            print(f"done {v} seed {seed}: cluster {row['cluster_accuracy']:.3f} node {row['node_accuracy']:.3f} "
                  f"skel {row['skeleton_shd']} cpdag {row['cpdag_shd']} ({row['fit_s']} s)", flush=True)
            return row

        rows += Parallel(n_jobs=a.jobs, backend="loky")(delayed(one)(v, s, p) for v, s, p in todo)
    df = pd.DataFrame(rows).sort_values(["variant", "seed"])
    df.to_csv(a.out / "results.csv", index=False)
    keys = ["cluster_accuracy", "node_accuracy", "joint_accuracy", "skeleton_shd", "cpdag_shd", "fit_s"]
    summary = df.groupby("variant", sort=False)[keys].mean().reindex([v for v in variants if v in set(df.variant)])
    ok = df.assign(hit=(df.cluster_accuracy >= 0.9) & (df.node_accuracy >= 0.95) & (df.skeleton_shd == 0)
                   & (df.cpdag_shd == 0)).groupby("variant")["hit"].sum()
    lines = [f"# causalPIMA on circles ({a.dag}, n = {a.n}, seeds {a.seeds})", "",
             f"Machine: {machine()}", "",
             f"Command: `python benchmarks/causal_pima_circles.py --seeds {a.seeds} --n {a.n} --dag {a.dag}"
             + (f" --epochs {a.epochs}" if a.epochs else "") + (f" --pretrain-epochs {a.pretrain_epochs}" if a.pretrain_epochs else "")
             + f" --out {a.out}`", "",
             "## Mean over seeds", "", "| variant | " + " | ".join(keys) + " | seeds meeting all targets |",
             "|---" * (len(keys) + 2) + "|"]
    for v, r in summary.iterrows():
        lines.append(f"| {v} | " + " | ".join(f"{r[k]:.3f}" if k != "fit_s" else f"{r[k]:.0f}" for k in keys)
                     + f" | {int(ok.get(v, 0))}/{int((df.variant == v).sum())} |")
    lines += ["", "Targets (issue #6): cluster accuracy >= 0.9, node accuracy >= 0.95, skeleton SHD 0, CPDAG SHD 0.", "",
              "## Per seed", "", _markdown(df.drop(columns=["n", "dag"]))]
    (a.out / "results.md").write_text("\n".join(lines) + "\n")
    (a.out / "results.json").write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(a).items()},
                                                    "rows": df.to_dict(orient="records")}, indent=1, default=str))
    print("\n".join(lines[:14 + len(summary)]))


if __name__ == "__main__":
    main()
