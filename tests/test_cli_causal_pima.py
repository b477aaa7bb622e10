"""CLI end to end for causal-pima: simulate circles -> fit -> evaluate (--json, --counterfactual) -> intervene."""

from __future__ import annotations

import json

import pytest

from xcausal.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_causal_pima_cli_round_trip(tmp_path, capsys):
    data, run = tmp_path / "circ", tmp_path / "run"
    assert main(["simulate", "--kind", "circles", "--n", "80", "--image-size", "16", "--out", str(data)]) == 0
    assert main(["fit", str(data), "--out", str(run), "--method", "causal-pima", "--epochs", "2",
                 "--pretrain-epochs", "2", "--physics", "curve=strain-hardening", "--device", "cpu", "-q"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["method"] == "causal-pima" and cfg["params"]["physics"] == {"curve": "strain-hardening"}
    assert cfg["resolved"]["modalities"] == ["image", "curve"]
    graph = json.loads((run / "graph.json").read_text())
    assert [n["name"] for n in graph["nodes"]] == ["f1", "f2", "f3"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--truth", str(data), "--json", "--counterfactual", "--samples", "20"]) == 0
    res = json.loads(capsys.readouterr().out)
    for k in ("cluster_accuracy", "node_accuracy", "skeleton_shd", "cpdag_shd"):
        assert k in res
    assert 0 <= res["cluster_accuracy"] <= 1 and res["skeleton_shd"] >= 0
    assert set(res["matching"]) == {"hue", "radius", "shift"}
    assert set(res["interventions"]) == {"hue", "radius", "shift"}
    assert 0 <= res["interventions"]["hue"]["target_accuracy"] <= 1
    assert (run / "metrics.json").is_file()
    assert main(["evaluate", str(run), "--truth", str(data)]) == 0
    assert "discovered features vs truth" in capsys.readouterr().out
    assert main(["intervene", str(run), "--var", "f1", "--values", "0,1", "--samples", "3",
                 "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 0
    code = main(["intervene", str(run), "--var", "f1", "--values", "2", "--out", str(tmp_path / "bad.png")])
    assert code != 0 and "must be 0 or 1" in capsys.readouterr().err
    assert not (tmp_path / "bad.png").exists()


def test_bad_physics_spec_and_pima_method(tmp_path, capsys):
    data = tmp_path / "circ"
    assert main(["simulate", "--kind", "circles", "--n", "40", "--image-size", "16", "--out", str(data)]) == 0
    capsys.readouterr()
    code = main(["fit", str(data), "--out", str(tmp_path / "r"), "--method", "causal-pima", "--physics", "curve"])
    assert code == 2 and "NAME=FORM" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["fit", str(data), "--out", str(tmp_path / "p"), "--method", "pima", "--epochs", "1",
                 "--pretrain-epochs", "1", "--modalities", "image", "--device", "cpu", "-q"]) == 0
    assert json.loads((tmp_path / "p" / "graph.json").read_text())["edges"] == []
