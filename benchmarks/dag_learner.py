"""NOTEARS-MLP alone on tabular ER2 graphs: time to converge, outer iterations, h(W), SHD/TPR/FDR.

Issue #8, item 6c. Graphs: Erdős–Rényi DAGs with ``2 d`` edges (``simulate_er_dag``;
``--edges-per-node``); data from the NOTEARS-style nonlinear MLP SEM ``simulate_mlp_sem`` (100
hidden units, W ~ U(±[0.5, 2]); as in ``benchmarks/notears_hfunc.py`` and the tests: hidden
biases U(-2, 2) and mechanisms redrawn until a linear fit explains at most half of the signal);
every column standardised before fitting. The learner is :class:`xcausal.structure.NotearsTrainer`
with ``fit_notears``'s defaults (hidden=(10,), gauss_nll score, L-BFGS-B, lambda1 = lambda2 = 0.01,
w_threshold 0.3, h_tol 1e-8, max_outer 20), once per acyclicity function (``--h-funcs``).

``fit_notears`` has no time limit (only ``max_outer`` and ``inner_steps``), so the fit here runs
through a thin subclass of ``NotearsTrainer`` that checks a wall-clock deadline at every objective
evaluation (``--max-seconds-per-fit``). A fit past its deadline is recorded as ``stopped at cap``
with the state it reached: the parameters at the end of the last completed outer iteration (the
interrupted primal solve is discarded: its last evaluation may be a wild line-search trial point),
their h(W) and thresholded graph, and the augmented Lagrangian's state; if not even the first outer
iteration completed, the parameters of the last objective evaluation. A whole-run budget
(``--max-total-seconds``) cuts a fit's cap to what is left of it and marks the runs that would
start with less than ``--min-seconds-left`` as ``skipped (budget)``. Runs go seed-major (every d on
the first seed, then the next seed), so a short budget drops extra seeds rather than large graphs;
``--seeds-for 100=0`` gives one d its own seeds.
Rows are written after every run (a killed run keeps what it finished).

Run from the repository root::

    .venv/bin/python benchmarks/dag_learner.py --d 10,20,40,100 --seeds 0,1,2 --seeds-for 100=0 \\
        --h-funcs logdet,expm --n 1000 --max-seconds-per-fit 450 --max-total-seconds 4380 \\
        --out benchmarks/results/dag_learner

(the committed results: about 73 minutes on 2 shared cores; every d on seed 0 first, then seeds 1
and 2 for d <= 40 as the budget allows).

Writes ``results.csv``, ``results.json`` (rows, per-fit outer-iteration traces and the settings)
and ``README.md`` (markdown table, machine, commit, date, command) into ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from xcausal.data.tabular import simulate_er_dag, simulate_mlp_sem  # noqa: E402
from xcausal.metrics import count_accuracy  # noqa: E402
from xcausal.structure import NotearsMLP, NotearsTrainer, threshold_to_dag  # noqa: E402

COLUMNS = ["d", "true_edges", "seed", "h_func", "status", "cap_seconds", "seconds", "outer", "inner_iters",
           "h_final", "rho_final", "stalled_outer", "shd", "tpr", "fdr", "edges_found", "correct", "reversed", "extra",
           "missing", "dropped", "note"]


#: an outer iteration whose h is within this relative change of the previous one counts as stalled
#: (the primal solve returned without moving; the ALM then only multiplies rho by 10)
STALL_RTOL = 1e-3


class _Stop(Exception):
    """Raised inside an objective evaluation once the fit's wall-clock deadline has passed."""


class CappedTrainer(NotearsTrainer):
    """:class:`NotearsTrainer` with a wall-clock cap and a trace of the dual updates.

    The deadline is checked at every evaluation of the smooth primal objective (Adam warm-up steps and
    L-BFGS-B function evaluations alike); past it :class:`_Stop` propagates out of ``train`` and the
    model keeps the parameters of the last evaluation (possibly a line-search trial point).
    ``snapshot`` holds the model's parameters at the end of the last completed outer iteration,
    ``trace`` one row per completed outer iteration (``h``, ``rho``, ``alpha`` after the update,
    seconds since the start); ``alm`` is the augmented Lagrangian of the current fit.
    """

    def __init__(self, *, max_seconds: float = math.inf, **kw) -> None:
        super().__init__(**kw)
        self.max_seconds = float(max_seconds)
        self._deadline = math.inf
        self._t0 = time.perf_counter()
        self._model = None
        self.snapshot: dict[str, torch.Tensor] | None = None
        self.trace: list[dict[str, float]] = []
        self.alm = None

    def _new_lagrangian(self):
        alm = super()._new_lagrangian()
        update = alm.update

        def recording_update(h_value: float) -> None:
            # called by train() right after a primal solve, with the model at that solve's end
            update(h_value)
            self.trace.append({"outer": alm.n_updates, "h": float(h_value), "rho": alm.rho, "alpha": alm.alpha,
                               "seconds": time.perf_counter() - self._t0})
            if self._model is not None:
                self.snapshot = {k: v.detach().clone() for k, v in self._model.state_dict().items()}

        alm.update = recording_update
        self.trace = []
        self.snapshot = None
        self.alm = alm
        return alm

    def _smooth(self, model, V, alm, *, l2=True):
        if time.perf_counter() > self._deadline:
            raise _Stop
        return super()._smooth(model, V, alm, l2=l2)

    def train(self, model, V):
        self._model = model
        self._t0 = time.perf_counter()
        self._deadline = self._t0 + self.max_seconds
        return super().train(model, V)


def parse_list(text: str, kind=int) -> list:
    """``"10,20, 40"`` -> ``[10, 20, 40]`` (``kind`` applied to every non-empty item)."""
    items = [s.strip() for s in str(text).split(",") if s.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"empty list: {text!r}")
    try:
        return [kind(s) for s in items]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def simulate(d: int, n: int, seed: int, *, edges_per_node: float = 2.0, max_linear_r2: float = 0.5,
             hidden_bias: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """True adjacency (ER, ``round(edges_per_node * d)`` edges) and standardised data (n, d)."""
    rng = np.random.default_rng(seed)
    b = simulate_er_dag(d, int(round(edges_per_node * d)), rng)
    x = simulate_mlp_sem(b, n, rng, max_linear_r2=max_linear_r2, hidden_bias=hidden_bias)
    return b, (x - x.mean(0)) / x.std(0)


def accuracy(b_true: np.ndarray, b_est: np.ndarray) -> dict:
    """SHD / TPR / FDR / number of edges by :func:`xcausal.metrics.count_accuracy`, plus the
    correct / reversed / extra / missing counts (on supports)."""
    t = b_true != 0
    e = b_est != 0
    acc = count_accuracy(t.astype(float), e.astype(float))
    return {"shd": int(acc["shd"]), "tpr": float(acc["tpr"]), "fdr": float(acc["fdr"]), "edges_found": int(acc["nnz"]),
            "correct": int((t & e).sum()), "reversed": int((t.T & e & ~t).sum()),
            "extra": int((e & ~t & ~t.T).sum()), "missing": int((t & ~e & ~e.T).sum())}


def run_one(b: np.ndarray, x: np.ndarray, *, seed: int, h_func: str, max_seconds: float, max_outer: int,
            hidden: Sequence[int] = (10,), lambda1: float = 0.01, lambda2: float = 0.01,
            w_threshold: float = 0.3) -> tuple[dict, list[dict]]:
    """One fit; returns the result row (without d/seed/h_func) and the outer-iteration trace."""
    d = b.shape[0]
    V = torch.from_numpy(np.ascontiguousarray(x))  # float64, as fit_notears would use
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    model = NotearsMLP(node_types=["continuous"] * d, hidden=tuple(hidden), score="gauss_nll", generator=gen,
                       dtype=V.dtype)
    trainer = CappedTrainer(max_seconds=max_seconds, lambda1=lambda1, lambda2=lambda2, h_func=h_func,
                            w_threshold=w_threshold, max_outer=max_outer)
    t0 = time.perf_counter()
    note = ""
    try:
        res = trainer.train(model, V)
        seconds = time.perf_counter() - t0
        adj, dropped = res.adjacency, res.dropped_edges
        h_final = float(res.history[-1]["h"])
        outer = res.n_outer
        inner = int(sum(r["steps"] for r in res.history))
        if res.converged:
            status = "converged" if trainer.alm.h_prev <= trainer.h_tol else "converged (rho_max)"
        else:
            status = "max_outer"
    except (_Stop, FloatingPointError, ValueError, RuntimeError) as exc:
        seconds = time.perf_counter() - t0
        status = "stopped at cap" if isinstance(exc, _Stop) else "error"
        if not isinstance(exc, _Stop):
            note = f"{type(exc).__name__}: {exc}"[:300]
        outer = trainer.alm.n_updates if trainer.alm is not None else 0
        inner = -1  # unknown: the interrupted solve does not report its steps
        if trainer.snapshot is not None:  # back to the end of the last completed outer iteration
            model.load_state_dict(trainer.snapshot)
        with torch.no_grad():
            W_t = model.adjacency()
            try:
                h_final = float(trainer.h(W_t))
            except (FloatingPointError, ValueError) as exc2:  # a state whose h cannot be evaluated
                h_final = math.nan
                note = (note + f"; h not evaluable: {exc2}")[:300]
        W = W_t.detach().cpu().numpy().astype(float)
        if np.isfinite(W).all():
            adj, dropped = threshold_to_dag(W, w_threshold)
        else:
            adj, dropped = np.zeros_like(W), []
            note = (note + "; W not finite")[:300]
        if status == "stopped at cap":
            note = (f"state at the cap: the parameters after outer iteration {outer} (the last completed one; "
                    f"the interrupted primal solve of iteration {outer + 1} is discarded)" if outer else
                    "state at the cap: no outer iteration completed; the parameters of the last objective "
                    "evaluation of the first primal solve")
    acc = accuracy(b, adj)
    rho = trainer.alm.rho if trainer.alm is not None else math.nan
    hs = [r["h"] for r in trainer.trace]
    stalled = sum(1 for a, c in zip(hs, hs[1:]) if abs(c - a) <= STALL_RTOL * a)
    row = {"true_edges": int(b.sum()), "status": status, "seconds": seconds, "outer": int(outer),
           "inner_iters": inner, "h_final": h_final, "rho_final": rho, "stalled_outer": stalled, **acc,
           "dropped": len(dropped), "note": note}
    return row, list(trainer.trace)


def _fmt(col: str, v) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "–"
    if col == "seconds":
        return f"{v:.1f}"
    if col in ("h_final", "rho_final"):
        return f"{v:.1e}"
    if col in ("tpr", "fdr"):
        return f"{v:.2f}"
    if col == "inner_iters" and v == -1:
        return "–"
    return str(v)


def markdown_table(rows: list[dict], cols: Sequence[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(c, r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, check=False).stdout.strip()
    except OSError:
        out = ""
    return out or "unknown"


def write_outputs(out: Path, rows: list[dict], traces: dict, settings: dict, *, final: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["d", "true_edges", "seed", "h_func", *COLUMNS[4:]]).to_csv(out / "results.csv",
                                                                                        index=False)
    (out / "results.json").write_text(json.dumps({"settings": settings, "rows": rows, "traces": traces},
                                                 indent=1, default=float))
    if not final:
        return
    table_cols = ["d", "seed", "h_func", "status", "seconds", "outer", "stalled_outer", "h_final", "rho_final",
                  "shd", "tpr", "fdr", "edges_found", "true_edges", "reversed", "extra", "missing", "dropped"]
    order = {h: i for i, h in enumerate(settings["h_funcs"])}
    done = sorted((r for r in rows if r["status"] != "skipped (budget)"),
                  key=lambda r: (r["d"], r["seed"], order[r["h_func"]]))
    skipped = [r for r in rows if r["status"] == "skipped (budget)"]
    s = settings
    lines = [
        f"# NOTEARS-MLP alone on tabular ER{s['edges_per_node']:g} graphs (issue #8, item 6c)",
        "",
        f"- date: {s['date']}",
        f"- commit: {s['commit']} (working tree may differ in files this benchmark does not use)",
        f"- machine: {s['machine']}",
        f"- torch intra-op threads: 1 (`torch.set_num_threads(1)`; the machine has {s['cpu_count']} cores and other "
        "jobs ran beside this one, so wall times are indicative, not clean)",
        f"- command: `{s['command']}`",
        f"- total wall time: {s['total_seconds'] / 60:.1f} min",
        "",
        f"Data: ER DAGs with {s['edges_per_node']:g}·d edges (`simulate_er_dag`), n = {s['n']} samples from "
        "`simulate_mlp_sem` "
        f"(100 hidden units, hidden_bias = {s['hidden_bias']}, max_linear_r2 = {s['max_linear_r2']}), every "
        "column standardised; graph and data seeded by `seed`, the learner's initialisation by the same seed.",
        "",
        f"Learner: NotearsMLP hidden = {tuple(s['hidden'])}, score gauss_nll, L-BFGS-B (500 iterations per "
        f"primal solve), lambda1 = {s['lambda1']}, lambda2 = {s['lambda2']}, w_threshold = {s['w_threshold']}, "
        f"h_tol = 1e-8, rho_max = 1e16, max_outer = {s['max_outer']}; "
        f"wall-clock cap per fit {s['max_seconds_per_fit']:.0f} s "
        "(`fit_notears` has no time option: the script checks the deadline at every objective evaluation).",
        "",
        "Columns: `status` converged (h <= h_tol) / converged (rho_max) (rho reached rho_max = 1e16 with "
        "h > h_tol: `NotearsResult.converged` is True, by NOTEARS' stopping rule) / max_outer (limit of outer "
        "iterations hit) / stopped at cap (wall-clock cap hit; the row then describes the parameters after the last "
        "completed outer iteration, `outer` of them) / error; `seconds` wall time of the fit; "
        "`outer` outer ALM iterations; `stalled_outer` outer iterations after which h changed by less than "
        f"{STALL_RTOL:g} (relative) from the previous one (the primal solve did not move; rho was just raised); "
        "`h_final` h(W) after the last outer iteration (at the cap: of the "
        "state reached); `rho_final` the penalty weight; `shd`, `tpr`, `fdr`, `edges_found` "
        "(`xcausal.metrics.count_accuracy`, a reversed edge costs 1) of the thresholded graph after "
        "cycle-breaking; `reversed`, `extra`, `missing` split the SHD; `dropped` edges removed by "
        "`threshold_to_dag` to break cycles.",
        "",
        markdown_table(done, table_cols),
        "",
    ]
    if done:
        df = pd.DataFrame(done)
        agg = (df.groupby(["d", "h_func"])
               .agg(runs=("seed", "size"), seconds=("seconds", "mean"), outer=("outer", "mean"),
                    shd=("shd", "mean"), tpr=("tpr", "mean"), fdr=("fdr", "mean"),
                    converged=("status", lambda x: int(x.str.startswith("converged").sum())))
               .reset_index())
        lines += ["Means over seeds:", "", "| d | h_func | runs | converged | seconds | outer | SHD | TPR | FDR |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for _, a in agg.iterrows():
            lines.append(f"| {a['d']} | {a['h_func']} | {a['runs']} | {a['converged']} | {a['seconds']:.1f} | "
                         f"{a['outer']:.1f} | {a['shd']:.1f} | {a['tpr']:.2f} | {a['fdr']:.2f} |")
        lines.append("")
    notes = [r for r in done if r.get("note")]
    if notes:
        lines += ["Notes:", ""]
        lines += [f"- d={r['d']} seed={r['seed']} {r['h_func']}: {r['note']}" for r in notes]
        lines.append("")
    if skipped:
        lines += ["Not run (the whole-run budget `--max-total-seconds` was used up): "
                  + ", ".join(f"d={r['d']} seed={r['seed']} {r['h_func']}" for r in skipped) + ".", ""]
    extra = s.get("readme_notes") or []
    if extra:
        lines += [*extra, ""]
    lines += ["`results.csv` has every row; `results.json` also the per-fit traces of the dual updates "
              "(h, rho, alpha, seconds after every outer iteration) and these settings.", ""]
    (out / "README.md").write_text("\n".join(lines))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=parse_list, default=[10, 20, 40, 100], help="node counts, comma-separated")
    ap.add_argument("--seeds", type=parse_list, default=[0, 1, 2], help="seeds, comma-separated")
    ap.add_argument("--seeds-for", action="append", default=[], metavar="D=SEEDS",
                    help="seeds for one d instead of --seeds, e.g. 100=0 (repeatable)")
    ap.add_argument("--h-funcs", type=lambda s: parse_list(s, str), default=["logdet", "expm"])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--edges-per-node", type=float, default=2.0, help="ER graphs with this many edges per node")
    ap.add_argument("--max-outer", type=int, default=20)
    ap.add_argument("--max-seconds-per-fit", type=float, default=600.0)
    ap.add_argument("--max-total-seconds", type=float, default=math.inf,
                    help="whole-run budget: a fit's cap is cut to what is left of it, and runs that would "
                         "start with less than --min-seconds-left are recorded as skipped")
    ap.add_argument("--min-seconds-left", type=float, default=60.0)
    ap.add_argument("--hidden", type=parse_list, default=[10])
    ap.add_argument("--lambda1", type=float, default=0.01)
    ap.add_argument("--lambda2", type=float, default=0.01)
    ap.add_argument("--w-threshold", type=float, default=0.3)
    ap.add_argument("--max-linear-r2", type=float, default=0.5)
    ap.add_argument("--hidden-bias", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/dag_learner"))
    ap.add_argument("--note", action="append", default=[], help="a paragraph appended to README.md (repeatable)")
    return ap


def plan(ds: Sequence[int], seeds: Sequence[int], seeds_for: dict[int, list[int]],
         h_funcs: Sequence[str]) -> list[tuple[int, int, str]]:
    """(d, seed, h_func) in run order: seed-major (every d on the first seed, then the next seed, ...),
    so that a run cut short by the budget loses the extra seeds, not the large graphs."""
    per_d = {d: list(seeds_for.get(d, seeds)) for d in ds}
    all_seeds = list(dict.fromkeys(s for d in ds for s in per_d[d]))
    return [(d, s, h) for s in all_seeds for d in ds if s in per_d[d] for h in h_funcs]


def parse_seeds_for(items: Sequence[str]) -> dict[int, list[int]]:
    """``["100=0", "40=0,1"]`` -> ``{100: [0], 40: [0, 1]}``."""
    out: dict[int, list[int]] = {}
    for it in items:
        d, sep, seeds = it.partition("=")
        if not sep:
            raise SystemExit(f"--seeds-for expects D=SEEDS (e.g. 100=0), got {it!r}")
        out[int(d)] = parse_list(seeds)
    return out


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Run the benchmark; returns the result rows (also written to ``--out``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    for h in args.h_funcs:
        if h not in ("logdet", "expm"):
            raise SystemExit(f"unknown h function {h!r} (expected logdet or expm)")
    seeds_for = parse_seeds_for(args.seeds_for)
    runs = plan(args.d, args.seeds, seeds_for, args.h_funcs)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    settings = {
        "d": args.d, "seeds": args.seeds, "seeds_for": {str(k): v for k, v in seeds_for.items()},
        "h_funcs": args.h_funcs, "n": args.n, "edges_per_node": args.edges_per_node, "max_outer": args.max_outer,
        "max_seconds_per_fit": args.max_seconds_per_fit, "max_total_seconds": args.max_total_seconds,
        "min_seconds_left": args.min_seconds_left,
        "hidden": args.hidden, "lambda1": args.lambda1, "lambda2": args.lambda2, "w_threshold": args.w_threshold,
        "max_linear_r2": args.max_linear_r2, "hidden_bias": args.hidden_bias,
        "command": "python benchmarks/dag_learner.py " + " ".join(shlex.quote(a) for a in argv),
        "commit": _commit(), "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(), "readme_notes": list(args.note),
    }
    rows: list[dict] = []
    traces: dict[str, list[dict]] = {}
    data: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    try:
        settings["machine"] = machine()
        for d, seed, h_func in runs:
            key = {"d": d, "seed": seed, "h_func": h_func}
            left = args.max_total_seconds - (time.perf_counter() - t_start)
            if left < args.min_seconds_left:
                rows.append({**key, "true_edges": int(round(args.edges_per_node * d)), "status": "skipped (budget)"})
                continue
            if (d, seed) not in data:
                data = {(d, seed): simulate(d, args.n, seed, edges_per_node=args.edges_per_node,
                                            max_linear_r2=args.max_linear_r2, hidden_bias=args.hidden_bias)}
            b, x = data[(d, seed)]
            cap = min(args.max_seconds_per_fit, left)
            row, trace = run_one(b, x, seed=seed, h_func=h_func, max_seconds=cap, max_outer=args.max_outer,
                                 hidden=args.hidden, lambda1=args.lambda1, lambda2=args.lambda2,
                                 w_threshold=args.w_threshold)
            row["cap_seconds"] = cap
            if row["status"] == "stopped at cap" and cap < args.max_seconds_per_fit:
                row["note"] = f"cap cut to {cap:.0f} s by the whole-run budget; " + row["note"]
            rows.append({**key, **row})
            traces[f"d{d}_seed{seed}_{h_func}"] = trace
            print(f"d={d} seed={seed} {h_func}: {row['status']} in {row['seconds']:.1f}s, outer={row['outer']}, "
                  f"h={row['h_final']:.2e}, shd={row['shd']} tpr={row['tpr']:.2f} fdr={row['fdr']:.2f}", flush=True)
            settings["total_seconds"] = time.perf_counter() - t_start
            write_outputs(args.out, rows, traces, settings, final=False)
        settings["total_seconds"] = time.perf_counter() - t_start
        write_outputs(args.out, rows, traces, settings, final=True)
    finally:
        torch.set_num_threads(threads_before)
    return rows


if __name__ == "__main__":
    main()
