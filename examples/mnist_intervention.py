"""The CMCL paper's Figure 4 (rotation) and Figure 6 (vertical shift) on real MNIST digits, measured.

Simulates rotated (or shifted) MNIST, fits CMCL, prints what it found for the variable, measures
the counterfactual images (effectiveness by registration, composition, reversibility), and writes:

    OUT/data, OUT/run                 the dataset and the run directory
    OUT/interventions.png             rows = digits, columns = do(variable = value), first the original
    OUT/heatmap.png                   Grad-CAM++ of the latent the variable drives most (Figure 5)

    python examples/mnist_intervention.py --kind rotate --out mnist_out [--n 1000] [--epochs E] [--seed 0]
        [--decoder pose|conv]

`examples/mnist_rotation.py` and `examples/mnist_shift.py` are this script with the kind fixed.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from xcausal.api import FitConfig, fit, load_model, load_run_dataset
from xcausal.data.dataset import save_dataset_dir
from xcausal.data.mnist import simulate_mnist
from xcausal.evaluate import evaluate_counterfactuals, load_truth
from xcausal.viz.gradcam import heatmap_figure, latent_heatmaps
from xcausal.viz.grid import image_grid

VARIABLE = {"rotate": "angle", "shift": "v"}


def main(argv: list[str] | None = None, *, kind: str | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    if kind is None:
        ap.add_argument("--kind", choices=["rotate", "shift"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1000, help="samples (the paper: 1000)")
    ap.add_argument("--epochs", type=int, default=None, help="default: CMCL's own for n")
    ap.add_argument("--latent-dim", type=int, default=None, help="default: CMCL's own for 2 variables")
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--decoder", choices=["pose", "conv"], default="pose",
                    help="CMCL's causal decoder: pose (default here: z1-z3 rotate and shift the digit the other "
                         "latents draw, so the variable can drive one latent) or conv (the paper's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=64, help="rows (spread over the data) used for the counterfactual measures")
    ap.add_argument("--figures", type=Path, default=None, help="also copy the PNGs here (docs/figures for the README)")
    args = ap.parse_args(argv)
    kind = kind or args.kind
    var = VARIABLE[kind]
    con = Console()
    if args.out.exists():
        shutil.rmtree(args.out)
    t0 = time.time()
    sim = simulate_mnist(kind, args.n, seed=args.seed, image_size=args.image_size)  # type: ignore[arg-type]
    data = save_dataset_dir(args.out / "data", sim.images, sim.table, truth=sim.truth, latents=sim.latents,
                            extra_files={"simulation.json": sim.info})
    con.print(f"simulated mnist-{kind}: {args.n} samples, f = {sim.truth.extra['f']}")
    run = fit(FitConfig(data=str(data), out=str(args.out / "run"), latent_dim=args.latent_dim, epochs=args.epochs,
                        seed=args.seed, device="cpu", image_size=args.image_size, decoder=args.decoder))
    model = load_model(run)
    ds = load_run_dataset(run)
    graph = model.graph_obj_
    edges = [e for e in graph.edges if var in (e.source, e.target)]
    t = Table(title=f"edges of '{var}' found by CMCL ({time.time() - t0:.0f} s so far)")
    for c in ("edge", "weight"):
        t.add_column(c)
    for e in edges:
        t.add_row(f"{e.source} -> {e.target}", f"{e.weight:.2f}")
    con.print(t)
    children = [e.target for e in edges if e.source == var]
    con.print(f"true: {var} -> {sim.truth.latent[0]} (the applied {'rotation' if kind == 'rotate' else 'shift'}); "
              f"found: {var} -> {', '.join(children) or 'nothing'}; "
              f"{var} <- {', '.join(e.source for e in edges if e.target == var) or 'nothing'}")

    cf = evaluate_counterfactuals(model, ds, load_truth(data)[0], samples=args.samples)[var]
    unit = "degrees" if kind == "rotate" else "pixels"
    con.print(f"counterfactual images, do({var}): effectiveness r = {cf['effectiveness_r']:.3f}, "
              f"MAE = {cf['effectiveness_mae']:.2f} {unit}; composition L1 (0-255) x1 = {cf['composition_l1_1']:.2f}, "
              f"x10 = {cf['composition_l1_10']:.2f}; reversibility L1 = {cf['reversibility_l1']:.2f}")

    # Figure 4 / 6: one row per digit class, columns = intervened values
    digits = ds.table["digit"].astype(str).to_numpy()
    rows = [int(np.flatnonzero(digits == d)[0]) for d in sorted(set(digits))][:10]
    lo, hi = (0.0, 10.0) if kind == "rotate" else (-5.0, 5.0)
    values = np.round(np.linspace(lo, hi, 6), 2)
    cols = [ds.images(rows)] + [model.intervene({var: float(v)}, ds, rows=rows) for v in values]
    fig_path = args.out / "interventions.png"
    image_grid(cols, ["original"] + [f"{var}={v:g}" for v in values], fig_path,
               row_titles=[digits[r] for r in rows],
               title=f"do({var}) on real MNIST digits (effectiveness r = {cf['effectiveness_r']:.2f})")
    outputs = [fig_path]
    if children:
        z = max(children, key=lambda c: next(e.weight for e in edges if e.target == c))
        images, heat = latent_heatmaps(model, ds, z, rows=rows[:8])
        heatmap_figure(images, heat, args.out / "heatmap.png", titles=[digits[r] for r in rows[:8]],
                       title=f"Grad-CAM++ of {z} ({var} -> {z})")
        outputs.append(args.out / "heatmap.png")
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        for p in outputs:
            shutil.copy(p, args.figures / f"mnist_{kind}_{p.name}")
    con.print("wrote " + ", ".join(str(p) for p in outputs) + f" ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
