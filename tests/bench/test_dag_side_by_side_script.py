"""benchmarks/dag_side_by_side.py (issue #27, item 1): run order, and a tiny run of fit_notears alone."""

from __future__ import annotations

import json

import pandas as pd
import pytest


@pytest.fixture
def sbs(load_benchmark):
    return load_benchmark("dag_side_by_side")


def test_plan_is_seed_major(sbs):
    runs = sbs.plan([10, 40], [0, 1], {40: [0]}, [1.0], ["ref"], ["raw"], ["notears_ref", "fit_notears"])
    assert runs == [(0, 10, 1.0, "ref", "raw", "notears_ref"), (0, 10, 1.0, "ref", "raw", "fit_notears"),
                    (0, 40, 1.0, "ref", "raw", "notears_ref"), (0, 40, 1.0, "ref", "raw", "fit_notears"),
                    (1, 10, 1.0, "ref", "raw", "notears_ref"), (1, 10, 1.0, "ref", "raw", "fit_notears")]


def test_reference_needs_its_path(sbs, tmp_path):
    with pytest.raises(SystemExit, match="notears-path"):
        sbs.main(["--methods", "notears_ref", "--sims", "ours", "--out", str(tmp_path)])


@pytest.mark.slow
def test_tiny_run_fit_notears_only(sbs, tmp_path):
    # d = 4, ER1, n = 200, our simulator: one fit_notears fit per scale, each in its own process
    rows = sbs.main(["--d", "4", "--seeds", "0", "--sims", "ours", "--methods", "fit_notears", "--edges-per-node",
                     "1", "--n", "200", "--max-seconds-per-fit", "120", "--out", str(tmp_path)])
    assert [(r["scale"], r["status"]) for r in rows] == [("raw", "ok"), ("std", "ok")]
    df = pd.read_csv(tmp_path / "results.csv")
    assert len(df) == 2 and (df["true_edges"] == 4).all() and df["is_dag"].all()
    assert (df["seconds"] > 0).all() and (df["seconds"] < 120).all()
    assert df["shd"].iloc[0] == df["shd"].iloc[1]  # fit_notears standardises itself: raw == std
    assert (df["shd"] <= 6).all() and (df["tpr"].between(0, 1)).all()
    md = (tmp_path / "README.md").read_text()
    assert "| d | edges | sim | scale | method |" in md and "python benchmarks/dag_side_by_side.py --d 4" in md
    assert json.loads((tmp_path / "results.json").read_text())["settings"]["methods"] == ["fit_notears"]
