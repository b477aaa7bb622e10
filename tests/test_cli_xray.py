"""CLI smoke tests of ``simulate --kind xray-phantom`` and the per-kind --image-size default."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image

from xcausal.cli import main
from xcausal.data.dataset import load_dataset
from xcausal.types import VarType


def test_simulate_xray_phantom_dir(tmp_path, capsys):
    d = tmp_path / "xr"
    assert main(["simulate", "--kind", "xray-phantom", "--n", "30", "--seed", "2", "--image-size", "32",
                 "--out", str(d)]) == 0
    assert "x-ray phantoms" in capsys.readouterr().err
    for name in ("table.csv", "truth.json", "latents.npy", "simulation.json"):
        assert (d / name).is_file(), name
    table = pd.read_csv(d / "table.csv")
    assert list(table.columns) == ["image", "id", "infected", "age", "opacity_score", "site"]
    assert np.load(d / "latents.npy").shape == (30, 2)
    assert json.loads((d / "simulation.json").read_text())["generator"] == "xray-phantom"
    ds = load_dataset(d, image_size=32)
    assert ds.channels == 1 and ds.images([0]).shape == (1, 1, 32, 32)
    assert {v.name: v.type for v in ds.variables} == {
        "infected": VarType.BINARY, "age": VarType.CONTINUOUS, "opacity_score": VarType.CONTINUOUS,
        "site": VarType.CATEGORICAL}
    assert ds.truth is not None and ds.truth.latent == ["z1", "z2"]
    assert {(e.source, e.target) for e in ds.truth.edges} == {
        ("infected", "z1"), ("age", "z2"), ("z1", "opacity_score")}
    assert ds.true_latents.shape == (30, 2)


def test_image_size_default_per_kind(tmp_path, capsys):
    x = tmp_path / "x"
    assert main(["simulate", "--kind", "xray-phantom", "--n", "10", "--out", str(x)]) == 0
    with Image.open(x / pd.read_csv(x / "table.csv")["image"][0]) as img:
        assert img.size == (128, 128) and img.mode == "L"
    c = tmp_path / "c"
    assert main(["simulate", "--kind", "circles", "--n", "10", "--out", str(c)]) == 0
    with Image.open(c / pd.read_csv(c / "table.csv")["image"][0]) as img:
        assert img.size == (32, 32)
    a = tmp_path / "a"
    assert main(["simulate", "--graph", "1/10", "--n", "10", "--out", str(a)]) == 0
    with Image.open(a / pd.read_csv(a / "table.csv")["image"][0]) as img:
        assert img.size == (32, 32)


def test_xray_phantom_too_small_is_one_line(tmp_path, capsys):
    code = main(["simulate", "--kind", "xray-phantom", "--n", "10", "--image-size", "16", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "--image-size 16" in err and "32" in err and len(err.strip().splitlines()) == 1
    code = main(["simulate", "--kind", "chest", "--n", "10", "--out", str(tmp_path / "y")])
    assert code == 2 and "xray-phantom" in capsys.readouterr().err
