"""CMCL on the paper's synthetic benchmark (Appendix E): structure + latent recovery per graph and seed.

    python benchmarks/cmcl_synthetic.py --graphs 5/10 --seeds 0,1,2 --n 2000 --out benchmarks/results/cmcl_5-10
    python benchmarks/cmcl_synthetic.py --graphs 20/40 --ablation --out benchmarks/results/cmcl_ablation

Writes results.csv (one row per cell) and results.md (mean ± sd per graph/variant, the paper's
numbers beside ours, machine and commit). Cells are cached: a rerun skips finished cells.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import sys

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from xcausal.data import dataset_from_arrays
from xcausal.data.simulate import simulate_appendix_e
from xcausal.evaluate import evaluate_graph
from xcausal.models.cmcl import CMCL

PAPER_MIC = {"3/10": 93.5, "5/10": 95.8, "8/16": 88.4, "10/20": 79.3}
PAPER_ABLATION = {  # Table 2, 20/40: (SHD, TPR, FPR, FDR)
    "cm+cr": (4.81, 0.77, 0.000, 0.00), "cm": (7.76, 0.53, 0.013, 0.35),
    "cr": (11.75, 0.36, 0.022, 0.51), "none": (12.32, 0.32, 0.028, 0.56),
}
VARIANTS = {"cm+cr": (True, True), "cm": (True, False), "cr": (False, True), "none": (False, False)}


def run_cell(graph: str, seed: int, n: int, variant: str, epochs: int | None, latent_extra: int,
             options: dict | None = None, threads: int | None = None) -> dict:
    if threads:
        torch.set_num_threads(threads)  # a benchmark worker process of its own
    sim = simulate_appendix_e(graph, n, seed=seed)
    ds = dataset_from_arrays(sim.images, sim.table, truth=sim.truth, latents=sim.latents, source=f"sim:{graph}:{seed}")
    use_cm, use_cr = VARIANTS[variant]
    m = len(sim.truth.latent) + latent_extra
    t0 = time.perf_counter()
    model = CMCL(latent_dim=m, epochs=epochs, use_cm=use_cm, use_cr=use_cr, seed=seed, device="cpu",
                 **(options or {})).fit(ds)
    fit_s = time.perf_counter() - t0
    res = evaluate_graph(model.graph_obj_, sim.truth, est_latents=model.transform(ds), true_latents=sim.latents)
    oriented = [d for d in res["variables"].values() if d["found"] != "none"]
    return {"graph": graph, "seed": seed, "n": n, "variant": variant, "epochs": model.epochs_, "latent_dim": m,
            "shd": res["shd"], "tpr": res["tpr"], "fpr": res["fpr"], "fdr": res["fdr"], "nnz": res["nnz"],
            "mcc": res["mcc"], "mic": res["mic"], "n_agree": res["n_agree"], "n_variables": res["n_variables"],
            "found_oriented_right": sum(d["agree"] for d in oriented), "found_with_edge": len(oriented),
            "verdicts": res["variables"],
            "fit_seconds": fit_s, "options": options or {}, "threads": torch.get_num_threads(),
            **{f"share_{k}": v for k, v in model.time_share_.items()},
            "w_raw": model.w_raw_.round(4).tolist(), "true_edges": [[e.source, e.target] for e in sim.truth.edges]}


def summarise(df: pd.DataFrame) -> str:
    lines = [f"Machine: {machine()}", ""]
    cols = ["shd", "tpr", "fpr", "fdr", "mcc", "mic", "fit_seconds"]
    lines.append("| graph | variant | seeds | " + " | ".join(cols) + " | oriented right / found | paper |")
    lines.append("|" + "---|" * (len(cols) + 5))
    for (g, v), sub in df.groupby(["graph", "variant"], sort=False):
        cells = [f"{sub[c].mean():.3f} ± {sub[c].std(ddof=0):.3f}" for c in cols]
        paper = []
        if g in PAPER_MIC and v == "cm+cr":
            paper.append(f"MIC {PAPER_MIC[g]}")
        if g == "20/40" and v in PAPER_ABLATION:
            s, t, f, d = PAPER_ABLATION[v]
            paper.append(f"SHD {s} TPR {t} FPR {f} FDR {d}")
        lines.append(f"| {g} | {v} | {len(sub)} | " + " | ".join(cells)
                     + f" | {int(sub.found_oriented_right.sum())}/{int(sub.found_with_edge.sum())} | {'; '.join(paper)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--graphs", default="5/10")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--latent-extra", type=int, default=0, help="latents beyond the true number")
    ap.add_argument("--ablation", action="store_true", help="run all four CM/CR variants")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a CMCL option (JSON value), e.g. --set init='\"none\"' --set dag_refit=false")
    ap.add_argument("--jobs", type=int, default=1, help="cells run in parallel processes (1 torch thread each)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "cells"
    cache.mkdir(exist_ok=True)
    options = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    tag = "".join(f"_{k}-{v}" for k, v in sorted(options.items()))
    variants = list(VARIANTS) if args.ablation else ["cm+cr"]
    cells = [(g, v, int(s)) for g in args.graphs.split(",") for v in variants for s in args.seeds.split(",")]
    keys = {c: cache / f"{c[0].replace('/', '-')}_{c[1]}_{c[2]}_{args.n}_{args.epochs}_{args.latent_extra}{tag}.json"
            for c in cells}
    todo = [c for c in cells if not keys[c].exists()]

    def one(c):
        row = run_cell(c[0], c[2], args.n, c[1], args.epochs, args.latent_extra, options,
                       threads=1 if args.jobs > 1 else None)
        tmp = keys[c].with_suffix(".tmp")
        tmp.write_text(json.dumps(row))
        tmp.replace(keys[c])  # atomic: a killed run never leaves a half-written cell
        return row

    if args.jobs > 1:
        from joblib import Parallel, delayed
        Parallel(n_jobs=args.jobs)(delayed(one)(c) for c in todo)
    else:
        for c in todo:
            one(c)
    rows = [json.loads(keys[c].read_text()) for c in cells]
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "w_raw"}), flush=True)
    df = pd.DataFrame([{k: v for k, v in r.items() if k not in ("w_raw", "true_edges", "options", "verdicts")} for r in rows])
    df.to_csv(args.out / "results.csv", index=False)
    cmd = "python benchmarks/cmcl_synthetic.py " + " ".join(__import__("sys").argv[1:])
    (args.out / "results.md").write_text(f"Command: `{cmd}`\n\n" + summarise(df))
    print(summarise(df))


if __name__ == "__main__":
    main()
