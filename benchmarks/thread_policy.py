"""Two fits side by side: every process taking every core, against the cores divided among them.

Runs ``xcausal fit`` twice at the same time (separate processes, the way ``--bootstrap B --jobs 2``
or two users' jobs share a machine), first with ``--set threads=<cores>`` each (torch's default:
every process takes every core), then with ``--set threads=<cores // 2>`` each (the thread policy of
parallel refits and bench cells), and one fit alone for reference. Wall time per fit.

    python benchmarks/thread_policy.py --out benchmarks/results/thread_policy [--n 1000] [--epochs 8]

Writes ``results.json`` and ``README.md`` (numbers, machine, commit) into ``--out``. The machine
must be otherwise idle for the times to mean anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine  # noqa: E402


def _fit_cmd(data: Path, out: Path, threads: int, epochs: int) -> list[str]:
    return [sys.executable, "-m", "xcausal.cli", "fit", str(data), "--out", str(out), "--epochs", str(epochs),
            "--device", "cpu", "-q", "--set", f"threads={threads}"]


def _run_together(cmds: list[list[str]]) -> list[float]:
    """Start every command at once; the wall seconds of each."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
    ends = [0.0] * len(procs)
    while any(p.poll() is None for p in procs) or not all(ends):
        for k, p in enumerate(procs):
            if p.poll() is not None and not ends[k]:
                if p.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmds[k])} failed: {p.stderr.read()}")
                ends[k] = time.perf_counter() - t0
        time.sleep(0.05)
    return ends


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--graph", default="5/10")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=8)
    a = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "xcausal.cli", "simulate", "--graph", a.graph, "--n", str(a.n),
                        "--seed", "0", "--out", str(tmp / "d")], check=True, capture_output=True)
        runs = {
            "alone, every core": _run_together([_fit_cmd(tmp / "d", tmp / "a0", cores, a.epochs)]),
            "2 side by side, every core each": _run_together(
                [_fit_cmd(tmp / "d", tmp / f"b{k}", cores, a.epochs) for k in range(2)]),
            "2 side by side, cores // 2 each": _run_together(
                [_fit_cmd(tmp / "d", tmp / f"c{k}", max(1, cores // 2), a.epochs) for k in range(2)]),
        }
    res = {"machine": machine(), "cores": cores, "graph": a.graph, "n": a.n, "epochs": a.epochs,
           "command": " ".join(["python", "benchmarks/thread_policy.py", *(argv if argv is not None else sys.argv[1:])]),
           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "wall_seconds": runs}
    (a.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = ["# Two fits side by side: threads per process", "",
             f"`{res['command']}` on {res['machine']}, {res['date']}.", "",
             f"Simulated {a.graph}, n = {a.n}, {a.epochs} epochs, CPU; wall seconds per fit.", "",
             "| setting | wall seconds per fit |", "|---|---|"]
    lines += [f"| {k} | {', '.join(f'{s:.1f}' for s in v)} |" for k, v in runs.items()]
    (a.out / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
