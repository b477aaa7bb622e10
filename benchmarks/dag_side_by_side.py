"""Reference NOTEARS-MLP, DAGMA nonlinear and ``fit_notears`` side by side on the same data.

Issue #27, item 1. Graphs: Erdős–Rényi DAGs with ``k·d`` edges (``--edges-per-node``, default 1 and
2), n rows, from two simulators (``--sims``):

* ``ref`` -- the reference code's own: ``notears.utils.set_random_seed(seed)``,
  ``simulate_dag(d, k·d, "ER")``, ``simulate_nonlinear_sem(B, n, "mlp")`` (columns as it gives them);
* ``ours`` -- :func:`xcausal.data.tabular.simulate_er_dag` / ``simulate_mlp_sem`` with the settings
  of ``benchmarks/dag_learner.py`` (hidden_bias 2, max_linear_r2 0.5), not standardised.

Every data set is fitted with its columns as simulated (``raw``) and standardised (``std``;
``--scales``). Methods (``--methods``), each in its own process (DAGMA's constructor changes torch's
default dtype; the reference code sets it too), with one torch / BLAS thread:

* ``notears_ref`` -- ``notears.nonlinear.notears_nonlinear`` with the settings of its own ``main``:
  ``NotearsMLP(dims=[d, 10, 1])``, float64, lambda1 = lambda2 = 0.01, w_threshold 0.3 (imported from
  ``--notears-path``, a checkout of github.com/xunzheng/notears; nothing of it is in this repository);
* ``dagma`` -- ``dagma.nonlinear.DagmaNonlinear`` with its README's settings (``DagmaMLP(dims=[d, 10,
  1])``, float64, lambda1 = 0.02, lambda2 = 0.005, its default schedule and w_threshold 0.3);
* ``fit_notears`` -- :func:`xcausal.structure.fit_notears` with its defaults; ``fit_notears_mse`` the
  same with ``score="mse"``; ``fit_notears_loose`` with ``inner_tol=1e-4`` (inexact primal solves:
  each is followed by a dual update that moves the optimum again).

The time of a run is the fit alone (imports and data loading excluded). A run past
``--max-seconds-per-fit`` is killed and recorded as ``timeout`` (its time as ``> cap``); with
``--skip-after-timeout`` (default on) a method that timed out is not started again on graphs as
large or larger for the rest of the run (recorded as ``skipped (timed out at d=...)``). A whole-run
budget (``--max-total-seconds``) cuts a run's cap to what is left and records the runs that would start
with less than ``--min-seconds-left`` as ``skipped (budget)``. Runs go seed-major (seed, then d, then
density, simulator, scale, method), so a short budget drops seeds before sizes. Rows are written after
every run (a killed benchmark keeps what it finished).

Run from the repository root (DAGMA: ``pip install -e '.[bench]'``; reference code: ``git clone
https://github.com/xunzheng/notears /path/notears``)::

    python benchmarks/dag_side_by_side.py --notears-path /path/notears --out benchmarks/results/dag_side_by_side

Writes ``results.csv``, ``results.json`` (rows and settings) and ``README.md`` (tables, machine,
commit, date, command) into ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402
from dag_learner import _commit, accuracy, parse_list, parse_seeds_for  # noqa: E402

METHODS = ("notears_ref", "dagma", "fit_notears", "fit_notears_mse", "fit_notears_loose")
SIMS = ("ref", "ours")
SCALES = ("raw", "std")
DAGMA_INSTALL = "pip install 'dagma==1.1.1' igraph texttable tqdm  (or: pip install -e '.[bench]')"
COLUMNS = ["seed", "d", "edges_per_node", "sim", "scale", "method", "status", "cap_seconds", "seconds", "shd", "tpr",
           "fdr", "edges_found", "true_edges", "reversed", "extra", "missing", "is_dag", "note"]
_THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


# ----------------------------------------------------------------------------- worker side
def _simulate(spec: dict) -> None:
    """Write ``B`` (d, d) and ``X`` (n, d, as simulated) to ``spec["path"]``."""
    d, n, seed, k = spec["d"], spec["n"], spec["seed"], spec["edges_per_node"]
    if spec["sim"] == "ref":
        sys.path.insert(0, spec["notears_path"])
        from notears import utils

        utils.set_random_seed(seed)
        B = utils.simulate_dag(d, int(round(k * d)), "ER")
        X = utils.simulate_nonlinear_sem(B, n, "mlp")
    else:
        from xcausal.data.tabular import simulate_er_dag, simulate_mlp_sem

        rng = np.random.default_rng(seed)
        B = simulate_er_dag(d, int(round(k * d)), rng)
        X = simulate_mlp_sem(B, n, rng, max_linear_r2=0.5, hidden_bias=2.0)
    np.savez(spec["path"], B=np.asarray(B, dtype=float), X=np.asarray(X, dtype=float))


def _fit(spec: dict) -> dict:
    """Fit one method on the cached data; returns ``{"W": ..., "seconds": ...}`` (W thresholded)."""
    import torch

    torch.set_num_threads(1)
    # torch imports its compiler stack (seconds) when the first optimizer is built; every method
    # builds one, so pay it here, outside the timed fit
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    data = np.load(spec["data"])
    X = data["X"].copy()
    if spec["scale"] == "std":
        X = (X - X.mean(0)) / X.std(0)
    d, seed, method = X.shape[1], spec["seed"], spec["method"]
    if method == "notears_ref":
        sys.path.insert(0, spec["notears_path"])
        from notears import utils
        from notears.nonlinear import NotearsMLP, notears_nonlinear

        torch.set_default_dtype(torch.double)  # as the reference's own main()
        utils.set_random_seed(seed)
        t0 = time.perf_counter()
        model = NotearsMLP(dims=[d, 10, 1], bias=True)
        W = notears_nonlinear(model, X.astype(np.float64), lambda1=0.01, lambda2=0.01, w_threshold=0.3)
    elif method == "dagma":
        os.environ["TQDM_DISABLE"] = "1"
        try:
            from dagma.nonlinear import DagmaMLP, DagmaNonlinear
        except ImportError as exc:
            raise SystemExit(f"dagma is not installed ({exc}); install it with: {DAGMA_INSTALL}") from None
        torch.manual_seed(seed)
        np.random.seed(seed)
        t0 = time.perf_counter()
        eq_model = DagmaMLP(dims=[d, 10, 1], bias=True, dtype=torch.double)
        model = DagmaNonlinear(eq_model, dtype=torch.double)
        W = model.fit(X.astype(np.float64), lambda1=0.02, lambda2=0.005, w_threshold=0.3)
    elif method in ("fit_notears", "fit_notears_mse", "fit_notears_loose"):
        from xcausal.structure import fit_notears

        kw = {"fit_notears_mse": {"score": "mse"}, "fit_notears_loose": {"inner_tol": 1e-4}}.get(method, {})
        t0 = time.perf_counter()
        W = fit_notears(X, ["continuous"] * d, seed=seed, **kw).adjacency
    else:
        raise SystemExit(f"unknown method {method!r} (expected one of {METHODS})")
    return {"W": np.asarray(W, dtype=float).tolist(), "seconds": time.perf_counter() - t0}


def _worker(argv: Sequence[str]) -> None:
    spec = json.loads(argv[0])
    if spec["job"] == "simulate":
        _simulate(spec)
        return
    out = _fit(spec)
    Path(spec["result"]).write_text(json.dumps(out))


# ----------------------------------------------------------------------------- parent side
def _run_subprocess(spec: dict, timeout: float) -> tuple[str, str]:
    """Run a worker job in its own process group; ``("ok" | "timeout" | "error", stderr tail)``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", json.dumps(spec)]
    env = {**os.environ, **_THREAD_ENV, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", ""
    if proc.returncode != 0:
        return "error", (err or "").strip()[-400:]
    return "ok", ""


def _is_dag(adj: np.ndarray) -> bool:
    a = (np.asarray(adj) != 0).astype(float)
    m = np.eye(len(a))
    for _ in range(len(a)):
        m = m @ a
        if np.trace(m) > 0:
            return False
    return True


def plan(ds: Sequence[int], seeds: Sequence[int], seeds_for: dict[int, list[int]], densities: Sequence[float],
         sims: Sequence[str], scales: Sequence[str], methods: Sequence[str]) -> list[tuple]:
    """(seed, d, edges_per_node, sim, scale, method) in run order, seed-major."""
    per_d = {d: list(seeds_for.get(d, seeds)) for d in ds}
    all_seeds = list(dict.fromkeys(s for d in ds for s in per_d[d]))
    return [(s, d, k, sim, sc, m) for s in all_seeds for d in ds if s in per_d[d] for k in densities
            for sim in sims for sc in scales for m in methods]


def summarise(rows: list[dict]) -> pd.DataFrame:
    """Means per (d, density, sim, scale, method) over finished runs; timeouts counted apart."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    keys = ["d", "edges_per_node", "sim", "scale", "method"]
    out = []
    for key, g in df.groupby(keys, sort=True):
        ok = g[g["status"] == "ok"]
        to = g[g["status"] == "timeout"]
        out.append({**dict(zip(keys, key)), "runs": len(ok), "timeouts": len(to),
                    "seeds": ",".join(str(s) for s in sorted(ok["seed"])),
                    "seconds": ok["seconds"].mean() if len(ok) else math.nan,
                    "shd": ok["shd"].mean() if len(ok) else math.nan,
                    "tpr": ok["tpr"].mean() if len(ok) else math.nan,
                    "fdr": ok["fdr"].mean() if len(ok) else math.nan,
                    "cap": g["cap_seconds"].max()})
    return pd.DataFrame(out)


def _f(v, fmt: str) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def write_outputs(out: Path, rows: list[dict], settings: dict, *, final: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(out / "results.csv", index=False)
    (out / "results.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1, default=float))
    if not final:
        return
    s = settings
    lines = [
        "# Reference NOTEARS-MLP, DAGMA nonlinear and fit_notears side by side (issue #27, item 1)",
        "",
        f"- date: {s['date']}",
        f"- commit: {s['commit']}",
        f"- machine: {s['machine']}",
        f"- every method in its own process with 1 torch / BLAS thread; the machine has {s['cpu_count']} cores and "
        "another job ran on the other one, so times are indicative (all methods under the same conditions)",
        f"- reference code: {s['notears_ref']}; dagma {s['dagma_version']}",
        f"- command: `{s['command']}`",
        f"- total wall time: {s.get('total_seconds', 0) / 60:.1f} min",
        "",
        "Data: ER DAGs with k·d edges, n = %d; simulators `ref` (notears.utils, columns as it gives them) and `ours` "
        "(xcausal.data.tabular, hidden_bias 2, max_linear_r2 0.5); fitted with columns as simulated (`raw`) and "
        "standardised (`std`). Metrics: `xcausal.metrics.count_accuracy` on the thresholded graph (a reversed edge "
        "counts once in SHD). `seconds`: the fit alone. A run killed at its cap is a `timeout`: it has no SHD and "
        "is not in the means; the `timeouts` column counts them." % s["n"],
        "",
        "Means over the finished seeds:",
        "",
        "| d | edges | sim | scale | method | runs (seeds) | timeouts | seconds | SHD | TPR | FDR |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    agg = summarise([r for r in rows if r["status"] in ("ok", "timeout")])
    for _, a in agg.iterrows():
        secs = _f(a["seconds"], ".1f") if a["runs"] else f"> {a['cap']:.0f}"
        lines.append(f"| {a['d']} | {a['edges_per_node']:g}d | {a['sim']} | {a['scale']} | {a['method']} | "
                     f"{a['runs']} ({a['seeds']}) | {a['timeouts']} | {secs} | {_f(a['shd'], '.1f')} | "
                     f"{_f(a['tpr'], '.2f')} | {_f(a['fdr'], '.2f')} |")
    lines += ["", "Every run:", "",
              "| seed | d | edges | sim | scale | method | status | seconds | SHD | TPR | FDR | found | true | DAG |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        secs = (f"{r['seconds']:.1f}" if r["status"] == "ok" else
                f"> {r['cap_seconds']:.0f}" if r["status"] == "timeout" else "–")
        lines.append(f"| {r['seed']} | {r['d']} | {r['edges_per_node']:g}d | {r['sim']} | {r['scale']} | "
                     f"{r['method']} | {r['status']} | {secs} | {r.get('shd', '–')} | {_f(r.get('tpr'), '.2f')} | "
                     f"{_f(r.get('fdr'), '.2f')} | {r.get('edges_found', '–')} | {r.get('true_edges', '–')} | "
                     f"{r.get('is_dag', '–')} |")
    notes = [r for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- seed {r['seed']} d={r['d']} {r['edges_per_node']:g}d {r['sim']} {r['scale']} {r['method']}: "
                  f"{r['note']}" for r in notes]
    for p in s.get("readme_notes") or []:
        lines += ["", p]
    lines += ["", "`results.csv` / `results.json` hold every row (and, in the json, these settings).", ""]
    (out / "README.md").write_text("\n".join(lines))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notears-path", type=Path, default=None,
                    help="checkout of github.com/xunzheng/notears (needed for --sims ref and notears_ref)")
    ap.add_argument("--d", type=parse_list, default=[10, 20, 40])
    ap.add_argument("--seeds", type=parse_list, default=[0, 1, 2])
    ap.add_argument("--seeds-for", action="append", default=[], metavar="D=SEEDS",
                    help="seeds for one d instead of --seeds, e.g. 40=0 (repeatable)")
    ap.add_argument("--edges-per-node", type=lambda t: parse_list(t, float), default=[1.0, 2.0])
    ap.add_argument("--sims", type=lambda t: parse_list(t, str), default=list(SIMS))
    ap.add_argument("--scales", type=lambda t: parse_list(t, str), default=list(SCALES))
    ap.add_argument("--methods", type=lambda t: parse_list(t, str), default=list(METHODS))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--max-seconds-per-fit", type=float, default=600.0)
    ap.add_argument("--max-total-seconds", type=float, default=math.inf)
    ap.add_argument("--min-seconds-left", type=float, default=30.0)
    ap.add_argument("--skip-after-timeout", action=argparse.BooleanOptionalAction, default=True,
                    help="do not start a method again on graphs as large as one it timed out on")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/dag_side_by_side"))
    ap.add_argument("--note", action="append", default=[], help="a paragraph appended to README.md (repeatable)")
    return ap


def _ref_commit(path: Path | None) -> str:
    if path is None:
        return "not used"
    head = ""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=path,
                              check=False).stdout.strip()
    except OSError:
        pass
    return f"xunzheng/notears at {path}" + (f" (commit {head})" if head else "")


def main(argv: Sequence[str] | None = None) -> list[dict]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    for name, vals, allowed in (("--methods", args.methods, METHODS), ("--sims", args.sims, SIMS),
                                ("--scales", args.scales, SCALES)):
        bad = [v for v in vals if v not in allowed]
        if bad:
            raise SystemExit(f"{name}: unknown {bad} (expected some of {list(allowed)})")
    if ("notears_ref" in args.methods or "ref" in args.sims) and (
            args.notears_path is None or not (args.notears_path / "notears" / "nonlinear.py").is_file()):
        raise SystemExit("--notears-path must point at a checkout of github.com/xunzheng/notears "
                         "(git clone https://github.com/xunzheng/notears) for --methods notears_ref or --sims ref")
    dagma_version = "not used"
    if "dagma" in args.methods:
        try:
            from importlib.metadata import version

            dagma_version = version("dagma")
        except Exception:  # noqa: BLE001 - any failure means: not installed
            raise SystemExit(f"dagma is not installed; install it with: {DAGMA_INSTALL}") from None
    runs = plan(args.d, args.seeds, parse_seeds_for(args.seeds_for), args.edges_per_node, args.sims, args.scales,
                args.methods)
    notears_path = str(args.notears_path.resolve()) if args.notears_path else None
    settings = {
        "d": args.d, "seeds": args.seeds, "seeds_for": args.seeds_for, "edges_per_node": args.edges_per_node,
        "sims": args.sims, "scales": args.scales, "methods": args.methods, "n": args.n,
        "max_seconds_per_fit": args.max_seconds_per_fit, "max_total_seconds": args.max_total_seconds,
        "skip_after_timeout": args.skip_after_timeout, "notears_ref": _ref_commit(args.notears_path),
        "dagma_version": dagma_version, "machine": machine(), "commit": _commit(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
        "command": "python benchmarks/dag_side_by_side.py " + " ".join(shlex.quote(a) for a in argv),
        "readme_notes": list(args.note),
    }
    rows: list[dict] = []
    timed_out: dict[str, int] = {}  # method -> smallest d it timed out on
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dag_sbs_") as tmp:
        cache: dict[tuple, Path] = {}
        for seed, d, k, sim, scale, method in runs:
            key = {"seed": seed, "d": d, "edges_per_node": k, "sim": sim, "scale": scale, "method": method,
                   "true_edges": None}
            left = args.max_total_seconds - (time.perf_counter() - t_start)
            if args.skip_after_timeout and method in timed_out and d >= timed_out[method]:
                rows.append({**key, "status": f"skipped (timed out at d={timed_out[method]})"})
                continue
            if left < args.min_seconds_left:
                rows.append({**key, "status": "skipped (budget)"})
                continue
            dkey = (seed, d, k, sim)
            if dkey not in cache:
                path = Path(tmp) / f"data_{seed}_{d}_{k:g}_{sim}.npz"
                status, err = _run_subprocess({"job": "simulate", "path": str(path), "d": d, "n": args.n,
                                               "seed": seed, "edges_per_node": k, "sim": sim,
                                               "notears_path": notears_path}, timeout=600)
                if status != "ok":
                    raise SystemExit(f"simulation {dkey} failed: {status} {err}")
                cache[dkey] = path
            B = np.load(cache[dkey])["B"]
            key["true_edges"] = int((B != 0).sum())
            cap = min(args.max_seconds_per_fit, left)
            result = Path(tmp) / "result.json"
            result.unlink(missing_ok=True)
            spec = {"job": "fit", "data": str(cache[dkey]), "scale": scale, "seed": seed, "method": method,
                    "result": str(result), "notears_path": notears_path}
            status, err = _run_subprocess(spec, timeout=cap)
            row = {**key, "cap_seconds": cap, "status": status, "note": err}
            if status == "ok":
                res = json.loads(result.read_text())
                W = np.asarray(res["W"])
                row.update(seconds=res["seconds"], is_dag=_is_dag(W), **accuracy(B, W))
            elif status == "timeout":
                timed_out[method] = min(d, timed_out.get(method, d))
                if cap < args.max_seconds_per_fit:
                    row["note"] = f"cap cut to {cap:.0f} s by the whole-run budget"
            rows.append(row)
            print(f"seed={seed} d={d} {k:g}d {sim} {scale} {method}: {status} "
                  + (f"{row['seconds']:.1f}s shd={row['shd']} tpr={row['tpr']:.2f}" if status == "ok" else err[-200:]),
                  flush=True)
            settings["total_seconds"] = time.perf_counter() - t_start
            write_outputs(args.out, rows, settings, final=False)
    settings["total_seconds"] = time.perf_counter() - t_start
    write_outputs(args.out, rows, settings, final=True)
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--_worker":
        _worker(sys.argv[2:])
    else:
        main()
