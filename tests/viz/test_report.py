"""The HTML run report (xcausal.viz.report / `xcausal report`): self-contained, complete, honest.

Tiny CMCL and ivae+ges runs (2 and 1 epochs) with hand-placed edges in graph.json: the report
is checked for its structure and wording, not for what the models learned.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from _report_runs import set_edges, simulate, tiny_cmcl_run, tiny_pipeline_run, write_edges_csv
from xcausal.cli import main
from xcausal.data import dataset_from_arrays
from xcausal.io import DataError
from xcausal.viz import write_report
from xcausal.viz import report as report_mod

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EDGES = [{"source": "u1", "target": "z1", "weight": 0.8, "support": 0.87},
         {"source": "z2", "target": "u2", "weight": -0.6}]


class _Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "img":
            self.srcs.append(dict(attrs).get("src", ""))


def parse(html_text: str) -> _Imgs:
    p = _Imgs()
    p.feed(html_text)
    return p


def check_self_contained(html_text: str) -> list[Image.Image]:
    """Every <img> a decodable base64 PNG data URI; no script, no link, no URL; returns the images."""
    p = parse(html_text)
    assert p.srcs, "no images in the report"
    images = []
    for src in p.srcs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        Image.open(io.BytesIO(raw)).verify()  # raises on a truncated or corrupt PNG
        im = Image.open(io.BytesIO(raw))
        im.load()
        assert im.format == "PNG" and im.width > 10 and im.height > 10
        images.append(im)
    assert not {"script", "link", "iframe", "object", "embed"} & p.tags
    assert "http://" not in html_text and "https://" not in html_text
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html_text), "a non-data, non-anchor reference"
    return images


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return simulate(tmp_path_factory.mktemp("report_data"))


@pytest.fixture(scope="module")
def cmcl_run(data, tmp_path_factory) -> Path:
    run = tiny_cmcl_run(data, tmp_path_factory.mktemp("report_cmcl") / "run")
    set_edges(run, EDGES)
    return run


@pytest.fixture
def run_copy(cmcl_run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(cmcl_run, dst)
    return dst


# =============================================================================== the CMCL report
def test_cmcl_report_is_one_self_contained_file_with_every_section(run_copy):
    before = set(p.name for p in run_copy.iterdir())
    out = write_report(run_copy)
    assert out == run_copy / "report.html"
    assert set(p.name for p in run_copy.iterdir()) - before == {"report.html"}  # one file, no leftovers
    text = out.read_text(encoding="utf-8")
    assert out.stat().st_size < 5_000_000
    images = check_self_contained(text)
    # graph, one intervention grid (u1), one scatter (u2), traversals, two heatmaps (z1, z2), training curves
    assert len(images) == 7
    heads = re.findall(r"<h2>(\d)\. ", text)
    assert heads == list("12345678")  # the sections, in order
    for v in ("u1", "u2", "u3", "u4", "u5"):
        assert f"<td>{v}</td>" in text
    assert "Changing u1 changes latent z1 (bootstrap support 87%)." in text  # graph.json "support"
    assert "u2 is caused by what the image shows: latent z2 → u2." in text
    assert "u3 has no edge: no evidence it causes or is caused by anything in the image." in text
    assert "Intervening on u2 leaves the image unchanged" in text
    assert "do(u1=" in text and "grey levels per pixel" in text
    assert re.search(r"z1 \(u1 → z1\) (concentrates on|is spread over) the image", text) or \
        re.search(r"z1 \(u1 → z1\) concentrates on the (upper|lower|central|left|right)", text)
    assert "No bootstrap was run" not in text  # graph.json carries a support key
    # provenance: reconstructed command, the full config, versions, the data path
    assert "8. Provenance" in text and "xcausal fit " in text and "--epochs 2" in text
    assert "reconstructed from config.json" in text
    assert "&quot;fit_config&quot;" in text and "xcausal version of this report" in text
    assert str(Path(re.search(r"Source: (.*?)\.</p>", text).group(1))) in text


def test_recorded_command_is_shown_and_text_is_escaped(run_copy):
    import json

    cp = run_copy / "config.json"
    cfg = json.loads(cp.read_text())
    cfg["command"] = "xcausal fit D --out R --epochs 2 <b>&"
    cfg["note"] = "<script>alert(1)</script>"
    cp.write_text(json.dumps(cfg))
    text = write_report(run_copy).read_text()
    assert "as recorded in config.json" in text
    assert "xcausal fit D --out R --epochs 2 &lt;b&gt;&amp;" in text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_edges_left_out_by_min_effect_and_pose_latents_are_named(run_copy):
    import json

    text = write_report(run_copy).read_text()
    assert "Left out as too weak" not in text  # the tiny run pruned nothing
    cp = run_copy / "config.json"
    cfg = json.loads(cp.read_text())
    assert cfg["pruned_edges"] == []
    cfg["pruned_edges"] = [["u3", "z2", 0.0712], ["u4", "z1", 0.3]]
    cp.write_text(json.dumps(cfg))
    text = write_report(run_copy).read_text()
    assert "Left out as too weak to matter: u3 → z2 (0.07) and u4 → z1 (0.30)." in text
    assert "--min-effect, is 1)." in text
    assert "pose decoder" not in text
    cfg["params"]["decoder"] = "pose"
    cp.write_text(json.dumps(cfg))
    assert "latent z1 turns the image, z2 moves it sideways and z3 up or down;" in write_report(run_copy).read_text()
    for frame, axes in (("image", "up or down in the image;"), ("object", "up or down along the drawn object")):
        cfg["pose_frame"] = frame
        cp.write_text(json.dumps(cfg))
        assert axes in write_report(run_copy).read_text()
    cfg["pruned_edges"] = [["u3"], "junk", ["u4", "z1", "x"], ["u5", "z2", 2]]  # hand-edited: skipped, not fatal
    cfg["params"] = "junk"
    cp.write_text(json.dumps(cfg))
    text = write_report(run_copy).read_text()
    assert "Left out as too weak to matter: u5 → z2 (2.00)." in text and "is unknown)." in text


def test_exogenous_variables_and_unexplained_dependences_are_explained(run_copy):
    import json

    text = write_report(run_copy).read_text()
    assert "--exogenous" not in text and "Caution:" not in text  # the tiny run declared and found nothing
    assert "Background knowledge used: none." in text
    cp = run_copy / "config.json"
    cfg = json.loads(cp.read_text())
    assert cfg["unexplained_dependences"] is None  # this run has no final refit: not checked
    cfg["params"]["exogenous"] = ["u1", "u2"]
    cfg["params"]["measured_from_image"] = ["u4"]
    cfg["params"]["forbid"] = ["image->u3"]
    cfg["unexplained_dependences"] = [["u3", "u4", 2.5e-12], ["u1", "u5", 0.0], ["junk"], "x"]  # junk is skipped
    cp.write_text(json.dumps(cfg))
    text = write_report(run_copy).read_text()
    assert "not caused by the image (--exogenous): u1 and u2." in text and "an arrow into them" in text
    assert ("Background knowledge used: u1, u2 exogenous; u4 measured from the image; forbidden: image-&gt;u3."
            in text)
    assert text.count("Caution:") == 2
    assert ("Caution: u3 and u4 are associated in the data (p = 2.5e-12), but this graph gives them no common "
            "cause") in text
    assert "Caution: u1 and u5 are associated in the data (p &lt; 1e-300)" in text
    assert text.count("refit with it listed under --exogenous") == 1  # not for the pair with the exogenous u1
    cfg["unexplained_dependences"] = None  # a run without the check (no refit, or older than it)
    cp.write_text(json.dumps(cfg))
    assert "Caution:" not in write_report(run_copy).read_text()


def test_edges_csv_support_is_shown(run_copy, data):
    write_edges_csv(run_copy, {("u1", "z1"): (0.92, 0.03), ("u2", "z2"): (0.10, 0.64), ("u3", "z3"): (0.12, 0.0)},
                    ["u1", "u2", "u3", "u4", "u5"], ["z1", "z2", "z3"])
    text = write_report(run_copy).read_text()
    # edges.csv wins over graph.json's "support" key (87%)
    assert "Changing u1 changes latent z1 (bootstrap support 92%)." in text
    assert "latent z2 → u2 (bootstrap support 64%)" in text
    assert "its most frequent edge, u3 → z3, appeared in 12% of the refits" in text
    assert "<td>u1→z1: 92%</td>" in text and "<td>z2→u2: 64%</td>" in text
    assert "Bootstrap (edges.csv)" in text and "<td>92%</td>" in text
    check_self_contained(text)
    write_edges_csv(run_copy, {("u1", "z1"): (0.92, 0.03), ("u3", "z3"): (0.0, 0.0)},
                    ["u1", "u2", "u3", "u4", "u5"], ["z1", "z2", "z3"])
    text = write_report(run_copy).read_text()
    assert "appeared in 0%" not in text and "No bootstrap refit found an edge for it either." in text


def test_verdicts_csv_gives_each_variables_verdict_share(run_copy):
    assert "verdict in the refits" not in write_report(run_copy).read_text()  # no verdicts.csv
    pd.DataFrame({"variable": ["u1", "u2"], "p_causal": [0.8, 0.0], "p_anti_causal": [0.0, 0.6],
                  "p_mixed": [0.0, 0.2], "p_none": [0.2, 0.2]}).to_csv(run_copy / "verdicts.csv", index=False)
    text = write_report(run_copy).read_text()
    assert "<th>verdict in the refits</th>" in text
    assert "<td>causal 80%, no edge 20%</td>" in text
    assert "<td>anti-causal 60%, mixed (no verdict) 20%, no edge 20%</td>" in text  # mixed is no verdict
    pd.DataFrame({"variable": ["u1"]}).to_csv(run_copy / "verdicts.csv", index=False)  # unusable: a note, no column
    text = write_report(run_copy).read_text()
    assert "verdicts.csv lacks the column(s) p_causal" in text and "<th>verdict in the refits</th>" not in text


def test_malformed_edges_csv_is_noted_not_fatal(run_copy):
    pd.DataFrame({"variable": ["u1"], "latent": ["z1"]}).to_csv(run_copy / "edges.csv", index=False)
    text = write_report(run_copy).read_text()
    assert "edges.csv lacks the column(s) p_u_to_z" in text
    assert "Changing u1 changes latent z1 (bootstrap support 87%)." in text


def test_no_edges_and_no_support(run_copy):
    set_edges(run_copy, [])
    text = write_report(run_copy, samples=2).read_text()
    assert "No bootstrap was run" in text
    assert "No variable has an edge to an image latent" in text and "No latent has an edge" in text
    for v in ("u1", "u2", "u3", "u4", "u5"):
        assert f"{v} has no edge: no evidence" in text
    assert len(check_self_contained(text)) == 3  # graph, traversals, training curves


def test_out_elsewhere_and_atomic_on_failure(run_copy, tmp_path, monkeypatch):
    out = tmp_path / "sub" / "r.html"
    assert write_report(run_copy, out=out, samples=3) == out and out.is_file()
    out.write_text("previous report")

    def boom(_r):
        raise RuntimeError("boom")

    monkeypatch.setattr(report_mod, "_history_section", boom)
    with pytest.raises(RuntimeError, match="boom"):
        write_report(run_copy, out=out)
    assert out.read_text() == "previous report"
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]  # no temporary left behind


def test_bad_inputs(cmcl_run, tmp_path):
    with pytest.raises(DataError, match="no such run directory"):
        write_report(tmp_path / "nothing")
    with pytest.raises(DataError, match="not a run directory"):
        write_report(cmcl_run / "graph.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no graph.json"):
        write_report(empty)
    with pytest.raises(DataError, match="no such file"):
        write_report(cmcl_run, data=tmp_path / "no_data", out=tmp_path / "r.html")
    with pytest.raises(DataError, match="--samples 0: must be at least 1"):
        write_report(cmcl_run, samples=0, out=tmp_path / "r.html")
    with pytest.raises(DataError, match="--rows 0: rows are numbered from 1"):
        write_report(cmcl_run, rows="0", out=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# =============================================================================== the CLI
def test_cli_report_overwrite_and_errors(run_copy, tmp_path, capsys):
    assert main(["report", "--help"]) == 0 and "self-contained HTML report" in capsys.readouterr().out
    assert main(["report", str(run_copy), "--samples", "2"]) == 0
    assert "wrote" in capsys.readouterr().err
    out = run_copy / "report.html"
    out.write_text("old")
    code = main(["report", str(run_copy)])
    err = capsys.readouterr().err
    assert code == 2 and "already exists (pass --overwrite" in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == "old"
    assert main(["report", str(run_copy), "--overwrite", "--samples", "2"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    capsys.readouterr()
    for args, needle in ([str(tmp_path / "nothing")], "no such run directory"), \
                        ([str(run_copy), "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "x.html")],
                         "no such file or directory"):
        code = main(["report", *args])
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err
    assert not (tmp_path / "x.html").exists()


# =============================================================================== other methods
def test_pipeline_report_says_interventions_are_not_available(data, tmp_path):
    run = tiny_pipeline_run(data, tmp_path / "pipe")
    set_edges(run, [{"source": "u1", "target": "z1", "weight": 0.9}, {"source": "z2", "target": "u2", "weight": 0.7}])
    text = write_report(run, samples=3).read_text()
    check_self_contained(text)
    assert "interventions are not available for this run: method ivae+ges is a two-stage pipeline" in text
    assert "Latent traversals are not available for this run: method ivae+ges" in text
    assert "Intervening on u2 leaves the image unchanged" in text  # the anti-causal scatter needs no decoder
    assert "Grad-CAM++ of z1" in text or "Grad-CAM++ heatmaps of z1" in text
    assert "do(u1=" not in text


# =============================================================================== pieces
def test_region_and_concentration():
    m = np.zeros((8, 8))
    m[:2, :2] = 1
    assert report_mod._region(m) == "upper-left region"
    m = np.zeros((8, 8))
    m[6:, 3:5] = 1
    assert report_mod._region(m) == "lower region"
    assert report_mod._region(np.ones((8, 8))) == "central region"
    assert report_mod._region(np.zeros((8, 8))) == "no particular region"
    m = np.full((32, 32), 0.02)  # a small marker's change in the top-right corner over diffuse noise
    m[1:4, 27:31] = 1.0
    assert report_mod._region(m) == "upper-right region"
    assert report_mod._concentration(np.ones((10, 10))) == pytest.approx(0.1)
    m = np.zeros((10, 10))
    m[0, :5] = 1
    assert report_mod._concentration(m) == pytest.approx(1.0)


def test_do_values_span_the_range_or_list_the_categories():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"age": rng.uniform(20, 80, 50), "sex": rng.choice(["f", "m"], 50),
                          "site": rng.choice(list("abcdefghijk"), 50)})
    ds = dataset_from_arrays(rng.uniform(0, 1, (50, 1, 8, 8)), table)
    ages = report_mod._do_values(ds, "age")
    assert len(ages) == 5 and ages == sorted(ages) and 20 <= ages[0] < 25 and 75 < ages[-1] <= 80
    assert report_mod._do_values(ds, "sex") == ["f", "m"]
    sites = report_mod._do_values(ds, "site")
    assert len(sites) == 8 and sites[0] == "a" and sites[-1] == "k"


def test_command_reconstruction_leaves_defaults_out():
    from dataclasses import asdict

    from xcausal.api import FitConfig

    fc = asdict(FitConfig(data="/d", out="/r", epochs=5, categorical=["a", "b"], use_cr=False, quiet=True,
                          anm_decontaminate=False, decoder="pose", min_effect=0.5, exogenous=["age", "site"],
                          dag_hidden=(5, 5)))
    cmd = report_mod._reconstruct_command(fc)
    assert cmd.startswith("xcausal fit /d --out /r ")
    assert "--epochs 5" in cmd and "--categorical a,b" in cmd and "--no-cr" in cmd
    assert "--no-anm-decontaminate" in cmd  # on by default: switched off it must appear
    assert "--decoder pose" in cmd and "--min-effect 0.5" in cmd and "--exogenous age,site" in cmd
    assert "--quiet" in cmd and "--dag-hidden 5,5" in cmd
    assert "--lr" not in cmd and "--seed" not in cmd and "--overwrite" not in cmd and "--use-cm" not in cmd
    assert report_mod._reconstruct_command({}) is None


def test_data_without_the_runs_variables_is_refused(cmcl_run, tmp_path):
    other = simulate(tmp_path, graph="1/10", n=30)
    with pytest.raises(DataError, match="lack the run's variable"):
        write_report(cmcl_run, data=other, out=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# =============================================================================== causal-pima (feature nodes)
class _FakeFeatureModel:
    """Stands in for a fitted CausalPIMA: do(f = 1) whitens the upper half of every image."""

    method_name = "causal-pima"
    use_image_ = True

    def counterfactual(self, ds, values, *, rows):
        x = ds.images(rows)
        ((_, v),) = values.items()
        cf = x.copy()
        if int(v) == 1:
            cf[:, :, : x.shape[2] // 2, :] = 1.0
        return {"original": x, "reconstruction": x, "counterfactual": cf}


def _feature_run(tmp_path) -> Path:
    from dataclasses import asdict

    from xcausal.api import FitConfig
    from xcausal.run import RunResult, write_run
    from xcausal.types import Edge, Graph, Node

    data = tmp_path / "circ"
    assert main(["simulate", "--kind", "circles", "--n", "30", "--image-size", "16", "--out", str(data)]) == 0
    g = Graph(nodes=[Node(f, "latent") for f in ("f1", "f2", "f3")], edges=[Edge("f1", "f2", 1.0)],
              method="causal-pima")
    p = np.random.default_rng(0).uniform(0, 1, (30, 3))
    conf = asdict(FitConfig(data=str(data), out=str(tmp_path / "run"), method="causal-pima", image_size=16))
    hist = pd.DataFrame({"phase": ["pretrain", "pretrain", "em", "em"], "epoch": [1, 2, 1, 2],
                         "loss": [4.0, 3.0, 2.5, 2.0], "edges": [None, None, 1, 1]})
    return write_run(tmp_path / "run", RunResult(graph=g, latents=p, history=hist,
                                                 config={"method": "causal-pima", "fit_config": conf}))


def test_feature_run_shows_nodes_and_do_grids(tmp_path, monkeypatch):
    import xcausal.api

    run = _feature_run(tmp_path)
    monkeypatch.setattr(xcausal.api, "load_model", lambda *a, **k: _FakeFeatureModel())
    text = write_report(run, samples=3).read_text()
    assert len(check_self_contained(text)) == 1 + 3 + 1  # graph, do(f) grid per node, training curves
    assert "discovered 3 binary image feature(s) (f1, f2, f3)" in text
    assert "<td>f1</td><td>cause of f2</td>" in text and "<td>f2</td><td>caused by f1</td>" in text
    assert "f1 causes f2 (edge weight 1)." in text
    assert "f3 has no edge: no evidence it causes or is caused by another feature." in text
    assert "images under do(f1 = 0) and do(f1 = 1)" in text and "Its effect(s) f2 are redrawn too." in text
    assert "Switching f1 from 0 to 1 makes the generated images brighter, by" in text
    assert "most in the upper region of the image" in text
    assert "Latent traversals are not available for this run" in text
    assert "Heatmaps are not available for this run" in text


def test_real_causal_pima_run(tmp_path):
    """A real (1-epoch) causal-pima fit through the CLI: its model regenerates images for every node."""
    data, run = tmp_path / "circ", tmp_path / "run"
    assert main(["simulate", "--kind", "circles", "--n", "60", "--image-size", "16", "--out", str(data)]) == 0
    assert main(["fit", str(data), "--out", str(run), "--method", "causal-pima", "--epochs", "1",
                 "--pretrain-epochs", "1", "--image-size", "16", "--modalities", "image", "--device", "cpu", "-q"]) == 0
    text = write_report(run, samples=2).read_text()
    assert len(check_self_contained(text)) == 1 + 3 + 1
    assert "images under do(f3 = 0) and do(f3 = 1)" in text and "causal-pima" in text


def test_a_mixed_variable_is_called_mixed_and_never_both_changing_and_not_changing_the_image(run_copy):
    set_edges(run_copy, [{"source": "u1", "target": "z1", "weight": 0.8}, {"source": "z2", "target": "u1", "weight": 0.7}])
    text = write_report(run_copy).read_text()
    assert "<h3>u1 (mixed)</h3>" in text and "causal and anti-causal" not in text
    assert "Intervening on u1 leaves the image unchanged" not in text
    if _said_direction(text, "u1") == "unchanged":  # the tiny model's do(u1) may be too small to see
        assert "Setting u1 by hand does not reach back into these latents, and through z1 it changes the image too " \
               "little to see" in text
    else:
        assert "Setting u1 by hand does not reach back into these latents; it changes the image only through z1" in text


def _said_direction(text: str, var: str) -> str:
    """The direction the report states for do(var): from its 'Going from do(var=...' sentence."""
    m = re.search(rf"Going from do\({var}=[^)]*\) to do\({var}=[^)]*\) (makes the generated images (brighter|darker)|"
                  r"leaves the generated images practically unchanged|changes the generated images by [0-9.]+ grey "
                  r"levels per pixel on average \(of 255\) without making them brighter or darker)", text)
    assert m, f"no change sentence for {var}"
    return m.group(2) or ("unchanged" if "unchanged" in m.group(1) else "rearranged")


def test_each_edge_sentence_states_the_sign_measured_on_the_generated_images(run_copy):
    from xcausal.api import load_model, load_run_dataset
    from xcausal.effects import DOMINANCE, UNCHANGED_GREY
    from xcausal.rows import select_rows

    set_edges(run_copy, [{"source": "u1", "target": "z1", "weight": 0.8}, {"source": "u2", "target": "z2", "weight": 0.5},
                         {"source": "z3", "target": "u3", "weight": 0.7}])
    text = write_report(run_copy).read_text()
    model, ds = load_model(run_copy), load_run_dataset(run_copy)
    rows = select_rows(ds, samples=6)
    for var in ("u1", "u2"):
        said = _said_direction(text, var)
        values = report_mod._do_values(ds, var)
        lo = model.counterfactual(ds, {var: values[0]}, rows=rows)["counterfactual"]
        hi = model.counterfactual(ds, {var: values[-1]}, rows=rows)["counterfactual"]
        diff = np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64)
        mean = diff.mean(axis=(0, 1))
        up, down = mean.clip(0).sum(), (-mean).clip(0).sum()
        if 255 * np.abs(diff).mean() < UNCHANGED_GREY:
            assert said == "unchanged"
        elif up >= DOMINANCE * down:
            assert said == "brighter" and f"higher {var} → brighter" in text
        elif down >= DOMINANCE * up:
            assert said == "darker" and f"higher {var} → darker" in text
        else:
            assert said == "rearranged"
    # no variable is described both as changing and as not changing the image
    for section in re.split(r"<h3>", text)[1:]:
        var = section.split(" ", 1)[0]
        unchanged = f"Intervening on {var} leaves the image unchanged" in section or "practically unchanged" in section
        changes = "makes the generated images" in section or "without making them brighter or darker" in section \
            or "it changes the image only through" in section
        assert not (unchanged and changes), section[:300]


class _FakeCausalModel:
    """Stands in for a fitted CMCL whose do(var = v) adds ``sign`` × v × ``template`` to every image:
    brighter (sign +1) or darker (-1) where ``template`` is positive, by an amount that grows with v."""

    method_name = "cmcl"

    def __init__(self, template: np.ndarray, sign: float, scale: float) -> None:
        self.template, self.sign, self.scale = template, sign, scale

    def counterfactual(self, ds, values, *, rows):
        x = ds.images(rows)
        ((_, v),) = values.items()
        cf = np.clip(x + self.sign * self.scale * float(v) * self.template[None, None], 0, 1)
        return {"original": x, "reconstruction": x, "counterfactual": cf.astype(np.float32)}

    def intervene(self, values, ds, *, rows):
        return self.counterfactual(ds, values, rows=rows)["counterfactual"]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_stated_sign_matches_the_generated_images_and_a_contradiction_with_the_data_is_said(
        run_copy, monkeypatch, sign):
    import xcausal.api
    from xcausal.api import load_run_dataset

    set_edges(run_copy, [{"source": "u1", "target": "z1", "weight": 0.8}])
    ds = load_run_dataset(run_copy)
    u = np.asarray(ds.u[:, ds.variable_names.index("u1")], dtype=np.float64)
    x = ds.images(list(range(len(ds)))).mean(axis=1)  # (n, H, W)
    # per-pixel correlation of the real images with u1: the fake brightens where the data brighten
    corr = ((x - x.mean(0)) * (u - u.mean())[:, None, None]).mean(0) / (x.std(0) * u.std() + 1e-9)
    assert corr.max() > 0.3  # u1 shows in the simulated images
    template = np.where(corr >= np.quantile(corr, 0.9), 1.0, 0.0)
    scale = 0.5 / np.ptp(u)
    monkeypatch.setattr(xcausal.api, "load_model", lambda *a, **k: _FakeCausalModel(template, sign, scale))
    text = write_report(run_copy).read_text()
    said = _said_direction(text, "u1")
    values = report_mod._do_values(ds, "u1")
    fake = _FakeCausalModel(template, sign, scale)
    rows = list(range(6))
    diff = fake.counterfactual(ds, {"u1": values[-1]}, rows=rows)["counterfactual"] - \
        fake.counterfactual(ds, {"u1": values[0]}, rows=rows)["counterfactual"]
    measured = "brighter" if diff.sum() > 0 else "darker"
    assert said == measured == ("brighter" if sign > 0 else "darker")
    assert f"In short: higher u1 → {measured}" in text
    if sign > 0:
        assert "The real images agree: their" in text and "is brighter where u1 is higher (Spearman ρ = +" in text
        assert "Caution" not in text
    else:
        assert "Caution: in the real images the" in text and "the opposite of this grid" in text


def test_intervene_warns_when_the_direction_is_undetermined(run_copy, monkeypatch, tmp_path, caplog):
    import logging

    import xcausal.api
    from xcausal.api import load_run_dataset
    from xcausal.types import UNDIRECTED_KEY, UNDIRECTED_WEIGHT, Graph

    g = json.loads((run_copy / "graph.json").read_text())
    g["edges"] = [{"source": "u1", "target": "z1", "weight": UNDIRECTED_WEIGHT}]
    g[UNDIRECTED_KEY] = "undirected"
    (run_copy / "graph.json").write_text(json.dumps(g))
    ds = load_run_dataset(run_copy)
    u = np.asarray(ds.u[:, ds.variable_names.index("u1")], dtype=np.float64)
    fake = _FakeCausalModel(np.ones(ds.images([0]).shape[-2:]), 1.0, 0.5 / np.ptp(u))
    fake.graph_obj_ = Graph.from_dict(g)
    monkeypatch.setattr(xcausal.api, "load_generative_model", lambda *a, **k: fake)
    with caplog.at_level(logging.WARNING, logger="xcausal.api"):
        xcausal.api.intervention_grid(run_copy, "u1", [float(u.min()), float(u.max())], tmp_path / "g.png", samples=2)
    warned = [r.getMessage() for r in caplog.records if "do not decide whether u1 changes the image" in r.getMessage()]
    assert len(warned) == 1 and (tmp_path / "g.png").exists()
    # a directed edge: no such warning
    caplog.clear()
    fake.graph_obj_ = Graph.from_dict(g | {"edges": [{"source": "u1", "target": "z1", "weight": 0.8}]})
    with caplog.at_level(logging.WARNING, logger="xcausal.api"):
        xcausal.api.intervention_grid(run_copy, "u1", [float(u.min()), float(u.max())], tmp_path / "h.png", samples=2)
    assert not [r for r in caplog.records if "do not decide" in r.getMessage()]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_intervene_warns_when_its_grid_contradicts_the_data(run_copy, monkeypatch, tmp_path, caplog, sign):
    import logging

    import xcausal.api
    from xcausal.api import load_run_dataset
    from xcausal.types import Graph

    set_edges(run_copy, [{"source": "u1", "target": "z1", "weight": 0.8}])
    ds = load_run_dataset(run_copy)
    u = np.asarray(ds.u[:, ds.variable_names.index("u1")], dtype=np.float64)
    x = ds.images(list(range(len(ds)))).mean(axis=1)
    corr = ((x - x.mean(0)) * (u - u.mean())[:, None, None]).mean(0) / (x.std(0) * u.std() + 1e-9)
    fake = _FakeCausalModel(np.where(corr >= np.quantile(corr, 0.9), 1.0, 0.0), sign, 0.5 / np.ptp(u))
    fake.graph_obj_ = Graph.from_dict(json.loads((run_copy / "graph.json").read_text()))
    monkeypatch.setattr(xcausal.api, "load_generative_model", lambda *a, **k: fake)
    lo, hi = np.quantile(u, [0.05, 0.95])
    with caplog.at_level(logging.WARNING, logger="xcausal.api"):
        xcausal.api.intervention_grid(run_copy, "u1", [float(lo), float(hi)], tmp_path / "g.png", samples=4)
    warned = [r.getMessage() for r in caplog.records if "contradicts the data" in r.getMessage()]
    if sign > 0:
        assert not warned
    else:
        assert len(warned) == 1 and warned[0].startswith("do(u1) makes the generated images darker in the ")
        assert "but the real images there are brighter where u1 is higher (Spearman ρ = +" in warned[0]
