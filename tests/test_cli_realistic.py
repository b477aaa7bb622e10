"""CLI smoke tests of ``simulate --kind <realistic family>``: the datasets ``info`` and load_dataset read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xcausal.cli import REALISTIC_FAMILIES, main
from xcausal.data.dataset import load_dataset
from xcausal.data.realistic import FAMILY_EDGES, FAMILY_LATENTS, FAMILY_VARIABLES


# mixed holds every mechanism; the library tests (tests/data/test_realistic.py) cover each family
@pytest.mark.parametrize("family", [f if f in ("mixed", "chain") else pytest.param(f, marks=pytest.mark.slow)
                                    for f in REALISTIC_FAMILIES])
def test_simulate_family_then_info(tmp_path, capsys, family):
    d = tmp_path / family
    assert main(["simulate", "--kind", family, "--n", "50", "--seed", "1", "--out", str(d)]) == 0
    assert f"realistic {family}" in capsys.readouterr().err
    for name in ("table.csv", "truth.json", "latents.npy", "simulation.json"):
        assert (d / name).is_file(), name
    assert list(pd.read_csv(d / "table.csv").columns) == ["image", *FAMILY_VARIABLES[family]]
    assert json.loads((d / "simulation.json").read_text())["generator"] == f"realistic-{family}"
    assert main(["info", str(d)]) == 0
    out = capsys.readouterr().out
    assert "50 rows, images 1×32×32" in out and all(v in out for v in FAMILY_VARIABLES[family])
    ds = load_dataset(d)
    assert ds.truth is not None and ds.truth.latent == list(FAMILY_LATENTS[family])
    assert {(e.source, e.target) for e in ds.truth.edges} == set(FAMILY_EDGES[family])
    assert ds.true_latents.shape == (50, len(FAMILY_LATENTS[family]))


def test_image_size_64_and_too_small(tmp_path, capsys):
    d = tmp_path / "m64"
    assert main(["simulate", "--kind", "mixed", "--n", "10", "--image-size", "64", "--out", str(d)]) == 0
    ds = load_dataset(d)
    assert ds.image_size == 64 and ds.images([0]).shape == (1, 1, 64, 64)
    assert np.load(d / "latents.npy").shape == (10, 4)
    assert main(["simulate", "--kind", "site", "--n", "10", "--image-size", "12", "--out", str(tmp_path / "s")]) == 2
    assert "needs at least 16" in capsys.readouterr().err
