"""The linear-ICA representation baseline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xcausal.data import dataset_from_arrays
from xcausal.data.simulate import simulate_appendix_e
from xcausal.metrics import mcc
from xcausal.models.linear import ICA


def test_recovers_the_simulators_latents():
    sim = simulate_appendix_e("5/10", 600, seed=0)
    ds = dataset_from_arrays(sim.images, sim.table)
    model = ICA(latent_dim=5, seed=0)
    assert model.fit(ds) is model
    z = model.transform(ds)
    assert z.shape == (600, 5)
    np.testing.assert_allclose(z.std(0), 1.0, atol=0.05)
    assert mcc(sim.latents, z) > 0.9
    rec = model.reconstruct(ds, rows=[0, 1])
    assert rec.shape == (2, 1, 32, 32) and np.abs(rec - sim.images[:2]).mean() < 0.02


def test_deterministic_and_save_load_identical(tmp_path):
    sim = simulate_appendix_e("3/10", 200, seed=1)
    ds = dataset_from_arrays(sim.images, sim.table)
    a, b = ICA(latent_dim=4, seed=3).fit(ds), ICA(latent_dim=4, seed=3).fit(ds)
    np.testing.assert_array_equal(a.transform(ds), b.transform(ds))
    a.save(tmp_path / "sub" / "dir" / "m.pt")  # missing parents are created
    c = ICA.load(tmp_path / "sub" / "dir" / "m.pt")
    np.testing.assert_array_equal(a.transform(ds), c.transform(ds))
    meta = json.loads((tmp_path / "sub" / "dir" / "m.pt.json").read_text())
    meta["method"] = "ivae"
    (tmp_path / "sub" / "dir" / "m.pt.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="for method 'ivae'"):
        ICA.load(tmp_path / "sub" / "dir" / "m.pt")


def test_bad_input_rejected():
    ds = dataset_from_arrays(np.random.default_rng(0).random((12, 1, 8, 8), dtype=np.float32),
                             pd.DataFrame({"a": np.arange(12.0)}))
    with pytest.raises(ValueError, match="latent_dim=20"):
        ICA(latent_dim=20).fit(ds)
    with pytest.raises(TypeError):
        ICA(3)  # type: ignore[misc]
    with pytest.raises(ValueError, match="not fitted"):
        ICA().transform(ds)
