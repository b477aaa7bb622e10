"""Default fit time against the estimate ``xcausal fit`` prints before it starts.

For each image size, 1,000 real MNIST digits (``xcausal simulate --kind mnist-shift --digits all``,
a shifted digit per row) are fitted with every default (``--image-size`` given only to keep the
stored size above the 64 px default cap), and the script records the estimate line ``fit`` printed,
the wall time of the whole command, and ``fit_seconds`` from config.json (the fit alone, as
estimated and as measured inside the process).

    python benchmarks/fit_time.py --out benchmarks/results/fit_time [--sizes 32,64,128] [--n 1000]
        [--epochs E]   # E: a short run instead of the default epochs (calibration, smoke tests)

Writes ``results.json`` and ``README.md`` (table, machine, commit, command) into ``--out``, a row
after every fit. The machine must be otherwise idle for the times to mean anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine  # noqa: E402

ESTIMATE = re.compile(r"^fit: .*?(\d+) epochs of (\d+) steps; estimated time (.*)$", re.M)


def _xcausal(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return subprocess.run([sys.executable, "-m", "xcausal.cli", *args], env=env, capture_output=True, text=True,
                          check=False)


def one_size(size: int, n: int, epochs: int | None, tmp: Path) -> dict:
    data, run = tmp / f"d{size}", tmp / f"r{size}"
    sim = _xcausal("simulate", "--kind", "mnist-shift", "--digits", "all", "--n", str(n), "--image-size", str(size),
                   "--seed", "0", "--out", str(data))
    if sim.returncode:
        raise RuntimeError(sim.stderr)
    cmd = ["fit", str(data), "--out", str(run), "--image-size", str(size), "--device", "cpu"]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    t0 = time.perf_counter()
    res = _xcausal(*cmd)
    wall = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    m = ESTIMATE.search(res.stderr)
    fs = json.loads((run / "config.json").read_text())["fit_seconds"]
    return {"size": size, "n": n, "epochs": int(m.group(1)) if m else None, "steps_per_epoch": int(m.group(2)) if m
            else None, "printed": m.group(3) if m else None, "estimated_s": fs["estimated"],
            "fit_s": fs["measured"], "wall_s": round(wall, 1),
            "ratio": round(fs["measured"] / fs["estimated"], 2) if fs["estimated"] else None,
            "command": "xcausal " + shlex.join(cmd[:1] + ["DATA", "--out", "RUN"] + cmd[4:])}


def _readme(rows: list[dict], argv: list[str]) -> str:
    lines = ["# Default fit time against the printed estimate", "",
             f"Machine: {machine()}", "",
             f"Command: `python benchmarks/fit_time.py {shlex.join(argv)}`", "",
             "Data: 1,000 real MNIST digits shifted (`xcausal simulate --kind mnist-shift --digits all`), "
             "grayscale, at each size; every fit option at its default.", "",
             "| size | epochs × steps | printed estimate | estimated s | fit s (in process) | wall s (command) | "
             "measured / estimated |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']} | {r['epochs']} × {r['steps_per_epoch']} | {r['printed']} | {r['estimated_s']} | "
                     f"{r['fit_s']} | {r['wall_s']} | {r['ratio']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", default="32,64,128")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=None)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in a.sizes.split(",")):
            rows.append(one_size(size, a.n, a.epochs, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
            (a.out / "results.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")
            (a.out / "README.md").write_text(_readme(rows, argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
