"""NOTEARS-MLP: h_expm vs h_logdet on simulated nonlinear graphs (time to converge, SHD).

Graphs: Erdős–Rényi DAGs with ``d`` edges; data from a NOTEARS-style MLP SEM
(``x_j = sigmoid(x_pa W1 + c) W2 + N(0, 1)``, W ~ U(±[0.5, 2]), 100 hidden units) with changes
that keep every edge informative and orientable: parents enter the sigmoids standardised,
mechanisms whose signal has a standard deviation below 1 are redrawn, and (by default, as in the
tests) hidden biases c ~ U(-2, 2) and redraws until a linear fit explains at most half of the
signal (``--max-linear-r2``; NOTEARS' own mechanisms are ~95 % linear on standardised parents).
Every column is standardised before fitting (no varsortability to exploit).

Run from the repository root::

    .venv/bin/python benchmarks/notears_hfunc.py --d 10 20 --seeds 0 1

Prints a markdown table (one row per d, seed and h function) and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from xcausal.data.tabular import simulate_er_dag, simulate_mlp_sem
from xcausal.metrics import count_accuracy
from xcausal.structure import fit_notears


def accuracy(b_true: np.ndarray, b_est: np.ndarray) -> dict[str, float]:
    """SHD/nnz by :func:`xcausal.metrics.count_accuracy`, plus the correct/reversed/extra/missing counts."""
    t = b_true != 0
    e = b_est != 0
    acc = count_accuracy(t.astype(float), e.astype(float))
    return {"shd": int(acc["shd"]), "nnz": int(acc["nnz"]), "correct": int((t & e).sum()),
            "reversed": int((t.T & e).sum()), "extra": int((e & ~t & ~t.T).sum()),
            "missing": int((t & ~e & ~e.T).sum())}


def machine_info() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, check=False).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    try:
        load = "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "n/a"
    return (f"- machine: {platform.platform()}, {platform.machine()}, processor '{platform.processor()}', "
            f"os.cpu_count()={os.cpu_count()}, load average at end {load}\n"
            f"- python {platform.python_version()}, torch {torch.__version__} "
            f"(intra-op threads {torch.get_num_threads()}), numpy {np.__version__}\n"
            f"- commit {commit} (working tree may differ)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[10])
    ap.add_argument("--score", default="gauss_nll", choices=["gauss_nll", "mse"])
    ap.add_argument("--optimizer", default="lbfgsb", choices=["lbfgsb", "adam"])
    ap.add_argument("--lambda1", type=float, default=0.01)
    ap.add_argument("--max-outer", type=int, default=20)
    ap.add_argument("--max-linear-r2", type=float, default=0.5)
    ap.add_argument("--hidden-bias", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1 is fastest for these tiny models)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for d in args.d:
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            b = simulate_er_dag(d, d, rng)
            x = simulate_mlp_sem(b, args.n, rng, max_linear_r2=args.max_linear_r2, hidden_bias=args.hidden_bias)
            x = (x - x.mean(0)) / x.std(0)
            for h_func in ("expm", "logdet"):
                t0 = time.perf_counter()
                res = fit_notears(x, ["continuous"] * d, hidden=tuple(args.hidden), h_func=h_func,
                                  score=args.score, optimizer=args.optimizer, lambda1=args.lambda1,
                                  max_outer=args.max_outer, seed=seed)
                secs = time.perf_counter() - t0
                iters = sum(r["steps"] for r in res.history)
                acc = accuracy(b, res.adjacency)
                rows.append({"d": d, "edges": int(b.sum()), "seed": seed, "h": h_func, "seconds": secs,
                             "outer": res.n_outer, "inner_iters": iters, "ms_per_iter": 1e3 * secs / max(iters, 1),
                             "h_final": res.history[-1]["h"], "converged": res.converged,
                             "dropped": len(res.dropped_edges), **acc})
                print(f"done d={d} seed={seed} h={h_func}: {secs:.1f}s shd={acc['shd']}", flush=True)

    cols = ["d", "edges", "seed", "h", "seconds", "outer", "inner_iters", "ms_per_iter", "h_final", "converged",
            "shd", "nnz", "correct", "reversed", "extra", "missing", "dropped"]
    print()
    print(f"NOTEARS-MLP, n={args.n}, hidden={tuple(args.hidden)}, score={args.score}, optimizer={args.optimizer}, "
          f"lambda1={args.lambda1}, lambda2=0.01, w_threshold=0.3, h_tol=1e-8, max_outer={args.max_outer}; "
          f"simulator max_linear_r2={args.max_linear_r2}, hidden_bias={args.hidden_bias}")
    print()
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if c in ("seconds", "ms_per_iter"):
                v = f"{v:.1f}"
            elif c == "h_final":
                v = f"{v:.1e}"
            cells.append(str(v))
        print("| " + " | ".join(cells) + " |")
    print()
    print(machine_info())


if __name__ == "__main__":
    main()
