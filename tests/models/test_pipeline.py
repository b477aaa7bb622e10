"""<representation>+<structure> pipelines: estimator contract, persistence, names, recovery with a known representation.

The representation learners are written separately; here a small fake one (``PixelRep``) that
reads the true latents off the images is injected through ``representations=``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from xcausal.data import dataset_from_arrays
from xcausal.metrics import count_accuracy
from xcausal.models.pipeline import (
    STRUCTURE_LEARNERS,
    Pipeline,
    estimate_matrix,
    make_pipeline_factory,
    pipeline_names,
)
from xcausal.run import read_run, write_run


class PixelRep:
    """Fake representation: latent j is logit(pixel (0, j)) times a seed-dependent positive scale."""

    method_name = "pixel"

    def __init__(self, *, latent_dim: int | None = None, epochs: int | None = None, batch_size: int = 64,
                 lr: float = 1e-3, seed: int = 0, device: str = "auto", progress: bool = False,
                 jitter: float = 0.1) -> None:
        self.latent_dim, self.epochs, self.batch_size, self.lr = latent_dim, epochs, batch_size, lr
        self.seed, self.device, self.progress, self.jitter = seed, device, progress, jitter

    def fit(self, ds):
        m = self.latent_dim or 2
        g = torch.Generator().manual_seed(self.seed)
        self.scale_ = torch.exp(self.jitter * torch.randn(m, generator=g, dtype=torch.float64))
        self.n_latents_ = m
        self.history_ = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, float(self.scale_.sum())]})
        return self

    def transform(self, ds) -> np.ndarray:
        p = np.clip(ds.images()[:, 0, 0, : self.n_latents_].astype(np.float64), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)) * self.scale_.numpy()

    def save(self, path) -> None:
        path = Path(path)
        torch.save({"scale": self.scale_}, path)
        meta = {"format": 1, "method": self.method_name, "params": {"jitter": self.jitter, "seed": self.seed},
                "n_latents": self.n_latents_}
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path, *, device: str = "cpu") -> "PixelRep":
        path = Path(path)
        meta = json.loads(path.with_suffix(path.suffix + ".json").read_text())
        if meta["method"] != cls.method_name:
            raise ValueError(f"not a {cls.method_name} checkpoint")
        obj = cls(device=device, **meta["params"])
        obj.scale_ = torch.load(path, weights_only=True)["scale"]
        obj.n_latents_ = meta["n_latents"]
        obj.history_ = pd.DataFrame()
        return obj


REPS = {"pixel": PixelRep}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pixel_images(z: np.ndarray, size: int = 4) -> np.ndarray:
    """(N, 1, size, size) images whose pixel (0, j) is sigmoid(z_j); the rest 0.5."""
    img = np.full((len(z), 1, size, size), 0.5, dtype=np.float64)
    img[:, 0, 0, : z.shape[1]] = 1.0 / (1.0 + np.exp(-z))
    return img.astype(np.float32)


def tabular(n: int = 400, seed: int = 0):
    """a -> z1 (non-invertible, so orientable); b (binary), c (categorical) and z2 independent of everything."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    z1 = np.sin(2.0 * a) + 0.2 * rng.normal(size=n)
    z2 = rng.normal(size=n)
    b = rng.integers(0, 2, size=n)
    c = rng.choice(["x", "y", "w"], size=n)
    return dataset_from_arrays(pixel_images(np.c_[z1, z2]), pd.DataFrame({"a": a, "b": b, "c": c}))


def collider(n: int = 200, seed: int = 0):
    """a -> z1 <- c, nonlinear; z2 independent."""
    rng = np.random.default_rng(seed)
    a, c = rng.normal(size=n), rng.normal(size=n)
    z1 = np.tanh(a) + 0.5 * c ** 2 + 0.1 * rng.normal(size=n)
    z1 = (z1 - z1.mean()) / z1.std()
    return dataset_from_arrays(pixel_images(np.c_[z1, rng.normal(size=n)]), pd.DataFrame({"a": a, "c": c}))


FAST = dict(representation="pixel", latent_dim=2, device="cpu", representations=REPS)


# ------------------------------------------------------------------ names
def test_names_and_factory():
    assert set(STRUCTURE_LEARNERS) == {"notears", "ges"}
    assert pipeline_names(representations=REPS) == ["pixel+notears", "pixel+ges"]
    cfg = SimpleNamespace(latent_dim=3, epochs=5, batch_size=16, lr=0.01, w_threshold=0.2, allow_all_edges=True,
                          seed=7, device="cpu", quiet=True)
    model = make_pipeline_factory("pixel+ges", representations=REPS)(cfg)
    assert isinstance(model, Pipeline) and model.method_name == "pixel+ges"
    assert (model.latent_dim, model.epochs, model.batch_size, model.lr, model.w_threshold, model.allow_all_edges,
            model.seed) == (3, 5, 16, 0.01, 0.2, True, 7)
    for bad in ("pixel", "pixel+pc", "vae+notears", "pixel+notears+x", ""):
        with pytest.raises(ValueError, match=r"valid: pixel\+notears, pixel\+ges"):
            make_pipeline_factory(bad, representations=REPS)


def test_hyperparameters_keyword_only_stored_and_checked_in_fit():
    with pytest.raises(TypeError):
        Pipeline("pixel", "notears")  # type: ignore[misc]
    p = Pipeline(representation="nope", structure="notears", representations=REPS)
    assert p.representation == "nope" and p.method_name == "nope+notears"
    with pytest.raises(ValueError, match="'nope\\+notears'"):
        p.fit(tabular(n=20))
    with pytest.raises(ValueError, match="latent_dim=0"):
        Pipeline(**{**FAST, "latent_dim": 0}, structure="ges").fit(tabular(n=20))
    with pytest.raises(ValueError, match="not fitted"):
        Pipeline(**FAST, structure="ges").transform(tabular(n=20))


# ------------------------------------------------------------------ conformance
@pytest.mark.parametrize("structure", ["notears", "ges"])
def test_conformance(structure, tmp_path):
    ds = tabular(n=400)
    p1 = Pipeline(**FAST, structure=structure, seed=3)
    assert p1.fit(ds) is p1
    names = ["a", "b", "c", "z1", "z2"]
    assert list(p1.adjacency_.index) == names and list(p1.adjacency_.columns) == names
    a = p1.cpdag_.to_numpy()
    assert np.all(a[:3, :3] == 0) and np.all(a[3:, 3:] == 0)  # bipartite by default
    assert p1.graph_obj_.is_acyclic() and p1.graph_obj_.latent == ["z1", "z2"]
    assert p1.transform(ds).shape == (400, 2) and len(p1.history_) == 2

    p2 = Pipeline(**FAST, structure=structure, seed=3).fit(ds)
    pd.testing.assert_frame_equal(p1.adjacency_, p2.adjacency_)
    np.testing.assert_array_equal(p1.transform(ds), p2.transform(ds))
    p3 = Pipeline(**FAST, structure=structure, seed=4).fit(ds)
    assert not np.array_equal(p1.transform(ds), p3.transform(ds))

    ck = tmp_path / "model.pt"
    p1.save(ck)
    state = torch.load(ck, weights_only=True)
    assert set(state) == {"rep.scale"}
    meta = json.loads(ck.with_suffix(".pt.json").read_text())
    assert meta["method"] == f"pixel+{structure}" and meta["representation_checkpoint"]["method"] == "pixel"
    q = Pipeline.load(ck, representations=REPS)
    assert q.method_name == p1.method_name and q.get_params() == {**p1.get_params(), "device": "cpu"}
    pd.testing.assert_frame_equal(q.adjacency_, p1.adjacency_)
    pd.testing.assert_frame_equal(q.cpdag_, p1.cpdag_)
    assert q.graph_obj_.to_dict() == p1.graph_obj_.to_dict()
    np.testing.assert_array_equal(q.transform(ds), p1.transform(ds))


def test_load_rejects_other_methods(tmp_path):
    ds = tabular(n=30)
    ck = tmp_path / "model.pt"
    Pipeline(**FAST, structure="ges").fit(ds).save(ck)
    mp = ck.with_suffix(".pt.json")
    meta = json.loads(mp.read_text())
    mp.write_text(json.dumps({**meta, "method": "cmcl"}))
    with pytest.raises(ValueError, match="method 'cmcl', not a <representation>\\+<structure> pipeline"):
        Pipeline.load(ck, representations=REPS)
    mp.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="valid: "):
        Pipeline.load(ck, representations={"other": PixelRep})
    with pytest.raises(ValueError, match="not found"):
        Pipeline.load(tmp_path / "missing.pt", representations=REPS)


def test_run_directory_round_trip(tmp_path):
    ds = collider()
    p = Pipeline(**FAST, structure="ges").fit(ds)
    out = write_run(tmp_path / "run", p.run_result(ds, extra_config={"note": "x"}))
    rd = read_run(out)
    assert rd.graph.method == "pixel+ges" and rd.config["note"] == "x"
    assert rd.latents.shape == (len(ds), 2)
    q = Pipeline.load(out / "model.pt", representations=REPS)
    pd.testing.assert_frame_equal(q.cpdag_, p.cpdag_)


# ------------------------------------------------------------------ recovery
def test_notears_recovers_u_to_z_with_a_known_representation():
    ds = tabular(n=400)
    p = Pipeline(**FAST, structure="notears").fit(ds)
    adj = p.adjacency_
    assert adj.loc["a", "z1"] > 0.3, adj
    assert adj.loc["z1", "a"] == 0, adj
    assert p.graph_obj_.relation("a").value == "causal"
    # nothing else is related (5 other allowed pairs, both directions)
    assert (adj.to_numpy() != 0).sum() == 1, adj


def test_ges_recovers_the_collider_and_marks_undirected_edges():
    ds = collider(n=200)
    p = Pipeline(**FAST, structure="ges").fit(ds)
    est = p.cpdag_.to_numpy()
    truth = np.zeros((4, 4), dtype=int)
    truth[0, 2] = truth[1, 2] = 1  # a -> z1 <- c
    assert count_accuracy(truth, est) == {"fdr": 0.0, "tpr": 1.0, "fpr": 0.0, "shd": 0, "nnz": 2}
    assert est[0, 2] == est[1, 2] == 1  # oriented: a v-structure
    np.testing.assert_array_equal(estimate_matrix(p.graph_obj_), est)

    # one variable, one latent: Markov equivalent, so the CPDAG edge is undirected
    rng = np.random.default_rng(1)
    a = rng.normal(size=150)
    z = np.sin(2 * a) + 0.2 * rng.normal(size=150)
    ds2 = dataset_from_arrays(pixel_images(z[:, None]), pd.DataFrame({"a": a}))
    q = Pipeline(**{**FAST, "latent_dim": 1}, structure="ges").fit(ds2)
    np.testing.assert_array_equal(q.cpdag_.to_numpy(), [[0, -1], [-1, 0]])
    (edge,) = q.graph_obj_.edges
    assert edge.weight == -1.0 and nx.is_directed_acyclic_graph(q.graph_)
    np.testing.assert_array_equal(estimate_matrix(q.graph_obj_), [[0, -1], [-1, 0]])
    assert "undirected_edges" in q.graph_obj_.to_dict()


def test_allow_all_edges_lifts_the_bipartite_mask():
    ds = collider(n=120)
    p = Pipeline(**FAST, structure="ges", allow_all_edges=True).fit(ds)
    assert p.get_params()["allow_all_edges"] is True
    # a and c are independent: still no edge between them, and the v-structure stays
    est = p.cpdag_.to_numpy()
    assert est[0, 1] == est[1, 0] == 0 and est[0, 2] == est[1, 2] == 1


def test_a_fitted_representation_is_reused_not_refitted():
    ds = tabular(n=200)
    rep = PixelRep(latent_dim=2, seed=3).fit(ds)
    p = Pipeline(**FAST, structure="notears").fit(ds, fitted_representation=rep)
    assert p.rep_ is rep
    fresh = Pipeline(**FAST, structure="notears", seed=3).fit(ds)
    np.testing.assert_array_equal(p.transform(ds), fresh.transform(ds))
    with pytest.raises(ValueError, match="fitted PixelRep"):
        Pipeline(**FAST, structure="notears").fit(ds, fitted_representation=PixelRep())
