import networkx as nx
import numpy as np

from xcausal.data.tabular import simulate_er_dag, simulate_mlp_sem


def test_er_dag_shape_and_acyclic():
    b = simulate_er_dag(10, 12, np.random.default_rng(0))
    assert b.shape == (10, 10) and b.sum() == 12
    assert nx.is_directed_acyclic_graph(nx.DiGraph(b))


def test_mlp_sem_deterministic_and_respects_constraints():
    b = simulate_er_dag(6, 6, np.random.default_rng(1))
    x1 = simulate_mlp_sem(b, 500, np.random.default_rng(2), max_linear_r2=0.5, hidden_bias=2.0)
    x2 = simulate_mlp_sem(b, 500, np.random.default_rng(2), max_linear_r2=0.5, hidden_bias=2.0)
    np.testing.assert_array_equal(x1, x2)
    roots = np.flatnonzero(b.sum(0) == 0)
    assert np.all(np.abs(x1[:, roots].std(0) - 1.0) < 0.1)  # roots are pure N(0, 1) noise
    children = np.flatnonzero(b.sum(0) > 0)
    assert np.all(x1[:, children].std(0) > 1.2)  # signal std >= 1 on top of unit noise
