"""One self-contained HTML report of a run directory (``xcausal report RUN``).

The report is a single file: every figure is a base64 PNG data URI, the CSS is inline, there is
no JavaScript and nothing is fetched from the network (a Content-Security-Policy in the page
forbids scripts and any source other than ``data:`` images). Written for a reader who is not a
machine-learning person: each section opens with plain-language sentences generated from the
results. Sections, in order:

1. Summary: the verdict per variable, in the vocabulary of :class:`xcausal.types.Relation`
   (``evaluate`` and the API use the same words) -- causal (variable -> latent), anti-causal
   (latent -> variable), mixed (edges both ways) or none -- with the latents involved and the bootstrap support when the
   run has it (``RUN/edges.csv``, or a ``"support"`` key on graph.json's edges). Two answers are
   said not to be confident verdicts: "undetermined" (every edge between the variable and the
   latents is undirected in graph.json: the data do not decide the direction) and "mixed".
2. Data: rows, variables and their types, image size and channels, further modalities.
3. The causal graph (``RUN/graph.png``) and its edges.
4. What an intervention does: an image grid under do(variable = value) for each causal variable
   (a model that can regenerate images is needed: CMCL, causal-pima), and for each anti-causal
   variable a scatter of the latent against the variable.
5. Latent traversals (CMCL): images decoded while one latent moves over -2..+2 standard deviations.
6. Grad-CAM++ heatmaps of the latents that have edges, with where their heat lies.
7. Training curves from ``history.csv``.
8. Provenance: the command, config.json, the xcausal versions, the data path.

Runs of other methods degrade gracefully: a two-stage pipeline has no model from the variables to
the image (no grids, no traversals; anti-causal scatters and heatmaps still work), a causal-pima
run has discovered binary feature nodes ``f1..fn`` instead of variables (its graph, a node table
and do(f = 0 / 1) grids).

Figures are drawn on their own Agg canvas (no pyplot state).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import logging
import math
import os
import shlex
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from xcausal import __version__
from xcausal.effects import ImageChange, check_against_data, image_change, region_name
from xcausal.io import DataError
from xcausal.models.cmcl.config import knowledge_summary
from xcausal.rows import row_label
from xcausal.metrics.structure import UNDIRECTED_WEIGHT
from xcausal.types import Edge, Graph, Relation, VarType
from xcausal.viz.grid import show_image

__all__ = ["write_report"]

logger = logging.getLogger(__name__)

_DPI = 80  # figures are small images: keep the embedded PNGs (and the report) light
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_EDGE_COLUMNS = ("variable", "latent", "p_u_to_z", "p_z_to_u", "p_none", "median_weight")
_TRAVERSAL_SD = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)
_MAX_CATEGORIES = 8  # do() columns per categorical variable
_MAX_HISTORY_PANELS = 12
_MAX_BOOTSTRAP_ROWS = 60
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


# =============================================================================== small helpers
def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _pct(p: float | None) -> str:
    return "–" if p is None or not math.isfinite(p) else f"{round(100 * p)}%"


def _fmt_num(x: float) -> str:
    return f"{x:.3g}"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure, dpi: int = _DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _img(png: bytes, alt: str, *, cls: str = "fig") -> str:
    if not png.startswith(_PNG_MAGIC):
        raise ValueError(f"{alt}: not a PNG image")
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img class="{cls}" src="data:image/png;base64,{b64}" alt="{_esc(alt)}">'


def _p(text: str, cls: str | None = None) -> str:
    return f'<p class="{cls}">{_esc(text)}</p>' if cls else f"<p>{_esc(text)}</p>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, cls: str = "tbl") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _join_words(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


_region = region_name  # one implementation, shared with xcausal.effects


def _concentration(weights: np.ndarray) -> float:
    """Share of the map's mass in its hottest tenth of pixels (0.1 = uniform, 1 = all there)."""
    w = np.clip(np.nan_to_num(np.asarray(weights, dtype=np.float64)).ravel(), 0, None)
    if w.sum() <= 0:
        return 0.0
    k = max(1, int(round(0.1 * w.size)))
    return float(np.sort(w)[-k:].sum() / w.sum())


# =============================================================================== run contents
@dataclass(frozen=True)
class _PairSupport:
    p_u_to_z: float
    p_z_to_u: float
    p_none: float
    median_weight: float


@dataclass
class _Run:
    path: Path
    graph: Graph
    raw_graph: dict[str, Any]
    config: dict[str, Any]
    latents: np.ndarray | None
    history: pd.DataFrame | None
    support: dict[tuple[str, str], _PairSupport]
    support_note: str | None
    verdict_support: dict[str, dict[str, float]] = field(default_factory=dict)  # verdicts.csv
    model: Any = None
    model_note: str | None = None
    ds: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        return str(self.config.get("method") or self.graph.method or "unknown")

    @property
    def feature_mode(self) -> bool:
        """causal-pima / pima: discovered feature nodes, no structured variables in the graph."""
        return not self.graph.observed

    def edge_support(self, e: Edge) -> float | None:
        """Bootstrap support of edge e: edges.csv first, then graph.json's "support" key."""
        lat = set(self.graph.latent)
        if e.source in lat and e.target not in lat:
            ps = self.support.get((e.target, e.source))
            if ps is not None:
                return ps.p_z_to_u
        elif e.target in lat and e.source not in lat:
            ps = self.support.get((e.source, e.target))
            if ps is not None:
                return ps.p_u_to_z
        for d in self.raw_graph.get("edges", []):
            if d.get("source") == e.source and d.get("target") == e.target and "support" in d:
                try:
                    s = float(d["support"])
                except (TypeError, ValueError):
                    return None
                return s if math.isfinite(s) else None
        return None

    @property
    def has_support(self) -> bool:
        return bool(self.support) or any("support" in d for d in self.raw_graph.get("edges", []))


def _read_bootstrap_csv(path: Path, columns: Sequence[str], what: str) -> tuple[pd.DataFrame | None, str | None]:
    """A bootstrap table of the run (None if absent), or None and a note when it is there but
    unreadable or lacks one of ``columns`` (then ``what`` is not shown)."""
    if not path.is_file():
        return None, None
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        return None, f"{path.name} could not be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    missing = [c for c in columns if c not in df.columns]
    if missing:
        return None, f"{path.name} lacks the column(s) {', '.join(missing)}; {what} is not shown"
    return df, None


def _read_edge_support(path: Path) -> tuple[dict[tuple[str, str], _PairSupport], str | None]:
    """edges.csv -> {(variable, latent): support}, and a note if the file is there but unusable."""
    df, note = _read_bootstrap_csv(path, _EDGE_COLUMNS, "bootstrap support")
    if df is None:
        return {}, note
    out = {}
    for r in df.itertuples(index=False):
        try:
            out[(str(r.variable), str(r.latent))] = _PairSupport(float(r.p_u_to_z), float(r.p_z_to_u),
                                                                 float(r.p_none), float(r.median_weight))
        except (TypeError, ValueError):
            continue
    return out, None


_VERDICT_COLUMNS = {"p_causal": "causal", "p_anti_causal": "anti-causal", "p_mixed": "mixed",
                    "p_none": "no edge"}


def _read_verdict_support(path: Path) -> tuple[dict[str, dict[str, float]], str | None]:
    """verdicts.csv -> {variable: {verdict: share of the refits}}, and a note if it is unusable."""
    df, note = _read_bootstrap_csv(path, ["variable", *_VERDICT_COLUMNS], "verdict support")
    if df is None:
        return {}, note
    out = {}
    for r in df.to_dict("records"):
        try:
            out[str(r["variable"])] = {v: float(r[c]) for c, v in _VERDICT_COLUMNS.items()}
        except (TypeError, ValueError):
            continue
    return out, None


def _load_run(run: Path, data: str | Path | None) -> _Run:
    from xcausal.api import load_model, load_run_dataset
    from xcausal.io import read_json
    from xcausal.run import read_run

    if not run.exists():
        raise DataError(f"{run}: no such run directory")
    if not run.is_dir():
        raise DataError(f"{run}: not a run directory (a report needs the whole run, not a single file)")
    rd = read_run(run)
    raw = read_json(run / "graph.json")
    hist = None
    hp = run / "history.csv"
    if hp.is_file():
        try:
            hist = pd.read_csv(hp)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            logger.warning("%s: not readable (%s)", hp, exc)
    support, note = _read_edge_support(run / "edges.csv")
    verdicts, vnote = _read_verdict_support(run / "verdicts.csv")
    out = _Run(path=run, graph=rd.graph, raw_graph=raw if isinstance(raw, dict) else {}, config=rd.config,
               latents=rd.latents, history=hist, support=support,
               support_note="; ".join(n for n in (note, vnote) if n) or None, verdict_support=verdicts)
    out.ds = load_run_dataset(run, data)  # DataError when the data are missing
    missing = [v for v in rd.graph.observed if v not in out.ds.variable_names]
    if missing:
        raise DataError(f"{out.ds.source}: the data lack the run's variable(s) {', '.join(missing)}")
    try:
        out.model = load_model(run)
    except (DataError, ValueError, OSError, RuntimeError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        out.model_note = f"the run's model could not be loaded ({msg})"
        logger.warning("%s: %s", run, out.model_note)
    return out


def _latents_for(r: _Run) -> np.ndarray | None:
    """Posterior means (N, m) aligned with the dataset rows: latents.csv, or recomputed."""
    if r.latents is not None and len(r.latents) == len(r.ds):
        return r.latents
    if r.model is not None and hasattr(r.model, "transform"):
        try:
            return np.asarray(r.model.transform(r.ds), dtype=np.float64)
        except ValueError as exc:
            r.notes.append(f"latents could not be computed on the given data ({exc})")
    return None


# =============================================================================== verdicts
@dataclass
class _Verdict:
    variable: str
    causes: list[Edge]  # variable -> latent
    caused_by: list[Edge]  # latent -> variable
    others: list[Edge]  # edges to / from other table variables
    undetermined: list[Edge] = field(default_factory=list)  # undirected variable - latent edges

    @property
    def label(self) -> str:
        """The verdict as :meth:`xcausal.types.Graph.relation` names it (one vocabulary), from the
        directed edges; "undetermined" when the variable's only edges to latents are undirected."""
        if self.causes and self.caused_by:
            return Relation.MIXED.value
        if self.causes:
            return Relation.CAUSAL.value
        if self.caused_by:
            return Relation.ANTICAUSAL.value
        return Relation.UNDETERMINED.value if self.undetermined else Relation.NONE.value

    @property
    def shown(self) -> str:
        """:attr:`label` as the summary table shows it: the two answers that are no confident verdict say so."""
        return f"{self.label} (not a confident verdict)" if self.label in (Relation.MIXED.value,
                                                                           Relation.UNDETERMINED.value) else self.label


def _verdicts(g: Graph) -> list[_Verdict]:
    lat = set(g.latent)
    out = []
    for v in g.observed:
        links = [e for e in g.edges if (e.source == v and e.target in lat) or (e.target == v and e.source in lat)]
        directed = [e for e in links if not g.is_undirected(e)]
        out.append(_Verdict(v, [e for e in directed if e.source == v], [e for e in directed if e.target == v],
                            [e for e in g.edges if v in (e.source, e.target) and not ({e.source, e.target} & lat)],
                            [e for e in links if g.is_undirected(e)]))
    return out


def _with_support(r: _Run, e: Edge, node: str) -> str:
    s = r.edge_support(e)
    return f"{node} (bootstrap support {_pct(s)})" if s is not None else node


def _verdict_sentences(r: _Run, v: _Verdict) -> list[str]:
    out = []
    if v.causes:
        lats = [_with_support(r, e, e.target) for e in v.causes]
        noun = "latent" if len(lats) == 1 else "latents"
        out.append(f"Changing {v.variable} changes {noun} {_join_words(lats)}.")
    if v.caused_by:
        lats = [_with_support(r, e, f"latent {e.source} → {v.variable}") for e in v.caused_by]
        out.append(f"{v.variable} is caused by what the image shows: {_join_words(lats)}.")
    if v.causes and v.caused_by:
        out.append(f"mixed, not a confident verdict: {v.variable} has edges into some latents and from others, so "
                   f"the model does not say whether {v.variable} changes the image or the image {v.variable}.")
    if v.undetermined:
        lats = [_with_support(r, e, e.target if e.source == v.variable else e.source) for e in v.undetermined]
        out.append(f"undetermined: the data do not decide whether {v.variable} changes the image or the image "
                   f"{v.variable} (undirected edge to {_join_words(lats)}).")
    if not v.causes and not v.caused_by and not v.undetermined:
        s = f"{v.variable} has no edge: no evidence it causes or is caused by anything in the image."
        pairs = [(k, ps) for k, ps in r.support.items() if k[0] == v.variable]
        if pairs:
            (_, z), ps = max(pairs, key=lambda kv: max(kv[1].p_u_to_z, kv[1].p_z_to_u))
            if ps.p_u_to_z >= ps.p_z_to_u:
                best, p = f"{v.variable} → {z}", ps.p_u_to_z
            else:
                best, p = f"{z} → {v.variable}", ps.p_z_to_u
            if p > 0:  # an edge no refit found is no "most frequent" edge
                s += f" In the bootstrap its most frequent edge, {best}, appeared in {_pct(p)} of the refits."
            else:
                s += " No bootstrap refit found an edge for it either."
        out.append(s)
    for e in v.others:
        out.append(f"Between table variables: {e.source} → {e.target}.")
    return out


def _support_cell(r: _Run, edges: list[Edge]) -> str:
    vals = [(e, r.edge_support(e)) for e in edges]
    vals = [(e, s) for e, s in vals if s is not None]
    if not vals:
        return "–"
    return ", ".join(f"{e.source}→{e.target}: {_pct(s)}" for e, s in vals)


# =============================================================================== sections
def _section(anchor: str, title: str, body: Sequence[str]) -> str:
    return f'<section id="{anchor}"><h2>{_esc(title)}</h2>\n' + "\n".join(body) + "\n</section>"


def _summary_section(r: _Run) -> str:
    body = []
    g = r.graph
    if r.feature_mode:
        body.append(_p(f"This {r.method} run discovered {len(g.latent)} binary image feature(s) "
                       f"({', '.join(g.latent)}) and the causal graph between them; it has no table variables."))
        rows = []
        z = _latents_for(r)
        for j, f in enumerate(g.latent):
            parents = [e.source for e in g.edges if e.target == f]
            kids = [e.target for e in g.edges if e.source == f]
            verdict = ("cause of " + ", ".join(kids) if kids else "") + ("; " if kids and parents else "") + \
                      ("caused by " + ", ".join(parents) if parents else "")
            share = "–" if z is None else _pct(float((z[:, j] > 0.5).mean()))
            rows.append([f, verdict or "none", share])
        body.append(_table(["feature", "verdict", "samples with the feature (p(f = 1) > 0.5)"], rows,
                           cls="tbl verdicts"))
        sentences = [f"{e.source} causes {e.target} (edge weight {_fmt_num(e.weight)})." for e in g.edges]
        sentences += [f"{f} has no edge: no evidence it causes or is caused by another feature."
                      for f in g.latent if not any(f in (e.source, e.target) for e in g.edges)]
        body.append("<ul>" + "".join(f"<li>{_esc(s)}</li>" for s in sentences) + "</ul>")
        return _section("summary", "1. Summary", ['<div class="box">'] + body + ["</div>"])
    verdicts = _verdicts(g)
    n_edges = sum(len(v.causes) + len(v.caused_by) + len(v.undetermined) for v in verdicts)
    body.append(_p(f"Method {r.method}: {len(g.observed)} table variable(s), {len(g.latent)} image latent(s) "
                   f"z1..z{len(g.latent)}, {n_edges} edge(s) between them."))
    header = (["variable", "verdict", "latents"] + (["bootstrap support"] if r.has_support else [])
              + (["verdict in the refits"] if r.verdict_support else []))
    rows = []
    for v in verdicts:
        lats = ([f"{v.variable} → {e.target}" for e in v.causes] + [f"{e.source} → {v.variable}" for e in v.caused_by]
                + [f"{v.variable} – {e.target if e.source == v.variable else e.source}" for e in v.undetermined])
        row = [v.variable, v.shown, ", ".join(lats) or "–"]
        if r.has_support:
            row.append(_support_cell(r, v.causes + v.caused_by + v.undetermined) if lats else "–")
        if r.verdict_support:
            shares = r.verdict_support.get(v.variable)
            row.append("–" if shares is None else ", ".join(  # a share of "mixed" is no share of a verdict
                f"{name}{' (no verdict)' if name == Relation.MIXED.value else ''} {_pct(p)}"
                for name, p in sorted(shares.items(), key=lambda kv: -kv[1]) if p > 0) or "–")
        rows.append(row)
    body.append(_table(header, rows, cls="tbl verdicts"))
    body.append("<ul>" + "".join(f"<li>{_esc(s)}</li>" for v in verdicts for s in _verdict_sentences(r, v))
                + "</ul>")
    params = r.config.get("params") if isinstance(r.config.get("params"), dict) else {}
    exo = [str(v) for v in params.get("exogenous") or []] if isinstance(params.get("exogenous"), list) else []
    body.append(_p(knowledge_summary(params) + ".", "note"))
    if exo:
        body.append(_p(f"Declared before the fit as not caused by the image (--exogenous): {_join_words(exo)}. "
                       "The model was not allowed to draw an arrow into "
                       f"{'it' if len(exo) == 1 else 'them'}; that is knowledge you supplied, not a finding.", "note"))
    found = r.config.get("unexplained_dependences")
    for item in found if isinstance(found, list) else []:  # hand-edited entries that are not [a, b, p] are skipped
        try:
            a, b, pv = str(item[0]), str(item[1]), float(item[2])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        p_text = f"p = {pv:.2g}" if pv > 0 else "p < 1e-300"
        hint = ("" if a in exo or b in exo else " If one of them cannot be caused by the image (age, sex, site, "
                "an assigned treatment), refit with it listed under --exogenous.")
        body.append(_p(f"Caution: {a} and {b} are associated in the data ({p_text}), but this graph gives them no "
                       "common cause and no path from one to the other, which would make them unrelated. An arrow "
                       f"is missing or points the wrong way, most likely one of {a}'s or {b}'s.{hint}", "note"))
    if not r.has_support:
        body.append(_p("No bootstrap was run for this fit, so the edges carry no support percentage "
                       "(refit with bootstrap resampling to see how often each edge is found).", "note"))
    if r.support_note:
        body.append(_p(r.support_note + ".", "note"))
    return _section("summary", "1. Summary", ['<div class="box">'] + body + ["</div>"])


def _data_section(r: _Run) -> str:
    ds = r.ds
    s = ds.summary()
    body = [_p(f"{s['rows']} rows (samples), images of {s['image_size']} × {s['image_size']} pixels with "
               f"{s['channels']} channel(s) ({'greyscale' if s['channels'] == 1 else 'colour'}), "
               f"{len(ds.variables)} table variable(s). Source: {s['source']}.")]
    if ds.variables:
        rows = []
        for j, v in enumerate(ds.variables):
            col = np.asarray(ds.u[:, j], dtype=np.float64)
            if v.type is VarType.CONTINUOUS:
                desc = f"{_fmt_num(col.min())} .. {_fmt_num(col.max())} (mean {_fmt_num(col.mean())})"
            else:
                counts = np.bincount(np.rint(col).astype(int), minlength=len(v.categories))
                desc = ", ".join(f"{c}: {n}" for c, n in zip(v.categories[:_MAX_CATEGORIES], counts))
                if len(v.categories) > _MAX_CATEGORIES:
                    desc += f", … ({len(v.categories)} categories)"
            rows.append([v.name, v.type.value, desc])
        body.append(_table(["variable", "type", "values (range, or count per category)"], rows))
    else:
        body.append(_p("The table has no variables (only images and, possibly, further modalities)."))
    mods = s.get("modalities") or {}
    if mods:
        body.append(_p("Further modalities (one measurement vector per sample):"))
        body.append(_table(["modality", "length"], [[k, n] for k, n in mods.items()]))
    if s.get("has_truth"):
        body.append(_p("The dataset carries a ground-truth graph (simulated data); "
                       "`xcausal evaluate` compares the run with it.", "note"))
    return _section("data", "2. Data", body)


def _graph_png(r: _Run) -> bytes:
    gp = r.path / "graph.png"
    if gp.is_file():
        png = gp.read_bytes()
        if png.startswith(_PNG_MAGIC):
            return png
    from xcausal.viz.graph import draw_graph

    return _png(draw_graph(r.graph))


def _graph_section(r: _Run) -> str:
    g = r.graph
    body = [_p("Boxes are table variables, circles are image latents (summary features the model learned from "
               "the images). An arrow A → B means the model found that A causes B; thicker arrows have larger "
               "weights." if not r.feature_mode else
               "Circles are the discovered binary image features; an arrow A → B means A causes B.")]
    body.append(_img(_graph_png(r), "the learned causal graph"))
    params = r.config.get("params") if isinstance(r.config.get("params"), dict) else {}
    if params.get("decoder") == "pose":
        axes = ("in the image" if r.config.get("pose_frame") == "image" else
                "along the drawn object's own axes, before it is turned" if r.config.get("pose_frame") == "object"
                else "")
        body.append(_p("This run used the pose decoder: latent z1 turns the image, z2 moves it sideways and z3 "
                       f"up or down{' ' + axes if axes else ''}; the other latents draw what is turned and moved."))
    undirected = "undirected_edges" in g.extra
    if g.edges:
        header = ["source", "target", "weight"] + (["bootstrap support"] if r.has_support else [])
        rows = []
        for e in g.edges:
            w = _fmt_num(e.weight)
            if undirected and e.weight == UNDIRECTED_WEIGHT:
                w = "undirected (direction undetermined)"
            row = [e.source, e.target, w]
            if r.has_support:
                row.append(_pct(r.edge_support(e)))
            rows.append(row)
        body.append(_table(header, rows))
    else:
        body.append(_p("The graph has no edges."))
    pruned = r.config.get("pruned_edges") if isinstance(r.config.get("pruned_edges"), list) else []
    items = []
    for e in pruned:  # hand-edited entries that are not [source, target, ratio] are skipped
        try:
            items.append(f"{e[0]} → {e[1]} ({float(e[2]):.2f})")
        except (TypeError, ValueError, IndexError, KeyError):
            continue
    if items:
        me = params.get("min_effect")
        body.append(_p("Left out as too weak to matter: " + _join_words(items) + ". Each would move its latent "
                       "by less than the model's own uncertainty about that latent (the number is the variance "
                       "the variable accounts for over the latent's posterior variance; the threshold, "
                       f"--min-effect, is {_fmt_num(float(me)) if isinstance(me, (int, float)) else 'unknown'}).", "note"))
    if r.support:
        pairs = sorted(r.support.items(), key=lambda kv: -max(kv[1].p_u_to_z, kv[1].p_z_to_u))
        pairs = [(k, ps) for k, ps in pairs if ps.p_none < 1.0]
        body.append(_p("Bootstrap (edges.csv): how often the refits on resampled data found each "
                       "variable–latent edge, in either direction, or none. Pairs never found are left out."))
        shown = pairs[:_MAX_BOOTSTRAP_ROWS]
        body.append(_table(["variable", "latent", "variable → latent", "latent → variable", "no edge",
                            "median |weight|"],
                           [[u, z, _pct(ps.p_u_to_z), _pct(ps.p_z_to_u), _pct(ps.p_none), _fmt_num(ps.median_weight)]
                            for (u, z), ps in shown]))
        if len(pairs) > len(shown):
            body.append(_p(f"… {len(pairs) - len(shown)} more pair(s) in edges.csv.", "note"))
    return _section("graph", "3. Causal graph", body)


# ------------------------------------------------------------------------------- interventions
def _do_values(ds: Any, var: str) -> list[Any]:
    j = ds.variable_names.index(var)
    v = ds.variables[j]
    if v.type is not VarType.CONTINUOUS:
        cats = list(v.categories)
        if len(cats) > _MAX_CATEGORIES:
            cats = [cats[int(i)] for i in np.linspace(0, len(cats) - 1, _MAX_CATEGORIES).round()]
        return cats
    col = np.asarray(ds.u[:, j], dtype=np.float64)
    vals = []
    for q in (0.02, 0.25, 0.5, 0.75, 0.98):
        x = float(f"{np.quantile(col, q):.3g}")
        if x not in vals:
            vals.append(x)
    return vals


def _change_sentence(what: str, change: ImageChange) -> str:
    """What going from the first to the last value does to the generated images, with its sign."""
    level = change.level
    if change.direction == "unchanged":
        return f"{what} leaves the generated images practically unchanged ({level:.2f} grey levels per pixel on average, of 255)."
    if change.direction == "rearranged":
        where = (f"brighter in some pixels and darker in others of the {change.where_up}"
                 if change.where_up == change.where_down
                 else f"brighter in the {change.where_up}, darker in the {change.where_down}")
        return (f"{what} changes the generated images by {level:.1f} grey levels per pixel on average (of 255) "
                f"without making them brighter or darker overall: {where} (a change of shape or position).")
    return (f"{what} makes the generated images {change.direction}, by {level:.1f} grey levels per pixel on average "
            f"(of 255), most in the {change.where} of the image.")


def _effect_arrow(var: Any, values: list[Any], change: ImageChange) -> str:
    """'higher dose → brighter upper-right region' (continuous) or 'site = C rather than A → ...'."""
    if change.direction in ("unchanged", "rearranged"):
        return ""
    cause = (f"higher {var.name}" if var.type is VarType.CONTINUOUS
             else f"{var.name} = {values[-1]} rather than {values[0]}")
    return f" In short: {cause} → {change.direction} {change.where}."


def _data_check(r: _Run, var: Any, values: list[Any], change: ImageChange) -> str:
    """Whether the real images go the way the generated ones do over the pixels that change most;
    a sentence saying so, or warning that the grid contradicts the data."""
    try:
        trend = check_against_data(r.ds, var.name, values, change)
    except (DataError, OSError) as exc:
        logger.warning("report: the data check of %s was skipped: %s", var.name, exc)
        return ""
    if trend is None:
        return ""
    where = change.where
    if trend.sign == 0:
        return (f" In the real images the {where} shows no clear trend with {var.name} ({trend.text()}): the data "
                "neither confirm nor contradict this direction.")
    went = "brighter" if trend.sign > 0 else "darker"
    when = (f"where {var.name} is higher" if var.type is VarType.CONTINUOUS
            else f"where {var.name} = {values[-1]} than where {var.name} = {values[0]}")
    if trend.sign == change.sign:
        return f" The real images agree: their {where} is {went} {when} ({trend.text()})."
    return (f" Caution: in the real images the {where} is {went} {when} ({trend.text()}), the "
            "opposite of this grid; the model's intervention contradicts the data here, so do not read the grid "
            f"as the effect of {var.name}.")


def _intervention_grid(r: _Run, var: str, values: list[Any], rows: list[int]) -> tuple[bytes, np.ndarray]:
    """PNG of original | reconstruction | do(var = value)..., and do(last) - do(first) (n, C, H, W)."""
    from xcausal.viz.grid import image_grid

    cols, titles = [], []
    cfs = []
    for k, val in enumerate(values):
        res = r.model.counterfactual(r.ds, {var: val}, rows=rows)
        if k == 0:
            cols += [res["original"], res["reconstruction"]]
            titles += ["original", "reconstruction"]
        cfs.append(res["counterfactual"])
        cols.append(res["counterfactual"])
        titles.append(f"do({var}={val})")
    fig = image_grid(cols, titles, row_titles=[row_label(r.ds, i) for i in rows])
    return _png(fig), cfs[-1] - cfs[0]


def _anticausal_figure(var_name: str, var: Any, u: np.ndarray, z: np.ndarray, latents: list[str],
                       idx: list[int]) -> bytes:
    n = len(latents)
    ncol = min(n, 3)
    nrow = math.ceil(n / ncol)
    fig = _figure(3.2 * ncol, 2.6 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False)
    rng = np.random.default_rng(0)
    for k, (name, j) in enumerate(zip(latents, idx)):
        ax = axes[k // ncol, k % ncol]
        y = z[:, j]
        if var.type is VarType.CONTINUOUS:
            ax.scatter(u, y, s=4, alpha=0.35, color="#1d6fa5", linewidths=0)
            edges = np.unique(np.quantile(u, np.linspace(0, 1, 11)))
            if len(edges) > 2:
                b = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, len(edges) - 2)
                xs = [u[b == i].mean() for i in range(len(edges) - 1) if (b == i).any()]
                ys = [y[b == i].mean() for i in range(len(edges) - 1) if (b == i).any()]
                ax.plot(xs, ys, "-o", color="#d62828", ms=3, lw=1.5, label="mean per bin")
                ax.legend(fontsize=6, loc="best")
            ax.set_xlabel(var_name, fontsize=8)
        else:
            codes = np.rint(u).astype(int)
            ax.scatter(codes + rng.uniform(-0.2, 0.2, len(codes)), y, s=4, alpha=0.35, color="#1d6fa5", linewidths=0)
            present = sorted(set(codes.tolist()))
            ax.plot(present, [y[codes == c].mean() for c in present], "-o", color="#d62828", ms=4, lw=1.5,
                    label="mean per category")
            ax.set_xticks(range(len(var.categories)))
            ax.set_xticklabels([str(c) for c in var.categories], fontsize=7, rotation=30)
            ax.legend(fontsize=6, loc="best")
            ax.set_xlabel(var_name, fontsize=8)
        ax.set_ylabel(f"latent {name}", fontsize=8)
        ax.set_title(f"{name} → {var_name}", fontsize=9)
        ax.tick_params(labelsize=7)
    for k in range(n, nrow * ncol):
        axes[k // ncol, k % ncol].set_axis_off()
    fig.tight_layout()
    return _png(fig)


def _can_generate(r: _Run) -> bool:
    return r.model is not None and hasattr(r.model, "counterfactual")


def _no_generation_reason(r: _Run) -> str:
    if r.model is None:
        return r.model_note or "the run has no model"
    return (f"method {r.method} is a two-stage pipeline: it has no model from the variables to the image, "
            "so images cannot be regenerated under an intervention")


def _interventions_section(r: _Run, rows: list[int]) -> str:
    body: list[str] = []
    if r.feature_mode:
        return _feature_interventions_section(r, rows)
    every = _verdicts(r.graph)
    verdicts = [v for v in every if v.causes or v.caused_by]
    open_ = [v.variable for v in every if v.undetermined and not (v.causes or v.caused_by)]
    body.append(_p("An intervention do(variable = value) asks: what would the image look like had the variable "
                   "been set to this value, all else about the sample kept? Grids: one row per sample; the first "
                   "column is the real image, the second the model's reconstruction of it, the others the images "
                   "the model generates under the intervention."))
    if open_:
        body.append(_p(f"No intervention is shown for {_join_words(open_)}: undetermined, the data do not decide "
                       "whether the variable changes the image or the image the variable.", "note"))
    if not verdicts and open_:
        return _section("interventions", "4. What changing a variable does", body)
    if not verdicts:
        body.append(_p("No variable has an edge to an image latent, so there is no intervention to show: "
                       "by this model, setting any variable leaves the image unchanged."))
        return _section("interventions", "4. What changing a variable does", body)
    z = None
    lat_names = r.graph.latent
    changed: dict[str, bool] = {}  # variable -> its do() grid visibly changed the images
    for v in verdicts:
        body.append(f"<h3>{_esc(v.variable)} ({_esc(v.label)})</h3>")
        if v.causes:
            kids = ", ".join(e.target for e in v.causes)
            if _can_generate(r):
                values = _do_values(r.ds, v.variable)
                try:
                    png, diff = _intervention_grid(r, v.variable, values, rows)
                except ValueError as exc:
                    body.append(_p(f"The images under do({v.variable}) could not be generated: {exc}", "note"))
                else:
                    var = r.ds.variables[r.ds.variable_names.index(v.variable)]
                    change = image_change(diff)
                    changed[v.variable] = change.direction != "unchanged"
                    body.append(_p(f"In the model {v.variable} causes latent(s) {kids}, so setting {v.variable} "
                                   "can change the image. "
                                   + _change_sentence(f"Going from do({v.variable}={values[0]}) to "
                                                      f"do({v.variable}={values[-1]})", change)
                                   + _effect_arrow(var, values, change) + _data_check(r, var, values, change)))
                    body.append(_img(png, f"images under interventions on {v.variable}"))
            else:
                body.append(_p(f"{v.variable} causes latent(s) {kids}, but interventions are not available for "
                               f"this run: {_no_generation_reason(r)}.", "note"))
        if v.caused_by:
            parents = [e.source for e in v.caused_by]
            if v.causes and changed.get(v.variable, True):  # mixed: do() changes the image through its effects
                reach = (f"Setting {v.variable} by hand does not reach back into these latents; it changes the "
                         f"image only through {', '.join(e.target for e in v.causes)}, as shown above.")
            elif v.causes:  # mixed, and the change through its effects was too small to see (above)
                reach = (f"Setting {v.variable} by hand does not reach back into these latents, and through "
                         f"{', '.join(e.target for e in v.causes)} it changes the image too little to see (above).")
            else:
                reach = (f"Intervening on {v.variable} leaves the image unchanged: setting it by hand does not "
                         "reach back into the image.")
            body.append(_p(f"{v.variable} is an effect of what the image shows ({', '.join(parents)} → {v.variable}). "
                           f"{reach} The plot shows how the latent goes with the variable "
                           "(dots: samples; line: average within bins of the variable)."))
            if z is None:
                z = _latents_for(r)
            if z is None:
                body.append(_p("The latents are not available for these data, so the plot is not drawn.", "note"))
            else:
                j = r.ds.variable_names.index(v.variable)
                png = _anticausal_figure(v.variable, r.ds.variables[j], np.asarray(r.ds.u[:, j], dtype=np.float64), z,
                                         parents, [lat_names.index(p) for p in parents])
                body.append(_img(png, f"latents against {v.variable}"))
    return _section("interventions", "4. What changing a variable does", body)


def _feature_interventions_section(r: _Run, rows: list[int]) -> str:
    body = [_p("do(feature = 0 / 1) asks: what would the sample look like had this binary feature been off / on? "
               "Features caused by it are redrawn accordingly, the others kept. One row per sample; the first "
               "column is the real image, the second the model's reconstruction.")]
    title = "4. What switching a feature does"
    if not _can_generate(r):
        body.append(_p(f"Interventions are not available for this run: {_no_generation_reason(r)}.", "note"))
        return _section("interventions", title, body)
    if getattr(r.model, "use_image_", True) is False:
        body.append(_p("This model was fitted without the image modality, so there are no images to regenerate.",
                       "note"))
        return _section("interventions", title, body)
    g = r.graph
    for f in g.latent:
        kids = [e.target for e in g.edges if e.source == f]
        body.append(f"<h3>{_esc(f)}</h3>")
        try:
            from xcausal.viz.grid import image_grid

            r0 = r.model.counterfactual(r.ds, {f: 0}, rows=rows)
            r1 = r.model.counterfactual(r.ds, {f: 1}, rows=rows)
        except ValueError as exc:
            body.append(_p(f"The images under do({f}) could not be generated: {exc}", "note"))
            continue
        fig = image_grid([r0["original"], r0["reconstruction"], r0["counterfactual"], r1["counterfactual"]],
                         ["original", "reconstruction", f"do({f}=0)", f"do({f}=1)"],
                         row_titles=[row_label(r.ds, i) for i in rows])
        kid_txt = f" Its effect(s) {', '.join(kids)} are redrawn too." if kids else ""
        body.append(_p(_change_sentence(f"Switching {f} from 0 to 1", image_change(r1["counterfactual"] - r0["counterfactual"]))
                       + kid_txt))
        body.append(_img(_png(fig), f"images under do({f} = 0) and do({f} = 1)"))
    return _section("interventions", title, body)


# ------------------------------------------------------------------------------- traversals
def _edge_latents(g: Graph) -> list[str]:
    lat = g.latent
    touched = {n for e in g.edges for n in (e.source, e.target)}
    return [z for z in lat if z in touched]


def _latent_edges_text(g: Graph, z: str) -> str:
    rel = [f"{e.source} → {e.target}" for e in g.edges if z in (e.source, e.target)]
    return ", ".join(rel)


def _traversals_section(r: _Run) -> str:
    title = "5. Latent traversals"
    body = [_p("Each row takes one typical sample and moves a single latent from 2 standard deviations below its "
               "average to 2 above (columns), keeping the other latents fixed, then draws the image the model "
               "generates. It shows what each latent encodes.")]
    from xcausal.models.cmcl import CMCL

    if not isinstance(r.model, CMCL):
        if r.feature_mode:
            why = (f"the latents of this {r.method} run are the probabilities of binary features; "
                   "section 4 shows what switching each feature does")
        elif r.model is None:
            why = r.model_note or "the run has no model"
        else:
            why = (f"method {r.method} is a two-stage pipeline, and the report draws traversals only with a "
                   "CMCL decoder (which generates images from exactly the latents in the graph)")
        body.append(_p(f"Latent traversals are not available for this run: {why}.", "note"))
        return _section("traversals", title, body)
    import torch

    z = _latents_for(r)
    if z is None:
        body.append(_p("The latents are not available for these data, so no traversal is drawn.", "note"))
        return _section("traversals", title, body)
    g = r.graph
    names = g.latent
    order = _edge_latents(g) + [n for n in names if n not in _edge_latents(g)]
    mu, sd = z.mean(0), z.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    base = int(np.argmin((((z - mu) / sd) ** 2).sum(1)))
    steps = np.asarray(_TRAVERSAL_SD)
    net = r.model.net_
    was_training = net.training
    net.eval()
    imgs = []
    try:
        with torch.no_grad():
            for name in order:
                j = names.index(name)
                zz = np.tile(z[base], (len(steps), 1))
                zz[:, j] = mu[j] + steps * sd[j]
                t = torch.as_tensor(zz, dtype=torch.float32, device=r.model.device_)
                imgs.append(torch.sigmoid(net.decode(t)).cpu().numpy())
    finally:
        net.train(was_training)
    h, w = imgs[0].shape[2:]
    cell = 0.75
    fig = _figure(cell * len(steps) + 1.4, cell * len(order) + 0.5)
    axes = fig.subplots(len(order), len(steps), squeeze=False)
    for i, (name, row) in enumerate(zip(order, imgs)):
        for k in range(len(steps)):
            ax = axes[i, k]
            show_image(ax, row[k])
            if i == 0:
                ax.set_title(f"{steps[k]:+g} sd", fontsize=7)
        axes[i, 0].set_ylabel(name + (" *" if name in _edge_latents(g) else ""), fontsize=7, rotation=0,
                              ha="right", va="center")
    fig.tight_layout(pad=0.3)
    rows = []
    for name, row in zip(order, imgs):
        diff = np.abs(row[-1] - row[0])
        level = 255.0 * float(diff.mean())
        rows.append([name, _latent_edges_text(g, name) or "none", f"{level:.1f}",
                     _region(diff.mean(axis=0)) if level >= 0.5 else "–"])
    body.append(_p(f"Base sample: row {base} (the sample closest to the average of all latents). "
                   "Latents marked * have an edge in the graph and come first."))
    body.append(_img(_png(fig), "latent traversals"))
    body.append(_table(["latent", "edges", "change from −2 to +2 sd (grey levels per pixel)", "where"], rows))
    return _section("traversals", title, body)


# ------------------------------------------------------------------------------- Grad-CAM++
def _heatmap_png(images: np.ndarray, heat: np.ndarray, titles: list[str], title: str) -> bytes:
    from xcausal.viz.gradcam import heatmap_figure

    with tempfile.TemporaryDirectory(prefix="xcausal-report-") as d:
        p = heatmap_figure(images, heat, Path(d) / "heat.png", titles=titles, title=title)
        png = p.read_bytes()
    return png


def _gradcam_section(r: _Run, rows: list[int]) -> str:
    title = "6. Where in the image the latents live (Grad-CAM++)"
    body = [_p("Grad-CAM++ heatmaps colour the parts of the input image that push a latent up (red: strongly, "
               "blue: not at all). A latent's sign is arbitrary; `xcausal explain --negative` shows the other "
               "direction.")]
    g = r.graph
    lats = _edge_latents(g)
    if r.feature_mode:
        body.append(_p(f"Heatmaps are not available for this run: the discovered features of {r.method} are not "
                       "single encoder outputs (see section 4 for what each feature looks like).", "note"))
        return _section("gradcam", title, body)
    if r.model is None:
        body.append(_p(f"Heatmaps are not available: {r.model_note or 'the run has no model'}.", "note"))
        return _section("gradcam", title, body)
    if not lats:
        body.append(_p("No latent has an edge, so no heatmap is shown."))
        return _section("gradcam", title, body)
    from xcausal.viz.gradcam import latent_heatmaps

    for z in lats:
        try:
            images, heat = latent_heatmaps(r.model, r.ds, z, rows=rows)
        except ValueError as exc:
            body.append(_p(f"Heatmaps are not available for this run: {exc}.", "note"))
            break
        mean = heat.mean(axis=0)
        where = _region(mean)
        conc = _concentration(mean)
        rel = _latent_edges_text(g, z)
        if conc >= 0.3:
            s = f"{z} ({rel}) concentrates on the {where} of the image (heatmap below)."
        else:
            s = f"{z} ({rel}) is spread over the image, with its centre of mass in the {where} (heatmap below)."
        body.append(f"<h3>{_esc(z)}</h3>")
        body.append(_p(s + f" {round(100 * conc)}% of the heat lies in the hottest tenth of the pixels."))
        body.append(_img(_heatmap_png(images, heat, [row_label(r.ds, i) for i in rows], f"Grad-CAM++ of {z} ({rel})"),
                         f"Grad-CAM++ heatmaps of {z}"))
    return _section("gradcam", title, body)


# ------------------------------------------------------------------------------- history
def _history_section(r: _Run) -> str:
    title = "7. Training curves"
    h = r.history
    if h is None or h.empty:
        return _section("training", title, [_p("The run has no history.csv.", "note")])
    x_name = "epoch"
    phases = h["phase"].astype(str) if "phase" in h.columns else None
    x = np.arange(1, len(h) + 1) if (phases is not None or "epoch" not in h.columns) else h["epoch"].to_numpy()
    if phases is not None or "epoch" not in h.columns:
        x_name = "epoch (all phases in order)" if phases is not None else "row"
    cols = [c for c in h.columns if c not in ("epoch", "phase") and pd.api.types.is_numeric_dtype(h[c])
            and h[c].notna().any()]
    cols = cols[:_MAX_HISTORY_PANELS]
    if not cols:
        return _section("training", title, [_p("history.csv has no numeric columns.", "note")])
    ncol = min(4, len(cols))
    nrow = math.ceil(len(cols) / ncol)
    fig = _figure(2.5 * ncol, 1.9 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False)
    marker = "o" if len(h) <= 12 else None
    for k, c in enumerate(cols):
        ax = axes[k // ncol, k % ncol]
        y = pd.to_numeric(h[c], errors="coerce").to_numpy(dtype=np.float64)
        if phases is not None:
            for ph in dict.fromkeys(phases):
                m = (phases == ph).to_numpy()
                ax.plot(x[m], y[m], marker=marker, ms=3, lw=1.2, label=ph)
            if k == 0:
                ax.legend(fontsize=6)
        else:
            ax.plot(x, y, marker=marker, ms=3, lw=1.2, color="#1d6fa5")
        fin = y[np.isfinite(y)]
        if len(fin) and fin.min() > 0 and fin.max() / fin.min() > 100:
            ax.set_yscale("log")
        ax.set_title(c, fontsize=8)
        ax.tick_params(labelsize=6)
    for k in range(len(cols), nrow * ncol):
        axes[k // ncol, k % ncol].set_axis_off()
    fig.supxlabel(x_name, fontsize=8)
    fig.tight_layout()
    body = [_p(f"Loss terms and training diagnostics per epoch ({len(h)} row(s) of history.csv). "
               "Falling reconstruction terms mean the model reproduces the images better.")]
    body.append(_img(_png(fig), "training curves"))
    return _section("training", title, body)


# ------------------------------------------------------------------------------- provenance
def _reconstruct_command(fc: dict[str, Any]) -> str | None:
    """``xcausal fit ...`` from config.json's fit_config (options at their defaults left out), with
    each option's own flag (:data:`xcausal.options.FIT_OPTIONS`)."""
    if not fc or "data" not in fc:
        return None
    from xcausal.options import FIT_OPTIONS

    parts = ["xcausal", "fit", shlex.quote(str(fc["data"]))]
    if fc.get("out"):
        parts += ["--out", shlex.quote(str(fc["out"]))]
    for k, v in fc.items():
        o = FIT_OPTIONS.get(k)
        if o is None or k in ("data", "out", "overwrite", "command"):
            continue
        default = list(o.default) if isinstance(o.default, tuple) else o.default
        v = list(v) if isinstance(v, tuple) else v  # a tuple here, a list once in config.json
        if v == default or v is None or v == []:
            continue
        flag = o.cli_flags()[0]
        if o.type is bool:
            on, _, off = flag.partition("/")
            if v is True or off:
                parts.append(on if v else off)
            continue
        if isinstance(v, list):
            parts += [flag, shlex.quote(",".join(str(t) for t in v))]
        else:
            parts += [flag, shlex.quote(str(v))]
    return " ".join(parts)


def _provenance_section(r: _Run) -> str:
    cfg = r.config
    cmd = cfg.get("command")
    if isinstance(cmd, list):
        cmd = " ".join(shlex.quote(str(t)) for t in cmd)
    how = "as recorded in config.json"
    if not cmd:
        cmd = _reconstruct_command(cfg.get("fit_config") or {})
        how = "reconstructed from config.json's fit_config (options at their defaults omitted)"
    body = []
    if cmd:
        body.append(_p(f"Command ({how}):"))
        body.append(f"<pre class=\"cmd\">{_esc(cmd)}</pre>")
    else:
        body.append(_p("The command is not recorded in config.json.", "note"))
    rows = [["run directory", str(r.path.resolve())],
            ["data", str(r.ds.source)],
            ["method", r.method],
            ["xcausal version of the fit", str(cfg.get("xcausal_version", "not recorded"))],
            ["xcausal version of this report", __version__],
            ["report written (UTC)", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")]]
    body.append(_table(["", ""], rows, cls="tbl kv"))
    for note in r.notes:
        body.append(_p(note, "note"))
    body.append(_p("config.json:"))
    body.append(f"<pre class=\"config\">{_esc(json.dumps(cfg, indent=2, default=str))}</pre>")
    return _section("provenance", "8. Provenance", body)


# =============================================================================== page
_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d2630;
 max-width:1100px;margin:0 auto;padding:16px 24px 48px;line-height:1.45;background:#fff}
h1{font-size:1.6em;margin:.2em 0 .1em}h2{font-size:1.25em;border-bottom:2px solid #dfe6ee;padding-bottom:.2em;
 margin-top:1.8em}h3{font-size:1.05em;margin:1.2em 0 .3em}
.sub{color:#55606e;margin:0 0 1em}.box{background:#f3f8fc;border:1px solid #bcd3e6;border-radius:8px;padding:4px 18px 10px}
.note{color:#6b5200;background:#fff8e1;border-left:4px solid #f0c24b;padding:4px 10px}
table.tbl{border-collapse:collapse;margin:.6em 0;font-size:.92em}
.tbl th,.tbl td{border:1px solid #d4dce5;padding:3px 9px;text-align:left;vertical-align:top}
.tbl th{background:#eef3f8}.verdicts td:nth-child(2){font-weight:600}
img.fig{max-width:100%;height:auto;display:block;margin:.5em 0;border:1px solid #e3e8ee}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:8px 10px;overflow-x:auto;font-size:.85em}
pre.config{max-height:none}nav{font-size:.92em}nav a{margin-right:.8em}
"""


def _page(r: _Run, sections: list[str]) -> str:
    title = f"xcausal report: {r.path.name} ({r.method})"
    nav = [("summary", "Summary"), ("data", "Data"), ("graph", "Graph"), ("interventions", "Interventions"),
           ("traversals", "Traversals"), ("gradcam", "Heatmaps"), ("training", "Training"),
           ("provenance", "Provenance")]
    head = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n")
    intro = (f"<h1>{_esc(title)}</h1>\n"
             + _p(("What the model found about cause and effect between features it discovered in the data. "
                   if r.feature_mode else
                   "What the model found about cause and effect between the table variables and the images. ")
                  + "These are findings of a statistical model fitted to observational data: evidence to weigh, "
                  "not proof.", "sub")
             + "<nav>" + "".join(f'<a href="#{a}">{_esc(t)}</a>' for a, t in nav) + "</nav>\n")
    return head + intro + "\n".join(sections) + "\n</body>\n</html>\n"


def _write_atomic(out: Path, text: str) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out.parent}: cannot create directory ({exc.strerror})") from None
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_report(run: str | Path, *, data: str | Path | None = None, out: str | Path | None = None,
                 samples: int = 6, rows: str | int | Sequence[int] | None = None,
                 ids: str | Sequence[Any] | None = None) -> Path:
    """Write one self-contained HTML report of a run directory; returns its path.

    Parameters
    ----------
    run : path of a run directory (any method).
    data : dataset (directory or .npz); default the one recorded in the run's config.json.
    out : HTML file to write; default ``run/report.html``. Replaced if it exists (the CLI refuses
        that without ``--overwrite``). Written to a temporary file in the same folder, then renamed:
        never half-written.
    samples : how many rows, spread over the table, the intervention grids and heatmaps show.
    rows, ids : those rows instead: table row numbers (``"3,7,10-19"``, 1 = first data row of
        table.csv) or values of the id column; see :func:`xcausal.rows.select_rows`.

    Raises
    ------
    DataError
        ``run`` is not a run directory, or the data cannot be found or read; a bad ``rows`` /
        ``ids`` selection or ``samples`` below 1.
    """
    from xcausal.rows import select_rows

    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise DataError(f"--samples {samples!r}: must be at least 1")  # before the run is loaded
    run = Path(run)
    out = run / "report.html" if out is None else Path(out)
    r = _load_run(run, data)
    idx = select_rows(r.ds, rows=rows, ids=ids, samples=samples)
    sections = [_summary_section(r), _data_section(r), _graph_section(r), _interventions_section(r, idx),
                _traversals_section(r), _gradcam_section(r, idx), _history_section(r), _provenance_section(r)]
    _write_atomic(out, _page(r, sections))
    logger.info("wrote %s", out)
    return out
