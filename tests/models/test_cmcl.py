"""CMCL: estimator contract, determinism, persistence, interventions (eq. 15/16), recovery."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from xcausal.data import dataset_from_arrays
from xcausal.models.cmcl import CMCL, anchor, default_epochs, default_latent_dim, losses, nets, orientation, refit
from xcausal.structure import bipartite_mask


def blob_images(z: np.ndarray, size: int = 16) -> np.ndarray:
    """Injective image of a scalar latent: a Gaussian blob whose horizontal position follows z."""
    xs = np.arange(size)
    centre = (size - 1) / 2 + np.tanh(z / 2.0) * (size / 2 - 3)
    row = np.exp(-0.5 * ((xs[None, :] - centre[:, None]) / 1.5) ** 2)
    col = np.exp(-0.5 * ((xs - (size - 1) / 2) / 3.0) ** 2)
    return (row[:, None, :] * col[None, :, None])[:, None].astype(np.float32)


def tiny(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    table = pd.DataFrame({"a": np.tanh(z) + 0.3 * rng.normal(size=n), "b": rng.integers(0, 2, n),
                          "c": rng.choice(["x", "y", "q"], n)})
    return dataset_from_arrays(blob_images(z, 8), table)


FAST = dict(latent_dim=2, epochs=2, batch_size=16, device="cpu")


def test_defaults_scale_with_data():
    assert default_latent_dim(1) == 5 and default_latent_dim(100) == 32
    assert default_epochs(100) == 300 and default_epochs(2000) == 94 and default_epochs(10 ** 6) == 30
    # up to 64 px the step budget is the same; above it shrinks with the pixels a step costs
    assert default_epochs(1000, 32) == default_epochs(1000, 64) == 188
    assert default_epochs(1000, 128) == 47 and default_epochs(1000, 256) == 30


def test_fit_returns_self_and_learned_state():
    ds = tiny()
    model = CMCL(**FAST)
    assert model.fit(ds) is model
    names = ["a", "b", "c", "z1", "z2"]
    assert list(model.adjacency_.index) == names and list(model.adjacency_.columns) == names
    a = model.adjacency_.to_numpy()
    assert np.all(a[:3, :3] == 0) and np.all(a[3:, 3:] == 0)  # bipartite by default (Assumption 2)
    assert model.transform(ds).shape == (40, 2)
    assert len(model.history_) == 2 and {"rec", "rec0", "dag_nll", "h"} <= set(model.history_.columns)


def test_hyperparameters_are_keyword_only_and_stored_as_given():
    with pytest.raises(TypeError):
        CMCL(3)  # type: ignore[misc]
    m = CMCL(latent_dim=None, epochs=None)
    assert m.latent_dim is None and m.epochs is None
    with pytest.raises(ValueError, match="h_func='x'"):
        CMCL(h_func="x").fit(tiny())  # type: ignore[arg-type]


def test_same_seed_same_result():
    ds = tiny()
    g1 = CMCL(**FAST, seed=3).fit(ds)
    g2 = CMCL(**FAST, seed=3).fit(ds)
    assert json.dumps(g1.graph_obj_.to_dict()) == json.dumps(g2.graph_obj_.to_dict())
    np.testing.assert_array_equal(g1.w_raw_, g2.w_raw_)
    np.testing.assert_array_equal(g1.transform(ds), g2.transform(ds))
    g3 = CMCL(**FAST, seed=4).fit(ds)
    assert not np.array_equal(g1.w_raw_, g3.w_raw_)


def test_no_global_rng_side_effect():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    CMCL(**FAST).fit(tiny())
    np.testing.assert_array_equal(before.numpy(), torch.rand(3).numpy())


def test_save_load_identical(tmp_path):
    ds = tiny()
    model = CMCL(**FAST).fit(ds)
    model.save(tmp_path / "new" / "m.pt")  # a missing parent directory is created
    back = CMCL.load(tmp_path / "new" / "m.pt")
    np.testing.assert_array_equal(model.transform(ds), back.transform(ds))
    pd.testing.assert_frame_equal(model.adjacency_, back.adjacency_)
    a = model.counterfactual(ds, {"a": 1.0}, rows=[0, 1])["counterfactual"]
    b = back.counterfactual(ds, {"a": 1.0}, rows=[0, 1])["counterfactual"]
    np.testing.assert_array_equal(a, b)
    # tensors only: loadable without unpickling arbitrary objects
    state = torch.load(tmp_path / "new" / "m.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_load_rejects_other_method(tmp_path):
    model = CMCL(**FAST).fit(tiny())
    model.save(tmp_path / "m.pt")
    meta = json.loads((tmp_path / "m.pt.json").read_text())
    meta["method"] = "causal-pima"
    (tmp_path / "m.pt.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="method 'causal-pima'"):
        CMCL.load(tmp_path / "m.pt")


def test_interventions_follow_eq_15_and_16():
    ds = tiny(60)
    model = CMCL(**FAST).fit(ds)
    w = np.zeros((5, 5))
    w[0, 3] = 1.0  # a -> z1 (causal)
    w[4, 1] = 1.0  # z2 -> b (anti-causal)
    _set_w(model, w)
    assert model.graph_obj_.relation("a").value == "causal"
    assert model.graph_obj_.relation("b").value == "anti-causal"
    assert model.graph_obj_.relation("c").value == "none"
    res_b = model.counterfactual(ds, {"b": 1}, rows=range(10))
    np.testing.assert_array_equal(res_b["counterfactual"], res_b["reconstruction"])  # eq. 16
    res_c = model.counterfactual(ds, {"c": "q"}, rows=range(10))
    np.testing.assert_array_equal(res_c["counterfactual"], res_c["reconstruction"])
    res_a = model.counterfactual(ds, {"a": 3.0}, rows=range(10))  # eq. 15: the image changes
    assert np.abs(res_a["counterfactual"] - res_a["reconstruction"]).max() > 1e-4
    with pytest.raises(ValueError, match="value 'nope' is not one of"):
        model.counterfactual(ds, {"c": "nope"})
    with pytest.raises(ValueError, match="unknown variable 'zz'"):
        model.intervene({"zz": 1}, ds)


def _set_w(model: CMCL, w: np.ndarray) -> None:
    """Make the learned DAG's adjacency equal the support of ``w`` by editing its first layer
    (fc1_weight has shape (in_width, d, hidden); rows of node i are where ``_src == i``)."""
    dag = model.net_.dag
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        signs = (torch.randint(0, 2, dag.fc1_weight.shape, generator=gen) * 2 - 1).to(dag.fc1_weight.dtype)
        # undo any orientation the (short) fit fixed: back to the bipartite mask
        dag.allowed.copy_(bipartite_mask(["observed"] * 3 + ["latent"] * (dag.d - 3)))
        dag.set_input_mask(dag.allowed[dag._src][:, :, None])
        dag.fc1_weight.zero_()
        for i, j in zip(*np.nonzero(w)):
            rows = dag._src == int(i)
            dag.fc1_weight[rows, int(j), :] = signs[rows, int(j), :]
    model._finalise()
    got = (model.adjacency_.to_numpy() != 0).astype(float)
    np.testing.assert_array_equal(got, (w != 0).astype(float))


def test_cm_off_uses_embedding_directly():
    ds = tiny()
    model = CMCL(**FAST, use_cm=False, use_cr=False).fit(ds)
    assert not hasattr(model.net_, "post") and model.transform(ds).shape == (40, 2)


def test_wrong_dataset_rejected():
    model = CMCL(**FAST).fit(tiny())
    other = dataset_from_arrays(np.zeros((12, 1, 8, 8), np.float32), pd.DataFrame({"q": np.arange(12.0)}))
    with pytest.raises(ValueError, match="differ from the fitted ones"):
        model.transform(other)


EPOCHS = 40


def _one_edge(direction: str, n: int = 1000, seed: int = 0):
    """u -> z or z -> u with a nonlinear additive-noise function; the image shows z."""
    rng = np.random.default_rng(seed)
    if direction == "u->z":
        u = rng.normal(size=n)
        z = 2.0 * np.tanh(1.5 * u) + 0.4 * rng.normal(size=n)
    else:
        z = rng.normal(size=n)
        u = 2.0 * np.tanh(1.5 * z) + 0.4 * rng.normal(size=n)
    return dataset_from_arrays(blob_images(z, 16), pd.DataFrame({"u": u}))


@pytest.mark.parametrize("direction, expected", [("u->z", "causal"), ("z->u", "anti-causal")])
def test_recovers_one_edge_in_both_directions(direction, expected):
    ds = _one_edge(direction)
    model = CMCL(latent_dim=1, epochs=EPOCHS, batch_size=64, device="cpu", seed=0).fit(ds)
    assert model.graph_obj_.relation("u").value == expected, model.w_raw_
    assert len(model.graph_obj_.edges) == 1


def test_anchor_recovers_independent_image_sources():
    """init='ica': the anchor's sources are unit-variance and match two independent latents that
    each brighten their own half of the image (a rotation-free target for the posterior)."""
    rng = np.random.default_rng(0)
    n = 400
    s = np.column_stack([rng.uniform(-1, 1, n), rng.laplace(size=n) / 2])
    img = np.zeros((n, 1, 8, 8), np.float32)
    img[:, 0, :, :4] = 0.5 + 0.2 * np.tanh(s[:, :1, None])
    img[:, 0, :, 4:] = 0.5 + 0.2 * np.tanh(s[:, 1:, None])
    img += 0.01 * rng.normal(size=img.shape).astype(np.float32)
    ds = dataset_from_arrays(np.clip(img, 0, 1), pd.DataFrame({"a": rng.normal(size=n)}))
    model = CMCL(latent_dim=2, epochs=1, device="cpu", init="ica")
    model.fit(ds)  # builds net_ and the encoding; the anchor is recomputed below from the same data
    mean, unmix = anchor.build_anchor(model, ds, torch.device("cpu"))
    src = ((anchor.anchor_pixels(torch.from_numpy(ds.images())) - mean) @ unmix).numpy()
    np.testing.assert_allclose(src.std(0), 1.0, atol=1e-3)
    corr = np.abs(np.corrcoef(np.column_stack([np.tanh(s), src]).T)[:2, 2:])  # what the pixels carry
    assert sorted(corr.max(1)) == pytest.approx([1.0, 1.0], abs=0.02), corr


def test_varimax_anchor_separates_gaussian_sources_that_ica_cannot():
    """init='varimax': three Gaussian latents, each brightening its own third of the image. FastICA
    cannot unmix Gaussian sources (any rotation of them is as independent); the varimax rotation
    of factor analysis picks the one with sparse pixel loadings, which is the true one here."""
    rng = np.random.default_rng(0)
    n = 600
    s = rng.normal(size=(n, 3))
    img = np.zeros((n, 1, 9, 9), np.float32)
    for k in range(3):
        img[:, 0, :, 3 * k:3 * k + 3] = 0.5 + 0.15 * s[:, k:k + 1, None]
    img += 0.01 * rng.normal(size=img.shape).astype(np.float32)
    ds = dataset_from_arrays(np.clip(img, 0, 1), pd.DataFrame({"a": rng.normal(size=n)}))
    best = {}
    for init in ("varimax", "ica"):
        model = CMCL(latent_dim=3, epochs=1, device="cpu", init=init).fit(ds)
        mean, unmix = anchor.build_anchor(model, ds, torch.device("cpu"))
        src = ((anchor.anchor_pixels(torch.from_numpy(ds.images())) - mean) @ unmix).numpy()
        np.testing.assert_allclose(src.std(0), 1.0, atol=1e-3)
        corr = np.abs(np.corrcoef(np.column_stack([s, src]).T)[:3, 3:])
        best[init] = corr.max(1)
    assert best["varimax"].min() > 0.98, best
    assert best["ica"].min() < 0.95, best  # the case this init exists for


def test_auto_anchor_picks_varimax_for_linear_images_and_ica_otherwise(tmp_path):
    """init='auto': varimax (weight 100) when m linear components explain >= AUTO_LINEAR_R2 of the
    pixel variance, FastICA (weight 10) for images that are a nonlinear function of the latents
    (a bright bar whose position moves); an explicit init_weight wins."""
    from xcausal.models.cmcl import AUTO_LINEAR_R2

    rng = np.random.default_rng(0)
    n = 400
    s = rng.normal(size=(n, 2))
    lin = np.zeros((n, 1, 8, 8), np.float32)
    lin[:, 0, :, :4] = 0.5 + 0.15 * s[:, :1, None]
    lin[:, 0, :, 4:] = 0.5 + 0.15 * s[:, 1:, None]
    pos = rng.integers(0, 8, size=n)
    moving = np.zeros((n, 1, 8, 8), np.float32)
    moving[np.arange(n), 0, :, pos] = 1.0  # one lit column: far from any 2-factor linear mixture
    table = pd.DataFrame({"a": rng.normal(size=n)})
    picked = {}
    for name, img in (("linear", lin), ("moving", moving)):
        model = CMCL(latent_dim=2, epochs=5, device="cpu").fit(dataset_from_arrays(np.clip(img, 0, 1), table))
        picked[name] = model.anchor_
    assert picked["linear"]["method"] == "varimax" and picked["linear"]["weight"] == 100.0
    assert picked["linear"]["linear_r2"] >= AUTO_LINEAR_R2
    assert picked["moving"]["method"] == "ica" and picked["moving"]["weight"] == 10.0
    assert picked["moving"]["linear_r2"] < AUTO_LINEAR_R2
    model = CMCL(latent_dim=2, epochs=5, device="cpu", init_weight=3.0).fit(dataset_from_arrays(lin, table))
    assert model.anchor_["weight"] == 3.0
    model.save(tmp_path / "m.pt")
    assert CMCL.load(tmp_path / "m.pt").anchor_ == model.anchor_
    model.init = "none"
    model.fit(dataset_from_arrays(lin, table))
    assert model.anchor_ is None  # no stale anchor from the previous fit
    model.init, model.epochs = "auto", 1
    model.fit(dataset_from_arrays(lin, table))
    assert model.anchor_ is None  # a warm-up of 0 epochs builds none
    for bad in (-1.0, float("nan"), "x", True):
        with pytest.raises(ValueError, match="init_weight="):
            CMCL(init_weight=bad).fit(dataset_from_arrays(lin, table))


def test_init_and_refit_options_validated_and_switchable():
    with pytest.raises(ValueError, match="init='pca'.*'auto'.*'varimax'"):
        CMCL(init="pca").fit(tiny())  # type: ignore[arg-type]
    ds = tiny()
    opts = {**FAST, "epochs": 5}  # a DAG warm-up of one epoch, where the anchor acts
    a = CMCL(**opts, init="none", dag_refit=False).fit(ds)
    b = CMCL(**opts).fit(ds)
    assert "anchor" not in a.history_.columns and "anchor" in b.history_.columns
    assert "dag_refit" in b.time_share_ and "dag_refit" not in a.time_share_


def test_refit_orientation_mask_follows_the_anm_direction():
    """orient='anm' restricts each continuous u–z pair of the refit to one direction, the ANM one
    (a -> z1 and z2 -> a' here, both nonlinear), and leaves binary / categorical pairs open."""
    rng = np.random.default_rng(0)
    n = 1000
    ds = tiny()  # variables a (continuous), b (binary), c (categorical)
    model = CMCL(**FAST).fit(ds)
    a, z2 = rng.normal(size=n), rng.normal(size=n)
    z1 = np.sin(2 * a) + 0.2 * rng.normal(size=n)
    V = np.column_stack([a, rng.integers(0, 2, n), rng.integers(0, 3, n), z1, z2])
    mask = orientation.orientation_mask(model, V, bipartite_mask(["observed"] * 3 + ["latent"] * 2))
    assert bool(mask[0, 3]) and not bool(mask[3, 0])  # a -> z1 only
    assert bool(mask[0, 4]) != bool(mask[4, 0])  # an unrelated pair keeps one direction (L1 removes it)
    assert mask[1, 3] and mask[3, 1] and mask[2, 4] and mask[4, 2]  # binary / categorical: both ways
    assert not mask[:3, :3].any() and not mask[3:, 3:].any()  # still bipartite
    V_rev = V.copy()
    V_rev[:, 0] = np.sin(2 * z2) + 0.2 * rng.normal(size=n)  # now z2 -> a
    mask = orientation.orientation_mask(model, V_rev, bipartite_mask(["observed"] * 3 + ["latent"] * 2))
    assert bool(mask[4, 0]) and not bool(mask[0, 4])


@pytest.mark.parametrize("init", ["ica", "varimax"])
def test_anchor_ignores_constant_pixels(init):
    """A constant border (MNIST's) made FastICA's whitening return NaN; those pixels are left out
    and get no weight, and the sources stay unit-variance."""
    rng = np.random.default_rng(1)
    n = 300
    img = np.zeros((n, 1, 8, 8), np.float32)
    img[:, 0, 2:6, 2:6] = rng.uniform(0.2, 0.8, size=(n, 4, 4)).astype(np.float32)  # border stays 0
    ds = dataset_from_arrays(img, pd.DataFrame({"a": rng.normal(size=n)}))
    model = CMCL(latent_dim=3, epochs=1, device="cpu", init=init).fit(ds)
    mean, unmix = anchor.build_anchor(model, ds, torch.device("cpu"))
    assert torch.isfinite(unmix).all() and torch.isfinite(mean).all()
    border = np.ones((8, 8), bool)
    border[2:6, 2:6] = False
    assert float(unmix.numpy()[border.ravel()].__abs__().max()) == 0.0
    src = ((anchor.anchor_pixels(torch.from_numpy(ds.images())) - mean) @ unmix).numpy()
    np.testing.assert_allclose(src.std(0), 1.0, atol=1e-3)


def test_fit_starts_both_decoders_at_the_mean_image_intensity(monkeypatch):
    """fit initialises the output bias of dec0 and dec from the training images (per channel)."""
    from xcausal.nn import ConvDecoder

    rng = np.random.default_rng(0)
    img = np.zeros((64, 3, 8, 8), np.float32)
    img[:, 0] = 0.1
    img[:, 1, 2:4, 2:4] = rng.uniform(0.5, 1.0, size=(64, 2, 2))
    img[:, 2] = 0.8
    ds = dataset_from_arrays(img, pd.DataFrame({"a": rng.normal(size=64)}))
    seen = []
    original = ConvDecoder.init_output_bias

    def spy(self, channel_mean):
        seen.append(torch.as_tensor(channel_mean).clone())
        original(self, channel_mean)

    monkeypatch.setattr(ConvDecoder, "init_output_bias", spy)
    CMCL(latent_dim=1, epochs=1, device="cpu").fit(ds)
    assert len(seen) == 2
    for mean in seen:
        np.testing.assert_allclose(mean.numpy(), img.mean(axis=(0, 2, 3)), rtol=1e-5)


def test_anm_strata_are_the_discrete_variables_associated_with_the_latent():
    """_discrete_strata: the levels of a categorical variable that shifts the latent, none for an
    unrelated one (the ANM orientation of a u-z pair is then scored within them)."""
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame({"a": rng.normal(size=n), "c": rng.choice(["p", "q", "r"], n),
                          "b": rng.integers(0, 2, n)})
    ds = dataset_from_arrays(rng.uniform(size=(n, 1, 8, 8)).astype(np.float32), table)
    model = CMCL(latent_dim=1, epochs=1, device="cpu").fit(ds)
    c = ds.u[:, 1]
    zj = 3.0 * c + 0.1 * rng.normal(size=n)  # shifted by c only
    strata = orientation.discrete_strata(model.encoding_.variables, ds.u, zj)
    assert strata is not None and len(np.unique(strata)) == 3
    np.testing.assert_array_equal(np.unique(strata[c == c[0]]), [strata[0]])  # one stratum per level of c
    assert orientation.discrete_strata(model.encoding_.variables, ds.u, rng.normal(size=n)) is None


def test_jointly_trained_dag_keeps_its_edge_when_the_gradient_is_clipped():
    """The L1 proximal step is scaled by the step's gradient-clipping factor. With a sharp pixel
    likelihood the reconstruction gradient is far above the clipping norm on every step; an
    unscaled prox then compared the (clipped) DAG gradient with the full lambda1 and emptied the
    jointly trained DAG. Without the refit, the edge must come from joint training itself."""
    ds = _one_edge("u->z")
    model = CMCL(latent_dim=1, epochs=EPOCHS, device="cpu", seed=0, pixel_sigma=0.02, dag_refit=False).fit(ds)
    assert model.w_raw_[0, 1] > model.w_threshold, model.w_raw_


def test_cr_on_drawn_variables_has_the_expectation_of_the_full_loss():
    """cr_vars=k intervenes, each step, on k variables drawn from Ω+ ∪ Ω- when there are more:
    averaged over the draws it is the paper's loss over every variable (a -> z1, c -> z1 in Ω+;
    z2 -> b in Ω-); with k >= |Ω+ ∪ Ω-| it is that loss exactly."""

    ds = tiny(60)
    model = CMCL(**FAST).fit(ds)
    w = np.zeros((5, 5))
    w[0, 3] = w[2, 3] = 1.0
    w[4, 1] = 1.0
    _set_w(model, w)
    net, k = model.net_, 16
    x, u = model._tensors(ds, np.arange(k))
    with torch.no_grad():
        for p in net.cls.parameters():  # a classifier whose loss differs between the variables
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        e = net.encode(x, model.encoding_.net_columns(u), sample=False)
        wt = net.dag.adjacency()

        def draws(mode, reps: int) -> np.ndarray:
            model.cr_vars = mode
            gen = torch.Generator().manual_seed(0)
            return np.array([float(losses.cr_loss(model, u, e, wt, losses.CRBatch(u=u[:k], rank=0, world=1, gen=gen)))
                             for _ in range(reps)])

        full = draws("all", 200)
        np.testing.assert_array_equal(draws(3, 200), full)  # three variables: all of them, same draws
        for n_vars in (1, 2):
            sampled = draws(n_vars, 600)
            se = np.sqrt(full.var() / len(full) + sampled.var() / len(sampled))
            assert sampled.std() > full.std() > 0  # fewer variables per step: a noisier estimate
            assert abs(sampled.mean() - full.mean()) < 4 * se, (n_vars, sampled.mean(), full.mean(), se)


def test_cr_vars_is_validated():
    for bad in ("some", 0, True, 2.0, np.int64(3)):
        with pytest.raises(ValueError, match="must be 'all' or an integer >= 1"):
            CMCL(cr_vars=bad).fit(tiny())  # type: ignore[arg-type]


@pytest.mark.parametrize("decontaminate, expected", [(False, "u -> z"), (True, "z -> u")])
def test_orientation_scores_the_decontaminated_latent(decontaminate, expected):
    """z1 -> a strongly, and the learned z1 carries 20% of z2: scored raw the errors in the cause
    orient a -> z1; with ``anm_decontaminate`` the pair is scored on z1 cleaned of z2."""
    model = CMCL(**FAST, anm_decontaminate=decontaminate).fit(tiny())
    rng = np.random.default_rng(0)
    n = 2000
    z, other = rng.normal(size=n), rng.normal(size=n)
    a = 10 * np.tanh(z) + rng.normal(size=n)
    V = np.column_stack([a, rng.integers(0, 2, n), rng.integers(0, 3, n), z + 0.2 * other, other])
    allowed = torch.zeros(5, 5, dtype=torch.bool)
    allowed[0, 3] = allowed[3, 0] = True
    mask = orientation.orientation_mask(model, V, allowed)
    assert (bool(mask[0, 3]), bool(mask[3, 0])) == ((True, False) if expected == "u -> z" else (False, True))


@pytest.mark.parametrize("scale, entropy, expected", [("raw", "vasicek", "z -> u"), ("normal", "vasicek", "u -> z"),
                                                      ("normal", "auto", "u -> z")])
def test_orientation_scores_the_latent_on_its_normal_scores(scale, entropy, expected):
    """a -> z1, and the learned z1 is exp(1.5 z1) (standardised): scored raw with Vasicek's entropies
    the warp of the effect orients z1 -> a; with ``anm_latent_scale="normal"`` the pair is scored on
    z1's normal scores, and oriented right with either entropy estimator."""
    model = CMCL(**FAST, anm_latent_scale=scale, anm_entropy=entropy).fit(tiny())
    rng = np.random.default_rng(0)
    n = 2000
    a = rng.normal(size=n)
    z = np.tanh(a) + 0.5 * rng.normal(size=n)
    V = np.column_stack([a, rng.integers(0, 2, n), rng.integers(0, 3, n), np.exp(1.5 * (z - z.mean()) / z.std()),
                         rng.normal(size=n)])
    allowed = torch.zeros(5, 5, dtype=torch.bool)
    allowed[0, 3] = allowed[3, 0] = True
    mask = orientation.orientation_mask(model, V, allowed)
    assert (bool(mask[0, 3]), bool(mask[3, 0])) == ((True, False) if expected == "u -> z" else (False, True))


def test_anm_latent_scale_is_validated_and_applied_after_the_decontamination():
    from xcausal.structure.anm import decontaminate, normal_scores

    with pytest.raises(ValueError, match="anm_latent_scale='rank': must be 'auto', 'normal' or 'raw'"):
        CMCL(**FAST, anm_latent_scale="rank").fit(tiny())  # type: ignore[arg-type]
    u, Z, _ = _contaminated_latents()
    for decon in (False, True):
        base = decontaminate(u, Z, 0) if decon else Z[:, 0]
        assert not np.array_equal(base, Z[:, 0]) or not decon  # the cleaning did something
        for scale, want in (("raw", base), ("normal", normal_scores(base))):
            got = orientation.pair_latent(CMCL(anm_decontaminate=decon, anm_latent_scale=scale), u, Z, 0, None, {}, 0)
            assert np.array_equal(got, want), (decon, scale)
    # a pose decoder turns and shifts the image linearly in z1-z3: those stay raw, the content latents not
    Z7 = np.column_stack([Z, np.exp(Z[:, 1:])])
    pose = CMCL(decoder="pose", anm_decontaminate=False)
    for j in range(Z7.shape[1]):
        want = Z7[:, j] if j < 3 else normal_scores(Z7[:, j])
        assert np.array_equal(orientation.pair_latent(pose, u, Z7, j, None, {}, 0), want), j
    # "auto" (the default): normal scores under the "pnl" score only
    for method, want in (("pnl", normal_scores(Z[:, 0])), ("entropy", Z[:, 0]), ("hsic", Z[:, 0])):
        got = orientation.pair_latent(CMCL(anm_decontaminate=False, anm_method=method), u, Z, 0, None, {}, 0)
        assert np.array_equal(got, want), method


def test_anm_entropy_is_validated_and_reaches_the_pairwise_score(monkeypatch):
    import xcausal.structure.anm as anm_mod

    with pytest.raises(ValueError, match="anm_entropy='knn': must be 'auto', 'gmm' or 'vasicek'"):
        CMCL(**FAST, anm_entropy="knn").fit(tiny())  # type: ignore[arg-type]
    seen = []
    real = anm_mod.anm_direction

    def spy(*args, **kwargs):
        seen.append(kwargs["entropy"])
        return real(*args, **kwargs)

    monkeypatch.setattr(anm_mod, "anm_direction", spy)
    rng = np.random.default_rng(0)
    a = rng.normal(size=300)
    V = np.column_stack([a, rng.integers(0, 2, 300), rng.integers(0, 3, 300), np.tanh(a) + rng.normal(size=300),
                         rng.normal(size=300)])
    model = CMCL(**FAST).fit(tiny())
    for value in ("auto", "gmm", "vasicek"):
        model.anm_entropy = value
        seen.clear()
        orientation.orientation_mask(model, V, None)
        assert seen and set(seen) == {value}, (value, seen)


def _contaminated_latents(n: int = 2000):
    rng = np.random.default_rng(3)
    z, others = rng.normal(size=n), rng.normal(size=(n, 3))
    u = 10 * np.tanh(z) + rng.normal(size=n)
    return u, np.column_stack([np.exp(z + others @ np.array([0.1, -0.1, 0.1])), others]), z


def test_effect_ratio_is_the_variance_a_variable_accounts_for_over_the_posterior_variance():
    """On known columns: a -> z1 with Var(1.5 tanh(a)) ≈ 0.88 and a -> z2 with an effect a hundred
    times weaker. With posterior variance 0.05 the ratios are about 17.6 and 0.18: within 15%."""
    from xcausal.structure import fit_notears
    from xcausal.types import VarType

    model = CMCL(**FAST).fit(tiny())  # the variables a (continuous), b (binary), c (categorical)
    rng = np.random.default_rng(1)
    n = 2000
    a = rng.normal(size=n)
    g1, g2 = 1.5 * np.tanh(a), 0.15 * np.tanh(a)
    V = torch.as_tensor(np.column_stack([a, rng.integers(0, 2, n), rng.integers(0, 3, n),
                                         g1 + 0.1 * rng.normal(size=n), g2 + 0.1 * rng.normal(size=n)]))
    allowed = torch.zeros(5, 5, dtype=torch.bool)
    allowed[0, 3] = allowed[0, 4] = True
    res = fit_notears(V, [VarType.CONTINUOUS, VarType.BINARY, VarType.CATEGORICAL, VarType.CONTINUOUS,
                          VarType.CONTINUOUS], n_categories=[1, 1, 3, 1, 1], allowed=allowed, lambda1=0.0,
                      w_threshold=0.0, seed=0, device="cpu")
    model.w_threshold = 0.0
    ratios = refit.effect_ratios(model, res.model, V, torch.tensor([0.05, 0.05], dtype=torch.float64))
    assert set(ratios) == {(0, 3), (0, 4)}
    assert ratios[(0, 3)] == pytest.approx(g1.var() / 0.05, rel=0.15)
    assert ratios[(0, 4)] == pytest.approx(g2.var() / 0.05, rel=0.15)


def test_min_effect_leaves_out_edges_below_the_latents_resolution():
    """The u -> z edge of the one-edge problem accounts for far more than the latent's posterior
    variance (kept at the default); with min_effect above its ratio it is masked out, the DAG
    refitted without it, and the edge listed in pruned_edges_ with its ratio."""
    ds = _one_edge("u->z")
    model = CMCL(latent_dim=1, epochs=EPOCHS, batch_size=64, device="cpu", seed=0).fit(ds)
    assert [(e.source, e.target) for e in model.graph_obj_.edges] == [("u", "z1")]
    assert model.pruned_edges_ == []
    ratio = model.effect_ratios_[(0, 1)]
    assert ratio > 10 * model.min_effect
    model.min_effect = 2 * ratio
    refit.refit_dag(model, ds)
    model._finalise()
    assert model.graph_obj_.edges == [] and model.effect_ratios_ == {}
    assert [e[:2] for e in model.pruned_edges_] == [("u", "z1")] and model.pruned_edges_[0][2] == pytest.approx(ratio)
    assert float(model.net_.dag.adjacency().detach()[0, 1]) == 0.0  # the DAG used for interventions lost it too


def test_pose_decoder_and_min_effect_are_validated():
    for kwargs, message in [(dict(decoder="affine"), "decoder='affine': must be 'conv' or 'pose'"),
                            (dict(decoder="pose", use_cm=False), "needs the causal module"),
                            (dict(decoder="pose", init="ica"), "a linear anchor on the pixels"),
                            (dict(decoder="pose", latent_dim=3), "latent_dim=3: decoder='pose' needs more than 3"),
                            (dict(min_effect=-1.0), "min_effect=-1.0: must be a finite number >= 0"),
                            (dict(min_effect=float("nan")), "min_effect=nan"),
                            (dict(min_effect=True), "min_effect=True")]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            CMCL(**{**FAST, **kwargs}).fit(tiny())


def test_pose_decoder_fits_saves_and_loads(tmp_path):
    """decoder='pose': the causal decoder is a PoseDecoder, init='auto' builds no anchor, and a
    saved model loads with identical outputs."""
    from xcausal.nn import PoseDecoder

    ds = tiny()
    model = CMCL(**{**FAST, "latent_dim": 4, "epochs": 5}, decoder="pose").fit(ds)
    assert isinstance(model.net_.dec, PoseDecoder) and model.anchor_ is None
    assert "anchor" not in model.history_.columns
    model.save(tmp_path / "m.pt")
    loaded = CMCL.load(tmp_path / "m.pt")
    assert loaded.decoder == "pose" and isinstance(loaded.net_.dec, PoseDecoder)
    assert loaded.effect_ratios_ == pytest.approx(model.effect_ratios_) and loaded.pruned_edges_ == model.pruned_edges_
    np.testing.assert_array_equal(loaded.transform(ds), model.transform(ds))
    np.testing.assert_array_equal(loaded.intervene({"a": 1.0}, ds, rows=[0, 1]),
                                  model.intervene({"a": 1.0}, ds, rows=[0, 1]))


def test_effect_spread_counts_the_latents_a_variable_moves():
    from xcausal.models.cmcl import effect_spread

    assert effect_spread({}) == 0.0
    assert effect_spread({(0, 3): 5.0}) == pytest.approx(1.0)
    assert effect_spread({(0, 3): 5.0, (0, 4): 5.0, (1, 2): 7.0}) == pytest.approx(3.0)
    # a second latent with a tiny share of the effect counts for little (the pose-frame tie-break)
    assert 1.0 < effect_spread({(0, 3): 2.5, (0, 4): 12000.0}) < 1.001 < effect_spread({(0, 3): 1000.0, (0, 4): 11000.0})


def test_pose_frame_choice_fewer_edges_then_less_spread_then_object(monkeypatch):
    """The final refit keeps the axes whose DAG leaves fewer unexplained dependences, then the one
    with fewer edges; on a tie the one whose effects spread over fewer latents; on an exact tie the
    object's. The decoder's flag matches the kept DAG, and a failing refit leaves the flag as
    trained (object's axes)."""
    import torch

    ds = tiny()
    model = CMCL(**{**FAST, "latent_dim": 4, "epochs": 2}, decoder="pose").fit(ds)

    class Solved:  # what the choice reads of a solved DAG: its adjacency
        def __init__(self, n_edges: int) -> None:
            self.adj = torch.zeros(6, 6)
            self.adj.view(-1)[:n_edges] = 1.0

        def adjacency(self) -> torch.Tensor:
            return self.adj

    def solution(n_edges: int, ratios: dict, unexplained: int = 0) -> refit.RefitSolution:
        return refit.RefitSolution(model=Solved(n_edges), effect_ratios=ratios, pruned=[], seconds=0.0, n_outer=1,
                                   unexplained_dependences=[("a", "b", 1e-9)] * unexplained)

    cases = [((1, {}, 1), (3, {}), "image"),  # fewer unexplained dependences, before fewer edges
             ((3, {}), (1, {}, 1), "object"),
             ((3, {}), (2, {}), "image"),  # fewer edges
             ((2, {(0, 3): 1.0, (0, 4): 1.0}), (2, {(0, 4): 1.0}), "image"),  # tie: less spread
             ((2, {(0, 4): 1.0}), (2, {(0, 3): 1.0, (0, 4): 1.0}), "object"),
             ((2, {(0, 4): 1.0}), (2, {(0, 3): 3.0}), "object")]  # exact tie
    for obj, img, expect in cases:
        sols = {"object": solution(*obj), "image": solution(*img)}
        assert refit.choose_pose_frame(sols, model.w_threshold) == expect
        monkeypatch.setattr(refit, "refit_solution",
                            lambda _m, _ds, label="": sols["image" if bool(model.net_.dec.image_frame) else "object"])
        kept = []
        monkeypatch.setattr(refit, "keep_refit", lambda _m, sol, extra_seconds=0.0: kept.append(sol))
        refit.refit_dag(model, ds)
        assert bool(model.net_.dec.image_frame) == (expect == "image") and kept == [sols[expect]]

    def boom(_m, _ds, label=""):
        if bool(model.net_.dec.image_frame):
            raise RuntimeError("refit failed")
        return solution(1, {})

    monkeypatch.setattr(refit, "refit_solution", boom)
    with pytest.raises(RuntimeError, match="refit failed"):
        refit.refit_dag(model, ds)
    assert not bool(model.net_.dec.image_frame)


def test_pose_frame_is_chosen_kept_and_exact(tmp_path):
    """A pose fit records the axes of its shift latents; in the image frame the latents are the
    object frame's turned per image, the reconstructions are the same, and save/load keeps the
    frame. A pose model written before the frame existed loads in the object frame."""
    import torch

    ds = tiny()
    model = CMCL(**{**FAST, "latent_dim": 4, "epochs": 3}, decoder="pose").fit(ds)
    assert CMCL(**FAST).fit(ds).pose_frame_ is None
    dec = model.net_.dec
    dec.image_frame.fill_(False)
    z_obj = model.transform(ds)
    x_obj = torch.sigmoid(model.net_.decode(torch.as_tensor(z_obj, dtype=torch.float32))).detach()
    dec.image_frame.fill_(True)
    model._finalise()
    z_img = model.transform(ds)
    assert model.pose_frame_ == "image"
    x, u = model._tensors(ds, range(8))
    e_img = model.net_.encode(x, model.encoding_.net_columns(u), sample=False)
    dec.image_frame.fill_(False)
    e_obj = model.net_.encode(x, model.encoding_.net_columns(u), sample=False)
    dec.image_frame.fill_(True)
    torch.testing.assert_close(e_img["lvq"].exp(), dec.image_frame_variances(e_obj["muq"], e_obj["lvq"].exp()),
                               rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(z_img, dec.to_image_frame(torch.as_tensor(z_obj)).detach().numpy(), atol=1e-5)
    assert np.abs(z_img[:, 1:3] - z_obj[:, 1:3]).max() > 1e-4  # the frames differ where a latent turns
    x_img = torch.sigmoid(model.net_.decode(torch.as_tensor(z_img, dtype=torch.float32))).detach()
    torch.testing.assert_close(x_img, x_obj, atol=1e-5, rtol=0)
    model.save(tmp_path / "m.pt")
    loaded = CMCL.load(tmp_path / "m.pt")
    assert loaded.pose_frame_ == "image"
    np.testing.assert_array_equal(loaded.transform(ds), z_img)
    np.testing.assert_array_equal(loaded.intervene({"a": 1.0}, ds, rows=[0, 1]), model.intervene({"a": 1.0}, ds, rows=[0, 1]))
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    del state["net.dec.image_frame"]  # a file without a tensor the model has: one line naming the file
    torch.save(state, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"m\.pt: .*image_frame"):
        CMCL.load(tmp_path / "m.pt")


def test_fit_config_default_min_effect_is_the_models():
    from xcausal.api import FitConfig
    from xcausal.models.cmcl import MIN_EFFECT

    assert FitConfig(data="d", out="o").min_effect == MIN_EFFECT == CMCL().min_effect


def _chain(n: int = 600, seed: int = 0):
    """a (binary) -> z -> b: the image shows z, b is measured from it (an x-ray reader's score)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n)
    z = 2.0 * a - 1.0 + 0.6 * rng.normal(size=n)
    b = 2.0 * np.tanh(1.5 * z) + 0.3 * rng.normal(size=n)
    return dataset_from_arrays(blob_images(z, 16), pd.DataFrame({"a": a, "b": b}))


@pytest.fixture(scope="module")
def chain_fit():
    ds = _chain()
    return ds, CMCL(latent_dim=1, epochs=20, batch_size=64, device="cpu", seed=0, exogenous=["a"]).fit(ds)


def test_exogenous_variable_gets_no_incoming_edge(chain_fit):
    ds, model = chain_fit
    assert not nets.build_net(model).dag.allowed[:, 0].any()  # the mask joint training starts from
    assert not model.net_.dag.allowed[:, 0].any()  # and the refit's
    assert nets.build_net(model).dag.allowed[0, 2]  # a -> z1 stays possible
    assert np.all(model.adjacency_["a"].to_numpy() == 0)
    assert model.get_params()["exogenous"] == ["a"]


def _force_b_root(model, monkeypatch, *, also_a: bool = False):
    """The refit's pairwise orientation made b a root (b -> z1), as the x-ray phantoms' score was."""
    orig = refit.orientation_mask

    def mask(model_, V, allowed):
        m = orig(model_, V, allowed)
        m[2, 1] = False  # z1 -> b forbidden
        m[0, 1] = False  # and, with allow_all_edges, a -> b: the dependence must go through the image
        if also_a:
            m[2, 0] = False
        return m

    monkeypatch.setattr(refit, "orientation_mask", mask)


@pytest.mark.parametrize("allow_all_edges", [False, True])
def test_refit_makes_a_root_dependent_on_an_exogenous_variable_a_child(chain_fit, monkeypatch, caplog,
                                                                        allow_all_edges):
    """b depends on the exogenous a; left a root by the orientation it would be independent of a in
    the DAG, so the refit is solved again with b a child of the latents: a -> z1 -> b."""
    import copy
    import logging

    ds, fitted = chain_fit
    model = copy.deepcopy(fitted)
    model.allow_all_edges = allow_all_edges
    _force_b_root(model, monkeypatch)
    with caplog.at_level(logging.INFO, logger="xcausal"):
        refit.refit_dag(model, ds)
    model._finalise()
    assert "b is a root of the refit but depends on the exogenous a" in caplog.text
    assert "solved again with b a child of the latents (giving up " in caplog.text
    adj = model.adjacency_
    assert abs(adj.loc["a", "z1"]) > model.w_threshold and abs(adj.loc["z1", "b"]) > model.w_threshold, adj
    assert model.unexplained_dependences_ == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "are dependent" in r.getMessage()]


def test_unexplained_dependences_are_reported_when_no_knowledge_resolves_them(chain_fit, monkeypatch, caplog):
    """Without exogenous variables the refit cannot tell which root is wrong: it warns and records
    the pair (and keeps the graph)."""
    import copy
    import logging

    ds, fitted = chain_fit
    model = copy.deepcopy(fitted)
    model.exogenous = []
    _force_b_root(model, monkeypatch, also_a=True)
    with caplog.at_level(logging.WARNING, logger="xcausal"):
        refit.refit_dag(model, ds)
    model._finalise()
    assert [(a, b) for a, b, _ in model.unexplained_dependences_] == [("a", "b")]
    assert model.unexplained_dependences_[0][2] < 1e-6
    assert "a and b are dependent" in caplog.text and "can be declared exogenous" in caplog.text
    assert model.adjacency_["a"].abs().max() == 0 and model.adjacency_["b"].abs().max() == 0  # the graph is kept


def test_two_exogenous_variables_are_not_flagged(chain_fit, monkeypatch):
    """Two exogenous variables are roots by declaration: an association between them is outside the
    model, not an error of the graph."""
    import copy

    ds, fitted = chain_fit
    model = copy.deepcopy(fitted)
    model.exogenous = ["a", "b"]
    _force_b_root(model, monkeypatch)
    refit.refit_dag(model, ds)
    assert model.unexplained_dependences_ == []
    assert not model.net_.dag.allowed[:, 1].any()


def test_exogenous_is_validated():
    for bad in ("a", None, {"a"}):
        with pytest.raises(ValueError, match="must be a list of variable names"):
            CMCL(**FAST, exogenous=bad).fit(tiny())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exogenous: no variable named 'age' in the table"):
        CMCL(**FAST, exogenous=["a", "age"]).fit(tiny())


def test_unexplained_dependences_survive_save_and_load(chain_fit, tmp_path):
    import copy

    _, fitted = chain_fit
    model = copy.deepcopy(fitted)
    model.unexplained_dependences_ = [("a", "b", 1e-9)]
    model.save(tmp_path / "m.pt")
    back = CMCL.load(tmp_path / "m.pt")
    assert back.unexplained_dependences_ == [("a", "b", 1e-9)] and back.exogenous == ["a"]
    assert back.anm_latent_scale == "auto" and back.anm_entropy == "auto"
    back.exogenous.append("x")  # its own list, not the one in the file
    assert CMCL.load(tmp_path / "m.pt").exogenous == ["a"]
    meta = json.loads((tmp_path / "m.pt.json").read_text())
    del meta["unexplained_dependences"]  # a file that lacks a fitted attribute: one line naming the file
    (tmp_path / "m.pt.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"m\.pt"):
        CMCL.load(tmp_path / "m.pt")
