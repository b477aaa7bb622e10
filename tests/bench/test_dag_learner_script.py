"""benchmarks/dag_learner.py (issue #8, item 6c): a tiny run end to end, the wall-clock cap, the budget."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def dl(load_benchmark):
    return load_benchmark("dag_learner")


@pytest.mark.slow  # a benchmark script's end-to-end smoke run (make test-all)
def test_tiny_run_writes_sane_results(dl, tmp_path):
    # d = 5 with 5 edges (ER1: ER2 on 5 nodes is the complete DAG), n = 200: an easy graph that
    # NOTEARS-MLP recovers with SHD 0-2 on seeds 0-2 (both h functions, measured)
    out = tmp_path / "dl"
    rows = dl.main(["--d", "5", "--seeds", "0", "--n", "200", "--edges-per-node", "1", "--h-funcs", "logdet,expm",
                    "--max-seconds-per-fit", "60", "--out", str(out)])
    for f in ("results.csv", "results.json", "README.md"):
        assert (out / f).is_file(), f
    df = pd.read_csv(out / "results.csv")
    assert list(df["h_func"]) == ["logdet", "expm"] and (df["d"] == 5).all() and (df["true_edges"] == 5).all()
    assert len(rows) == 2
    for r in df.to_dict("records"):
        assert r["status"] in ("converged", "converged (rho_max)", "max_outer"), r
        assert 0 < r["seconds"] < 60
        assert 1 <= r["outer"] <= 20 and r["inner_iters"] > 0
        assert 0 <= r["h_final"] <= 1e-5  # acyclic up to the ALM's tolerance
        assert r["shd"] <= 2, r
        assert r["tpr"] >= 0.8 and r["fdr"] <= 0.34, r
        assert 4 <= r["edges_found"] <= 7
        assert r["shd"] == r["reversed"] + r["extra"] + r["missing"]
    res = json.loads((out / "results.json").read_text())
    assert set(res["traces"]) == {"d5_seed0_logdet", "d5_seed0_expm"}
    assert len(res["traces"]["d5_seed0_expm"]) == int(df.loc[df["h_func"] == "expm", "outer"].iloc[0])
    md = (out / "README.md").read_text()
    assert "| d | seed | h_func | status |" in md and "python benchmarks/dag_learner.py --d 5" in md
    assert "commit" in md and "1 threads" in md


def test_fit_past_its_cap_is_recorded_not_hung(dl, tmp_path):
    rows = dl.main(["--d", "8", "--seeds", "1", "--n", "200", "--h-funcs", "expm", "--max-seconds-per-fit", "0.5",
                    "--out", str(tmp_path)])
    (r,) = rows
    assert r["status"] == "stopped at cap"
    assert r["seconds"] < 5  # one objective evaluation past the deadline at most, plus the graph
    assert math.isfinite(r["h_final"]) and 0 <= r["shd"] <= 28 and r["outer"] == 0
    assert "state at the cap" in r["note"]
    assert "stopped at cap" in (tmp_path / "README.md").read_text()


def test_budget_skips_runs_seed_major_and_seeds_for(dl, tmp_path):
    assert dl.plan([10, 100], [0, 1], {100: [0]}, ["logdet", "expm"]) == [
        (10, 0, "logdet"), (10, 0, "expm"), (100, 0, "logdet"), (100, 0, "expm"),
        (10, 1, "logdet"), (10, 1, "expm")]
    rows = dl.main(["--d", "5,6", "--seeds", "0", "--max-total-seconds", "0", "--out", str(tmp_path)])
    assert [r["status"] for r in rows] == ["skipped (budget)"] * 4
    assert "Not run" in (tmp_path / "README.md").read_text()
