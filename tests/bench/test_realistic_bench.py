"""The realistic suite: verdict scoring on hand-made graphs, the image judge with an oracle model,
and one tiny run end to end (files, columns, ranges, resume from the cache)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xcausal.bench.realistic import (
    RealisticBenchConfig,
    RealisticCell,
    _judge,
    plan_realistic_cells,
    run_realistic_bench,
    score_verdicts,
    summarise_verdicts,
)
from xcausal.data.realistic import simulate_realistic
from xcausal.io import DataError
from xcausal.metrics.structure import UNDIRECTED_KEY
from xcausal.types import Edge, Graph, Node

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def graph(observed, latent, edges, **extra) -> Graph:
    return Graph(nodes=[Node(v, "observed") for v in observed] + [Node(z, "latent") for z in latent],
                 edges=[Edge(a, b, w) for a, b, w in edges], method="test", extra=extra)


TRUTH = graph(["a", "b", "c", "d"], ["t1", "t2"], [("a", "t1", 1.0), ("t2", "b", 1.0)])  # c, d unrelated


def test_verdicts_right_wrong_mixed_without_bootstrap():
    # a right (causal on another latent: verdicts are per variable), b mixed (wrong), c none (right),
    # d anti-causal (wrong)
    found = graph(["a", "b", "c", "d"], ["z1", "z2", "z3"],
                  [("a", "z3", 0.5), ("b", "z1", 0.4), ("z2", "b", 0.7), ("z1", "d", 0.9)])
    rec = {r["variable"]: r for r in score_verdicts(found, TRUTH)}
    assert [rec[v]["outcome"] for v in "abcd"] == ["right", "wrong", "right", "wrong"]
    assert rec["b"]["found"] == "mixed" and rec["d"]["true"] == "none"
    assert all(r["support"] is None and r["wrong_confident"] is None for r in rec.values())
    s = summarise_verdicts(list(rec.values()))
    assert (s["n_right"], s["n_wrong"], s["n_undetermined"]) == (2, 2, 0)
    assert s["verdict_accuracy"] == 0.5 and s["wrong_confident_rate"] is None


def test_bootstrap_support_gives_undetermined_and_wrong_and_confident():
    found = graph(["a", "b", "c", "d"], ["z1", "z2"], [("a", "z1", 1.0), ("b", "z2", 1.0), ("z1", "c", 1.0),
                                                       ("d", "z2", 1.0)])
    support = pd.DataFrame([  # share of refits per verdict (xcausal.bootstrap.verdict_table)
        {"variable": "a", "p_causal": 0.4, "p_anti_causal": 0.2, "p_mixed": 0.0, "p_none": 0.4},  # right, unstable
        {"variable": "b", "p_causal": 0.8, "p_anti_causal": 0.2, "p_mixed": 0.0, "p_none": 0.0},  # wrong, 0.8
        {"variable": "c", "p_causal": 0.0, "p_anti_causal": 0.6, "p_mixed": 0.0, "p_none": 0.4},  # wrong, 0.6
        {"variable": "d", "p_causal": 1.0, "p_anti_causal": 0.0, "p_mixed": 0.0, "p_none": 0.0},  # wrong, 1.0
    ])
    rec = {r["variable"]: r for r in score_verdicts(found, TRUTH, support)}
    assert [rec[v]["outcome"] for v in "abcd"] == ["undetermined", "wrong", "wrong", "wrong"]
    assert [rec[v]["wrong_confident"] for v in "abcd"] == [False, True, False, True]
    assert rec["c"]["support"] == 0.6
    s = summarise_verdicts(list(rec.values()))
    assert s["verdict_accuracy"] == 0.0 and s["undetermined_share"] == 0.25 and s["wrong_confident_rate"] == 0.5


def test_unoriented_cpdag_edges_are_undetermined():
    found = graph(["a", "b", "c", "d"], ["z1", "z2"], [("a", "z1", -1.0), ("b", "z2", -1.0), ("z2", "c", 0.6)],
                  **{UNDIRECTED_KEY: "weight -1: undirected"})
    rec = {r["variable"]: r for r in score_verdicts(found, TRUTH)}
    assert [rec[v]["outcome"] for v in "abcd"] == ["undetermined", "undetermined", "wrong", "right"]


def test_chain_truth_is_causal_then_anticausal():
    truth = simulate_realistic("chain", 10, seed=0, image_size=16).truth
    right = graph(["exposure", "thickness_score"], ["z1"], [("exposure", "z1", 1.0), ("z1", "thickness_score", 1.0)])
    flipped = graph(["exposure", "thickness_score"], ["z1"], [("z1", "exposure", 1.0), ("thickness_score", "z1", 1.0)])
    assert [r["outcome"] for r in score_verdicts(right, truth)] == ["right", "right"]
    rec = score_verdicts(flipped, truth)
    assert [(r["true"], r["found"], r["outcome"]) for r in rec] == [
        ("causal", "anti-causal", "wrong"), ("anti-causal", "causal", "wrong")]


class Oracle:
    """A 'model' whose do() is the simulator's true counterfactual: the judge must pass it."""

    def __init__(self, family, n, size):
        self.family, self.n, self.size = family, n, size

    def intervene(self, values, ds, *, rows):
        v, val = next(iter(values.items()))
        val = int(float(val)) if v == "treated" else val
        return simulate_realistic(self.family, self.n, seed=0, image_size=self.size, do={v: val}).images[rows]


@pytest.mark.parametrize("family", ["morpho", "mixed"])
def test_judge_passes_the_true_counterfactuals(family):
    from xcausal.data import dataset_from_arrays

    n, size = 40, 24
    sim = simulate_realistic(family, n, seed=0, image_size=size)
    ds = dataset_from_arrays(sim.images, sim.table)
    rows = np.arange(0, n, 2)
    res = {j["variable"]: j for j in _judge(Oracle(family, n, size), ds, sim, family, sim.truth, rows)}
    causal = [v for v in sim.truth.observed if sim.truth.relation(v).value == "causal"]
    for v in causal:
        assert res[v]["check"] == "sign" and res[v]["sign_right"] and res[v]["rho"] >= 0.8, (v, res[v])
    for v in set(sim.truth.observed) - set(causal):
        assert res[v]["check"] == "unchanged" and res[v]["unchanged"] and res[v]["max_shift_over_noise"] == 0.0


def test_config_quick_plan_and_bad_input(tmp_path):
    q = RealisticBenchConfig(out="x", quick=True).resolved()
    assert (q.seeds, q.image_size, q.epochs, q.methods) == (1, 16, 2, ["cmcl"]) and q.n <= 80
    full = RealisticBenchConfig(out="x").resolved()
    assert full.image_size == 32 and full.methods == ["cmcl", "ivae+notears"] and len(full.families) == 8
    cells = plan_realistic_cells(RealisticBenchConfig(out="x", seeds=2, families=["marker", "chain"]))
    assert len(cells) == len(set(cells)) == 2 * 2 * 2 and RealisticCell("chain", 1, "ivae+notears") in cells
    for bad in ({"families": ["nope"]}, {"methods": ["pca+nope"]}, {"seeds": 0}, {"image_size": 8}):
        with pytest.raises(DataError):
            run_realistic_bench(RealisticBenchConfig(out=str(tmp_path / "bad"), **bad))


def test_cli_quick_run_writes_scores_and_resumes(tmp_path, capsys, monkeypatch):
    from xcausal.cli import main

    out = tmp_path / "rb"
    args = ["bench", "--suite", "realistic", "--quick", "--n", "40", "--bootstrap", "2", "--families", "marker,chain",
            "--out", str(out)]
    assert main(args) == 0
    stdout, err = capsys.readouterr()
    assert "[1/2] marker cmcl seed 0: " in err and "[2/2] chain cmcl seed 0: " in err and "| overall | cmcl |" in stdout
    for f in ("results.csv", "variables.csv", "summary.md", "bench.json"):
        assert (out / f).is_file(), f
    res = pd.read_csv(out / "results.csv")
    assert list(res["family"]) == ["marker", "chain"] and (res["method"] == "cmcl").all()
    for col in ("verdict_accuracy", "undetermined_share", "wrong_confident_rate", "sign_accuracy", "median_rho",
                "unchanged_share", "mcc", "fit_seconds", "n_variables", "n_right", "n_sign_judged"):
        assert col in res.columns, col
    assert res["verdict_accuracy"].between(0, 1).all() and res["mcc"].between(0, 1).all()
    assert (res["fit_seconds"] > 0).all() and list(res["n_variables"]) == [1, 2] and (res["image_size"] == 16).all()
    assert res["wrong_confident_rate"].between(0, 1).all() and (res["bootstrap_seconds"] > 0).all()
    var = pd.read_csv(out / "variables.csv")
    assert set(var["outcome"]) <= {"right", "wrong", "undetermined"} and len(var) == 3
    assert var["support"].isin([0.0, 0.5, 1.0]).all()  # shares of 2 refits
    # chain: thickness_score is anti-causal, so the judge checked that its do() leaves the images unchanged
    ts = var[(var["family"] == "chain") & (var["variable"] == "thickness_score")].iloc[0]
    assert ts["true"] == "anti-causal" and ts["unchanged"] in (True, False)
    md = (out / "summary.md").read_text()
    for header in ("verdict accuracy", "wrong & confident", "sign accuracy", "median ρ", "unchanged", "MCC"):
        assert header in md, header
    assert json.loads((out / "bench.json").read_text())["config"]["families"] == ["marker", "chain"]

    # a second run reads every cell back: nothing is simulated or fitted
    import xcausal.bench.realistic as rb

    monkeypatch.setattr(rb, "run_realistic_cell", lambda *a, **k: pytest.fail("refitted a cached cell"))
    assert main(args) == 0
    assert "[1/2]" not in capsys.readouterr().err and pd.read_csv(out / "results.csv").equals(res)
