"""CLI smoke test of ``simulate --kind circles``: modality files and truth, directory and npz."""

from __future__ import annotations

import json

from xcausal.cli import main
from xcausal.data.dataset import load_dataset


def test_simulate_circles_dir_and_npz(tmp_path, capsys):
    d = tmp_path / "circles"
    assert main(["simulate", "--kind", "circles", "--n", "50", "--seed", "1", "--out", str(d)]) == 0
    assert "circles (v-structure" in capsys.readouterr().err
    assert (d / "modalities" / "curve.npy").is_file() and (d / "simulation.json").is_file()
    ds = load_dataset(d)
    assert ds.modalities["curve"].shape == (50, 64)
    assert ds.truth is not None and ds.truth.node_names == ["hue", "radius", "shift"]
    assert ds.channels == 3 and ds.u.shape == (50, 0) and ds.true_latents.shape == (50, 3)
    assert json.loads((d / "simulation.json").read_text())["dag"] == "v-structure"

    z = tmp_path / "chain.npz"
    assert main(["simulate", "--kind", "circles", "--circles-dag", "chain", "--n", "50", "--out", str(z)]) == 0
    dz = load_dataset(z)
    assert dz.modalities["curve"].shape == (50, 64)
    assert {(e.source, e.target) for e in dz.truth.edges} == {("hue", "radius"), ("radius", "shift")}


def test_bad_circles_dag_is_one_line(tmp_path, capsys):
    code = main(["simulate", "--kind", "circles", "--circles-dag", "fork", "--n", "50", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "--circles-dag fork" in err and "v-structure" in err
    code = main(["simulate", "--kind", "squares", "--n", "50", "--out", str(tmp_path / "y")])
    assert code == 2 and "circles" in capsys.readouterr().err
