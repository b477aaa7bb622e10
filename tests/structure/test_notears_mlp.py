"""NotearsMLP: shapes, links, one-hot expansion, masks, regularisers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from xcausal.structure import (
    NotearsMLP,
    bipartite_mask,
    h_logdet,
    notears_objective,
    prox_l1_first_layer_,
)
from xcausal.types import VarType

C, B, K = VarType.CONTINUOUS, VarType.BINARY, VarType.CATEGORICAL


def _f(t: torch.Tensor) -> float:
    return float(t.detach())


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mixed_data(n: int = 64, seed: int = 0) -> torch.Tensor:
    g = _gen(seed)
    return torch.stack([
        torch.randn(n, generator=g),
        (torch.rand(n, generator=g) < 0.5).float(),
        torch.randint(0, 3, (n,), generator=g).float(),
        torch.randint(0, 4, (n,), generator=g).float(),
        torch.randn(n, generator=g),
    ], dim=1)


def _mixed_model(**kw) -> NotearsMLP:
    model = NotearsMLP(node_types=[C, B, K, K, C], n_categories=[1, 2, 3, 4, 1], hidden=(6, 5),
                       generator=_gen(1), **kw)
    with torch.no_grad():  # larger first-layer weights than the init
        model.fc1_weight.copy_(0.5 * torch.randn(model.fc1_weight.shape, generator=_gen(2)))
        model.fc1_weight.mul_(model._in_mask)
    return model


def test_shapes_and_widths():
    model = _mixed_model()
    assert model.d == 5
    assert model.in_width == 1 + 1 + 3 + 4 + 1
    assert model.out_width == 4
    assert model.fc1_weight.shape == (10, 5, 6)
    v = _mixed_data()
    x = model.expand(v)
    assert x.shape == (64, 10)
    # categorical columns are one-hot of the codes
    torch.testing.assert_close(x[:, 2:5], F.one_hot(v[:, 2].long(), 3).float())
    torch.testing.assert_close(x[:, 5:9], F.one_hot(v[:, 3].long(), 4).float())
    torch.testing.assert_close(x[:, [0, 1, 9]], v[:, [0, 1, 4]])
    out = model(v)
    assert out.shape == (64, 5, 4)
    parts = model.split(out)
    assert [tuple(p.shape) for p in parts] == [(64,), (64,), (64, 3), (64, 4), (64,)]
    # padded outputs are exactly zero
    assert _f(out[:, [0, 1, 4], 1:].abs().max()) == 0.0
    assert _f(out[:, 2, 3].abs().max()) == 0.0
    assert model.node_nll(v).shape == (64, 5)
    assert model.predict(v).shape == (64, 5)
    assert model.adjacency().shape == (5, 5)


def test_links_match_torch_losses():
    model = _mixed_model()
    with torch.no_grad():
        model.log_var.copy_(torch.tensor([0.3, 0.0, 0.0, 0.0, -0.7]))
    v = _mixed_data()
    out = model(v)
    nll = model.node_nll(v)
    # binary: BCE with logits
    torch.testing.assert_close(nll[:, 1], F.binary_cross_entropy_with_logits(out[:, 1, 0], v[:, 1], reduction="none"))
    # categorical: softmax cross-entropy over its own K logits
    torch.testing.assert_close(nll[:, 2], F.cross_entropy(out[:, 2, :3], v[:, 2].long(), reduction="none"))
    torch.testing.assert_close(nll[:, 3], F.cross_entropy(out[:, 3, :4], v[:, 3].long(), reduction="none"))
    # continuous: Gaussian NLL with the learned log-variance (no 0.5 log 2π)
    for j, lv in ((0, 0.3), (4, -0.7)):
        r = v[:, j] - out[:, j, 0]
        torch.testing.assert_close(nll[:, j], 0.5 * lv + 0.5 * r ** 2 / math.exp(lv))
    # total loss = mean over samples of the sum over nodes
    torch.testing.assert_close(notears_objective(model, v), nll.sum(1).mean())


def test_mse_score():
    model = NotearsMLP(node_types=[C, C, B], hidden=(4,), score="mse", generator=_gen())
    assert model.log_var is None
    g = _gen(3)
    v = torch.cat([torch.randn(32, 2, generator=g), (torch.rand(32, 1, generator=g) < 0.5).float()], 1)
    out = model(v)
    torch.testing.assert_close(model.node_nll(v)[:, :2], 0.5 * (v[:, :2] - out[:, :2, 0]) ** 2)


def test_gauss_nll_optimum_is_log_mse():
    """Minimising over σ² the Gaussian NLL gives 0.5 log MSE + 0.5 (scale-invariant score)."""
    model = NotearsMLP(node_types=[C, C], hidden=(3,), generator=_gen())
    v = torch.randn(50, 2, generator=_gen(4)) * torch.tensor([1.0, 7.0])
    with torch.no_grad():
        r = v - model(v)[:, :, 0]
        model.log_var.copy_(torch.log((r ** 2).mean(0)))
    expected = 0.5 * torch.log((r ** 2).mean(0)) + 0.5
    torch.testing.assert_close(model.node_nll(v).mean(0), expected)


def test_adjacency_reflects_categorical_parent():
    model = NotearsMLP(node_types=[C, K, C], n_categories=[1, 3, 1], hidden=(4,), init_radius=0.0,
                       generator=_gen())
    assert _f(model.adjacency().abs().max()) == 0.0  # starts empty
    w = torch.zeros_like(model.fc1_weight)
    w[1:4, 0, :] = torch.arange(12.0).reshape(3, 4) / 10  # all three one-hot columns of node 1 -> node 0
    with torch.no_grad():
        model.fc1_weight.copy_(w)
    adj = model.adjacency()
    expected = torch.zeros(3, 3)
    expected[1, 0] = torch.linalg.vector_norm(w[1:4, 0, :])
    torch.testing.assert_close(adj, expected)
    # node 0's prediction changes with node 1's category and nothing else
    v = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [5.0, 2.0, -3.0]])
    pred = model(v)[:, 0, 0]
    assert _f((pred[0] - pred[1]).abs()) > 1e-3
    assert _f((pred[1] - pred[2]).abs()) < 1e-6


def test_init_inside_logdet_domain():
    for d in (3, 10, 40):
        model = NotearsMLP(node_types=[C] * d, hidden=(10, 10), generator=_gen(d))
        a = model.adjacency().detach().double() ** 2
        rho = float(torch.linalg.eigvals(a).real.max())
        assert 0.1 < rho < 0.9
    # same generator seed -> same parameters
    m1 = NotearsMLP(node_types=[C, B], hidden=(4,), generator=_gen(3))
    m2 = NotearsMLP(node_types=[C, B], hidden=(4,), generator=_gen(3))
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2)


def test_bipartite_mask():
    m = bipartite_mask(["observed", "observed", "latent", "latent", "latent"])
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[:2, 2:] = True
    expected[2:, :2] = True
    assert m.dtype == torch.bool
    assert torch.equal(m, expected)
    with pytest.raises(ValueError, match="hidden"):
        bipartite_mask(["observed", "hidden"])


def test_mask_holds_through_training():
    kinds = ["observed", "observed", "latent", "latent"]
    allowed = bipartite_mask(kinds)
    model = NotearsMLP(node_types=[B, C, C, C], hidden=(5, 5), allowed=allowed, generator=_gen())
    with torch.no_grad():  # even if someone writes into disallowed weights, they are multiplied out
        model.fc1_weight.copy_(torch.randn(model.fc1_weight.shape, generator=_gen(5)))
    g = _gen(6)
    v = torch.cat([(torch.rand(100, 1, generator=g) < 0.5).float(), torch.randn(100, 3, generator=g)], 1)
    disallowed = ~allowed
    assert _f(model.adjacency()[disallowed].abs().max()) == 0.0
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        loss = notears_objective(model, v, lambda1=0.01, lambda2=0.01) + h_logdet(model.adjacency())
        loss.backward()
        # disallowed first-layer weights receive exactly zero gradient
        gmask = disallowed[model._src][:, :, None].expand_as(model.fc1_weight)
        assert _f(model.fc1_weight.grad[gmask].abs().max()) == 0.0
        opt.step()
    adj = model.adjacency()
    assert _f(adj[disallowed].abs().max()) == 0.0
    assert _f(adj[allowed].abs().min()) > 0.0


def test_diagonal_always_disallowed():
    model = NotearsMLP(node_types=[C, C, C], hidden=(3,), allowed=np.ones((3, 3), dtype=bool), generator=_gen())
    assert not model.allowed.diagonal().any()
    with torch.no_grad():
        model.fc1_weight.fill_(1.0)
    assert _f(model.adjacency().diagonal().abs().max()) == 0.0
    # the model cannot see a node when predicting it
    v = torch.randn(4, 3, generator=_gen(7))
    v2 = v.clone()
    v2[:, 0] += 10.0
    torch.testing.assert_close(model(v)[:, 0], model(v2)[:, 0])


def test_adjacency_gradient_finite_at_zero():
    model = NotearsMLP(node_types=[C, C, C], hidden=(3,), generator=_gen())
    w = model.adjacency()
    (w.sum() + h_logdet(w)).backward()
    assert torch.isfinite(model.fc1_weight.grad).all()


def test_regularisers_and_prox():
    model = _mixed_model()
    w1 = model.fc1_weight * model._in_mask
    torch.testing.assert_close(model.l1_first_layer(), w1.abs().sum())
    l2 = (w1 ** 2).sum() + sum((w ** 2).sum() for w in model.lc_weights)
    torch.testing.assert_close(model.l2_reg(), 0.5 * l2)
    # the prox step with plain SGD soft-thresholds by lr * lambda1
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.fc1_weight.detach().clone()
    prox_l1_first_layer_(model, opt, 2.0)
    expected = torch.sign(before) * torch.clamp(before.abs() - 0.2, min=0.0)
    torch.testing.assert_close(model.fc1_weight.detach(), expected)
    assert int((model.fc1_weight == 0).sum()) > int((before == 0).sum())
    with pytest.raises(ValueError, match="lambda1"):
        prox_l1_first_layer_(model, opt, -1.0)


def test_differentiable_in_v():
    model = _mixed_model()
    v = _mixed_data().requires_grad_()
    model.node_nll(v).sum().backward()
    assert _f(v.grad[:, [0, 1, 4]].abs().sum()) > 0  # continuous and binary inputs get gradients
    assert _f(v.grad[:, [2, 3]].abs().sum()) == 0  # categorical codes do not


def test_dtype_follows_module():
    model = _mixed_model().to(torch.float64)
    v = _mixed_data().double()
    assert model.node_nll(v).dtype == torch.float64
    assert model.adjacency().dtype == torch.float64
    with pytest.raises(ValueError, match="float32"):
        model(v.float())


def test_predict():
    model = _mixed_model()
    v = _mixed_data()
    pred = model.predict(v)
    out = model(v)
    torch.testing.assert_close(pred[:, 0], out[:, 0, 0])
    torch.testing.assert_close(pred[:, 1], torch.sigmoid(out[:, 1, 0]))
    torch.testing.assert_close(pred[:, 3], out[:, 3, :4].argmax(1).float())
    torch.testing.assert_close(model.predict_continuous(v), pred)


def test_validation_errors():
    with pytest.raises(ValueError, match="n_categories is required"):
        NotearsMLP(node_types=[C, K])
    with pytest.raises(ValueError, match="at least 2"):
        NotearsMLP(node_types=[C, K], n_categories=[1, 1])
    with pytest.raises(ValueError, match="entries for 2 nodes"):
        NotearsMLP(node_types=[C, C], n_categories=[1])
    with pytest.raises(ValueError, match="unknown node type"):
        NotearsMLP(node_types=["continuous", "ordinal"])
    with pytest.raises(ValueError, match="shape"):
        NotearsMLP(node_types=[C, C], allowed=np.ones((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="hidden"):
        NotearsMLP(node_types=[C, C], hidden=())
    with pytest.raises(ValueError, match="score"):
        NotearsMLP(node_types=[C, C], score="l1")
    model = _mixed_model()
    v = _mixed_data()
    with pytest.raises(ValueError, match="shape"):
        model(v[:, :3])
    bad = v.clone()
    bad[0, 2] = 3.0  # K = 3 -> codes 0..2
    with pytest.raises(ValueError, match="codes 0..2"):
        model(bad)
    bad = v.clone()
    bad[0, 1] = 0.5
    with pytest.raises(ValueError, match="0/1"):
        model.node_nll(bad)


def test_string_node_types_and_ignored_categories():
    # CMCL passes n_categories = 2 for binary and 1 for continuous nodes
    model = NotearsMLP(node_types=["binary", "continuous"], n_categories=[2, 1], hidden=(3,))
    assert model.node_types == [B, C]
    assert model.in_width == 2 and model.out_width == 1
