"""A clinic-style folder of real MNIST digits, as a researcher's own data would look.

The images and the truth come from the realistic ``mixed`` family (:mod:`xcausal.data.realistic`):
``dose`` thickens the strokes, ``tilt`` slants them, ``implant`` (yes/no) draws a small bright
marker in the top-left corner, ``site`` (A/B/C) changes the scanner's contrast,
``thickness_score`` is measured from the image (anti-causal), ``weight`` and ``batch`` are
unrelated. The folder is then made messy the way real folders are:

* the images sit in sub-folders with spaces in their names, as PNG or JPEG, a quarter of them
  stored at twice the size;
* the table names the image column ``image_path`` and has a ``patient_id`` column (the row id, not
  a variable) and a free-text ``notes`` column (neither);
* ``implant`` is written yes/no; 22 ``weight`` cells are empty.

``truth.json`` and ``latents.npy`` hold the true graph and factors (for ``xcausal evaluate``).
The walk-through in docs/walkthrough.md runs every verb on this folder::

    python examples/clinic_folder.py --out clinic [--n 1200] [--seed 0] [--image-size 32]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from xcausal.data.realistic import simulate_realistic
from xcausal.io import atomic_output_dir

MISSING_WEIGHTS = 22
NOTES = ("", "follow-up in 6 months", "seen twice", "referred", "")


def build(out: Path, n: int, seed: int, image_size: int) -> Path:
    sim = simulate_realistic("mixed", n, seed=seed, image_size=image_size)
    rng = np.random.default_rng(seed + 1)
    table = sim.table.copy()
    ids = [f"P{k:05d}" for k in rng.permutation(np.arange(10_000, 10_000 + 7 * n, 7))[:n]]
    missing = set(rng.choice(n, MISSING_WEIGHTS, replace=False).tolist())
    with atomic_output_dir(out) as tmp:
        paths = []
        for i in range(n):
            folder = ["scans 2023", "scans 2024/ward B", "old scans"][i % 3]
            ext = "jpg" if i % 5 == 1 else "png"
            rel = f"{folder}/patient {ids[i]}.{ext}"
            img = Image.fromarray(np.clip(np.rint(sim.images[i, 0] * 255), 0, 255).astype(np.uint8))
            if i % 4 == 3:  # stored at twice the size (another scanner's export)
                img = img.resize((2 * image_size, 2 * image_size), Image.Resampling.BILINEAR)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            img.save(tmp / rel, **({"quality": 95} if ext == "jpg" else {}))
            paths.append(rel)
        out_table = pd.DataFrame({"patient_id": ids, "image_path": paths})
        for col in table.columns:
            out_table[col] = table[col].to_numpy()
        out_table["implant"] = np.where(out_table.pop("treated").to_numpy() == 1, "yes", "no")
        out_table["weight"] = [("" if i in missing else f"{w:.1f}") for i, w in enumerate(table["weight"])]
        out_table["notes"] = [NOTES[i % len(NOTES)] for i in range(n)]
        out_table.to_csv(tmp / "table.csv", index=False)
        truth = sim.truth.to_dict()
        for node in truth["nodes"]:
            if node["name"] == "treated":
                node["name"] = "implant"
        for e in truth["edges"]:
            e["source"] = "implant" if e["source"] == "treated" else e["source"]
            e["target"] = "implant" if e["target"] == "treated" else e["target"]
        truth["latents"] = "latents.npy"
        (tmp / "truth.json").write_text(json.dumps(truth, indent=1))
        np.save(tmp / "latents.npy", sim.latents)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image-size", type=int, default=32)
    a = ap.parse_args(argv)
    if a.n < MISSING_WEIGHTS + 10:
        print(f"error: --n {a.n}: at least {MISSING_WEIGHTS + 10}", file=sys.stderr)
        return 2
    build(a.out, a.n, a.seed, a.image_size)
    print(f"wrote {a.out}: {a.n} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
