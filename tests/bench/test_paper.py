"""The paper benchmark: the grid plan, one real (tiny) run end to end, cache and resume, bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import xcausal.bench.paper as paper
from xcausal.bench import Cell, PaperBenchConfig, plan_cells, run_paper_bench
from xcausal.io import DataError
from xcausal.models.linear import ICA

REPS = {"ica": ICA}  # a real, fast representation learner; the VAE baselines are tested in tests/models


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(out, **kw) -> PaperBenchConfig:
    base = dict(out=str(out), seeds=1, n=120, epochs=2, fig2_graphs=["1/10", "3/10"], table1_graphs=["3/10"],
                ablation_graph="1/10", representations=["ica"], table1_representations=["ica"], structures=["notears"])
    return PaperBenchConfig(**{**base, **kw})


def test_plan_covers_every_table_once():
    cfg = PaperBenchConfig(out="x", seeds=2)
    cells = plan_cells(cfg)
    assert len(cells) == len(set(cells))
    cmcl = {(c.graph, c.name) for c in cells if c.kind == "cmcl"}
    # Figure 2 and Table 1 graphs with CMCL as shipped, the ablation's four variants on 20/40
    assert {(g, "cm+cr") for g in paper.FIG2_GRAPHS + paper.TABLE1_GRAPHS} <= cmcl
    assert {("20/40", v) for v in paper.VARIANTS} <= cmcl
    reps = {(c.graph, c.name) for c in cells if c.kind == "rep"}
    assert ("20/40", "factorvae") in reps and ("3/10", "betavae") in reps and ("3/10", "ivae") in reps
    assert all(c.seed in (0, 1) for c in cells)
    n_graphs = len(set(paper.FIG2_GRAPHS + paper.TABLE1_GRAPHS))
    # CMCL: every graph + 3 ablation variants; reps: 4 on every graph (3/10, 5/10 are Table 1 only: 4 reps too)
    assert len(cells) == 2 * (n_graphs + 3 + 4 * n_graphs)


def test_quick_preset_is_small():
    q = PaperBenchConfig(out="x", quick=True).resolved()
    assert (q.seeds, q.n, q.epochs) == (1, 300, 3)
    assert len(q.fig2_graphs) == 2 and q.ablation_graph in q.fig2_graphs


@pytest.mark.slow  # a whole tiny grid (17 s); the shared cell runner has its own fast test (test_cells.py)
def test_tiny_run_writes_every_table_and_resumes_from_the_cache(tmp_path, monkeypatch):
    cfg = tiny(tmp_path / "b")
    out = run_paper_bench(cfg, command="test", representations=REPS)
    for f in ("results.csv", "figure2.csv", "figure2.png", "table1.csv", "table2.csv", "timing.csv", "results.md",
              "bench.json"):
        assert (out / f).is_file(), f
    res = pd.read_csv(out / "results.csv")
    # CMCL on 1/10 and 3/10, three ablation variants on 1/10, ica alone and ica+notears on both graphs
    assert sorted(res["method"].unique()) == ["cmcl", "cmcl[cm]", "cmcl[cr]", "cmcl[none]", "ica", "ica+notears"]
    scored = res[res["method"] != "ica"]
    assert scored["shd"].notna().all() and scored["tpr"].between(0, 1).all()
    assert res["mic"].between(0, 1).all() and res["mcc"].between(0, 1).all()
    md = (out / "results.md").read_text()
    assert "93.5 ± 1.4" in md  # the paper's Table 1 MIC for CMCL on 3/10, beside ours
    assert "no paper column" in md  # the ablation ran on 1/10, not the paper's 20/40
    t2 = pd.read_csv(out / "table2.csv")
    assert list(t2["runs"]) == [1, 1, 1, 1]
    cells = sorted((out / "cells").glob("*.json"))
    assert len(cells) == len(plan_cells(cfg)) == 2 + 3 + 2

    # resume: nothing is refitted when every cell is cached ...
    def boom(*a, **k):
        raise AssertionError("a cached cell was recomputed")

    monkeypatch.setattr(paper, "run_cell", boom)
    run_paper_bench(cfg, command="test", representations=REPS)
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), res)

    # ... and only the missing cell runs when one is gone (a killed run)
    calls = []
    monkeypatch.setattr(paper, "run_cell", lambda cell, *a, **k: calls.append(cell) or json.loads(lost_rows))
    lost = next(p for p in cells if p.name.startswith("rep_3-10_ica"))
    lost_rows = lost.read_text()
    lost.unlink()
    run_paper_bench(cfg, command="test", representations=REPS)
    assert calls == [Cell("rep", "3/10", 0, "ica")]
    assert lost.is_file()

    # other settings are other cells (the cache key holds n, epochs, ...)
    assert Cell("cmcl", "1/10", 0, "cm+cr").key(paper._settings(cfg)) != Cell("cmcl", "1/10", 0, "cm+cr").key(
        paper._settings(tiny(tmp_path, n=121)))


def test_bad_input_fails_before_any_fit(tmp_path, monkeypatch):
    monkeypatch.setattr(paper, "run_cell", lambda *a, **k: pytest.fail("fitted despite bad input"))
    with pytest.raises(ValueError, match="7/3"):
        run_paper_bench(tiny(tmp_path / "a", fig2_graphs=["7/3"]), representations=REPS)
    with pytest.raises(DataError, match="seeds"):
        run_paper_bench(tiny(tmp_path / "b", seeds=0), representations=REPS)
    with pytest.raises(DataError, match="backend"):
        run_paper_bench(tiny(tmp_path / "c", jobs=2, backend="spark"), representations=REPS)  # type: ignore[arg-type]
