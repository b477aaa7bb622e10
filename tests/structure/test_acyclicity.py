"""Acyclicity functions h_expm and h_logdet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xcausal.structure import h_expm, h_logdet

H_FUNCS = [h_expm, h_logdet]


def _random_dag(d: int, seed: int, *, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.triu(torch.randn(d, d, generator=g, dtype=torch.float64), diagonal=1) * scale
    w = w * (torch.rand(d, d, generator=g, dtype=torch.float64) < 0.6)
    perm = torch.randperm(d, generator=g)
    return w[perm][:, perm]


def _cycle(d: int, weight: float = 0.5) -> torch.Tensor:
    w = torch.zeros(d, d, dtype=torch.float64)
    for i in range(d):
        w[i, (i + 1) % d] = weight
    return w


@pytest.mark.parametrize("h", H_FUNCS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_on_weighted_dag(h, dtype):
    for seed in range(3):
        w = _random_dag(8, seed, scale=0.5).to(dtype)
        assert abs(float(h(w))) < 1e-10
    assert h(w).dtype == dtype


@pytest.mark.parametrize("h", H_FUNCS)
@pytest.mark.parametrize("d", [2, 3])
def test_positive_on_cycles(h, d):
    w = _cycle(d, 0.5)
    assert float(h(w)) > 1e-4
    # embedded in a larger DAG the cycle still counts
    big = torch.zeros(6, 6, dtype=torch.float64)
    big[:d, :d] = w
    big[d, d + 1] = 0.7
    assert float(h(big)) == pytest.approx(float(h(w)), rel=1e-9)


def test_known_values():
    # 2-cycle with weights a, b: A = W∘W has eigenvalues ±ab
    a, b = 0.6, 0.5
    w = torch.tensor([[0.0, a], [b, 0.0]], dtype=torch.float64)
    lam = (a * b)
    assert float(h_expm(w)) == pytest.approx(2 * np.cosh(lam) - 2, rel=1e-10)
    assert float(h_logdet(w)) == pytest.approx(-np.log(1 - lam ** 2), rel=1e-10)
    s = 2.0
    assert float(h_logdet(w, s)) == pytest.approx(-np.log(s ** 2 - lam ** 2) + 2 * np.log(s), rel=1e-10)


def test_float32_resolves_small_h():
    # tr(exp(A)) - d cancels; computing in float32 would give 0 or noise at this size
    w = _cycle(3, 0.01)
    ref = float(h_expm(w))
    got = float(h_expm(w.float()))
    assert ref > 0 and got == pytest.approx(ref, rel=1e-5)
    assert float(h_logdet(w.float())) == pytest.approx(float(h_logdet(w)), rel=1e-5)


def test_gradcheck_inside():
    g = torch.Generator().manual_seed(0)
    w = (0.3 * torch.randn(4, 4, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(h_expm, (w,))
    assert torch.autograd.gradcheck(lambda x: h_logdet(x, 1.0), (w,))
    assert torch.autograd.gradcheck(lambda x: h_logdet(x, 2.0), (w,))


def test_gradcheck_continuations():
    g = torch.Generator().manual_seed(1)
    w = (torch.rand(3, 3, generator=g, dtype=torch.float64) + 0.5)
    w.fill_diagonal_(0.0)
    w.requires_grad_()
    # log-det outside its exact region (ρ(W∘W) > 0.99 s)
    assert torch.linalg.eigvals((w * w).detach()).real.max() > 1.0
    assert torch.autograd.gradcheck(h_logdet, (w,))
    # expm above its cap
    assert float(h_expm(w.detach())) > 1.0
    assert torch.autograd.gradcheck(lambda x: h_expm(x, cap=1.0), (w,))
    # expm in log space (||W∘W||_inf = 800 > 600: exp(W∘W) would overflow float64)
    big = (20.0 * w.detach() / w.detach().max()).requires_grad_()
    big_h = h_expm(big)
    assert torch.isfinite(big_h) and float(big_h.detach()) > 1e6
    assert torch.autograd.gradcheck(h_expm, (big,))


def test_expm_gradient_closed_form():
    g = torch.Generator().manual_seed(2)
    w = (0.4 * torch.randn(5, 5, generator=g, dtype=torch.float64)).requires_grad_()
    h_expm(w).backward()
    expected = torch.linalg.matrix_exp(w.detach() ** 2).T * 2 * w.detach()
    torch.testing.assert_close(w.grad, expected)


def test_logdet_gradient_closed_form():
    g = torch.Generator().manual_seed(3)
    w = (0.2 * torch.randn(5, 5, generator=g, dtype=torch.float64)).requires_grad_()
    s = 1.5
    h_logdet(w, s).backward()
    eye = torch.eye(5, dtype=torch.float64)
    expected = 2 * w.detach() * torch.linalg.inv(s * eye - w.detach() ** 2).T
    torch.testing.assert_close(w.grad, expected)


def test_logdet_continuous_across_boundary():
    base = _cycle(3, 1.0)  # ρ(W∘W) = t² for W = t * base
    for boundary in (0.9, 0.99):
        t0 = boundary ** 0.5
        vals, grads = [], []
        for t in (t0 * (1 - 1e-10), t0 * (1 + 1e-10)):
            w = (t * base).requires_grad_()
            h = h_logdet(w, boundary=boundary)
            h.backward()
            vals.append(float(h.detach()))
            grads.append(w.grad.clone())
        assert vals[0] == pytest.approx(vals[1], rel=1e-7)
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    # beyond the domain the penalty keeps growing
    hs = [float(h_logdet(t * base)) for t in (0.99, 1.0, 1.5, 3.0, 10.0)]
    assert all(b > a for a, b in zip(hs, hs[1:]))


@pytest.mark.parametrize("h", H_FUNCS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_weights_finite(h, dtype):
    w = torch.full((40, 40), 10.0, dtype=dtype)
    w.fill_diagonal_(0.0)
    w.requires_grad_()
    val = h(w)
    val.backward()
    assert torch.isfinite(val) and float(val.detach()) > 0
    assert torch.isfinite(w.grad).all() and float(w.grad.abs().max()) > 0
    # monotone in the scale: a larger cyclic W is penalised more
    assert float(h(2 * w.detach())) > float(val.detach())


def test_large_dag_is_still_zero():
    w = torch.triu(torch.full((40, 40), 10.0, dtype=torch.float64), diagonal=1)
    assert abs(float(h_expm(w))) < 1e-6
    assert abs(float(h_logdet(w))) < 1e-6


@pytest.mark.parametrize("h", H_FUNCS)
def test_bad_input(h):
    with pytest.raises(ValueError, match="square"):
        h(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        h(torch.tensor([[0.0, float("nan")], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="floating"):
        h(torch.zeros(2, 2, dtype=torch.long))


def test_bad_parameters():
    w = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="s must be"):
        h_logdet(w, 0.0)
    with pytest.raises(ValueError, match="boundary"):
        h_logdet(w, boundary=1.0)
    with pytest.raises(ValueError, match="cap"):
        h_expm(w, cap=-1.0)
