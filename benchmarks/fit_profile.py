"""One default fit end to end: wall and CPU time per stage, and the time ``fit`` estimated.

For each image size, 1,000 real MNIST digits (``xcausal simulate --kind mnist-shift --digits all``:
a shifted digit per row, stored at that size) are fitted with every default through
:func:`xcausal.api.fit` (``image_size`` given only to keep the stored size above the 64 px default
cap). Stages are timed by wrapping the functions that do them (this script only; the library is
unchanged): data loading, the anchor, training epochs, orientation passes, dual updates,
checkpoints, the final DAG refit and writing the outputs; inside the training steps, the model's
own ``time_parts_`` split the wall time into VAE, DAG, CR and backward. CPU time is the process's
(``time.process_time``: every thread's CPU, so it can exceed wall time with several threads).
The fit's own estimate (printed before it starts) and its measured seconds come from config.json.

    python benchmarks/fit_profile.py --out benchmarks/results/fit_profile [--sizes 32,64,128] [--n 1000]
        [--epochs E]   # E: a short run instead of the default epochs (smoke tests)
        [--threads T]  # T torch threads (default: every core, as a default fit)

Writes ``results.json`` and ``README.md`` (tables, machine, commit, command) into ``--out``, after
every size. The machine must be otherwise idle for the times to mean anything.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
if __name__ == "__main__":
    os.environ.pop("OMP_NUM_THREADS", None)  # a default fit: torch takes every core (before torch loads)

from _machine import machine  # noqa: E402

STAGES = ("data loading", "anchor", "training epochs", "orientation passes", "dual updates", "checkpoints",
          "final refit", "writing outputs")


class Clock:
    """Wall and CPU seconds per stage, accumulated over calls (a stage inside another is not
    subtracted from it: 'training epochs' contains the steps; the others are outside the steps)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.step_parts: dict[str, float] = {}

    def wrap(self, owner, name: str, stage: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*a, **k):
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                self.wall[stage] += time.perf_counter() - w
                self.cpu[stage] += time.process_time() - c
                self.calls[stage] += 1

        setattr(owner, name, timed)


@contextlib.contextmanager
def profiled(clock: Clock):
    """Wrap the stage functions where their callers look them up; restore them afterwards."""
    import xcausal.api as api
    import xcausal.models.cmcl.checkpoint as ckpt
    import xcausal.models.cmcl.refit as refit
    import xcausal.models.cmcl.trainer as trainer
    from xcausal.structure._lagrangian import AugmentedLagrangian

    targets = [(api, "load_dataset", "data loading"), (ckpt, "build_anchor", "anchor"),
               (trainer, "_epoch", "training epochs"), (trainer, "orient_during_training", "orientation passes"),
               (AugmentedLagrangian, "update", "dual updates"), (trainer, "save", "checkpoints"),
               (refit, "refit_dag", "final refit"), (api, "write_run", "writing outputs")]
    saved = [(o, n, getattr(o, n)) for o, n, _ in targets] + [(trainer, "train", trainer.train)]
    inner = trainer.train

    def train(model, *a, **k):  # the step timers the model keeps (seconds of VAE, DAG, CR, backward)
        inner(model, *a, **k)
        clock.step_parts = dict(model.time_parts_)

    try:
        for o, n, s in targets:
            clock.wrap(o, n, s)
        trainer.train = train
        yield
    finally:
        for o, n, f in saved:
            setattr(o, n, f)


def one_size(size: int, n: int, epochs: int | None, tmp: Path, threads: int | None = None) -> dict:
    import torch

    from xcausal.api import FitConfig, fit

    data, run = tmp / f"d{size}", tmp / f"r{size}"
    sim = subprocess.run([sys.executable, "-m", "xcausal.cli", "simulate", "--kind", "mnist-shift", "--digits", "all",
                          "--n", str(n), "--image-size", str(size), "--seed", "0", "--out", str(data)],
                         capture_output=True, text=True, check=False)
    if sim.returncode:
        raise RuntimeError(sim.stderr)
    clock = Clock()
    cfg = FitConfig(data=str(data), out=str(run), image_size=size, device="cpu", quiet=True, epochs=epochs,
                    threads=threads)
    if threads:  # what `xcausal fit --threads` does in its process
        torch.set_num_threads(threads)
    w0, c0 = time.perf_counter(), time.process_time()
    with profiled(clock):
        fit(cfg)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    conf = json.loads((run / "config.json").read_text())
    return {"size": size, "n": n, "epochs": conf["resolved"]["epochs"],
            "threads": torch.get_num_threads(), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "estimated_s": conf["fit_seconds"]["estimated"], "fit_s": conf["fit_seconds"]["measured"],
            "stages": {s: {"wall_s": round(clock.wall[s], 2), "cpu_s": round(clock.cpu[s], 2), "calls": clock.calls[s]}
                       for s in STAGES},
            "step_parts_s": {k: round(float(v), 2) for k, v in clock.step_parts.items()}}


def _readme(rows: list[dict], argv: list[str]) -> str:
    out = ["# One default fit, end to end: time per stage, and the estimate `fit` prints", "",
           f"Machine: {machine()}", "", f"Command: `python benchmarks/fit_profile.py {shlex.join(argv)}`", "",
           "Data: 1,000 real MNIST digits, shifted (`xcausal simulate --kind mnist-shift --digits all`), stored at "
           "each size; every fit option at its default (`image_size` given to keep the stored size above the 64 px default cap).", "",
           "| size | epochs | estimated s | measured fit s | measured / estimated | wall s (whole call) | CPU s |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["fit_s"] / r["estimated_s"] if r["estimated_s"] else float("nan")
        out.append(f"| {r['size']} | {r['epochs']} | {r['estimated_s']} | {r['fit_s']} | {ratio:.2f} | {r['wall_s']} | "
                   f"{r['cpu_s']} |")
    out += ["", "Stages (wall s / CPU s; 'training epochs' holds the steps, split below by the model's own timers):",
            "", "| stage | " + " | ".join(f"{r['size']} px" for r in rows) + " |",
            "|---|" + "---|" * len(rows)]
    for s in STAGES:
        out.append(f"| {s} | " + " | ".join(f"{r['stages'][s]['wall_s']} / {r['stages'][s]['cpu_s']}" for r in rows)
                   + " |")
    keys = sorted({k for r in rows for k in r["step_parts_s"]})
    for k in keys:
        out.append(f"| steps: {k} | " + " | ".join(str(r["step_parts_s"].get(k, "–")) for r in rows) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", default="32,64,128")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the fits (default: every core)")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in a.sizes.split(",")):
            rows.append(one_size(size, a.n, a.epochs, Path(tmp), a.threads))
            print(json.dumps(rows[-1]), flush=True)
            (a.out / "results.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")
            (a.out / "README.md").write_text(_readme(rows, argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
