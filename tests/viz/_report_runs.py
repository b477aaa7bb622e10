"""Tiny run directories for the report tests (tests/viz/test_report.py, test_report_browser.py).

The fits are a few seconds each: the workflow, not a result. Their learned graphs are empty at
this size, so :func:`set_edges` writes hand-chosen edges into graph.json (and redraws graph.png)
to exercise the causal / anti-causal / no-edge parts of the report.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from xcausal.api import FitConfig
from xcausal.cli import main
from xcausal.data import load_dataset
from xcausal.run import write_run
from xcausal.types import Graph
from xcausal.viz.graph import draw_graph

IMAGE_SIZE = 16


def simulate(root: Path, *, n: int = 120, graph: str = "first-3") -> Path:
    data = root / "data"
    assert main(["simulate", "--graph", graph, "--n", str(n), "--seed", "0", "--image-size", str(IMAGE_SIZE),
                 "--out", str(data)]) == 0
    return data


def _fit_config(data: Path, run: Path, **kw) -> dict:
    conf = asdict(FitConfig(data=str(data.resolve()), out=str(run), image_size=IMAGE_SIZE, device="cpu", **kw))
    conf["progress"] = False
    return conf


def tiny_cmcl_run(data: Path, run: Path) -> Path:
    """CMCL, 3 latents, 2 epochs, no final DAG refit (the slow part)."""
    from xcausal.models.cmcl import CMCL

    ds = load_dataset(data, image_size=IMAGE_SIZE)
    model = CMCL(latent_dim=3, epochs=2, dag_refit=False, init="none", seed=0, device="cpu").fit(ds)
    conf = _fit_config(data, run, latent_dim=3, epochs=2)
    return write_run(run, model.run_result(ds, extra_config={"fit_config": conf}))


def tiny_pipeline_run(data: Path, run: Path) -> Path:
    """ivae+ges, 2 latents, 1 epoch."""
    from xcausal.models.pipeline import Pipeline

    ds = load_dataset(data, image_size=IMAGE_SIZE)
    model = Pipeline(representation="ivae", structure="ges", latent_dim=2, epochs=1, seed=0, device="cpu").fit(ds)
    conf = _fit_config(data, run, method="ivae+ges", latent_dim=2, epochs=1)
    return write_run(run, model.run_result(ds, extra_config={"fit_config": conf}))


def set_edges(run: Path, edges: list[dict]) -> None:
    """Replace graph.json's edges by ``edges`` ({"source", "target", "weight"[, "support"]}); redraw graph.png."""
    gp = run / "graph.json"
    g = json.loads(gp.read_text())
    g["edges"] = edges
    gp.write_text(json.dumps(g, indent=2))
    draw_graph(Graph.from_dict(g), run / "graph.png")


def write_edges_csv(run: Path, rows: dict[tuple[str, str], tuple[float, float]], variables: list[str],
                    latents: list[str]) -> None:
    """edges.csv over every variable–latent pair; ``rows[(u, z)] = (p_u_to_z, p_z_to_u)``, others 0."""
    out = []
    for u in variables:
        for z in latents:
            fwd, rev = rows.get((u, z), (0.0, 0.0))
            out.append({"variable": u, "latent": z, "p_u_to_z": fwd, "p_z_to_u": rev, "p_none": 1 - fwd - rev,
                        "median_weight": 0.5 if fwd + rev else 0.0})
    pd.DataFrame(out).to_csv(run / "edges.csv", index=False)
