"""Where do CMCL's reversed u–z edges come from? Orientation on true vs learned latents.

Part 1 (cheap): the ANM entropy score (xcausal.structure.anm) on the simulator's TRUE (u, z) pairs,
over many Appendix-E datasets: how often is a pair orientable at all with this score?
Part 2: CMCL fitted once per seed without the final refit, then the DAG refitted on the same final
latents twice: NOTEARS-MLP deciding the orientation (``refit_orient="dag"``) and each
continuous u–z pair restricted to its ANM direction first (``refit_orient="anm"``).

    python benchmarks/anm_orientation.py --graph 5/10 --datasets 20 --seeds 0,1,2 --n 2000 \
        --out benchmarks/results/anm_orientation
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from xcausal.data import dataset_from_arrays, simulate_appendix_e
from xcausal.evaluate import evaluate_graph
from xcausal.models.cmcl import CMCL
from xcausal.models.cmcl.refit import refit_dag
from xcausal.structure.anm import anm_direction


def true_pairs(graph: str, datasets: int, n: int, notears: bool) -> dict:
    """Orientation accuracy of each score on the simulator's true (u, z) pairs (standardised)."""
    out: dict[str, dict] = {}
    right: dict[str, list[bool]] = {"hsic": [], "entropy": [], "notears": []}
    for seed in range(datasets):
        sim = simulate_appendix_e(graph, n, seed=seed)
        lat = {name: k for k, name in enumerate(sim.truth.latent)}
        for e in sim.truth.edges:
            u, z, truth = (e.target, e.source, -1) if e.source in lat else (e.source, e.target, 1)
            for method in ("hsic", "entropy"):
                d, _, _ = anm_direction(sim.table[u].to_numpy(float), sim.latents[:, lat[z]], method=method)
                right[method].append(d == truth)
        if notears:
            from xcausal.structure import bipartite_mask, fit_notears
            from xcausal.types import VarType

            V = np.concatenate([sim.table.to_numpy(float), sim.latents], 1)
            V = (V - V.mean(0)) / V.std(0)
            d_, m_ = sim.table.shape[1], sim.latents.shape[1]
            A = np.asarray(fit_notears(V, [VarType.CONTINUOUS] * (d_ + m_), seed=seed, device="cpu",
                                       allowed=bipartite_mask(["observed"] * d_ + ["latent"] * m_)).adjacency) != 0
            names = sim.table.columns.tolist() + sim.truth.latent
            for e in sim.truth.edges:
                i, j = names.index(e.source), names.index(e.target)
                if A[i, j] or A[j, i]:
                    right["notears"].append(bool(A[i, j]))
    for k, v in right.items():
        if v:
            out[k] = {"pairs_scored": len(v), "oriented_right": float(np.mean(v))}
    return out


def cmcl_refits(graph: str, seed: int, n: int, epochs: int | None) -> dict:
    sim = simulate_appendix_e(graph, n, seed=seed)
    ds = dataset_from_arrays(sim.images, sim.table, truth=sim.truth, latents=sim.latents)
    t0 = time.perf_counter()
    base = CMCL(latent_dim=len(sim.truth.latent), epochs=epochs, dag_refit=False, seed=seed, device="cpu").fit(ds)
    fit_s = time.perf_counter() - t0
    z = base.transform(ds)
    out = {"seed": seed, "fit_seconds": fit_s}
    for name, orient in (("no_refit", None), ("refit_notears", "dag"), ("refit_anm", "anm")):
        m = base if orient is None else copy.deepcopy(base)
        if orient is not None:
            m.refit_orient = orient
            refit_dag(m, ds)
            m._finalise()
        res = evaluate_graph(m.graph_obj_, sim.truth, est_latents=z, true_latents=sim.latents)
        found = [v for v in res["variables"].values() if v["found"] != "none"]
        out[name] = {"shd": res["shd"], "tpr": res["tpr"], "fdr": res["fdr"], "mcc": res["mcc"],
                     "oriented_right": sum(v["agree"] for v in found), "with_edge": len(found)}
        print(seed, name, out[name], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", default="5/10")
    ap.add_argument("--datasets", type=int, default=20)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--notears", action="store_true", help="also score NOTEARS-MLP on the true latents (slow)")
    ap.add_argument("--skip-cmcl", action="store_true", help="part 1 only")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    # one intra-op thread: the fits here are small, and torch's thread pool makes them many times
    # slower on a shared 2-core machine (a script may set this; the library never does)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    res = {"command": "python benchmarks/anm_orientation.py " + " ".join(__import__("sys").argv[1:]),
           "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
           "commit": commit, "true_latents": true_pairs(args.graph, args.datasets, args.n, args.notears)}
    print(res["true_latents"], flush=True)
    res["cmcl"] = [] if args.skip_cmcl else [cmcl_refits(args.graph, int(s), args.n, args.epochs)
                                             for s in args.seeds.split(",")]
    tag = args.graph.replace("/", "-")
    (args.out / f"{tag}.json").write_text(json.dumps(res, indent=1))
    for k in ("no_refit", "refit_notears", "refit_anm"):
        rows = [c[k] for c in res["cmcl"]]
        print(k, "SHD", [r["shd"] for r in rows], "oriented right",
              sum(r["oriented_right"] for r in rows), "/", sum(r["with_edge"] for r in rows))


if __name__ == "__main__":
    main()
