"""`make demo`: simulate a 5/10 graph (Appendix E of the CMCL paper), fit CMCL, compare to the truth.

Writes OUT/data (the dataset), OUT/run (the run directory, with graph.png) and
OUT/intervention.png, and prints true vs found edges with SHD/TPR/FDR.

    python examples/demo.py --out demo_out [--n 2000] [--epochs 25] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from xcausal.api import FitConfig, fit, intervention_grid
from xcausal.data.dataset import save_dataset_dir
from xcausal.data.simulate import simulate_appendix_e
from xcausal.evaluate import evaluate_run
from xcausal.run import read_run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    ap.add_argument("--graph", default="5/10")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=25, help="kept small so the demo runs in minutes; "
                    "the library default for n=2000 is 94")
    ap.add_argument("--latent-dim", type=int, default=None, help="default: the true number of latents")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    con = Console()
    if args.out.exists():
        shutil.rmtree(args.out)
    t0 = time.time()
    sim = simulate_appendix_e(args.graph, args.n, seed=args.seed)
    data = save_dataset_dir(args.out / "data", sim.images, sim.table, truth=sim.truth, latents=sim.latents)
    con.print(f"simulated graph {args.graph}: {args.n} samples, {len(sim.truth.edges)} true edges -> {data}")
    m = args.latent_dim or len(sim.truth.latent)
    cfg = FitConfig(data=str(data), out=str(args.out / "run"), latent_dim=m, epochs=args.epochs, seed=args.seed,
                    device="cpu")
    run = fit(cfg)
    res = evaluate_run(run, data)
    graph = read_run(run).graph
    t = Table(title=f"true vs found (CMCL, {time.time() - t0:.0f} s)")
    for c in ("variable", "true relation", "found relation", "agree"):
        t.add_column(c)
    for v, d in res["variables"].items():
        fmt = lambda rel, lat: f"{rel} ({', '.join(lat)})" if lat else rel  # noqa: E731
        t.add_row(v, fmt(d["true"], d["true_latents"]), fmt(d["found"], d["found_latents"]),
                  "[green]yes[/]" if d["agree"] else "[red]no[/]")
    con.print(t)
    con.print(f"SHD {res['shd']}  TPR {res['tpr']:.2f}  FDR {res['fdr']:.2f}  FPR {res['fpr']:.3f}  "
              f"MCC {res['mcc']:.2f}  MIC {res['mic']:.2f}")
    causal = [e for e in graph.edges if graph.kind_of(e.source) == "observed"]
    if causal:
        var = causal[0].source
        values = [f"{q:.3g}" for q in sim.table[var].quantile([0.05, 0.25, 0.5, 0.75, 0.95])]
        intervention_grid(run, var, values, args.out / "intervention.png", samples=6)
        con.print(f"intervention grid on {var}: {args.out / 'intervention.png'}")
    con.print(f"graph figure: {Path(run) / 'graph.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
