"""The run directory every method writes, so evaluate/intervene/report work on any of them.

::

    RUN/
      graph.json      {"method", "nodes": [{"name", "kind"}], "edges": [{"source", "target", "weight"}]}
                      latent nodes named z1..zm; the graph is acyclic
      adjacency.csv   weighted adjacency, rows = source, header = node names
      latents.csv     posterior means z1..zm, one row per sample in table.csv order; first ``row``
                      (the row's number in table.csv, 1 = first data row, kept through --missing
                      drop), then the row ids under the id column's name when the dataset has ids
      config.json     every hyperparameter, the seed, the package version, the data source
      history.csv     loss terms per epoch
      model.pt        the checkpoint (state_dict only; loaded with weights_only=True)
      graph.png       the DAG drawn with observed and latent nodes styled differently
      edges.csv       with --bootstrap B: per variable–latent pair the frequency of u→z, z→u and
                      no edge over B refits, and the median |weight|; graph.json edges then carry
                      "support" (their direction's frequency)
      verdicts.csv    with --bootstrap B: per variable the share of the B refits that find it causal,
                      anti-causal, mixed or unrelated (no edge)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xcausal import __version__
from xcausal.io import DataError, atomic_output_dir, read_json, write_json
from xcausal.types import Graph

__all__ = ["RunResult", "RunDir", "write_run", "read_run", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "model.pt"


@dataclass
class RunResult:
    """Everything a fitted method hands to :func:`write_run`."""

    graph: Graph
    latents: np.ndarray  # (N, m), columns = graph.latent in order
    config: dict[str, Any]
    history: pd.DataFrame
    save_checkpoint: Callable[[Path], None] | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # extra CSVs, e.g. {"edges.csv": ...}
    ids: pd.Series | None = None  # (N,) row ids named by the id column: latents.csv's second column
    row_numbers: np.ndarray | None = None  # (N,) table row numbers (1-based; default 1..N): latents.csv's first


def write_run(out: str | Path, result: RunResult, *, overwrite: bool = False) -> Path:
    """Write the run directory atomically (a failure leaves nothing behind)."""
    graph = result.graph
    if not graph.is_acyclic():
        raise ValueError("refusing to write a cyclic graph to graph.json")
    lat_names = graph.latent
    latents = np.asarray(result.latents, dtype=float)
    if latents.ndim != 2 or latents.shape[1] != len(lat_names):
        raise ValueError(f"latents have shape {latents.shape}, expected (N, {len(lat_names)})")
    from xcausal.viz.graph import draw_graph  # matplotlib only when writing

    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / "graph.json", graph.to_dict())
        names = graph.node_names
        pd.DataFrame(graph.adjacency(weighted=True), index=names, columns=names).to_csv(
            tmp / "adjacency.csv", index_label="source", float_format="%.6g")
        _latents_frame(latents, lat_names, result.ids, result.row_numbers).to_csv(tmp / "latents.csv", index=False, float_format="%.6g")
        config = {"xcausal_version": __version__, **result.config}
        write_json(tmp / "config.json", config)
        result.history.to_csv(tmp / "history.csv", index=False, float_format="%.6g")
        for name, table in result.tables.items():
            table.to_csv(tmp / name, index=False, float_format="%.6g")
        if result.save_checkpoint is not None:
            result.save_checkpoint(tmp / CHECKPOINT_NAME)
        draw_graph(graph, tmp / "graph.png")
    return Path(out)


def _latents_frame(latents: np.ndarray, names: list[str], ids: pd.Series | None,
                   row_numbers: np.ndarray | None = None) -> pd.DataFrame:
    """latents.csv's table: ``row`` (table row numbers, default 1..N), then the ids (named by their
    column, or ``id`` when that name is ``row`` or a latent node's), then one column per latent
    node. Readers select the latent columns by name."""
    frame = pd.DataFrame(latents, columns=names)
    if ids is not None:
        if len(ids) != len(latents):
            raise ValueError(f"{len(ids)} ids for {len(latents)} rows of latents")
        name = str(ids.name) if ids.name is not None and str(ids.name) not in (*names, "row") else "id"
        frame.insert(0, name, np.asarray(ids))
    rows = np.arange(1, len(latents) + 1) if row_numbers is None else np.asarray(row_numbers, dtype=np.int64)
    if len(rows) != len(latents):
        raise ValueError(f"{len(rows)} row numbers for {len(latents)} rows of latents")
    frame.insert(0, "row", rows)
    return frame


@dataclass
class RunDir:
    path: Path
    graph: Graph
    latents: np.ndarray | None
    config: dict[str, Any]


def _read_latents(path: Path, names: list[str]) -> np.ndarray:
    """The columns ``names`` of latents.csv as floats; DataError naming the file when it is empty,
    not CSV, lacks a column or holds a value that is not a number."""
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (expected a header z1,z2,... and one row per sample)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise DataError(f"{path}: cannot parse CSV ({lines[0] if lines else type(exc).__name__})") from None
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise DataError(f"{path}: no column for latent node(s) {', '.join(missing)}")
    values = df[names].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & df[names].notna()
    if bad.to_numpy().any():
        row, col = next((r, c) for c in names for r in np.flatnonzero(bad[c].to_numpy()))
        raise DataError(f"{path} row {row + 1}, column '{col}': not a number ({str(df[col].iloc[row])[:40]!r})")
    return values.to_numpy(dtype=float)


def read_run(path: str | Path) -> RunDir:
    """Read a run directory, or a bare graph.json (then latents and config are empty)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        try:
            return RunDir(path, Graph.from_dict(read_json(path), where=str(path)), None, {})
        except ValueError as exc:
            raise DataError(str(exc)) from None
    if not path.is_dir():
        raise DataError(f"{path}: not a run directory or graph.json")
    gj = path / "graph.json"
    if not gj.is_file():
        raise DataError(f"{path}: no graph.json (is this a run directory?)")
    try:
        graph = Graph.from_dict(read_json(gj), where=str(gj))
    except ValueError as exc:
        raise DataError(str(exc)) from None
    lat = None
    lp = path / "latents.csv"
    if lp.is_file():
        lat = _read_latents(lp, graph.latent)
    cp = path / "config.json"
    config = read_json(cp) if cp.is_file() else {}
    if not isinstance(config, dict):
        raise DataError(f"{cp}: expected a JSON object of settings, got {type(config).__name__}")
    return RunDir(path, graph, lat, config)
