"""Same data, same seed, same result: record fits from one source tree and compare two records.

A refactor that claims "no change in results" runs this twice, once with the tree before the change
on ``PYTHONPATH`` and once with the tree after it, on CPU with one thread, and compares:

    PYTHONPATH=/path/to/old/src python benchmarks/refactor_equivalence.py record --out old
    PYTHONPATH=src python benchmarks/refactor_equivalence.py record --out new
    python benchmarks/refactor_equivalence.py compare old new     # exit 1 on any difference

Each case simulates a dataset and fits it through the command line (``xcausal simulate`` and
``xcausal fit``), then keeps graph.json and latents.csv. ``compare`` requires the same edges (source,
target, and weight to ``--tol``) and the same latents to ``--tol`` (default 1e-6), per case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: case name -> (simulate arguments, fit arguments)
CASES: dict[str, tuple[list[str], list[str]]] = {
    **{f"sim5-10_s{s}": (["--graph", "5/10", "--n", "2000", "--seed", str(s)], ["--seed", "0"]) for s in (0, 1, 2)},
    "mnist_rotate": (["--kind", "mnist-rotate", "--n", "1000", "--seed", "0", "--image-size", "28"],
                     ["--seed", "0", "--decoder", "pose", "--image-size", "28"]),
    "mnist_shift": (["--kind", "mnist-shift", "--n", "1000", "--seed", "0", "--image-size", "28"],
                    ["--seed", "0", "--decoder", "pose", "--image-size", "28"]),
    "circles": (["--kind", "circles", "--n", "2000", "--seed", "0"], ["--seed", "0", "--method", "causal-pima"]),
}


def _xcausal(args: list[str], log) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    code = "import sys, torch; torch.set_num_threads(1); from xcausal.cli import main; sys.exit(main(sys.argv[1:]))"
    subprocess.run([sys.executable, "-c", code, *args], check=True, env=env, stdout=log, stderr=subprocess.STDOUT)


def record(out: Path, cases: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    import xcausal  # the tree on PYTHONPATH: recorded with the results

    for name in cases:
        sim_args, fit_args = CASES[name]
        work = out / f"{name}.work"
        shutil.rmtree(work, ignore_errors=True)
        t0 = time.time()
        with open(out / f"{name}.log", "w") as log:
            _xcausal(["simulate", *sim_args, "--out", str(work / "data")], log)
            _xcausal(["fit", str(work / "data"), "--out", str(work / "run"), "--device", "cpu", "--quiet", *fit_args],
                     log)
        shutil.copy(work / "run" / "graph.json", out / f"{name}.graph.json")
        shutil.copy(work / "run" / "latents.csv", out / f"{name}.latents.csv")
        shutil.rmtree(work)
        print(f"{name}: {time.time() - t0:.0f} s", flush=True)
    (out / "source.json").write_text(json.dumps({"xcausal": str(Path(xcausal.__file__).parent), "cases": cases}))


def _edges(path: Path) -> dict[tuple[str, str], float]:
    g = json.loads(path.read_text())
    return {(e["source"], e["target"]): float(e["weight"]) for e in g["edges"]}


def _latents(csv: Path, graph: Path) -> np.ndarray:
    """The latent columns of a latents.csv, by name: graph.json's latent nodes, else every numeric
    column but ``row`` (latents.csv also holds the row numbers and, with ids, the id column)."""
    df = pd.read_csv(csv)
    names = [n["name"] for n in json.loads(graph.read_text()).get("nodes", []) if n.get("kind") == "latent"]
    if not names:
        names = [c for c in df.select_dtypes("number").columns if c != "row"]
    return df[[c for c in names if c in df.columns]].to_numpy(float)


def compare(a: Path, b: Path, tol: float) -> int:
    bad = 0
    names = sorted(p.name[:-len(".graph.json")] for p in a.glob("*.graph.json"))
    for name in names:
        if not (b / f"{name}.graph.json").is_file() or not (b / f"{name}.latents.csv").is_file():
            bad += 1
            print(f"{name}: not recorded in {b} -> DIFFERENT")
            continue
        ea, eb = _edges(a / f"{name}.graph.json"), _edges(b / f"{name}.graph.json")
        la = _latents(a / f"{name}.latents.csv", a / f"{name}.graph.json")
        lb = _latents(b / f"{name}.latents.csv", b / f"{name}.graph.json")
        same_edges = set(ea) == set(eb) and all(abs(ea[k] - eb[k]) <= tol for k in ea)
        dz = float(np.abs(la - lb).max()) if la.shape == lb.shape else float("inf")
        ok = same_edges and dz <= tol
        bad += not ok
        print(f"{name}: {len(ea)} / {len(eb)} edges, edges {'same' if same_edges else 'DIFFER'}, "
              f"max |latent difference| {dz:.2e} -> {'same' if ok else 'DIFFERENT'}")
        if not same_edges:
            for k in sorted(set(ea) | set(eb)):
                print(f"    {k[0]} -> {k[1]}: {ea.get(k)} / {eb.get(k)}")
    print(f"{len(names) - bad} of {len(names)} cases identical (tolerance {tol:g})")
    return 1 if bad or not names else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="run the cases with the xcausal on PYTHONPATH")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    c = sub.add_parser("compare", help="compare two records")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--tol", type=float, default=1e-6)
    args = ap.parse_args(argv)
    if args.cmd == "record":
        cases = [s.strip() for s in args.cases.split(",") if s.strip()]
        unknown = [s for s in cases if s not in CASES]
        if unknown:
            ap.error(f"unknown case {unknown[0]} (cases: {', '.join(CASES)})")
        record(args.out, cases)
        return 0
    return compare(args.a, args.b, args.tol)


if __name__ == "__main__":
    raise SystemExit(main())
