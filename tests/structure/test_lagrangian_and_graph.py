"""AugmentedLagrangian dual updates and threshold_to_dag."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pytest
import torch

from xcausal.structure import AugmentedLagrangian, threshold_to_dag


# ----------------------------------------------------------------------------- augmented Lagrangian
def test_penalty_value_and_gradient():
    alm = AugmentedLagrangian(rho_init=2.0, alpha_init=0.5)
    h = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    p = alm.penalty(h)
    assert float(p.detach()) == pytest.approx(0.5 * 2.0 * 0.09 + 0.5 * 0.3)
    p.backward()
    assert float(h.grad) == pytest.approx(2.0 * 0.3 + 0.5)


def test_update_rule():
    alm = AugmentedLagrangian()
    assert (alm.rho, alm.alpha, alm.h_prev) == (1.0, 0.0, math.inf)
    alm.update(0.4)  # first update: any h counts as progress
    assert alm.rho == 1.0 and alm.alpha == pytest.approx(0.4) and alm.h_prev == 0.4
    alm.update(0.2)  # 0.2 > 0.25 * 0.4: not enough progress -> rho * 10, then alpha += rho h
    assert alm.rho == 10.0 and alm.alpha == pytest.approx(0.4 + 10 * 0.2)
    alm.update(0.01)  # 0.01 <= 0.25 * 0.2: progress, rho kept
    assert alm.rho == 10.0 and alm.alpha == pytest.approx(2.4 + 0.1)
    assert alm.h_prev == 0.01 and alm.n_updates == 3
    assert not alm.converged
    alm.update(1e-9)
    assert alm.converged


def test_rho_capped_and_converged_at_rho_max():
    alm = AugmentedLagrangian(rho_max=500.0, rho_mult=10)
    for _ in range(5):
        alm.update(1.0)
    assert alm.rho == 500.0
    assert alm.converged


def test_state_dict_round_trip():
    alm = AugmentedLagrangian(rho_init=3.0, h_tol=1e-6)
    alm.update(0.5)
    alm.update(0.4)
    state = alm.state_dict()
    json.dumps(state)
    fresh = AugmentedLagrangian()
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    # continuing gives the same trajectory
    alm.update(0.05)
    fresh.update(0.05)
    assert fresh.state_dict() == alm.state_dict()
    with pytest.raises(ValueError, match="missing keys"):
        fresh.load_state_dict({"rho": 1.0})


def test_update_validation():
    alm = AugmentedLagrangian()
    with pytest.raises(ValueError, match="finite"):
        alm.update(float("nan"))
    with pytest.raises(ValueError, match=">= 0"):
        alm.update(-1.0)
    with pytest.raises(ValueError, match="progress_rate"):
        AugmentedLagrangian(progress_rate=1.5)
    with pytest.raises(ValueError, match="rho_init"):
        AugmentedLagrangian(rho_init=0.0)
    with pytest.raises(ValueError, match="rho_mult"):
        AugmentedLagrangian(rho_mult=1.0)


# ----------------------------------------------------------------------------- threshold_to_dag
def test_threshold_to_dag_breaks_cycles():
    w = np.zeros((5, 5))
    w[0, 1], w[1, 2], w[2, 0] = 0.9, 0.8, -0.5  # 3-cycle, weakest |W| is 2->0
    w[2, 3], w[3, 2] = 0.7, 0.6  # 2-cycle, weakest is 3->2
    w[3, 4] = 0.4
    w[4, 0] = 0.2  # below threshold: removed, not reported
    original = w.copy()
    dag, dropped = threshold_to_dag(w, 0.3)
    np.testing.assert_array_equal(w, original)  # input untouched
    assert sorted(dropped) == [(2, 0, -0.5), (3, 2, 0.6)]
    assert nx.is_directed_acyclic_graph(nx.DiGraph(dag))
    expected = original.copy()
    expected[2, 0] = expected[3, 2] = expected[4, 0] = 0.0
    np.testing.assert_array_equal(dag, expected)


def test_threshold_to_dag_no_cycle_and_self_loop():
    w = np.array([[0.0, 0.5], [0.1, 0.0]])
    dag, dropped = threshold_to_dag(w, 0.3)
    assert dropped == []
    np.testing.assert_array_equal(dag, [[0.0, 0.5], [0.0, 0.0]])
    loop = np.array([[0.9, 0.5], [0.0, 0.0]])
    dag, dropped = threshold_to_dag(loop, 0.3)
    assert dropped == [(0, 0, 0.9)]
    assert dag[0, 0] == 0.0


def test_threshold_to_dag_validation():
    with pytest.raises(ValueError, match="square"):
        threshold_to_dag(np.zeros((2, 3)), 0.3)
    with pytest.raises(ValueError, match="threshold"):
        threshold_to_dag(np.zeros((2, 2)), -0.1)
    with pytest.raises(ValueError, match="NaN"):
        threshold_to_dag(np.array([[0.0, np.nan], [0.0, 0.0]]), 0.3)
