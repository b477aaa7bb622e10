"""Graph-gradient DAG over binary nodes: acyclicity by construction, Markov factorization, sampling."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from xcausal.structure.graph_gradient import GraphGradientDAG, binary_outcomes, sample_outcomes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random_dag(n: int, seed: int) -> GraphGradientDAG:
    g = torch.Generator().manual_seed(seed)
    dag = GraphGradientDAG(n)
    with torch.no_grad():
        dag.scores.copy_(torch.randn(n, generator=g) * 3)
        dag.weights.copy_(torch.randn(n, n, generator=g) * 2)
        dag.bias.copy_(torch.randn(n, generator=g))
    return dag


def test_binary_outcomes_enumerates_every_joint_outcome_once():
    b = binary_outcomes(4)
    assert b.shape == (16, 4)
    assert len({tuple(r) for r in b.int().tolist()}) == 16
    assert b[5].tolist() == [1.0, 0.0, 1.0, 0.0]  # bit j of c
    with pytest.raises(ValueError, match="nodes"):
        binary_outcomes(0)


@pytest.mark.parametrize("n", [2, 3, 6, 9])
def test_hardened_graph_is_acyclic_for_random_scores_and_weights(n):
    for seed in range(50):
        dag = _random_dag(n, seed)
        for thr in (0.0, 0.5):
            a = dag.hard_adjacency(thr)
            g = nx.DiGraph(list(zip(*np.nonzero(a))))
            assert nx.is_directed_acyclic_graph(g), (n, seed, thr)
            order = dag.topological_order()
            pos = {v: k for k, v in enumerate(order)}
            assert all(pos[i] < pos[j] for i, j in zip(*np.nonzero(a)))


def test_tied_scores_keep_neither_direction():
    dag = GraphGradientDAG(2)
    with torch.no_grad():
        dag.scores.zero_()
        dag.weights.fill_(3.0)
    assert (dag.hard_adjacency() == 0).all()


def test_gate_is_the_graph_gradient_and_sharpens_with_tau():
    dag = _random_dag(4, 0)
    s = dag.scores.detach()
    dag.set_tau(1.0)
    g = dag.gate().detach()
    assert torch.allclose(g[0, 1], torch.sigmoid(s[1] - s[0]))
    assert torch.all(torch.diagonal(g) == 0)
    dag.set_tau(1e-4)
    g = dag.gate().detach()
    up = (s[None, :] > s[:, None]).float()
    assert torch.allclose(g, up * (1 - torch.eye(4)), atol=1e-6)
    with pytest.raises(ValueError, match="tau"):
        dag.set_tau(0.0)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_mixture_weights_sum_to_one_soft_and_hard(n):
    dag = _random_dag(n, 1)
    for lw in (dag.log_weights(), dag.hard_log_weights(0.3)):
        assert lw.shape == (2 ** n,)
        assert torch.isfinite(lw).all()
        assert abs(float(lw.detach().exp().sum()) - 1.0) < 1e-5


def test_hard_weights_factorize_per_the_dag():
    """π_c equals Π_j p(b_j | b_pa(j)) with no renormalisation once the graph is hard."""
    dag = _random_dag(4, 2)
    a = dag.hard_adjacency(0.0)
    assert (a != 0).sum() >= 2
    lw = dag.hard_log_weights(0.0).detach().numpy()
    bias = dag.bias.detach().numpy()
    for c in range(16):
        b = np.array([(c >> j) & 1 for j in range(4)], dtype=float)
        logp = 0.0
        for j in range(4):
            p1 = 1 / (1 + np.exp(-(bias[j] + b @ a[:, j])))
            logp += np.log(p1 if b[j] else 1 - p1)
        assert lw[c] == pytest.approx(logp, abs=1e-5)
    # unnormalised sum of conditionals is already a distribution
    a_t = torch.as_tensor(a, dtype=torch.float32)
    total = torch.logsumexp(dag.log_conditionals(a_t).sum(1), 0).detach()
    assert abs(float(total)) < 1e-5


def test_v_structure_marginals_match_the_conditionals():
    """f0 -> f2 <- f1: f0 and f1 are independent under π, f2 depends on both."""
    dag = GraphGradientDAG(3)
    with torch.no_grad():
        dag.scores.copy_(torch.tensor([0.0, 0.1, 1.0]))
        dag.weights.zero_()
        dag.weights[0, 2] = 2.5
        dag.weights[1, 2] = 2.5
        dag.bias.copy_(torch.tensor([0.0, 0.0, -2.5]))
    pi = dag.hard_log_weights().exp().detach().numpy()
    b = binary_outcomes(3).numpy()
    p01 = np.array([[pi[(b[:, 0] == i) & (b[:, 1] == j)].sum() for j in (0, 1)] for i in (0, 1)])
    assert np.allclose(p01, 0.25, atol=1e-6)
    p2_given = pi[(b[:, 0] == 1) & (b[:, 1] == 1) & (b[:, 2] == 1)].sum() / 0.25
    assert p2_given == pytest.approx(1 / (1 + np.exp(-2.5)), abs=1e-6)


def test_gradients_reach_scores_weights_and_bias():
    dag = _random_dag(3, 3)
    target = torch.softmax(torch.randn(8, generator=torch.Generator().manual_seed(0)), 0)
    loss = -(target * dag.log_weights()).sum() + 0.01 * dag.l1()
    loss.backward()
    for p in (dag.scores, dag.weights, dag.bias):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_sample_outcomes_sets_do_and_resamples_only_descendants():
    a = np.zeros((3, 3))
    a[0, 2] = 4.0  # f0 -> f2; f1 isolated
    bias = torch.tensor([0.0, 0.0, -2.0])
    bits = torch.zeros(4000, 3)
    bits[:, 1] = 1
    gen = torch.Generator().manual_seed(0)
    out = sample_outcomes(bits, a, bias, {0: 1}, generator=gen)
    assert (out[:, 0] == 1).all()
    assert (out[:, 1] == 1).all()  # non-descendant kept
    assert abs(float(out[:, 2].mean()) - 1 / (1 + np.exp(-2.0))) < 0.03
    out0 = sample_outcomes(bits, a, bias, {2: 0}, generator=torch.Generator().manual_seed(0))
    assert (out0[:, 2] == 0).all() and torch.equal(out0[:, :2], bits[:, :2])  # no descendants of f2
    assert torch.equal(bits[:, 0], torch.zeros(4000))  # input untouched
    with pytest.raises(ValueError, match="cycle"):
        sample_outcomes(bits, a + a.T, bias, {0: 1}, generator=gen)
    with pytest.raises(ValueError, match="0 or 1"):
        sample_outcomes(bits, a, bias, {0: 2}, generator=gen)
