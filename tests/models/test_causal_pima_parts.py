"""causalPIMA's parts: closed-form EM step, physics experts, log-space mixture terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xcausal.models.causal_pima import (
    CausalPIMANet,
    PhysicsExpert,
    em_update,
    fit_expert,
    gaussian_log_density,
    strain_hardening,
)
from xcausal.structure.graph_gradient import binary_outcomes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(seed=0, n=300, d=4, k=8):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, d, generator=g, dtype=torch.float64)
    s2 = torch.rand(n, d, generator=g, dtype=torch.float64) * 0.1 + 0.01
    gamma = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64) * 2, 1)
    logvar = torch.randn(k, d, generator=g, dtype=torch.float64) * 0.3
    return m, s2, gamma, logvar


def _expected_ll(m, s2, gamma, mu, logvar):
    return (gamma * gaussian_log_density(m, mu, logvar, s2)).sum()


def test_em_free_means_equal_the_closed_form():
    m, s2, gamma, logvar = _data()
    out = binary_outcomes(3, dtype=torch.float64)
    mu, lv, _ = em_update(m, s2, gamma, out, logvar, means="free")
    nk = gamma.sum(0)
    for c in range(8):
        want_mu = (gamma[:, c:c + 1] * m).sum(0) / nk[c]
        want_var = (gamma[:, c:c + 1] * (s2 + (m - want_mu) ** 2)).sum(0) / nk[c]
        assert torch.allclose(mu[c], want_mu, atol=1e-10)
        assert torch.allclose(lv[c].exp(), want_var, atol=1e-10)


def test_em_additive_means_are_a_stationary_point_of_the_expected_log_likelihood():
    """The weighted least-squares M-step: the gradient in (a, Δ) vanishes at its output."""
    m, s2, gamma, logvar = _data(1)
    out = binary_outcomes(3, dtype=torch.float64)
    mu, _, coef = em_update(m, s2, gamma, out, logvar, means="additive")
    x = torch.cat([torch.ones(8, 1, dtype=torch.float64), out], 1)
    assert torch.allclose(mu, x @ coef, atol=1e-10)
    c = coef.clone().requires_grad_(True)
    ll = _expected_ll(m, s2, gamma, x @ c, logvar)
    (g,) = torch.autograd.grad(ll, c)
    assert g.abs().max() < 1e-6
    # and it beats a perturbed solution
    with torch.no_grad():
        worse = _expected_ll(m, s2, gamma, x @ (coef + 0.05), logvar)
        assert _expected_ll(m, s2, gamma, mu, logvar) > worse


def test_em_additive_recovers_planted_directions():
    g = torch.Generator().manual_seed(3)
    out = binary_outcomes(3, dtype=torch.float64)
    delta = torch.tensor([[3.0, 0, 0, 1], [0, 3.0, 0, -1], [0, 0, 3.0, 0]], dtype=torch.float64)
    c = torch.randint(8, (4000,), generator=g)
    m = 0.5 + out[c] @ delta + 0.1 * torch.randn(4000, 4, generator=g, dtype=torch.float64)
    gamma = torch.nn.functional.one_hot(c, 8).double()
    _, lv, coef = em_update(m, torch.zeros_like(m), gamma, out, torch.zeros(8, 4, dtype=torch.float64),
                            means="additive")
    assert torch.allclose(coef[1:], delta, atol=0.02)
    assert torch.allclose(coef[0], torch.full((4,), 0.5, dtype=torch.float64), atol=0.02)
    assert torch.allclose(lv.exp(), torch.full_like(lv, 0.01), rtol=0.2)


def test_em_keeps_empty_components_finite():
    m, s2, gamma, logvar = _data(2)
    gamma[:, 3] = 0.0
    gamma = gamma / gamma.sum(1, keepdim=True)
    for means in ("free", "additive"):
        mu, lv, _ = em_update(m, s2, gamma, binary_outcomes(3, dtype=torch.float64), logvar, means=means)
        assert torch.isfinite(mu).all() and torch.isfinite(lv).all()


def test_log_space_responsibilities_are_finite_for_64_components():
    """K = 2^6 components and far-away points: probabilities underflow, log space does not."""
    net = CausalPIMANet(image=None, curves={"c": 16}, physics={}, latent_dim=10, n_nodes=6, plan="synthetic",
                        prior="dag", means="additive")
    with torch.no_grad():
        net.mu.copy_(torch.randn(64, 10) * 50)
        net.logvar.fill_(-6.0)
    z = torch.randn(32, 10) * 200
    lj = net.component_log_joint(z, {"c": torch.zeros(32, 16)})
    assert lj.shape == (32, 64)
    assert torch.isfinite(lj).all()
    assert (lj.exp().sum(1) == 0).all()  # naive probabilities underflow ...
    gamma = torch.softmax(lj, 1)
    assert torch.isfinite(gamma).all() and torch.allclose(gamma.sum(1), torch.ones(32))  # ... log space does not
    assert torch.isfinite(torch.logsumexp(lj, 1)).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strain_hardening_expert_recovers_known_parameters_on_noiseless_curves(seed):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 64)
    truth = np.stack([rng.uniform(0.15, 0.6, 5), rng.uniform(0.5, 2.0, 5), rng.uniform(-0.5, 1.5, 5)], 1)
    y = strain_hardening(torch.tensor(t), *map(torch.tensor, truth.T)).numpy()
    est = fit_expert("strain-hardening", t, y)
    assert np.allclose(est, truth, atol=1e-4), (est, truth)


def test_linear_expert_recovers_slope_and_expert_module_matches_formula():
    t = np.linspace(0, 1, 20)
    y = np.stack([1.7 * t, -0.3 * t])
    assert np.allclose(fit_expert("linear", t, y)[:, 0], [1.7, -0.3])
    ex = PhysicsExpert("strain-hardening", 20, 2)
    ex.params.copy_(torch.tensor([[0.2, 1.0, 0.5], [0.4, 1.5, 1.0]]))
    e = ex.curves()
    assert torch.allclose(e[0, -1], torch.tensor(1.0 + 0.5 * 0.8))
    assert torch.allclose(e[1, 0], torch.tensor(0.0))
    ll = ex.log_lik(e[[1, 0]])
    assert ll.shape == (2, 2) and ll[0, 1] > ll[0, 0] and ll[1, 0] > ll[1, 1]
    with pytest.raises(ValueError, match="physics form"):
        fit_expert("cubic", t, y)


def test_physics_log_lik_is_the_full_covariance_gaussian():
    from scipy.stats import multivariate_normal

    g = torch.Generator().manual_seed(0)
    ex = PhysicsExpert("linear", 6, 3)
    ex.params.copy_(torch.tensor([[0.5], [1.0], [2.0]]))
    a = torch.randn(6, 6, generator=g, dtype=torch.float64)
    cov = a @ a.T + 0.5 * torch.eye(6, dtype=torch.float64)
    ex.chol.copy_(torch.linalg.cholesky(cov).float())
    y = torch.randn(4, 6, generator=g)
    ll = ex.log_lik(y).double().numpy()
    e = ex.curves().double().numpy()
    for b in range(4):
        for c in range(3):
            want = multivariate_normal(mean=e[c], cov=cov.numpy()).logpdf(y[b].double().numpy())
            assert ll[b, c] == pytest.approx(want, rel=1e-4)
