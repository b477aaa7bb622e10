"""CMCL training throughput against a plain VAE with the same encoder/decoder and batch (issue #8a).

    python benchmarks/throughput.py --graph 5/10 --n 2000 --epochs 5 --out benchmarks/results/throughput

Both models train for the same epochs on the same simulated data (one torch thread, CPU): the
plain VAE is `BetaVAE(beta=1)` (the shared conv VAE of the representation baselines, same channel
plan, same batch size); CMCL runs with its defaults but no final DAG refit (a one-off solve, not
per-epoch work; its cost is reported separately in the CMCL paper benchmark). Reported: images/s
of each, the ratio (target >= 50%), and CMCL's split of its training time (VAE / DAG / CR, from
the model's own timers). Writes results.md and results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from xcausal.data import dataset_from_arrays  # noqa: E402
from xcausal.data.simulate import simulate_appendix_e  # noqa: E402
from xcausal.models.cmcl import CMCL  # noqa: E402
from xcausal.models.representation import BetaVAE  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graph", default="5/10")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sim = simulate_appendix_e(a.graph, a.n, seed=0)
    ds = dataset_from_arrays(sim.images, sim.table, truth=sim.truth, latents=sim.latents)
    m = len(sim.truth.latent)
    warm = ds.subset(range(min(200, a.n)))  # first-call costs (allocator, kernels) out of the timings
    BetaVAE(latent_dim=m, epochs=1, seed=0, device="cpu").fit(warm)
    CMCL(latent_dim=m, epochs=1, seed=0, device="cpu", dag_refit=False).fit(warm)
    t0 = time.perf_counter()
    BetaVAE(latent_dim=m, beta=1.0, epochs=a.epochs, seed=0, device="cpu").fit(ds)
    vae_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cm = CMCL(latent_dim=m, epochs=a.epochs, seed=0, device="cpu", dag_refit=False).fit(ds)
    cmcl_s = time.perf_counter() - t0
    parts = dict(getattr(cm, "time_parts_", {}))
    total = sum(parts.values()) or 1.0
    res = {"machine": machine(), "graph": a.graph, "n": a.n, "epochs": a.epochs, "threads": a.threads,
           "vae_images_per_s": a.n * a.epochs / vae_s, "cmcl_images_per_s": a.n * a.epochs / cmcl_s,
           "vae_s": vae_s, "cmcl_s": cmcl_s, "cmcl_time_share": {k: v / total for k, v in parts.items()}}
    res["ratio"] = res["cmcl_images_per_s"] / res["vae_images_per_s"]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps(res, indent=1))
    share = ", ".join(f"{k} {v:.0%}" for k, v in res["cmcl_time_share"].items())
    md = (f"# CMCL throughput vs a plain VAE ({a.graph}, n = {a.n}, {a.epochs} epochs, {a.threads} thread(s))\n\n"
          f"Machine: {res['machine']}\n\n"
          f"Command: `python benchmarks/throughput.py --graph {a.graph} --n {a.n} --epochs {a.epochs} "
          f"--threads {a.threads} --out {a.out}`\n\n"
          "| model | seconds | images/s |\n|---|---|---|\n"
          f"| plain VAE (BetaVAE, beta = 1) | {vae_s:.1f} | {res['vae_images_per_s']:.0f} |\n"
          f"| CMCL (no final refit) | {cmcl_s:.1f} | {res['cmcl_images_per_s']:.0f} |\n\n"
          f"CMCL / VAE throughput: **{res['ratio']:.0%}** (target >= 50%). CMCL's training time: {share}.\n")
    (a.out / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
