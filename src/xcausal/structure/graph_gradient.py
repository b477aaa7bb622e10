"""A DAG over binary nodes parametrized by a graph gradient (causalPIMA's DAG; docs/methods/causal_pima.md).

Every node ``j`` has a trainable score ``s_j``. The edge ``i -> j`` is gated by
``g_ij = σ((s_j − s_i) / τ)`` and carries a trainable weight ``w_ij``; the soft adjacency is
``A = g ∘ w`` (zero diagonal). The gate is the graph gradient of the score field: as the
temperature ``τ`` is annealed to 0 it becomes the indicator ``s_j > s_i``, and edges that only
run uphill in a scalar potential can never close a cycle. :meth:`GraphGradientDAG.hard_adjacency`
is that limit (plus a weight threshold), acyclic by construction for any parameters.

The nodes are binary, ``b ∈ {0, 1}^n``, with logistic conditionals
``p(b_j = 1 | b_pa(j)) = σ(c_j + Σ_i A_ij b_i)``. :meth:`log_weights` gives the log-probability of
every joint outcome (the K = 2^n mixture weights of causalPIMA's prior). For a soft graph the
product of conditionals is renormalised over the 2^n outcomes (a log-softmax); for an acyclic
graph the product is already normalised (the Markov factorization), so the renormalisation
changes nothing and ``π_c = Π_j p(b_j(c) | b_pa(j)(c))`` exactly.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GraphGradientDAG", "binary_outcomes", "sample_outcomes"]


def binary_outcomes(n: int, *, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """All 2^n joint outcomes of n binary nodes, (2^n, n): row c has bit j = (c >> j) & 1."""
    if n < 1 or n > 16:
        raise ValueError(f"binary_outcomes: n = {n} nodes; need 1 <= n <= 16 (2^n mixture components)")
    c = torch.arange(2 ** n, device=device)
    return ((c[:, None] >> torch.arange(n, device=device)[None, :]) & 1).to(dtype)


class GraphGradientDAG(nn.Module):
    """Binary-node DAG whose edges are gated by the gradient of trainable node scores.

    Parameters
    ----------
    n_nodes : int
        Number of binary nodes n (the mixture has 2^n components).
    tau : float
        Initial temperature of the gate; change it with :meth:`set_tau`.
    score_init : float
        Standard deviation of the random initial scores (drawn from the global torch generator,
        which callers seed; equal scores would leave every gate at exactly 1/2).
    """

    def __init__(self, n_nodes: int, *, tau: float = 1.0, score_init: float = 0.1) -> None:
        super().__init__()
        if n_nodes < 1:
            raise ValueError(f"n_nodes = {n_nodes}: need at least one node")
        self.n_nodes = int(n_nodes)
        self.scores = nn.Parameter(score_init * torch.randn(n_nodes))
        self.weights = nn.Parameter(torch.zeros(n_nodes, n_nodes))
        self.bias = nn.Parameter(torch.zeros(n_nodes))
        self.register_buffer("tau", torch.tensor(float(tau)))
        self.register_buffer("outcomes", binary_outcomes(n_nodes))
        self.register_buffer("offdiag", 1.0 - torch.eye(n_nodes))

    def set_tau(self, tau: float) -> None:
        if not (tau > 0 and math.isfinite(tau)):
            raise ValueError(f"tau = {tau}: must be a positive number")
        self.tau.fill_(float(tau))

    def gate(self) -> torch.Tensor:
        """(n, n): ``σ((s_j − s_i) / τ)`` at [i, j], zero diagonal."""
        diff = self.scores[None, :] - self.scores[:, None]
        return torch.sigmoid(diff / self.tau) * self.offdiag

    def adjacency(self) -> torch.Tensor:
        """Soft weighted adjacency ``A = gate ∘ w`` (n, n), A[i, j] for edge i -> j (logit units)."""
        return self.gate() * self.weights

    @torch.no_grad()
    def hard_adjacency(self, threshold: float = 0.0) -> np.ndarray:
        """The τ → 0 limit: ``w_ij`` where ``s_j > s_i`` and ``|w_ij| > threshold``, else 0.

        Acyclic for every value of the parameters: all kept edges point up the score order
        (ties in score keep neither direction).
        """
        s = self.scores.detach().cpu().double()
        up = (s[None, :] > s[:, None]).numpy()
        w = self.weights.detach().cpu().double().numpy()
        return np.where(up & (np.abs(w) > threshold), w, 0.0)

    def topological_order(self) -> list[int]:
        """Nodes by increasing score (a topological order of :meth:`hard_adjacency`)."""
        return [int(i) for i in torch.argsort(self.scores.detach().cpu(), stable=True)]

    def log_conditionals(self, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        """(2^n, n): ``log p(b_j(c) | b_pa(j)(c))`` for every outcome c and node j."""
        a = self.adjacency() if adjacency is None else adjacency
        b = self.outcomes.to(a.dtype)
        logits = self.bias.to(a.dtype)[None, :] + b @ a
        return b * F.logsigmoid(logits) + (1 - b) * F.logsigmoid(-logits)

    def log_weights(self, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        """Log mixture weights (2^n,): the product of conditionals, renormalised over outcomes."""
        return torch.log_softmax(self.log_conditionals(adjacency).sum(1), dim=0)

    def hard_log_weights(self, threshold: float = 0.0) -> torch.Tensor:
        """Log mixture weights of the hardened DAG (exactly the Markov factorization)."""
        a = torch.as_tensor(self.hard_adjacency(threshold), dtype=self.weights.dtype, device=self.weights.device)
        return self.log_weights(a)

    def l1(self) -> torch.Tensor:
        """Σ |A_ij|: the sparsity penalty on the soft adjacency."""
        return self.adjacency().abs().sum()


def sample_outcomes(bits: torch.Tensor, adjacency: np.ndarray, bias: torch.Tensor, do: dict[int, int], *,
                    generator: torch.Generator) -> torch.Tensor:
    """Joint outcomes after ``do(b_j = v)``: intervened nodes set, their descendants resampled.

    Parameters
    ----------
    bits : (N, n) tensor of 0/1 — each sample's current outcome (not modified)
    adjacency : (n, n) acyclic weighted adjacency (logit units), e.g. :meth:`GraphGradientDAG.hard_adjacency`
    bias : (n,) node biases
    do : node index -> value in {0, 1}
    generator : torch generator for the resampling (explicit randomness; the global RNG is never used)

    Returns
    -------
    (N, n) tensor of 0/1: non-descendants of the intervened nodes keep their value; descendants
    are drawn from their conditionals given their (possibly new) parents, in topological order.
    """
    n = bits.shape[1]
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(*map(lambda a: a.tolist(), np.nonzero(adjacency))))
    if not nx.is_directed_acyclic_graph(g):
        raise ValueError("sample_outcomes: adjacency has a cycle")
    for j, v in do.items():
        if not 0 <= j < n:
            raise ValueError(f"do(): node index {j} out of range for {n} nodes")
        if v not in (0, 1):
            raise ValueError(f"do(): node {j} value {v} must be 0 or 1")
    desc: set[int] = set()
    for j in do:
        desc |= nx.descendants(g, j)
    desc -= set(do)
    out = bits.clone().to(torch.float32)
    for j, v in do.items():
        out[:, j] = float(v)
    a = torch.as_tensor(adjacency, dtype=torch.float32, device=bits.device)
    for j in nx.topological_sort(g):
        if j in desc:
            p = torch.sigmoid(bias.detach().to(torch.float32)[j] + out @ a[:, j])
            u = torch.rand(p.shape, generator=generator, device=generator.device).to(p.device)
            out[:, j] = (u < p).float()
    return out
