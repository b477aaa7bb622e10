"""fit --bootstrap (edges.csv, support on graph.json edges) and fit --config (YAML options)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xcausal.bootstrap import bootstrap_seeds, edge_table, verdict_table
from xcausal.types import UNDIRECTED_KEY, UNDIRECTED_WEIGHT
from xcausal.cli import main
from xcausal.types import Edge, Graph, Node

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_edge_table_counts_directions_and_median_weight():
    ref = Graph([Node("u1", "observed"), Node("z1", "latent"), Node("z2", "latent")], [Edge("u1", "z1", 0.8)])
    refits = [Graph(ref.nodes, [Edge("u1", "z1", 0.5)]), Graph(ref.nodes, [Edge("u1", "z1", -0.9)]),
              Graph(ref.nodes, [Edge("z1", "u1", 0.4)]), Graph(ref.nodes, [])]
    t = edge_table(ref, refits).set_index(["variable", "latent"])
    assert list(t.columns) == ["p_u_to_z", "p_z_to_u", "p_undirected", "p_none", "median_weight"]
    assert t.loc[("u1", "z1")].tolist() == [0.5, 0.25, 0.0, 0.25, pytest.approx(0.5)]
    assert t.loc[("u1", "z2")].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert bootstrap_seeds(0, 3) == bootstrap_seeds(0, 3) and len(set(bootstrap_seeds(0, 3))) == 3
    refits.append(Graph(ref.nodes, [Edge("u1", "z2", 0.5), Edge("z1", "u1", 0.4)]))  # edges out and in: mixed
    # a refit that left the direction undetermined votes for neither direction
    refits.append(Graph(ref.nodes, [Edge("u1", "z1", UNDIRECTED_WEIGHT)], extra={UNDIRECTED_KEY: "undirected"}))
    t = edge_table(ref, refits).set_index(["variable", "latent"])
    assert t.loc[("u1", "z1")].tolist() == [pytest.approx(2 / 6), pytest.approx(2 / 6), pytest.approx(1 / 6),
                                            pytest.approx(1 / 6), pytest.approx(0.45)]
    v = verdict_table(ref, refits).set_index("variable")
    assert list(v.columns) == ["p_causal", "p_anti_causal", "p_mixed", "p_none", "p_undetermined"]
    assert v.loc["u1"].tolist() == pytest.approx([2 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6])
    with pytest.raises(ValueError, match="no refits"):
        verdict_table(ref, [])


def test_fit_bootstrap_writes_edges_csv_and_support(tmp_path, capsys):
    data, run = tmp_path / "d", tmp_path / "run"
    assert main(["simulate", "--graph", "first", "--n", "120", "--seed", "0", "--out", str(data)]) == 0
    assert main(["fit", str(data), "--out", str(run), "--epochs", "2", "--bootstrap", "2", "--device", "cpu",
                 "-q"]) == 0
    t = pd.read_csv(run / "edges.csv")
    assert list(t.columns) == ["variable", "latent", "p_u_to_z", "p_z_to_u", "p_undirected", "p_none",
                               "median_weight"]
    g = json.loads((run / "graph.json").read_text())
    n_u = sum(n["kind"] == "observed" for n in g["nodes"])
    n_z = sum(n["kind"] == "latent" for n in g["nodes"])
    assert len(t) == n_u * n_z
    assert np.allclose(t[["p_u_to_z", "p_z_to_u", "p_undirected", "p_none"]].sum(axis=1), 1.0)
    assert set(np.unique(t[["p_u_to_z", "p_z_to_u", "p_undirected", "p_none"]].to_numpy())) <= {0.0, 0.5, 1.0}
    for e in g["edges"]:
        assert 0.0 <= e["support"] <= 1.0
    v = pd.read_csv(run / "verdicts.csv")
    assert list(v.columns) == ["variable", "p_causal", "p_anti_causal", "p_mixed", "p_none", "p_undetermined"]
    assert list(v["variable"]) == [n["name"] for n in g["nodes"] if n["kind"] == "observed"]
    assert np.allclose(v.iloc[:, 1:].sum(axis=1), 1.0) and set(np.unique(v.iloc[:, 1:])) <= {0.0, 0.5, 1.0}
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["fit_config"]["bootstrap"] == 2 and cfg["command"].startswith("xcausal fit ")


def test_fit_config_file_and_command_line_precedence(tmp_path, capsys):
    data = tmp_path / "d"
    assert main(["simulate", "--graph", "first", "--n", "60", "--seed", "0", "--out", str(data)]) == 0
    conf = tmp_path / "run.yaml"
    conf.write_text(f"data: {data}\nout: {tmp_path / 'r1'}\nepochs: 1\nlatent-dim: 3\nseed: 4\nquiet: true\n"
                    "device: cpu\n")
    assert main(["fit", "--config", str(conf), "--seed", "7"]) == 0
    cfg = json.loads((tmp_path / "r1" / "config.json").read_text())
    fc = cfg["fit_config"]
    assert fc["epochs"] == 1 and fc["latent_dim"] == 3 and fc["seed"] == 7  # the command line wins
    capsys.readouterr()
    conf.write_text("epochs: lots\n")
    code = main(["fit", str(data), "--out", str(tmp_path / "r2"), "--config", str(conf)])
    err = capsys.readouterr().err
    assert code == 2 and "run.yaml" in err and "'epochs' must be int" in err
    conf.write_text("epoch: 3\n")
    code = main(["fit", str(data), "--out", str(tmp_path / "r2"), "--config", str(conf)])
    assert code == 2 and "unknown option 'epoch'" in capsys.readouterr().err
    code = main(["fit", "--out", str(tmp_path / "r2")])
    assert code == 2 and "no dataset given" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


def test_evaluate_drops_the_rows_the_fit_dropped(tmp_path, capsys):
    """fit --missing drop leaves N - k rows in latents.csv; evaluate compares them with the same rows
    of the truth's latents (it used to refuse: "latents.csv has N - k rows but the truth has N")."""
    data, run = tmp_path / "d", tmp_path / "r"
    assert main(["simulate", "--graph", "3/6", "--n", "80", "--seed", "0", "--out", str(data)]) == 0
    table = pd.read_csv(data / "table.csv")
    table.loc[[3, 40], "u1"] = np.nan  # two empty cells
    table.to_csv(data / "table.csv", index=False)
    assert main(["fit", str(data), "--out", str(run), "--epochs", "1", "--device", "cpu", "-q",
                 "--missing", "drop"]) == 0
    assert len(pd.read_csv(run / "latents.csv")) == 78
    capsys.readouterr()
    assert main(["evaluate", str(run), "--truth", str(data), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["mcc"] is not None and 0.0 <= res["mcc"] <= 1.0


def _image_folder(root, modes):
    """A dataset directory of 8×8 images, one per mode in ``modes``, and two variables."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = []
    for i, mode in enumerate(modes):
        pixels = rng.integers(0, 256, size=(8, 8) if mode == "L" else (8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels, mode).save(root / "images" / f"{i}.png")
        names.append(f"images/{i}.png")
    pd.DataFrame({"image": names, "x": rng.normal(size=len(modes)).round(3),
                  "b": [0, 1] * (len(modes) // 2)}).to_csv(root / "table.csv", index=False)
    return root


def test_mixed_grayscale_and_rgb_folder_fits_as_rgb_and_reloads_so(tmp_path, capsys):
    """info states the mixed folder is read as RGB; the run records the resolved channel count, so
    later verbs read any dataset the way the fit did."""
    from xcausal.api import load_run_dataset

    data = _image_folder(tmp_path / "d", ["L", "RGB"] * 10)
    assert main(["info", str(data)]) == 0
    out = capsys.readouterr().out
    assert "images 3×8×8" in out and "images: mixed grayscale and RGB -> RGB" in out
    run = tmp_path / "run"
    assert main(["fit", str(data), "--method", "ica+ges", "--latent-dim", "2", "--out", str(run), "-q"]) == 0
    conf = json.loads((run / "config.json").read_text())
    assert conf["fit_config"]["channels"] is None  # as given
    assert conf["data"]["channels"] == 3 and conf["data"]["stored_channels"] == [1, 3]
    assert load_run_dataset(run).channels == 3
    gray = _image_folder(tmp_path / "gray", ["L"] * 20)
    assert load_run_dataset(run, gray).channels == 3  # the fit's channels, not the stored one
