"""Tabular nonlinear SEM simulators (NOTEARS-style) for the DAG learners' tests and benchmarks.

Pure numpy with an explicit ``np.random.Generator``; no global state.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

__all__ = ["simulate_er_dag", "simulate_mlp_sem"]


def simulate_er_dag(d: int, n_edges: int, rng: np.random.Generator) -> np.ndarray:
    """Binary adjacency of a random DAG with ``n_edges`` edges (random order, uniform pairs)."""
    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
    chosen = rng.choice(len(pairs), size=min(n_edges, len(pairs)), replace=False)
    b = np.zeros((d, d))
    for k in chosen:
        b[pairs[k]] = 1.0
    perm = rng.permutation(d)
    return b[perm][:, perm]


def simulate_mlp_sem(b: np.ndarray, n: int, rng: np.random.Generator, *, hidden: int = 100,
            min_signal_std: float = 1.0, signal_std: float | None = None, max_linear_r2: float = 1.0,
            hidden_bias: float = 0.0, max_draws: int = 2000) -> np.ndarray:
    """x_j = sigmoid(x_pa @ W1) @ W2 + N(0, 1), W1, W2 ~ U(±[0.5, 2]) (NOTEARS 'mlp' SEM).

    ``b`` (d, d) binary adjacency of a DAG; nodes are generated in topological order. Unlike the
    NOTEARS simulator, a draw of (W1, W2) whose signal ``f(x_pa)`` has a standard deviation below
    ``min_signal_std`` is redrawn (with random signs the hidden units often cancel), and parents
    enter the sigmoids standardised (an offset parent saturates every unit): otherwise many edges
    carry no information and no method can recover them. ``signal_std`` (optional) rescales every
    mechanism to that standard deviation: the raw signals are often 5-10x the noise, which makes
    relations nearly deterministic after standardisation (and neighbours nearly interchangeable).
    ``max_linear_r2`` rejects mechanisms that a linear function of the parents explains that well:
    with standardised parents the NOTEARS mechanisms are nearly linear (median R² ≈ 0.95), and a
    nearly linear-Gaussian edge has almost no orientation signal once the data are standardised.
    ``hidden_bias`` adds U(-b, b) biases to the hidden units (without them every mechanism is an odd
    function of its parent plus a constant, hence mostly monotone).
    """
    d = b.shape[0]
    order = list(nx.topological_sort(nx.DiGraph(b)))
    x = np.zeros((n, d))
    for j in order:
        pa = np.nonzero(b[:, j])[0]
        z = rng.normal(size=n)
        if len(pa) == 0:
            x[:, j] = z
            continue
        xp = (x[:, pa] - x[:, pa].mean(0)) / x[:, pa].std(0)
        for _ in range(max_draws):
            w1 = rng.uniform(0.5, 2.0, size=(len(pa), hidden)) * rng.choice([-1, 1], size=(len(pa), hidden))
            w2 = rng.uniform(0.5, 2.0, size=hidden) * rng.choice([-1, 1], size=hidden)
            c = rng.uniform(-hidden_bias, hidden_bias, size=hidden) if hidden_bias else 0.0
            f = (1.0 / (1.0 + np.exp(-(xp @ w1 + c)))) @ w2
            if f.std() >= min_signal_std and _linear_r2(xp, f) <= max_linear_r2:
                break
        else:
            raise RuntimeError(f"no informative mechanism for node {j} in {max_draws} draws")
        if signal_std is not None:
            f = (f - f.mean()) * (signal_std / f.std())
        x[:, j] = f + z
    return x


def _linear_r2(xp: np.ndarray, f: np.ndarray) -> float:
    a = np.column_stack([xp, np.ones(len(f))])
    coef, *_ = np.linalg.lstsq(a, f, rcond=None)
    resid = f - a @ coef
    return float(1.0 - resid.var() / f.var())
