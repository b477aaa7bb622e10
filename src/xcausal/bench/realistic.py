"""The realistic suite (``xcausal bench --suite realistic``): scenario families on real images, judged
by measuring the images.

One grid of independent cells ``(family, seed, method)``, each cached on disk as JSON the moment it
finishes, so a killed run resumes where it stopped (finished cells are read back, not refitted).
Families: the seven of :func:`xcausal.data.realistic.simulate_realistic` plus ``xray-phantom``
(:func:`xcausal.data.xray.simulate_xray_phantom`, at least 32 px). Methods: ``cmcl`` (CMCL with its
defaults) and two-stage pipelines ``<representation>+<structure>`` (``ivae+notears``, ...), each
fitted with its defaults (only ``epochs`` may be set for all), seed = the cell's seed, on CPU.

A cell simulates ``n`` rows at ``image_size`` px with the cell's seed, fits, optionally refits on
``bootstrap`` resamples (:func:`xcausal.bootstrap.bootstrap_refits`) and scores:

* **verdicts**: per variable, the learned graph's relation (:meth:`xcausal.types.Graph.relation`:
  causal, anti-causal, mixed, none) against the truth's (the chain family's ``exposure`` is
  causal, its ``thickness_score`` anti-causal). A verdict is **undetermined** when the learned
  graph leaves it unoriented (every edge between the variable and the latents undirected in a
  pipeline's CPDAG) or, with a bootstrap, when fewer than :data:`UNDETERMINED_BELOW` of the refits
  give the main fit's verdict; otherwise it is right or wrong (a ``mixed`` verdict is wrong, the
  truth is never mixed). Verdict accuracy = right / variables, so an undetermined verdict is not
  right, and not counted wrong either.
* **wrong and confident**: a wrong verdict whose bootstrap support (the share of refits giving
  it, ``verdicts.csv``) is at least :data:`CONFIDENT`; not available without a bootstrap.
* **intervention sign** (methods with ``intervene``, i.e. CMCL; xray-phantom has no judge
  measurement for its factors, so it is scored on verdicts and MCC only): for each variable the
  model calls causal that is truly causal, do() over :func:`xcausal.measure.intervention_values`
  (7 values over the observed 5-95% range; a binary or categorical variable's categories,
  ordered by the mean of the true factor they cause) on ``judge_rows`` rows spread over the
  data; the variable's own factor is measured in the generated images (:data:`FACTOR_MEASURES`:
  stroke thickness, slant, marker-box intensity, global contrast) and
  :func:`xcausal.measure.judge_intervention` gives Spearman's rho of the mean measurement
  against the do() values. The true sign is that of Spearman's rho between the variable and its
  true factor in the data (+ for every family as built; + by construction for a categorical
  variable, ordered as above). Sign right: the judged sign equals the true one.
* **unchanged** (same methods and families): for each truly anti-causal or unrelated variable,
  the images under do(first value) and do(last value) (5% / 95% quantile, or the first / last
  category) on the same rows; every factor of the family is measured and must move by at most
  the data's own noise, the standard error of the mean of that measurement over the same rows'
  real images (:func:`xcausal.measure.unchanged`).
* **MCC**: :func:`xcausal.metrics.mcc` (mean absolute Pearson correlation of the true factors,
  ``latents.npy``, with their Hungarian-matched learned latents).
* **fit time**: seconds of the main fit (the bootstrap's refits are recorded apart).

Outputs in ``out``: ``cells/*.json`` (the cache), ``results.csv`` (one row per cell),
``variables.csv`` (one row per cell and variable), ``summary.md`` (one table: a row per family
and method, and the overall rows) and ``bench.json`` (config, machine, command).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xcausal import __version__
from xcausal.data.realistic import REALISTIC_FAMILIES
from xcausal.io import DataError
from xcausal.types import Graph, Relation

__all__ = ["RealisticBenchConfig", "RealisticCell", "FAMILIES", "DEFAULT_METHODS", "CONFIDENT",
           "UNDETERMINED_BELOW", "FACTOR_MEASURES", "plan_realistic_cells", "run_realistic_cell",
           "run_realistic_bench", "score_verdicts", "summarise_verdicts", "summary_table"]

logger = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = (*REALISTIC_FAMILIES, "xray-phantom")
"""Every family of the suite, in table order."""
DEFAULT_METHODS: tuple[str, ...] = ("cmcl", "ivae+notears")
"""CMCL with its defaults and the two-stage pipeline the suite compares it with."""
CONFIDENT = 0.8
"""Bootstrap support at or above which a wrong verdict counts as wrong and confident."""
UNDETERMINED_BELOW = 0.5
"""A bootstrapped verdict given by fewer than this share of the refits is undetermined."""
DO_VALUES = 7
"""do() values per continuous variable in the intervention judge."""
XRAY_MIN_SIZE = 32


def _thickness(images: np.ndarray, exclude=None) -> np.ndarray:
    from xcausal.measure import stroke_thickness

    return stroke_thickness(images, exclude=exclude)


def _slant(images: np.ndarray, exclude=None) -> np.ndarray:
    from xcausal.measure import slant

    return slant(images, exclude=exclude)


def _marker(images: np.ndarray, exclude=None) -> np.ndarray:
    from xcausal.data.realistic import marker_box
    from xcausal.measure import region_intensity

    return region_intensity(images, marker_box(images.shape[-1]))


def _contrast(images: np.ndarray, exclude=None) -> np.ndarray:
    from xcausal.measure import global_contrast

    return global_contrast(images, exclude=exclude)


FACTOR_MEASURES: dict[str, Callable[..., np.ndarray]] = {
    "thickness": _thickness, "slant": _slant, "marker": _marker, "contrast": _contrast}
"""The judge's measurement of each realistic factor: ``f(images, exclude=box)`` -> one value per
image (the marker box is excluded from the other measurements in families with a marker)."""


# ============================================================================ config and cells
@dataclass
class RealisticBenchConfig:
    """What ``xcausal bench --suite realistic`` takes; saved as ``bench.json`` in the output."""

    out: str
    seeds: int = 3
    n: int = 2000
    image_size: int | None = None  # None: 32 (16 with quick); xray-phantom at least 32
    epochs: int | None = None  # None: each method's own default
    bootstrap: int = 0
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    methods: list[str] | None = None  # None: DEFAULT_METHODS (cmcl only with quick)
    judge_rows: int = 64
    jobs: int = 1
    threads: int | None = None  # torch and BLAS threads per parallel cell (None: cores // jobs)
    quick: bool = False

    def resolved(self) -> "RealisticBenchConfig":
        """Defaults filled in; the quick preset applied (1 seed, n <= 80, 16 px, 2 epochs, 24 judged
        rows, cmcl only unless ``methods`` is given): a check of the plumbing, not of the numbers."""
        d = asdict(self)
        if d["methods"] is None:
            d["methods"] = ["cmcl"] if self.quick else list(DEFAULT_METHODS)
        if self.quick:
            d.update(quick=False, seeds=1, n=min(self.n, 80), image_size=self.image_size or 16,
                     epochs=self.epochs or 2, judge_rows=min(self.judge_rows, 24))
        d["image_size"] = d["image_size"] or 32
        return RealisticBenchConfig(**d)


@dataclass(frozen=True)
class RealisticCell:
    """One independent job of the grid."""

    family: str
    seed: int
    method: str

    def key(self, settings: Mapping[str, Any]) -> str:
        digest = hashlib.sha1(json.dumps(dict(settings), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.family}_{self.method.replace('+', '-')}_s{self.seed}_{digest}"


def plan_realistic_cells(cfg: RealisticBenchConfig) -> list[RealisticCell]:
    """Every (family, seed, method), families and methods in the given order."""
    cfg = cfg.resolved()
    return [RealisticCell(f, s, m) for f in cfg.families for m in cfg.methods for s in range(cfg.seeds)]


def _settings(cfg: RealisticBenchConfig) -> dict[str, Any]:
    """What a cell's result depends on besides the cell itself (part of its cache key)."""
    return {"n": cfg.n, "image_size": cfg.image_size, "epochs": cfg.epochs, "bootstrap": cfg.bootstrap,
            "judge_rows": cfg.judge_rows, "version": __version__}


def _check(cfg: RealisticBenchConfig) -> None:
    if cfg.seeds < 1 or cfg.n < 10 or cfg.jobs < 1 or cfg.bootstrap < 0 or cfg.judge_rows < 2:
        raise DataError(f"--seeds {cfg.seeds}, --n {cfg.n}, --jobs {cfg.jobs}, --bootstrap {cfg.bootstrap}: need "
                        "seeds >= 1, n >= 10, jobs >= 1, bootstrap >= 0")
    if cfg.epochs is not None and cfg.epochs < 1:
        raise DataError(f"--epochs {cfg.epochs}: must be at least 1")
    if cfg.image_size is not None and cfg.image_size < 16:
        raise DataError(f"--image-size {cfg.image_size}: the realistic families need at least 16")
    bad = [f for f in cfg.families if f not in FAMILIES]
    if bad or not cfg.families:
        raise DataError(f"--families {','.join(bad) or '(none)'}: choose from {', '.join(FAMILIES)}")
    if not cfg.methods:
        raise DataError("--methods: give at least one method")
    from xcausal.models.pipeline import pipeline_names

    known = pipeline_names()
    bad = [m for m in cfg.methods if m != "cmcl" and m not in known]
    if bad:
        raise DataError(f"--methods {','.join(bad)}: unknown (available: cmcl, {', '.join(known)})")


# ============================================================================ scoring (pure)
def _undirected(graph: Graph, variable: str) -> bool:
    """Every edge between ``variable`` and a latent is undirected (a pipeline's CPDAG, or pairs CMCL
    left undetermined): :meth:`xcausal.types.Graph.relation` is UNDETERMINED."""
    return graph.relation(variable) is Relation.UNDETERMINED


def score_verdicts(found: Graph, truth: Graph, support: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """One record per observed variable of ``truth``: its true and found relation, the bootstrap
    support of the found one, the outcome and whether it is wrong and confident.

    Parameters
    ----------
    found : the learned graph (latent names need not match the truth's: a verdict is per variable)
    truth : the true graph
    support : :func:`xcausal.bootstrap.verdict_table` of the refits (columns ``variable``,
        ``p_causal``, ``p_anti_causal``, ``p_mixed``, ``p_none``), or None without a bootstrap

    Returns
    -------
    list of dict with ``variable``, ``true``, ``found`` (relation values), ``support`` (share of
    refits giving ``found``; None without a bootstrap), ``outcome`` (``right``, ``wrong`` or
    ``undetermined``, see the module docstring) and ``wrong_confident`` (None without a bootstrap).
    """
    shares = None if support is None else support.set_index("variable")
    out = []
    for v in truth.observed:
        t, f = truth.relation(v).value, found.relation(v).value
        sup = None
        if shares is not None:
            sup = float(shares.loc[v, f"p_{f.replace('-', '_')}"])
        undetermined = _undirected(found, v) or (sup is not None and sup < UNDETERMINED_BELOW)
        outcome = "undetermined" if undetermined else ("right" if f == t else "wrong")
        out.append({"variable": v, "true": t, "found": f, "support": sup, "outcome": outcome,
                    "wrong_confident": None if sup is None else bool(outcome == "wrong" and sup >= CONFIDENT)})
    return out


def summarise_verdicts(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts and rates over verdict records (:func:`score_verdicts`, possibly pooled over cells):
    ``verdict_accuracy`` = right / variables, ``undetermined_share``, ``wrong_confident_rate`` =
    wrong-and-confident / variables (None when any record has no bootstrap support)."""
    k = len(records)
    right = sum(r["outcome"] == "right" for r in records)
    und = sum(r["outcome"] == "undetermined" for r in records)
    wc = None if any(r["wrong_confident"] is None for r in records) else sum(bool(r["wrong_confident"])
                                                                               for r in records)
    return {"n_variables": k, "n_right": right, "n_wrong": k - right - und, "n_undetermined": und,
            "n_wrong_confident": wc, "verdict_accuracy": right / k if k else None,
            "undetermined_share": und / k if k else None,
            "wrong_confident_rate": None if wc is None or not k else wc / k}


# ============================================================================ one cell
def _simulate(family: str, n: int, seed: int, image_size: int):
    if family == "xray-phantom":
        from xcausal.data.xray import simulate_xray_phantom

        return simulate_xray_phantom(n, seed=seed, image_size=max(image_size, XRAY_MIN_SIZE))
    from xcausal.data.realistic import simulate_realistic

    return simulate_realistic(family, n, seed=seed, image_size=image_size)


def _make_model(method: str, epochs: int | None, seed: int):
    """An unfitted model of ``method`` with its defaults (module level: picklable for the bootstrap)."""
    if method == "cmcl":
        from xcausal.models.cmcl import CMCL

        return CMCL(epochs=epochs, seed=seed, device="cpu")
    from xcausal.models.pipeline import Pipeline

    rep, struct = method.split("+", 1)
    return Pipeline(representation=rep, structure=struct, epochs=epochs, seed=seed, device="cpu")


def _partners(graph: Graph, var: str) -> list[str]:
    lat = set(graph.latent)
    return [e.target for e in graph.edges if e.source == var and e.target in lat]


def _do_values(ds, var_name: str, factor: np.ndarray | None) -> tuple[list[Any], np.ndarray]:
    """do() values of a variable (what the model takes) and their numeric positions: a continuous
    variable's :func:`intervention_values`; a binary or categorical one's categories ordered by the
    mean of its true factor ``factor`` (in category order when None)."""
    from xcausal.measure import intervention_values
    from xcausal.types import VarType

    var = ds.variables[ds.variable_names.index(var_name)]
    if var.type is VarType.CONTINUOUS:
        vals = intervention_values(pd.to_numeric(ds.table[var_name]).to_numpy(), DO_VALUES)
        return [float(v) for v in vals], np.asarray(vals, dtype=np.float64)
    cats = [str(c) for c in var.categories]
    if factor is not None:
        col = ds.table[var_name].astype(str).to_numpy()
        means = [float(np.mean(factor[col == c])) if (col == c).any() else np.inf for c in cats]
        cats = [c for _, c in sorted(zip(means, cats))]
    return cats, np.arange(len(cats), dtype=np.float64)


def _judge(model, ds, sim, family: str, found: Graph, rows: np.ndarray) -> list[dict[str, Any]]:
    """The image judge per variable (see the module docstring); [] when the family has no measurement."""
    from scipy import stats

    from xcausal.measure import judge_intervention, shift, unchanged

    truth = sim.truth
    factors = list(truth.latent)
    if not hasattr(model, "intervene") or not all(z in FACTOR_MEASURES for z in factors):
        return []
    from xcausal.data.realistic import marker_box

    box = marker_box(sim.images.shape[-1]) if "marker" in factors else None
    measures = {z: functools.partial(FACTOR_MEASURES[z], exclude=box) for z in factors}
    real = sim.images[rows]
    noise = {}
    for z, meas in measures.items():
        m = meas(real)
        m = m[np.isfinite(m)]
        noise[z] = float(np.std(m, ddof=1) / np.sqrt(len(m))) if len(m) > 1 else 0.0
    out = []
    for v in truth.observed:
        t, f = truth.relation(v), found.relation(v)
        if t is Relation.CAUSAL and f is Relation.CAUSAL:
            z = _partners(truth, v)[0]
            lat = sim.latents[:, factors.index(z)]
            values, pos = _do_values(ds, v, lat)
            batches = [model.intervene({v: val}, ds, rows=rows) for val in values]
            judged = judge_intervention(pos, batches, measures[z])
            col = ds.table[v]
            if pd.api.types.is_numeric_dtype(col) and len(values) > 2 and not isinstance(values[0], str):
                true_sign = int(np.sign(stats.spearmanr(col.to_numpy(float), lat).statistic))
            else:
                true_sign = 1  # categories ordered by their true factor's mean
            out.append({"variable": v, "check": "sign", "factor": z, "rho": judged.rho, "sign": judged.sign,
                        "true_sign": true_sign, "sign_right": bool(judged.sign == true_sign)})
        elif t in (Relation.ANTICAUSAL, Relation.NONE):
            values, _ = _do_values(ds, v, None)
            a = model.intervene({v: values[0]}, ds, rows=rows)
            b = model.intervene({v: values[-1]}, ds, rows=rows)
            shifts = {z: shift(a, b, measures[z]) for z in factors}
            ok = all(unchanged(a, b, measures[z], noise[z]) for z in factors)
            worst = max(abs(s) / noise[z] if noise[z] > 0 else (np.inf if s else 0.0) for z, s in shifts.items())
            out.append({"variable": v, "check": "unchanged", "unchanged": ok, "max_shift_over_noise": float(worst),
                        "shifts": shifts})
    return out


def run_realistic_cell(cell: RealisticCell, settings: Mapping[str, Any], *,
                       threads: int | None = None) -> dict[str, Any]:
    """Simulate, fit, (bootstrap,) and score one cell: ``{"row": one results.csv row, "variables":
    one record per variable}``."""
    from xcausal.data import dataset_from_arrays
    from xcausal.metrics import mcc

    if threads:
        from xcausal._runtime import limit_process_threads

        limit_process_threads(threads)  # a worker process of its own: torch and BLAS
    n, size, epochs, b = int(settings["n"]), int(settings["image_size"]), settings["epochs"], int(settings["bootstrap"])
    sim = _simulate(cell.family, n, cell.seed, size)
    ds = dataset_from_arrays(sim.images, sim.table, truth=sim.truth, latents=sim.latents,
                             source=f"realistic:{cell.family}:{cell.seed}")
    t0 = time.perf_counter()
    model = _make_model(cell.method, epochs, cell.seed).fit(ds)
    fit_seconds = time.perf_counter() - t0
    z = np.asarray(model.transform(ds), dtype=np.float64)
    found = model.graph_obj_
    support, boot_seconds = None, None
    if b > 0:
        from xcausal.bootstrap import bootstrap_refits, verdict_table

        t1 = time.perf_counter()
        refits = bootstrap_refits(functools.partial(_make_model, cell.method, epochs), ds, found, z, b=b,
                                  seed=cell.seed)
        support = verdict_table(found, refits)
        boot_seconds = time.perf_counter() - t1
    records = score_verdicts(found, sim.truth, support)
    rows = np.linspace(0, n - 1, num=min(int(settings["judge_rows"]), n)).round().astype(int)
    t2 = time.perf_counter()
    judged = {j["variable"]: j for j in _judge(model, ds, sim, cell.family, found, rows)}
    judge_seconds = time.perf_counter() - t2
    for r in records:
        j = judged.get(r["variable"], {})
        r.update({k: j.get(k) for k in ("rho", "sign", "true_sign", "sign_right", "unchanged",
                                        "max_shift_over_noise")})
    signs = [j for j in judged.values() if j["check"] == "sign"]
    unch = [j for j in judged.values() if j["check"] == "unchanged"]
    rhos = [j["rho"] for j in signs if np.isfinite(j["rho"])]
    row = {"family": cell.family, "seed": cell.seed, "method": cell.method, "n": n,
           "image_size": int(sim.images.shape[-1]), "epochs": getattr(model, "epochs_", None) or epochs,
           "bootstrap": b, **summarise_verdicts(records),
           "n_sign_judged": len(signs), "n_sign_right": sum(j["sign_right"] for j in signs),
           "sign_accuracy": sum(j["sign_right"] for j in signs) / len(signs) if signs else None,
           "median_rho": float(np.median(rhos)) if rhos else None,
           "n_unchanged_judged": len(unch), "n_unchanged": sum(j["unchanged"] for j in unch),
           "unchanged_share": sum(j["unchanged"] for j in unch) / len(unch) if unch else None,
           "mcc": float(mcc(sim.latents, z)), "n_latents": int(z.shape[1]), "fit_seconds": fit_seconds,
           "bootstrap_seconds": boot_seconds, "judge_seconds": judge_seconds}
    variables = [{"family": cell.family, "seed": cell.seed, "method": cell.method, **r} for r in records]
    return {"row": row, "variables": variables}


# ============================================================================ running
def _write_cell(path: Path, result: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=_json_default))
    tmp.replace(path)  # atomic: a killed run never leaves a half-written cell


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _cached_job(cell: RealisticCell, path: str, threads: int | None, *, settings: dict[str, Any]) -> str:
    _write_cell(Path(path), run_realistic_cell(cell, settings, threads=threads))
    return path


def run_realistic_bench(cfg: RealisticBenchConfig, *, command: str | None = None,
                        on_cell: Callable[[RealisticCell, int, int, dict[str, Any] | None], None] | None = None
                        ) -> Path:
    """Run (or resume) the grid and write ``results.csv``, ``variables.csv``, ``summary.md`` and
    ``bench.json`` into ``cfg.out``.

    Cells finished earlier (``OUT/cells/*.json`` with the same settings) are read back, not rerun.
    ``on_cell(cell, done, total, row)`` is called as cells finish (``row``: the cell's results row,
    None for a cell read from the cache).
    """
    rc = cfg.resolved()
    _check(rc)
    out = Path(rc.out)
    settings = _settings(rc)
    cells = plan_realistic_cells(rc)
    from functools import partial

    from xcausal.bench._cells import run_cached_cells

    paths = run_cached_cells(
        cells, lambda c: c.key(settings), out, partial(_cached_job, settings=settings), jobs=rc.jobs,
        threads=rc.threads,
        on_done=None if on_cell is None else (
            lambda c, done, total, path: on_cell(c, done, total, json.loads(path.read_text())["row"])))
    results = [json.loads(paths[c].read_text()) for c in cells]
    write_realistic_tables(out, results, rc, command=command)
    return out


# ============================================================================ tables
COLUMNS = {
    "verdict_accuracy": "verdict accuracy",
    "undetermined_share": "undetermined",
    "wrong_confident_rate": "wrong & confident",
    "sign_accuracy": "sign accuracy",
    "median_rho": "median ρ",
    "unchanged_share": "unchanged",
    "mcc": "MCC",
    "fit_seconds": "fit s",
}
"""summary.md's metric columns (results.csv names -> headers)."""


def _frac(num: int, den: int) -> str:
    return "n/a" if den == 0 else f"{num / den:.2f} ({num}/{den})"


def _summary_row(rows: pd.DataFrame, var: pd.DataFrame) -> dict[str, str]:
    v = summarise_verdicts(var.to_dict("records"))
    k = v["n_variables"]
    signs = var[var["sign_right"].notna()] if "sign_right" in var else var.iloc[:0]
    unch = var[var["unchanged"].notna()] if "unchanged" in var else var.iloc[:0]
    rhos = pd.to_numeric(signs["rho"], errors="coerce").dropna() if len(signs) else pd.Series(dtype=float)
    mcc = rows["mcc"].dropna()
    mcc_text = "n/a" if mcc.empty else f"{mcc.mean():.2f}" + ("" if len(mcc) < 2 else f" ± {mcc.std(ddof=1):.2f}")
    secs = rows["fit_seconds"].mean()
    return {
        COLUMNS["verdict_accuracy"]: _frac(v["n_right"], k),
        COLUMNS["undetermined_share"]: _frac(v["n_undetermined"], k),
        COLUMNS["wrong_confident_rate"]: "n/a" if v["n_wrong_confident"] is None else _frac(v["n_wrong_confident"], k),
        COLUMNS["sign_accuracy"]: _frac(int(signs["sign_right"].astype(bool).sum()), len(signs)),
        COLUMNS["median_rho"]: "n/a" if rhos.empty else f"{rhos.median():.2f}",
        COLUMNS["unchanged_share"]: _frac(int(unch["unchanged"].astype(bool).sum()), len(unch)),
        COLUMNS["mcc"]: mcc_text,
        COLUMNS["fit_seconds"]: f"{secs:.0f}" if secs >= 10 else f"{secs:.1f}",
    }


def summary_table(results: pd.DataFrame, variables: pd.DataFrame, families: Sequence[str],
                  methods: Sequence[str]) -> pd.DataFrame:
    """summary.md's table: a row per family and method (pooled over seeds), then one ``overall`` row
    per method (pooled over families); rates as ``value (count/total)``, ``n/a`` when nothing was
    judged (no bootstrap, no intervention, no measurement)."""
    out = []
    for fam in [*families, "overall"]:
        for meth in methods:
            sel = results["method"] == meth
            vsel = variables["method"] == meth
            if fam != "overall":
                sel &= results["family"] == fam
                vsel &= variables["family"] == fam
            if not sel.any():
                continue
            out.append({"family": fam, "method": meth, "cells": int(sel.sum()),
                        **_summary_row(results[sel], variables[vsel])})
    return pd.DataFrame(out)


def _md(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in frame.itertuples(index=False)]
    return "\n".join(lines)


DEFINITIONS = """\
Columns (pooled over seeds; counts in brackets):

- **verdict accuracy**: right verdicts / variables. A verdict is the learned graph's relation of the
  variable to the latents (causal, anti-causal, mixed, none) against the truth's; mixed is wrong.
- **undetermined**: share of verdicts left undetermined (unoriented CPDAG edges, or with a bootstrap a
  verdict fewer than half the refits give); neither right nor wrong.
- **wrong & confident**: wrong verdicts with bootstrap support >= 0.8, per variable; n/a without
  `--bootstrap`.
- **sign accuracy**, **median ρ**: for variables called causal that are truly causal, do() over the
  observed 5–95% range (categories ordered by their true factor), the variable's own factor measured
  in the generated images with scikit-image; Spearman ρ of the mean measurement against the do()
  values, sign right when it matches the truth's (the target: right sign and |ρ| >= 0.8). n/a for
  methods without do() (pipelines) and for xray-phantom (no measurement of its factors).
- **unchanged**: truly anti-causal or unrelated variables whose do() (5% vs 95% value, first vs last
  category) moves every measured factor by at most the standard error of its mean over the same
  rows' real images.
- **MCC**: mean absolute Pearson correlation of the true factors with their matched learned latents.
- **fit s**: seconds of one fit (without bootstrap refits), mean over seeds.
"""


def write_realistic_tables(out: Path, results: Sequence[Mapping[str, Any]], cfg: RealisticBenchConfig, *,
                           command: str | None = None) -> None:
    """results.csv, variables.csv, summary.md and bench.json in ``out`` (written atomically)."""
    from xcausal.bench.paper import _machine

    df = pd.DataFrame([r["row"] for r in results])
    var = pd.DataFrame([v for r in results for v in r["variables"]])
    table = summary_table(df, var, cfg.families, cfg.methods)
    machine = _machine()
    md = [f"# Realistic suite (xcausal {__version__})", "",
          f"Command: `{command or 'run_realistic_bench(...)'}`  ",
          "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + "  ",
          f"Settings: n = {cfg.n}, {cfg.image_size} px (xray-phantom at least {XRAY_MIN_SIZE}), "
          f"epochs = {cfg.epochs or 'method default'}, seeds = {cfg.seeds}, bootstrap B = {cfg.bootstrap}, "
          f"{cfg.judge_rows} rows judged per do().", "",
          _md(table), "", DEFINITIONS]
    with tempfile.TemporaryDirectory(dir=out, prefix=".tables-") as tmpd:
        tmp = Path(tmpd)
        df.to_csv(tmp / "results.csv", index=False)
        var.to_csv(tmp / "variables.csv", index=False)
        (tmp / "summary.md").write_text("\n".join(md))
        (tmp / "bench.json").write_text(json.dumps({"config": asdict(cfg), "machine": machine,
                                                    "command": command}, indent=2))
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
