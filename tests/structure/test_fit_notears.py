"""End-to-end: fit_notears on simulated nonlinear data with every column standardised.

Standardising removes varsortability (Reisach et al. 2021): the orientation has to come from the
score, not from marginal variances. The simulator's mechanisms are kept clearly nonlinear
(``max_linear_r2=0.5``, hidden biases): NOTEARS' own sigmoid-MLP mechanisms are ~95 % linear on
standardised parents, and a nearly linear-Gaussian edge carries almost no orientation signal.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xcausal.structure import NotearsResult, NotearsTrainer, NotearsMLP, bipartite_mask, fit_notears

from _notears_sim import mlp_sem, shd, standardise

N = 1000
FAST = {"hidden": (10,), "max_outer": 20}

CHAIN5 = np.eye(5, k=1)
FORK5 = np.zeros((5, 5))
FORK5[0, 1] = FORK5[0, 2] = FORK5[1, 3] = FORK5[2, 4] = 1.0


SIM = {"max_linear_r2": 0.5, "hidden_bias": 2.0}


def _data(b: np.ndarray, seed: int) -> np.ndarray:
    return standardise(mlp_sem(b, N, np.random.default_rng(seed), **SIM))


def test_shd_helper():
    t = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert shd(t, t) == 0
    assert shd(t, t.T) == 2  # two reversed edges
    assert shd(t, np.zeros((3, 3))) == 2  # two missing
    e = t.copy()
    e[0, 2] = 1
    assert shd(t, e) == 1  # one extra


@pytest.mark.parametrize("h_func", ["logdet", "expm"])
def test_two_nodes(h_func):
    b = np.array([[0.0, 1.0], [0.0, 0.0]])
    res = fit_notears(_data(b, 1), ["continuous"] * 2, h_func=h_func, **FAST)
    assert isinstance(res, NotearsResult)
    assert res.converged
    assert shd(b, res.adjacency) == 0, res.W
    assert res.W.shape == (2, 2) and res.n_outer == len(res.history)
    assert res.history[-1]["h"] <= 1e-8


CHAIN_CASE = pytest.param("chain", CHAIN5, 0, marks=pytest.mark.slow)  # ~25 s per h function


@pytest.mark.parametrize("h_func", ["logdet", "expm"])
@pytest.mark.parametrize("name,b,seed", [("fork", FORK5, 1), CHAIN_CASE])
def test_five_nodes(h_func, name, b, seed):
    res = fit_notears(_data(b, seed), ["continuous"] * 5, h_func=h_func, **FAST)
    assert shd(b, res.adjacency) <= 1, (name, res.W)


def test_gauss_nll_orientation_survives_rescaling():
    """Varsortability pitfall: rescale the cause to 5x the effect's standard deviation. The
    least-squares score then orients from low to high variance (effect -> cause); the Gaussian NLL
    with learned per-node variances is scale-invariant and keeps cause -> effect."""
    b = np.array([[0.0, 1.0], [0.0, 0.0]])
    x = _data(b, 1) * np.array([5.0, 1.0])
    res = fit_notears(x, ["continuous"] * 2, score="gauss_nll", standardize=False, **FAST)
    assert shd(b, res.adjacency) == 0, res.W
    res = fit_notears(x, ["continuous"] * 2, score="mse", standardize=False, **FAST)
    assert shd(b, res.adjacency.T) == 0, res.W  # reversed, as documented by Reisach et al.
    # fit_notears standardises by default: the least-squares score then keeps cause -> effect too
    res = fit_notears(x, ["continuous"] * 2, score="mse", **FAST)
    assert shd(b, res.adjacency) == 0, res.W


def _bipartite_data(case: str, seed: int) -> tuple[np.ndarray, list[str], tuple[int, int]]:
    """Columns [u, z] (u observed, z latent); returns data, node types and the true edge."""
    rng = np.random.default_rng(seed)
    if case == "u->z continuous":
        x = standardise(mlp_sem(np.array([[0.0, 1.0], [0.0, 0.0]]), N, rng, **SIM))
        return x, ["continuous", "continuous"], (0, 1)
    if case == "z->u binary":
        z = rng.normal(size=N)
        u = (rng.random(N) < 1.0 / (1.0 + np.exp(-4.0 * z))).astype(float)
        return np.column_stack([u, standardise(z[:, None])[:, 0]]), ["binary", "continuous"], (1, 0)
    if case.startswith("u->z binary"):
        shift = 1.0 if case.endswith("(shift 1)") else 3.0
        u = (rng.random(N) < 0.5).astype(float)
        z = shift * u + rng.normal(size=N)
        return np.column_stack([u, standardise(z[:, None])[:, 0]]), ["binary", "continuous"], (0, 1)
    raise ValueError(case)


STRONG_BINARY_CAUSE = pytest.param(
    "u->z binary (shift 3)",
    marks=pytest.mark.xfail(strict=True, reason=(
        "known limitation: a binary parent that almost separates its child makes the reverse "
        "logistic edge z->u large in the cyclic first solve, and the augmented Lagrangian removes the "
        "smaller edge of a 2-cycle; orientation then follows magnitudes, not the score "
        "(the true graph has the better Gaussian/BCE likelihood)")))


@pytest.mark.parametrize("case", ["u->z continuous", "z->u binary", "u->z binary (shift 1)", STRONG_BINARY_CAUSE])
def test_bipartite_direction(case):
    x, types, (i, j) = _bipartite_data(case, 0)
    allowed = bipartite_mask(["observed", "latent"])
    res = fit_notears(x, types, allowed=allowed, **FAST)
    assert res.adjacency[i, j] != 0 and res.adjacency[j, i] == 0, res.W


def test_bipartite_mask_respected_in_fit():
    rng = np.random.default_rng(3)
    x = standardise(mlp_sem(CHAIN5[:3, :3], 300, rng))
    allowed = bipartite_mask(["observed", "latent", "observed"])
    res = fit_notears(x, ["continuous"] * 3, allowed=allowed, hidden=(5,), max_outer=3, inner_steps=50,
                      warmup_steps=20)
    assert np.all(res.W[~allowed.numpy()] == 0)


def test_deterministic_under_seed():
    x = _data(np.array([[0.0, 1.0], [0.0, 0.0]]), 2)[:300]
    kw = {"hidden": (5,), "max_outer": 3, "inner_steps": 50, "warmup_steps": 20}
    a = fit_notears(x, ["continuous"] * 2, seed=7, **kw)
    b = fit_notears(x, ["continuous"] * 2, seed=7, **kw)
    np.testing.assert_array_equal(a.W, b.W)
    assert [r["h"] for r in a.history] == [r["h"] for r in b.history]
    # the global RNG is neither used nor reseeded
    state = torch.get_rng_state()
    fit_notears(x, ["continuous"] * 2, seed=8, **kw)
    assert torch.equal(state, torch.get_rng_state())


def test_adam_solver_and_tensor_input():
    x = torch.from_numpy(_data(np.array([[0.0, 1.0], [0.0, 0.0]]), 2)[:300]).float()
    res = fit_notears(x, ["continuous"] * 2, hidden=(5,), optimizer="adam", max_outer=2, inner_steps=100)
    assert res.model.fc1_weight.dtype == torch.float32
    assert res.W.shape == (2, 2) and len(res.history) == 2
    assert np.isfinite(res.W).all()


def test_mixed_types_run():
    rng = np.random.default_rng(4)
    n = 200
    z = rng.normal(size=n)
    u_bin = (z + rng.normal(size=n) > 0).astype(float)
    u_cat = np.digitize(z, [-0.5, 0.5]).astype(float)  # 3 levels
    x = np.column_stack([u_bin, u_cat, z])
    res = fit_notears(x, ["binary", "categorical", "continuous"], n_categories=[2, 3, 1], hidden=(5,),
                      max_outer=2, inner_steps=50, warmup_steps=20)
    assert res.model.in_width == 5
    assert np.isfinite(res.W).all()


def test_input_validation():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="shape"):
        fit_notears(x, ["continuous"] * 3)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_notears(bad, ["continuous"] * 2)
    with pytest.raises(ValueError, match="h_func"):
        NotearsTrainer(h_func="poly")
    with pytest.raises(ValueError, match="optimizer"):
        NotearsTrainer(optimizer="sgd")
    with pytest.raises(ValueError, match="0/1"):
        fit_notears(np.full((10, 2), 0.5), ["binary", "continuous"])
    model = NotearsMLP(node_types=["continuous"] * 2, hidden=(3,))
    with pytest.raises(ValueError, match="float64"):
        NotearsTrainer().train(model, torch.zeros(5, 2, dtype=torch.float64))


def test_raw_units_do_not_change_the_graph():
    """fit_notears standardises continuous columns itself: multiplying one column by 1000 (and
    shifting another) leaves the learned graph unchanged, and W comes back in original units."""
    b = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    x = _data(b, 2)
    res = fit_notears(x, ["continuous"] * 3, **FAST)
    factor = np.array([1000.0, 1.0, 1.0])
    shift = np.array([0.0, 0.0, 50.0])
    res_raw = fit_notears(x * factor + shift, ["continuous"] * 3, **FAST)
    np.testing.assert_array_equal(res.adjacency != 0, res_raw.adjacency != 0)
    # the same problem up to rounding (L-BFGS-B amplifies the last digits a little)
    np.testing.assert_allclose(res_raw.W_standardized, res.W_standardized, rtol=0.05, atol=0.01)
    np.testing.assert_allclose(res_raw.W * factor[:, None], res.W, rtol=0.05, atol=0.01)  # original units


def test_standardization_fold_is_exact():
    """The model trained on standardised columns, rewritten into original units, gives the same
    predictions (in original units) and the same NLL up to the Jacobian term."""
    import copy

    from xcausal.structure.notears import _fold_standardization_

    gen = torch.Generator().manual_seed(0)
    types = ["continuous", "binary", "continuous", "categorical"]
    m = NotearsMLP(node_types=types, n_categories=[1, 2, 1, 3], hidden=(6, 4), generator=gen, dtype=torch.float64)
    rng = np.random.default_rng(0)
    Z = np.stack([rng.normal(size=50), rng.integers(0, 2, 50), rng.normal(size=50), rng.integers(0, 3, 50)], 1)
    mean = torch.tensor([3.0, 0.0, -40.0, 0.0], dtype=torch.float64)
    scale = torch.tensor([1000.0, 1.0, 0.01, 1.0], dtype=torch.float64)
    Zt = torch.from_numpy(Z)
    V = Zt * scale + mean
    folded = copy.deepcopy(m)
    _fold_standardization_(folded, mean, scale)
    with torch.no_grad():
        p_std, p_raw = m.predict(Zt), folded.predict(V)
        torch.testing.assert_close(p_raw, p_std * scale + mean, rtol=1e-10, atol=1e-8)
        jac = torch.log(scale) * torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
        torch.testing.assert_close(folded.node_nll(V), m.node_nll(Zt) + jac, rtol=1e-10, atol=1e-8)
        torch.testing.assert_close(folded.adjacency() * scale[:, None] ** torch.tensor([1.0, 0, 1, 0])[:, None]
                                   .to(torch.float64), m.adjacency(), rtol=1e-10, atol=1e-12)


def test_standardize_off_keeps_the_scale_dependence():
    """With ``standardize=False`` the data are used as given: a column in milli-units (x 1000) loses
    its out-edge to the threshold (its first-layer weights shrink by 1000)."""
    b = np.array([[0.0, 1.0], [0.0, 0.0]])
    x = _data(b, 1) * np.array([1000.0, 1.0])
    res = fit_notears(x, ["continuous"] * 2, standardize=False, **FAST)
    assert res.W_standardized is None
    assert shd(b, res.adjacency) >= 1, res.W
    assert shd(b, fit_notears(x, ["continuous"] * 2, **FAST).adjacency) == 0
