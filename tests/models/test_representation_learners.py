"""Representation learners: conformance of all five, the loss estimators, a recovery test, a pipeline run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from xcausal.data import dataset_from_arrays
from xcausal.models.pipeline import Pipeline
from xcausal.models.representation import (
    ICA,
    IVAE,
    REPRESENTATIONS,
    TCVAE,
    BetaVAE,
    FactorVAE,
    density_ratio_tc,
    discriminator_loss,
    gaussian_kl,
    mws_decomposition,
    permute_dims,
)
from xcausal.nn.blocks import MLP


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(n: int = 40, seed: int = 0, size: int = 8):
    """Images whose two halves' brightness follow a continuous and a binary variable; 3 variables."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.integers(0, 2, n)
    img = np.full((n, 1, size, size), 0.2, dtype=np.float32)
    img[:, 0, :, : size // 2] += 0.6 / (1 + np.exp(-a))[:, None, None]
    img[:, 0, :, size // 2:] += 0.3 * b[:, None, None]
    img += 0.05 * rng.random(img.shape).astype(np.float32)
    table = pd.DataFrame({"a": a, "b": b, "c": rng.choice(["x", "y", "q"], n)})
    return dataset_from_arrays(np.clip(img, 0, 1), table)


FAST = dict(latent_dim=2, epochs=2, batch_size=16, device="cpu")
NAMES = ["betavae", "factorvae", "tcvae", "ivae", "ica"]


def test_registry():
    assert REPRESENTATIONS == {"betavae": BetaVAE, "factorvae": FactorVAE, "tcvae": TCVAE, "ivae": IVAE, "ica": ICA}
    for name, cls in REPRESENTATIONS.items():
        assert cls.method_name == name


# ------------------------------------------------------------------ conformance
@pytest.mark.parametrize("name", NAMES)
def test_conformance(name, tmp_path):
    cls = REPRESENTATIONS[name]
    ds = tiny()
    model = cls(**FAST, seed=3)
    rng_before = torch.random.get_rng_state()
    assert model.fit(ds) is model
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # no global RNG side effect
    z = model.transform(ds)
    assert z.shape == (len(ds), 2) and z.dtype == np.float64 and np.isfinite(z).all()
    assert model.n_latents_ == 2 and isinstance(model.history_, pd.DataFrame) and len(model.history_) >= 1
    # same seed -> same latents; the transform is batched, rows in table order
    np.testing.assert_array_equal(cls(**FAST, seed=3).fit(ds).transform(ds), z)
    np.testing.assert_allclose(model.transform(ds, batch_size=7), z, rtol=0, atol=1e-5)  # float32 kernels
    # save / load
    path = tmp_path / f"{name}.pt"
    model.save(path)
    meta = json.loads(path.with_suffix(".pt.json").read_text())
    assert meta["method"] == name and meta["format"] == 1 and meta["n_latents"] == 2
    assert meta["params"] == json.loads(json.dumps(model.get_params()))
    assert all(isinstance(v, torch.Tensor) for v in torch.load(path, weights_only=True).values())
    loaded = cls.load(path)
    np.testing.assert_array_equal(loaded.transform(ds), z)
    assert loaded.get_params() == {**model.get_params(), "device": "cpu"}


@pytest.mark.parametrize("name", [n for n in NAMES if n != "ica"])
def test_history_has_the_loss_terms(name):
    model = REPRESENTATIONS[name](**FAST).fit(tiny())
    terms = {"betavae": {"kl"}, "factorvae": {"kl", "tc", "disc_loss"}, "tcvae": {"mi", "tc", "dwkl"},
             "ivae": {"kl"}}[name]
    assert {"epoch", "loss", "rec", "reg_weight"} | terms <= set(model.history_.columns)
    assert list(model.history_["epoch"]) == [1, 2]
    assert model.epochs_ == 2


def test_defaults_resolved_in_fit():
    model = BetaVAE(device="cpu", epochs=1)
    assert model.latent_dim is None and model.beta == 4.0
    model.fit(tiny(n=20))
    assert model.n_latents_ == 7  # default_latent_dim(3 variables)
    assert FactorVAE().gamma == 10.0 and (TCVAE().alpha, TCVAE().beta, TCVAE().gamma) == (1.0, 6.0, 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_hyperparameters_are_keyword_only(name):
    with pytest.raises(TypeError):
        REPRESENTATIONS[name](2)


@pytest.mark.parametrize("name, bad, match", [
    ("betavae", {"latent_dim": 0}, "latent_dim=0"),
    ("betavae", {"beta": -1.0}, "beta=-1.0"),
    ("factorvae", {"gamma": -2.0}, "gamma=-2.0"),
    ("factorvae", {"disc_hidden": ()}, "disc_hidden"),
    ("tcvae", {"epochs": 0}, "epochs=0"),
    ("tcvae", {"alpha": -0.5}, "alpha=-0.5"),
    ("ivae", {"batch_size": 1}, "batch_size=1"),
    ("ivae", {"pixel_sigma": 0.0}, "pixel_sigma=0.0"),
    ("ica", {"latent_dim": 0}, "latent_dim=0"),
])
def test_invalid_hyperparameters_raise(name, bad, match):
    model = REPRESENTATIONS[name](**{**FAST, **bad})  # stored as given
    assert all(getattr(model, k) == v for k, v in bad.items())
    with pytest.raises(ValueError, match=match):
        model.fit(tiny(n=20))


@pytest.mark.parametrize("name", NAMES)
def test_load_rejects_another_methods_checkpoint(name, tmp_path):
    other = NAMES[(NAMES.index(name) + 1) % len(NAMES)]
    path = tmp_path / "m.pt"
    REPRESENTATIONS[other](**FAST).fit(tiny(n=20)).save(path)
    with pytest.raises(ValueError, match=f"'{other}', not '{name}'"):
        REPRESENTATIONS[name].load(path)


def test_unfitted_and_incompatible_data_raise():
    with pytest.raises(ValueError, match="not fitted"):
        BetaVAE().transform(tiny(n=20))
    model = IVAE(**FAST).fit(tiny(n=20))
    with pytest.raises(ValueError, match="images are 1×16"):
        model.transform(tiny(n=20, size=16))
    other = dataset_from_arrays(tiny(n=20).images(), pd.DataFrame({"q": np.arange(20.0)}))
    with pytest.raises(ValueError, match="differ from the fitted"):
        model.transform(other)


def test_ivae_needs_variables():
    ds = dataset_from_arrays(np.random.default_rng(0).random((12, 1, 8, 8)), pd.DataFrame(index=range(12)),
                             source="no_vars.npz")
    with pytest.raises(ValueError, match="no_vars.npz.*no structured variables"):
        IVAE(**FAST).fit(ds)
    assert BetaVAE(**FAST).fit(ds).transform(ds).shape == (12, 2)  # the unconditional ones do not


def test_lazy_batches_match_in_memory_training(monkeypatch):
    ds = tiny()
    z = TCVAE(**FAST).fit(ds).transform(ds)
    import xcausal.models.representation as rep

    monkeypatch.setattr(rep, "MAX_IN_MEMORY_BYTES", 0)  # decode each batch from the dataset instead
    np.testing.assert_allclose(TCVAE(**FAST).fit(ds).transform(ds), z, rtol=0, atol=1e-5)


def test_ivae_transform_uses_u():
    ds = tiny()
    model = IVAE(**FAST).fit(ds)
    flipped = dataset_from_arrays(ds.images(), ds.table.assign(a=-ds.table["a"]))
    assert not np.allclose(model.transform(flipped), model.transform(ds))


# ------------------------------------------------------------------ the loss terms
def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mq, lq, mp, lp = (torch.randn(50, 3, generator=g, dtype=torch.float64) for _ in range(4))
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mq, (0.5 * lq).exp()),
                                            torch.distributions.Normal(mp, (0.5 * lp).exp())).sum(1)
    torch.testing.assert_close(gaussian_kl(mq, lq, mp, lp), ref)
    std = torch.distributions.Normal(torch.zeros(()), torch.ones(()).double())
    ref0 = torch.distributions.kl_divergence(torch.distributions.Normal(mq, (0.5 * lq).exp()), std).sum(1)
    torch.testing.assert_close(gaussian_kl(mq, lq, torch.zeros_like(mq), torch.zeros_like(lq)), ref0)


def _posterior_batch(rho: float, *, n_data: int = 2000, batch: int = 500, s: float = 0.3, seed: int = 0):
    """A minibatch of posteriors q(z | x_n) = N(mu_n, s² I) with mu_n ~ N(0, [[1, rho], [rho, 1]]).

    The aggregate posterior is then N(0, Σ + s² I), whose TC is -0.5 log(1 - r²), r its correlation.
    """
    g = torch.Generator().manual_seed(seed)
    L = torch.linalg.cholesky(torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64))
    mus = torch.randn(n_data, 2, generator=g, dtype=torch.float64) @ L.T
    mu = mus[torch.randperm(n_data, generator=g)[:batch]]
    z = mu + s * torch.randn(batch, 2, generator=g, dtype=torch.float64)
    r = rho / (1 + s ** 2)
    return z, mu, torch.full_like(mu, 2 * math.log(s)), -0.5 * math.log(1 - r ** 2)


def test_mws_tc_is_zero_for_independent_and_positive_for_correlated_latents():
    n_data = 2000
    for rho in (0.0, 0.9):
        z, mu, lv, true_tc = _posterior_batch(rho, n_data=n_data)
        t = mws_decomposition(z, mu, lv, n_data)
        # the paper's log(N M) normaliser shifts TC by (m - 1) log N (documented in mws_decomposition)
        tc = float(t["tc"]) - math.log(n_data)
        assert abs(tc - true_tc) < 0.15, (rho, tc, true_tc)
        # MI + TC + dim-wise KL telescopes to the Monte-Carlo KL(q(z|x) || N(0, I))
        log_q = -0.5 * (math.log(2 * math.pi) + lv + (z - mu) ** 2 / lv.exp()).sum(1)
        log_p = -0.5 * (math.log(2 * math.pi) + z ** 2).sum(1)
        torch.testing.assert_close(t["mi"] + t["tc"] + t["dwkl"], (log_q - log_p).mean())
    assert true_tc > 0.5  # the correlated case is clearly positive
    with pytest.raises(ValueError, match="n_data=10"):
        mws_decomposition(z, mu, lv, 10)


def test_permute_dims_keeps_marginals_and_breaks_dependence():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 1, generator=g)
    z = torch.cat([x, x + 0.1 * torch.randn(1000, 1, generator=g)], dim=1)
    zp = permute_dims(z, torch.Generator().manual_seed(1))
    for j in range(2):
        torch.testing.assert_close(zp[:, j].sort().values, z[:, j].sort().values)
    assert torch.corrcoef(z.T)[0, 1] > 0.99 and abs(float(torch.corrcoef(zp.T)[0, 1])) < 0.1


def test_discriminator_tc_rises_for_correlated_latents():
    """Trained on q(z) vs permuted samples, the mean logit approaches the Gaussian TC -0.5 log(1 - rho²)."""
    out = {}
    for rho in (0.0, 0.9):
        g = torch.Generator().manual_seed(1)
        with torch.random.fork_rng():
            torch.manual_seed(1)
            disc = MLP(2, 1, hidden=(64, 64))
        opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
        L = torch.linalg.cholesky(torch.tensor([[1.0, rho], [rho, 1.0]]))
        for _ in range(500):
            z = torch.randn(256, 2, generator=g) @ L.T
            loss = discriminator_loss(disc, z, permute_dims(z, g))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            out[rho] = float(density_ratio_tc(disc, torch.randn(5000, 2, generator=g) @ L.T))
    assert abs(out[0.0]) < 0.1
    assert abs(out[0.9] - (-0.5 * math.log(1 - 0.81))) < 0.25 and out[0.9] > 0.5


def test_factorvae_trains_its_discriminator():
    model = FactorVAE(**FAST)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        from xcausal.models.representation import RepresentationNet

        fresh = RepresentationNet(channels=1, image_size=8, latent_dim=2, disc_hidden=(256, 256, 256))
    model.fit(tiny())
    assert not torch.equal(fresh.disc[0].weight, model.net_.disc[0].weight.cpu())
    assert np.isfinite(model.history_["disc_loss"]).all()


# ------------------------------------------------------------------ recovery
def halves(n: int = 500, seed: int = 0, size: int = 16):
    """Two independent uniform sources; source j sets the brightness of image half j (+ pixel noise)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-2, 2, size=(n, 2))
    b = 1 / (1 + np.exp(-s))
    img = np.zeros((n, 1, size, size), np.float32)
    img[:, 0, :, : size // 2] = b[:, 0, None, None]
    img[:, 0, :, size // 2:] = b[:, 1, None, None]
    img += 0.02 * rng.normal(size=img.shape).astype(np.float32)
    return s, dataset_from_arrays(np.clip(img, 0, 1), pd.DataFrame({"s1": s[:, 0]}))


def test_ivae_recovers_two_independent_sources():
    """iVAE with u = source 1, 30 epochs on n = 500: each source has its own latent with |corr| >= 0.8.

    Measured (seeds 0-4): min over sources of the best |corr| 0.992, 0.997, 0.831, 0.989, 0.997.
    A BetaVAE on the same data lands in a rotated solution for some seeds (0.71-0.87 for 3 of 5):
    the problem is symmetric in the two halves and the Gaussian prior is rotation invariant.
    """
    s, ds = halves()
    model = IVAE(latent_dim=2, epochs=30, batch_size=32, seed=0, device="cpu").fit(ds)
    z = model.transform(ds)
    corr = np.abs(np.corrcoef(s.T, z.T)[:2, 2:])
    assert corr.max(1).min() >= 0.8, corr
    assert corr.argmax(1)[0] != corr.argmax(1)[1], corr  # one latent per source


# ------------------------------------------------------------------ pipeline
def test_pipeline_with_the_default_registry(tmp_path):
    ds = tiny(n=60)
    pipe = Pipeline(representation="betavae", structure="notears", epochs=2, latent_dim=2, device="cpu")
    assert pipe.fit(ds) is pipe
    assert pipe.transform(ds).shape == (60, 2)
    assert list(pipe.adjacency_.index) == ["a", "b", "c", "z1", "z2"]
    pipe.save(tmp_path / "p.pt")
    loaded = Pipeline.load(tmp_path / "p.pt")
    np.testing.assert_array_equal(loaded.transform(ds), pipe.transform(ds))
