"""The CMCL paper's synthetic benchmark: Figure 2, Table 1, Table 2 and fit times, side by side.

One grid of independent cells, each cached on disk as JSON the moment it finishes, so a killed
run resumes where it stopped (finished cells are read back, not refitted):

* ``cmcl`` cells ``(graph, seed, variant)``: CMCL with CM/CR on or off (``variant`` one of
  :data:`VARIANTS`); ``cm+cr`` is CMCL as shipped, the others are Table 2's ablation.
* ``rep`` cells ``(graph, seed, representation)``: one representation learner fitted once, then
  every structure learner run on its latents (``<representation>+notears``, ``+ges``): the
  pipelines of Figure 2 and the representations of Table 1 share the fit.

Every cell simulates its data with :func:`xcausal.data.simulate_appendix_e` (seed = the cell's
seed; the model's seed is the same), fits with as many latents as the truth has, and is scored by
:func:`xcausal.evaluate.evaluate_graph` (latents matched to the truth by MIC; undirected CPDAG
edges scored favourably). The cells run through joblib (``jobs`` processes, one torch thread
each), on any joblib backend: ``loky`` (default), ``ray`` or ``dask`` (optional extras).

The paper reports Figure 2 as a plot only (no numbers in the text); Tables 1 and 2 carry numbers,
reproduced in :data:`PAPER_TABLE1` / :data:`PAPER_TABLE2` and printed beside ours.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from xcausal import __version__
from xcausal.io import DataError

__all__ = ["PaperBenchConfig", "Cell", "run_paper_bench", "plan_cells", "run_cell", "VARIANTS",
           "PAPER_TABLE1", "PAPER_TABLE2", "FIG2_GRAPHS", "TABLE1_GRAPHS"]

logger = logging.getLogger(__name__)

#: CMCL variants (Table 2): name -> (use_cm, use_cr)
VARIANTS: dict[str, tuple[bool, bool]] = {"cm+cr": (True, True), "cm": (True, False), "cr": (False, True),
                                          "none": (False, False)}
FIG2_GRAPHS = ["1/10", "4/10", "6/12", "8/16", "10/20", "12/24", "20/40"]
TABLE1_GRAPHS = ["3/10", "5/10", "8/16", "10/20"]
TABLE1_METHODS = ["cmcl", "betavae", "factorvae", "ivae", "tcvae"]
#: Figure 2's representation learners (the paper: FactorVAE, iVAE, TCVAE; beta-VAE is in Table 1)
FIG2_REPRESENTATIONS = ["betavae", "factorvae", "tcvae", "ivae"]
STRUCTURES = ["notears", "ges"]

#: CMCL paper, Table 1: MIC in percent, mean and sd over 5 runs
PAPER_TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    "3/10": {"cmcl": (93.5, 1.4), "betavae": (33.3, 5.6), "factorvae": (37.9, 5.8), "ivae": (47.2, 3.1),
             "tcvae": (40.6, 5.3)},
    "5/10": {"cmcl": (95.8, 1.7), "betavae": (21.7, 6.8), "factorvae": (20.2, 6.3), "ivae": (48.9, 4.9),
             "tcvae": (23.4, 6.5)},
    "8/16": {"cmcl": (88.4, 2.5), "betavae": (12.2, 4.3), "factorvae": (13.7, 4.6), "ivae": (43.6, 4.2),
             "tcvae": (14.2, 5.2)},
    "10/20": {"cmcl": (79.3, 2.8), "betavae": (12.5, 4.8), "factorvae": (12.6, 5.2), "ivae": (45.7, 3.8),
              "tcvae": (13.8, 5.1)},
}
#: CMCL paper, Table 2 (20/40, 5 runs): variant -> metric -> (mean, sd)
PAPER_TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "none": {"shd": (12.32, 0.6), "tpr": (0.32, 0.08), "fpr": (0.028, 0.004), "fdr": (0.56, 0.08)},
    "cm": {"shd": (7.76, 0.7), "tpr": (0.53, 0.06), "fpr": (0.013, 0.006), "fdr": (0.35, 0.05)},
    "cr": {"shd": (11.75, 0.5), "tpr": (0.36, 0.07), "fpr": (0.022, 0.005), "fdr": (0.51, 0.05)},
    "cm+cr": {"shd": (4.81, 0.3), "tpr": (0.77, 0.05), "fpr": (0.000, 0.000), "fdr": (0.00, 0.00)},
}
METRICS = ["shd", "tpr", "fpr", "fdr"]


@dataclass
class PaperBenchConfig:
    """What ``xcausal bench --suite paper`` takes; saved as ``bench.json`` in the output."""

    out: str
    seeds: int = 5
    n: int = 2000
    epochs: int | None = None
    jobs: int = 1
    backend: Literal["loky", "ray", "dask"] = "loky"
    scheduler: str | None = None
    quick: bool = False
    fig2_graphs: list[str] = field(default_factory=lambda: list(FIG2_GRAPHS))
    table1_graphs: list[str] = field(default_factory=lambda: list(TABLE1_GRAPHS))
    ablation_graph: str = "20/40"
    representations: list[str] = field(default_factory=lambda: list(FIG2_REPRESENTATIONS))
    table1_representations: list[str] = field(default_factory=lambda: list(TABLE1_METHODS[1:]))
    structures: list[str] = field(default_factory=lambda: list(STRUCTURES))
    image_size: int = 32
    progress: bool = False
    threads: int | None = None  # torch and BLAS threads per parallel cell (None: cores // jobs)

    def resolved(self) -> "PaperBenchConfig":
        """The quick preset applied: two small graphs, one seed, few epochs, n = 300."""
        if not self.quick:
            return self
        return PaperBenchConfig(**{**asdict(self), "quick": False, "seeds": 1, "n": min(self.n, 300),
                                   "epochs": self.epochs or 3, "fig2_graphs": ["1/10", "4/10"],
                                   "table1_graphs": ["4/10"], "ablation_graph": "4/10"})


@dataclass(frozen=True)
class Cell:
    """One independent job of the grid."""

    kind: Literal["cmcl", "rep"]
    graph: str
    seed: int
    name: str  # CMCL variant or representation name

    def key(self, settings: Mapping[str, Any]) -> str:
        digest = hashlib.sha1(json.dumps(dict(settings), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.kind}_{self.graph.replace('/', '-')}_{self.name}_s{self.seed}_{digest}"


def plan_cells(cfg: PaperBenchConfig) -> list[Cell]:
    """Every cell the three tables need, each once (graphs shared by tables share cells)."""
    seeds = range(cfg.seeds)
    graphs = list(dict.fromkeys(cfg.fig2_graphs + cfg.table1_graphs))
    cells = [Cell("cmcl", g, s, "cm+cr") for g in graphs for s in seeds]
    cells += [Cell("cmcl", cfg.ablation_graph, s, v) for v in VARIANTS if v != "cm+cr" for s in seeds]
    if cfg.ablation_graph not in graphs:
        cells += [Cell("cmcl", cfg.ablation_graph, s, "cm+cr") for s in seeds]
    reps = list(dict.fromkeys(cfg.representations + cfg.table1_representations))
    cells += [Cell("rep", g, s, r) for g in graphs for r in reps for s in seeds
              if (g in cfg.fig2_graphs and r in cfg.representations)
              or (g in cfg.table1_graphs and r in cfg.table1_representations)]
    return list(dict.fromkeys(cells))


def _settings(cfg: PaperBenchConfig) -> dict[str, Any]:
    """What a cell's result depends on besides the cell itself (part of its cache key)."""
    return {"n": cfg.n, "epochs": cfg.epochs, "image_size": cfg.image_size, "structures": list(cfg.structures),
            "version": __version__}


def run_cell(cell: Cell, settings: Mapping[str, Any], *, threads: int | None = None,
             representations: Mapping[str, type] | None = None) -> list[dict[str, Any]]:
    """Simulate, fit and score one cell; one result row per method (a ``rep`` cell: one per structure,
    plus a row for the representation alone, method = its name)."""

    from xcausal.data import dataset_from_arrays, simulate_appendix_e
    from xcausal.evaluate import evaluate_graph
    from xcausal.metrics import match_latents

    if threads:
        from xcausal._runtime import limit_process_threads

        limit_process_threads(threads)  # a worker process of its own: torch and BLAS
    sim = simulate_appendix_e(cell.graph, int(settings["n"]), seed=cell.seed, image_size=int(settings["image_size"]))
    ds = dataset_from_arrays(sim.images, sim.table, truth=sim.truth, latents=sim.latents,
                             source=f"sim:{cell.graph}:{cell.seed}")
    m = len(sim.truth.latent)
    epochs = settings["epochs"]
    base = {"graph": cell.graph, "edges": len(sim.truth.edges), "seed": cell.seed, "n": int(settings["n"])}
    rows: list[dict[str, Any]] = []

    def score(graph, z, match, method, seconds, **extra):
        res = evaluate_graph(graph, sim.truth, est_latents=z, true_latents=sim.latents, mic_match=match)
        rows.append({**base, "method": method, **{k: res[k] for k in ("shd", "tpr", "fpr", "fdr", "nnz", "mcc", "mic")},
                     "n_agree": res["n_agree"], "fit_seconds": seconds, **extra})

    if cell.kind == "cmcl":
        from xcausal.models.cmcl import CMCL

        use_cm, use_cr = VARIANTS[cell.name]
        t0 = time.perf_counter()
        model = CMCL(latent_dim=m, epochs=epochs, use_cm=use_cm, use_cr=use_cr, seed=cell.seed, device="cpu").fit(ds)
        secs = time.perf_counter() - t0
        z = model.transform(ds)
        score(model.graph_obj_, z, match_latents(sim.latents, z, score="mic"),
              "cmcl" if cell.name == "cm+cr" else f"cmcl[{cell.name}]", secs, variant=cell.name,
              **{f"share_{k}": v for k, v in getattr(model, "time_share_", {}).items()})
        return rows

    from xcausal.models.pipeline import Pipeline, _representations

    reps = _representations(representations)
    if cell.name not in reps:
        raise ValueError(f"unknown representation '{cell.name}' (available: {', '.join(reps)})")
    t0 = time.perf_counter()
    rep = reps[cell.name](latent_dim=m, epochs=epochs, seed=cell.seed, device="cpu").fit(ds)
    rep_secs = time.perf_counter() - t0
    z = np.asarray(rep.transform(ds), dtype=np.float64)
    match = match_latents(sim.latents, z, score="mic")
    from xcausal.metrics import matched_mean, mcc

    rows.append({**base, "method": cell.name, "mcc": float(mcc(sim.latents, z)),
                 "mic": matched_mean(*match),
                 "fit_seconds": rep_secs})
    for struct in settings["structures"]:
        p = Pipeline(representation=cell.name, structure=struct, latent_dim=m, epochs=epochs, seed=cell.seed,
                     device="cpu", representations=representations)
        t1 = time.perf_counter()
        p.fit(ds, fitted_representation=rep)
        score(p.graph_obj_, z, match, p.method_name, rep_secs + time.perf_counter() - t1,
              structure_seconds=time.perf_counter() - t1)
    return rows


# ============================================================================ running
def _machine() -> dict[str, Any]:
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "xcausal": __version__, "commit": commit}


@contextlib.contextmanager
def _parallel(cfg: PaperBenchConfig):
    """A joblib Parallel (unordered results) on the configured backend; Ray / Dask set up on demand."""
    from joblib import Parallel, parallel_config

    client = None
    if cfg.backend == "ray":
        try:
            from ray.util.joblib import register_ray
        except ImportError:
            raise DataError("--backend ray needs Ray: pip install 'xcausal[ray]'") from None
        register_ray()
    elif cfg.backend == "dask":
        try:
            from dask.distributed import Client
        except ImportError:
            raise DataError("--backend dask needs Dask: pip install 'xcausal[dask]'") from None
        # an existing cluster (--scheduler), or a local one with a process per job
        client = (Client(cfg.scheduler) if cfg.scheduler
                  else Client(processes=True, n_workers=cfg.jobs, threads_per_worker=1, dashboard_address=None))
        logger.info("dask client: %s", client)
    try:
        with parallel_config(backend=cfg.backend):
            yield Parallel(n_jobs=cfg.jobs, return_as="generator_unordered")
    finally:
        if client is not None:
            client.close()


def _write_cell(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    tmp.replace(path)  # atomic: a killed run never leaves a half-written cell


def _cached_job(cell: Cell, path: str, threads: int | None, *, settings: dict[str, Any],
                representations: Mapping[str, type] | None) -> str:
    rows = run_cell(cell, settings, threads=threads, representations=representations)
    _write_cell(Path(path), rows)
    return path


def run_paper_bench(cfg: PaperBenchConfig, *, command: str | None = None,
                    representations: Mapping[str, type] | None = None,
                    on_cell: Callable[[Cell, int, int], None] | None = None) -> Path:
    """Run (or resume) the grid and write the tables and the figure into ``cfg.out``.

    Cells finished earlier (``OUT/cells/*.json`` with the same settings) are skipped. The tables
    are rewritten atomically from every cached cell. ``on_cell(cell, done, total)`` is called
    as cells finish (progress).
    """
    rc = cfg.resolved()
    if rc.seeds < 1 or rc.n < 10 or rc.jobs < 1:
        raise DataError(f"--seeds {rc.seeds}, --n {rc.n}, --jobs {rc.jobs}: need seeds >= 1, n >= 10, jobs >= 1")
    if rc.backend not in ("loky", "ray", "dask"):
        raise DataError(f"--backend {rc.backend}: must be loky, ray or dask")
    from xcausal.data.simulate import parse_graph_spec

    for g in set(rc.fig2_graphs + rc.table1_graphs + [rc.ablation_graph]):
        parse_graph_spec(g)  # a bad graph spec fails before any fit
    out = Path(rc.out)
    settings = _settings(rc)
    cells = plan_cells(rc)
    from functools import partial

    from xcausal.bench._cells import run_cached_cells

    paths = run_cached_cells(
        cells, lambda c: c.key(settings), out, partial(_cached_job, settings=settings, representations=representations),
        jobs=rc.jobs, threads=rc.threads, parallel=lambda: _parallel(rc),
        on_done=None if on_cell is None else (lambda c, done, total, _path: on_cell(c, done, total)))
    rows = [r for c in cells for r in json.loads(paths[c].read_text())]
    write_tables(out, pd.DataFrame(rows), rc, command=command)
    return out


# ============================================================================ tables
def _ms(s: pd.Series, fmt: str = "{:.2f}") -> str:
    s = s.dropna()
    if s.empty:
        return "—"
    return fmt.format(s.mean()) + ("" if len(s) < 2 else " ± " + fmt.format(s.std(ddof=1)))


def _fig2_frame(df: pd.DataFrame, cfg: PaperBenchConfig) -> pd.DataFrame:
    d = df[df["graph"].isin(cfg.fig2_graphs) & df["shd"].notna() & ~df["method"].str.startswith("cmcl[")]
    agg = d.groupby(["method", "graph", "edges"])[METRICS + ["fit_seconds"]].agg(["mean", "std", "count"])
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    return agg.reset_index().sort_values(["method", "edges"])


def _table1(df: pd.DataFrame, cfg: PaperBenchConfig) -> pd.DataFrame:
    methods = ["cmcl"] + list(cfg.table1_representations)
    d = df[df["graph"].isin(cfg.table1_graphs) & df["method"].isin(methods)]
    out = []
    for g in cfg.table1_graphs:
        for meth in methods:
            s = d[(d["graph"] == g) & (d["method"] == meth)]
            paper = PAPER_TABLE1.get(g, {}).get(meth)
            out.append({"graph": g, "method": meth, "mic": _ms(100 * s["mic"], "{:.1f}"),
                        "mcc": _ms(100 * s["mcc"], "{:.1f}"), "runs": len(s),
                        "paper_mic": f"{paper[0]:.1f} ± {paper[1]:.1f}" if paper else "—"})
    return pd.DataFrame(out)


def _table2(df: pd.DataFrame, cfg: PaperBenchConfig) -> pd.DataFrame:
    d = df[(df["graph"] == cfg.ablation_graph) & df["method"].str.startswith("cmcl")]
    out = []
    for v, (cm, cr) in VARIANTS.items():
        s = d[d["method"] == ("cmcl" if v == "cm+cr" else f"cmcl[{v}]")]
        row: dict[str, Any] = {"CM": "✓" if cm else "", "CR": "✓" if cr else "", "runs": len(s)}
        for k in METRICS:
            row[k] = _ms(s[k], "{:.3f}" if k == "fpr" else "{:.2f}")
            if cfg.ablation_graph == "20/40":
                mu, sd = PAPER_TABLE2[v][k]
                row[f"paper_{k}"] = f"{mu:g} ± {sd:g}"
        out.append(row)
    return pd.DataFrame(out)


def _timing(df: pd.DataFrame) -> pd.DataFrame:
    t = df.groupby(["method", "graph"])["fit_seconds"].mean().unstack("graph")
    order = sorted(t.columns, key=lambda g: tuple(int(x) for x in g.split("/")) if "/" in g else (0, 0))
    return t[order].round(1)


def _md(frame: pd.DataFrame, index: bool = False) -> str:
    f = frame.reset_index() if index else frame
    cols = [str(c) for c in f.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in f.iterrows():
        lines.append("| " + " | ".join("" if (isinstance(v, float) and np.isnan(v)) else str(v) for v in r) + " |")
    return "\n".join(lines)


def _figure2(fig2: pd.DataFrame, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 3.8))  # no pyplot state, no global backend switch
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 4)
    for meth, g in fig2.groupby("method"):
        style = {"lw": 2.5, "color": "black", "zorder": 5} if meth == "cmcl" else {"lw": 1.2, "alpha": 0.85}
        for ax, k in zip(axes, METRICS):
            ax.errorbar(g["edges"], g[f"{k}_mean"], yerr=g[f"{k}_std"].fillna(0), marker="o", ms=3, capsize=2,
                        label=meth, **style)
    for ax, k in zip(axes, METRICS):
        ax.set_title(k.upper())
        ax.set_xlabel("edges in the simulated DAG")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("Figure 2 (CMCL paper) reproduced: structure recovery against edge count")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_tables(out: Path, df: pd.DataFrame, cfg: PaperBenchConfig, *, command: str | None = None) -> None:
    """results.csv (one row per method and cell), figure2.csv/png, table1.csv, table2.csv, timing.csv,
    results.md (all of them, with the paper's numbers) and bench.json (config, machine) in ``out``."""
    fig2 = _fig2_frame(df, cfg)
    t1, t2, tm = _table1(df, cfg), _table2(df, cfg), _timing(df)
    machine = _machine()
    md = [f"# CMCL paper benchmark (xcausal {__version__})", "",
          f"Command: `{command or 'run_paper_bench(...)'}`  ",
          "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + "  ",
          f"Settings: n = {cfg.n}, epochs = {cfg.epochs or 'method default'}, seeds = {cfg.seeds}, "
          f"image {cfg.image_size}×{cfg.image_size}; every method gets as many latents as the truth has.", "",
          "## Figure 2: structure recovery (mean ± sd over seeds)", "",
          "The paper gives Figure 2 as a plot only; its one number in the text is CMCL on 20/40 "
          "(Table 2: SHD 4.81, TPR 0.77, FPR 0.000, FDR 0.00). `figure2.png` draws ours.", ""]
    if not fig2.empty:
        show = fig2[["method", "graph"]].copy()
        for k in METRICS:
            show[k] = [f"{m:.2f}" + ("" if c < 2 else f" ± {s:.2f}")
                       for m, s, c in zip(fig2[f"{k}_mean"], fig2[f"{k}_std"], fig2[f"{k}_count"])]
        md += [_md(show), ""]
    md += ["## Table 1: MIC of the latents, in % (MCC beside it), mean ± sd", "", _md(t1), "",
           f"## Table 2: CMCL ablation on {cfg.ablation_graph}", ""]
    if cfg.ablation_graph != "20/40":
        md += [f"(The paper's Table 2 is on 20/40; this run used {cfg.ablation_graph}, so no paper column.)", ""]
    md += [_md(t2), "", "## Fit time, seconds per fit (mean over seeds)", "",
           "Pipelines: representation + structure learner; a representation alone: its fit.", "",
           _md(tm, index=True), ""]
    import tempfile

    # every file is written beside its target and moved into place: a crash never leaves half a table
    with tempfile.TemporaryDirectory(dir=out, prefix=".tables-") as tmpd:
        tmp = Path(tmpd)
        df.to_csv(tmp / "results.csv", index=False)
        fig2.to_csv(tmp / "figure2.csv", index=False)
        t1.to_csv(tmp / "table1.csv", index=False)
        t2.to_csv(tmp / "table2.csv", index=False)
        tm.to_csv(tmp / "timing.csv")
        if not fig2.empty:
            _figure2(fig2, tmp / "figure2.png")
        (tmp / "results.md").write_text("\n".join(md) + "\n")
        (tmp / "bench.json").write_text(json.dumps({"config": asdict(cfg), "machine": machine,
                                                    "command": command}, indent=2))
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
