"""causalPIMA end to end on small circles data: fit, determinism, save/load, interventions, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xcausal.data.circles import simulate_circles
from xcausal.data.dataset import dataset_from_arrays
from xcausal.evaluate import evaluate_features
from xcausal.models.causal_pima import PIMA, CausalPIMA

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def circles():
    sim = simulate_circles(400, seed=0, image_size=16)
    ds = dataset_from_arrays(sim.images, sim.table, truth=sim.truth, latents=sim.latents, modalities=sim.modalities)
    return sim, ds


@pytest.fixture(scope="module")
def fitted(circles):
    _, ds = circles
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        return CausalPIMA(n_nodes=3, pretrain_epochs=15, epochs=15, seed=0, device="cpu", dag_restarts=3,
                          physics={"curve": "strain-hardening"}).fit(ds)


def test_fit_returns_self_with_learned_state_and_acyclic_graph(fitted, circles):
    _, ds = circles
    assert isinstance(fitted, CausalPIMA)
    assert fitted.graph_obj_.node_names == ["f1", "f2", "f3"]
    assert all(n.kind == "latent" for n in fitted.graph_obj_.nodes)
    assert fitted.graph_obj_.is_acyclic()
    p = fitted.transform(ds)
    assert p.shape == (400, 3) and np.all((p >= 0) & (p <= 1))
    r = fitted.responsibilities(ds)
    assert r.shape == (400, 8) and np.allclose(r.sum(1), 1.0)
    assert set(fitted.history_["phase"]) == {"pretrain", "joint"}
    assert len(fitted.history_) == 30


def test_small_fit_recovers_the_features(fitted, circles):
    """Even 30 epochs at 16 px separate the 8 joint outcomes of hue, radius and shift."""
    sim, ds = circles
    res = evaluate_features(fitted.graph_obj_, fitted.transform(ds), sim.truth, sim.latents)
    assert res["node_accuracy"] >= 0.9, res
    assert res["cluster_accuracy"] >= 0.85, res


def test_same_seed_same_result(circles, fitted):
    _, ds = circles
    again = CausalPIMA(n_nodes=3, pretrain_epochs=15, epochs=15, seed=0, device="cpu", dag_restarts=3,
                       physics={"curve": "strain-hardening"}).fit(ds)
    assert np.array_equal(again.transform(ds), fitted.transform(ds))
    assert again.graph_obj_.to_json() == fitted.graph_obj_.to_json()


def test_save_load_identity(fitted, circles, tmp_path):
    _, ds = circles
    fitted.save(tmp_path / "m.pt")
    back = CausalPIMA.load(tmp_path / "m.pt")
    assert np.array_equal(back.transform(ds), fitted.transform(ds))
    assert back.graph_obj_.to_json() == fitted.graph_obj_.to_json()
    a = fitted.counterfactual(ds, {"f1": 1}, rows=range(20), seed=3)
    b = back.counterfactual(ds, {"f1": 1}, rows=range(20), seed=3)
    assert np.array_equal(a["counterfactual"], b["counterfactual"])
    assert np.array_equal(a["curves"]["curve"]["counterfactual"], b["curves"]["curve"]["counterfactual"])
    with pytest.raises(ValueError, match="method 'causal-pima', not 'pima'"):
        PIMA.load(tmp_path / "m.pt")


def test_intervention_sets_the_node_and_keeps_non_descendants(fitted, circles):
    _, ds = circles
    g = fitted.graph_obj_.to_networkx()
    for j, name in enumerate(["f1", "f2", "f3"]):
        for v in (0, 1):
            cf = fitted.counterfactual(ds, {name: v}, rows=range(50), seed=0)
            assert (cf["outcomes_cf"][:, j] == v).all()
            import networkx as nx

            keep = [k for k in range(3) if k != j and f"f{k + 1}" not in nx.descendants(g, name)]
            assert np.array_equal(cf["outcomes_cf"][:, keep], cf["outcomes"][:, keep])
            assert cf["counterfactual"].shape == (50, 3, 16, 16)
            assert cf["curves"]["curve"]["counterfactual"].shape == (50, 64)
    null = fitted.counterfactual(ds, {}, rows=range(10))
    assert np.allclose(null["counterfactual"], null["reconstruction"], atol=1e-6)


def test_errors_are_clear(fitted, circles):
    _, ds = circles
    with pytest.raises(ValueError, match="unknown node 'f9'"):
        fitted.counterfactual(ds, {"f9": 1})
    with pytest.raises(ValueError, match="must be 0 or 1"):
        fitted.counterfactual(ds, {"f1": 2})
    with pytest.raises(ValueError, match="modality 'spectrum' not in the dataset"):
        CausalPIMA(modalities=["image", "spectrum"]).fit(ds)
    with pytest.raises(ValueError, match="physics decoder for 'curve': 'cubic'"):
        CausalPIMA(physics={"curve": "cubic"}).fit(ds)
    with pytest.raises(ValueError, match="not fitted"):
        CausalPIMA().transform(ds)


def test_single_modality_and_pima_variants_fit(circles):
    _, ds = circles
    img = CausalPIMA(n_nodes=3, modalities=["image"], pretrain_epochs=2, epochs=2, seed=1, device="cpu",
                     dag_restarts=1).fit(ds)
    assert img.curves_ == {} and img.use_image_
    assert "curves" in img.counterfactual(ds, {"f1": 0}, rows=[0]) and img.counterfactual(ds, {}, rows=[0])["curves"] == {}
    curve_only = CausalPIMA(n_nodes=2, modalities=["curve"], pretrain_epochs=2, epochs=2, seed=1, device="cpu").fit(ds)
    with pytest.raises(ValueError, match="without the image"):
        curve_only.intervene({"f1": 1}, ds)
    pima = PIMA(n_nodes=3, pretrain_epochs=2, epochs=2, seed=1, device="cpu").fit(ds)
    assert pima.net_.dag is None and pima.graph_obj_.edges == []
    lp = pima.net_.log_pi()
    assert abs(float(lp.exp().sum()) - 1) < 1e-5
