"""h_expm / h_logdet with large weights: no overflow, exact zeros on DAGs, finite gradients."""

from __future__ import annotations

import math

import pytest
import torch

from xcausal.structure import h_expm, h_logdet

H_FUNCS = [h_expm, h_logdet]


def permuted_dag(d: int, scale: float, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.triu(torch.randn(d, d, generator=g, dtype=torch.float64) * scale, diagonal=1)
    w = w * (torch.rand(d, d, generator=g, dtype=torch.float64) < 0.3)
    p = torch.randperm(d, generator=g)
    return w[p][:, p].to(dtype)


def value_and_grad(h, w: torch.Tensor) -> tuple[float, torch.Tensor]:
    w = w.clone().requires_grad_(True)
    v = h(w)
    (g,) = torch.autograd.grad(v, w)
    return float(v.detach()), g


@pytest.mark.parametrize("h", H_FUNCS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [10, 40])
@pytest.mark.parametrize("scale", [3.0, 10.0, 1e3, 1e5])
def test_dag_with_large_weights_is_zero(h, dtype, d, scale):
    # before the per-component evaluation: h_logdet = -12.3 (d = 40, weights ~10; an LU of the
    # permuted DAG), h_expm = -d with a NaN gradient (weights 1e3; scaling and squaring underflowed)
    v, g = value_and_grad(h, permuted_dag(d, scale, seed=int(scale) + d, dtype=dtype))
    assert abs(v) <= 1e-9
    assert torch.isfinite(g).all() and float(g.abs().max()) <= 1e-9


@pytest.mark.parametrize("h", H_FUNCS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cyclic_weights_of_1e3_are_finite(h, dtype):
    dense = torch.full((12, 12), 1e3, dtype=dtype)
    dense.fill_diagonal_(0.0)
    mixed = permuted_dag(12, 1e3, seed=3, dtype=dtype)
    mixed[5, 2] = mixed[2, 7] = mixed[7, 5] = 1e3  # one 3-cycle inside a heavy DAG
    for w in (dense, mixed):
        v, g = value_and_grad(h, w)
        assert math.isfinite(v) and v > 0
        assert torch.isfinite(g).all() and float(g.abs().max()) > 0
        assert float(h(2 * w)) > v  # still increasing in the scale


def test_entries_between_components_get_zero_gradient():
    # a 2-cycle {0, 1} feeding a DAG part 1 -> 2 -> 3 with large weights
    w = torch.zeros(4, 4, dtype=torch.float64)
    w[0, 1], w[1, 0], w[1, 2], w[2, 3] = 1.2, 0.9, 50.0, 80.0
    for h in H_FUNCS:
        _, g = value_and_grad(h, w)
        assert float(g[1, 2]) == 0.0 and float(g[2, 3]) == 0.0
        assert float(g[0, 1]) > 0 and float(g[1, 0]) > 0


def _logdet_reference(w: torch.Tensor, boundary: float = 0.99) -> torch.Tensor:
    """The dense formula (exact region and radial continuation) on the whole matrix."""
    a = w * w
    eye = torch.eye(len(a), dtype=a.dtype)
    rho = float(torch.linalg.eigvals(a.detach()).real.max())
    if rho < boundary:
        return -torch.linalg.slogdet(eye - a)[1]
    t = rho / boundary
    m = eye - a / t
    return -torch.linalg.slogdet(m)[1] + torch.diagonal(torch.linalg.solve(m, a / t)).sum() * (t - 1.0)


@pytest.mark.parametrize("cycle_weight", [0.5, 0.9, 1.5])
def test_logdet_matches_the_dense_formula_where_that_is_accurate(cycle_weight):
    w = permuted_dag(8, 1.0, seed=7)
    w[3, 5], w[5, 6], w[6, 3] = cycle_weight, 0.8, 1.1
    assert float((w * w).sum(1).max()) >= 0.99  # the component path, not the cheap one
    ref = _logdet_reference(w)
    val = h_logdet(w)
    assert float(val) == pytest.approx(float(ref), rel=1e-9, abs=1e-12)
    if float(torch.linalg.eigvals((w * w)).real.max()) < 0.99:  # the reference's gradient is exact there
        _, g = value_and_grad(h_logdet, w)
        wr = w.clone().requires_grad_(True)
        (gr,) = torch.autograd.grad(_logdet_reference(wr), wr)
        torch.testing.assert_close(g, gr, rtol=1e-7, atol=1e-10)


def test_expm_matches_the_dense_exponential_on_a_heavy_dag_with_a_cycle():
    w = permuted_dag(10, 30.0, seed=11)  # ||W∘W||_inf > 600: the component path
    w[1, 4], w[4, 8], w[8, 1] = 0.7, 1.1, 0.9
    assert float((w * w).sum(1).max()) > 600
    ref = torch.diagonal(torch.linalg.matrix_exp(w * w)).sum() - 10  # accurate: the entries stay small
    assert float(h_expm(w, cap=1e300)) == pytest.approx(float(ref), rel=1e-9)  # (no log continuation)


def test_irreducible_block_with_extreme_weights_is_balanced():
    # a 40-cycle with 39 weights of 1e3 and one of 1e-120: rho(W∘W)^40 = 1e234 * 1e-240 = 1e-6, so
    # h_logdet = -log(1 - 1e-6) and h_expm ~ 40 * 1e-6 / 40! ~ 0. Unbalanced, exp(W∘W) has entries ~1e188
    # (measured without the balancing: h_logdet = 4.6e-11, h_expm fails: its diagonal underflows)
    d = 40
    w = torch.zeros(d, d, dtype=torch.float64)
    for i in range(d - 1):
        w[i, i + 1] = 1e3
    w[d - 1, 0] = 1e-120
    v, g = value_and_grad(h_logdet, w)
    assert v == pytest.approx(-math.log1p(-1e-6), rel=1e-6, abs=0) and torch.isfinite(g).all()
    v, g = value_and_grad(h_expm, w)
    assert 0 <= v <= 1e-9 and torch.isfinite(g).all()


@pytest.mark.parametrize("h", H_FUNCS)
def test_value_beyond_float32_range_raises(h):
    w = torch.full((6, 6), 1e19, dtype=torch.float32)
    w.fill_diagonal_(0.0)
    with pytest.raises(FloatingPointError, match="float32"):
        h(w)
    assert math.isfinite(float(h(w.double())))
