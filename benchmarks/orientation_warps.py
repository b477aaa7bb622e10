"""Orientation of variable-latent pairs when the latent is known only up to a monotone warp.

A learned latent is the true one only up to a monotone transformation. This benchmark takes the
TRUE (u, z) pairs of the Appendix-E simulator, warps z by a monotone function (none, exp(0.7 s),
or a smooth random monotone GP warp of amplitude 0.5 / 1.0 as the simulator's image map uses, s
the standardised z) and counts how often each score of :func:`xcausal.structure.anm.anm_direction`
orients the pair right, split by the true direction (u -> z "causal", z -> u "anti-causal").
``--entropy`` picks the entropy estimator of the scores (``auto``, the default, which at n >= 1000 is
``gmm``; ``gmm``; or ``vasicek``, the estimator before the mixture). A method named ``M+normal`` scores the latent's normal scores (:func:`xcausal.structure.anm.normal_scores`,
CMCL's ``anm_latent_scale="normal"``) with the score ``M``.

    python benchmarks/orientation_warps.py --datasets 20 --out benchmarks/results/orientation_warps
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
from pathlib import Path

import numpy as np

from xcausal.data import simulate_appendix_e
from xcausal.data.simulate import _monotone_gp
from xcausal.structure.anm import anm_direction, normal_scores

WARPS = ("none", "exp", "gp0.5", "gp1.0")


def warp(kind: str, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = (z - z.mean()) / z.std()
    eps = rng.standard_normal(50)  # drawn for every kind, so each kind sees the same GP draws
    if kind == "none":
        return z
    if kind == "exp":
        return np.exp(0.7 * s)
    grid = np.linspace(s.min(), s.max(), 50)
    return _monotone_gp(grid, eps, 1.0, float(kind[2:]), s)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", default="5/10")
    ap.add_argument("--datasets", type=int, default=20)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--methods", default="entropy,pnl")
    ap.add_argument("--entropy", default="auto", choices=("auto", "gmm", "vasicek"),
                    help="the entropy estimator of the scores (xcausal.structure.anm.entropy_1d)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    for m in methods:
        score, plus, scale = m.partition("+")
        if score not in ("entropy", "pnl", "hsic") or (plus and scale != "normal"):
            ap.error(f"--methods: unknown method {m!r} (entropy, pnl, hsic, each optionally +normal)")
    right: dict[tuple[str, str, str], list[bool]] = {}
    for seed in range(args.datasets):
        sim = simulate_appendix_e(args.graph, args.n, seed=seed)
        lat = {name: k for k, name in enumerate(sim.truth.latent)}
        for p in sim.info["pairs"]:
            u = sim.table[p["u"]].to_numpy(float)
            z0 = sim.latents[:, lat[p["z"]]]
            truth = 1 if p["direction"] == "causal" else -1
            for kind in WARPS:
                z = warp(kind, z0, np.random.default_rng([seed, WARPS.index(kind), int(p["u"][1:])]))
                for m in methods:
                    score, _, scale = m.partition("+")
                    d = anm_direction(u, normal_scores(z) if scale == "normal" else z, method=score,
                                      entropy=args.entropy)[0]
                    right.setdefault((kind, m, p["direction"]), []).append(bool(d == truth))
    rows = []
    for kind in WARPS:
        for m in methods:
            c, a = right[(kind, m, "causal")], right[(kind, m, "anti-causal")]
            rows.append({"warp": kind, "method": m, "pairs": len(c) + len(a), "right": float(np.mean(c + a)),
                         "right_causal": float(np.mean(c)), "right_anti_causal": float(np.mean(a))})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    machine = f"{platform.machine()}, python {platform.python_version()}"
    args.out.mkdir(parents=True, exist_ok=True)
    cmd = (f"python benchmarks/orientation_warps.py --graph {args.graph} --datasets {args.datasets} --n {args.n} "
           f"--methods {args.methods} --entropy {args.entropy} --out {args.out}")
    (args.out / "results.json").write_text(json.dumps({"command": cmd, "machine": machine, "commit": commit,
                                                        "rows": rows}, indent=1))
    md = [f"Command: `{cmd}`", "", f"Machine: {machine}; commit {commit}", "",
          "| warp of z | method | pairs | oriented right | u -> z right | z -> u right |", "|---|---|---|---|---|---|"]
    md += [f"| {r['warp']} | {r['method']} | {r['pairs']} | {r['right']:.2f} | {r['right_causal']:.2f} | "
           f"{r['right_anti_causal']:.2f} |" for r in rows]
    (args.out / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return rows


if __name__ == "__main__":
    main()
