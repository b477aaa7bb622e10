"""NOTEARS-MLP (Zheng et al. 2020) for mixed continuous / binary / categorical nodes, pure torch.

Parts, in the model / loss / trainer split of the design notes:

* :class:`NotearsMLP` -- the model: one MLP per node predicting it from all (allowed) other nodes;
  ``W[i, j]`` = L2 norm of the first-layer weights from node i's input columns into node j's MLP.
* :func:`notears_objective` -- score + L1/L2 regularisation (a plain function); the acyclicity
  functions live in :mod:`xcausal.structure._acyclicity`, the dual updates in
  :class:`~xcausal.structure.AugmentedLagrangian`.
* :class:`NotearsTrainer` / :func:`fit_notears` -- the standalone full-batch augmented-Lagrangian
  learner for tabular data.

The same :class:`NotearsMLP` is used inside CMCL, where ``V = [u, z]`` changes every step: all
methods are batched, pure torch, and differentiable in ``V`` (continuous and binary columns) as well
as in the parameters.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xcausal.structure._acyclicity import h_expm, h_logdet
from xcausal.structure._graph import threshold_to_dag
from xcausal.structure._lagrangian import AugmentedLagrangian
from xcausal.types import VarType

__all__ = [
    "NotearsMLP",
    "notears_objective",
    "prox_l1_first_layer_",
    "NotearsTrainer",
    "NotearsResult",
    "fit_notears",
    "Score",
    "HFunc",
    "InnerOptimizer",
]

logger = logging.getLogger(__name__)

Score = Literal["gauss_nll", "mse"]
HFunc = Literal["logdet", "expm"]
_SCORES = ("gauss_nll", "mse")
_HFUNCS = ("logdet", "expm")
InnerOptimizer = Literal["lbfgsb", "adam"]
_OPTIMIZERS = ("lbfgsb", "adam")


def _as_var_types(node_types: Sequence[VarType | str]) -> list[VarType]:
    out = []
    for t in node_types:
        try:
            out.append(VarType(t))
        except ValueError:
            raise ValueError(f"unknown node type {t!r} (expected one of {[v.value for v in VarType]})") from None
    return out


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` with gradient 0 (not NaN) where ``x == 0`` (masked / pruned edges)."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator | None) -> torch.Tensor:
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2.0 - 1.0) * bound


class NotearsMLP(nn.Module):
    """Nonlinear structural equations, one MLP per node, with a differentiable adjacency.

    Node ``j``'s MLP maps the (one-hot expanded) vector of all nodes to node ``j``'s prediction:
    first layer ``D_in -> hidden[0]`` (one matmul for all nodes, output (N, d, hidden[0])), then
    locally connected layers (parameters (d, h_in, h_out), applied as one batched matmul over nodes)
    with sigmoid activations, as in NOTEARS-MLP. Outputs per node: continuous -> 1 predicted mean, binary -> 1 logit,
    categorical with K levels -> K logits.

    The first-layer weights from node ``i``'s input columns into node ``j``'s MLP are multiplied by
    ``allowed[i, j]`` (so disallowed weights are exactly zero and get zero gradient); the diagonal is
    always disallowed. They start small (see ``init_radius``): inside the log-det domain, but not at
    the empty graph, which is a stationary point of the L1-penalised score for deeper MLPs.

    Parameters
    ----------
    node_types : sequence of VarType (or its string values)
        Type of each of the ``d`` nodes.
    n_categories : sequence of int, optional
        Number of levels per node; read only for categorical nodes (K >= 2), ignored for others
        (any value, e.g. 1 or 2, is accepted there). Required when a node is categorical.
    hidden : sequence of int, default (10, 10, 10)
        Hidden widths of every node's MLP (at least one layer; the first is the one defining ``W``).
    allowed : bool array-like, shape (d, d), optional
        ``allowed[i, j]`` True if the edge i -> j may exist. Default: every off-diagonal edge.
    bias : bool, default True
        Whether the layers have biases.
    score : {"gauss_nll", "mse"}, default "gauss_nll"
        Loss of continuous nodes: Gaussian NLL ``0.5 log σ²_j + 0.5 (v - f)² / σ²_j`` with a learned
        per-node log-variance (scale-invariant: at the optimum it is a log-MSE score, so edge
        orientation does not follow marginal variances), or NOTEARS' ``0.5 (v - f)²``.
    log_var_min : float, default -10.0
        Lower clamp of the learned log-variances (guards against a collapsing variance when a node is
        predicted almost exactly).
    init_radius : float, default 0.5
        Scale of the first-layer initialisation: the expected row sums of ``W∘W`` (about its spectral
        radius) at initialisation; 0 starts from the empty graph.
    generator : torch.Generator, optional
        Source of randomness for the initialisation (CPU generator); default torch's global one.
    device, dtype : optional
        Where and in which floating dtype to create the parameters (default CPU, float32).

    Attributes
    ----------
    d : int
        Number of nodes.
    in_width : int
        Width of the expanded input (categorical nodes contribute K one-hot columns).
    out_width : int
        Width of the packed output (max over nodes of 1 or K).

    Notes
    -----
    Input ``V`` (N, d) holds one column per node: continuous values, binary 0/1 and categorical
    integer codes ``0..K-1``, all as floats. Categorical codes enter as one-hot (no gradient flows to
    them); continuous and binary columns are differentiable inputs.
    """

    def __init__(self, *, node_types: Sequence[VarType | str], n_categories: Sequence[int] | None = None,
                 hidden: Sequence[int] = (10, 10, 10), allowed: torch.Tensor | np.ndarray | None = None,
                 bias: bool = True, score: Score = "gauss_nll", log_var_min: float = -10.0,
                 init_radius: float = 0.5, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        types = _as_var_types(node_types)
        d = len(types)
        if d < 1:
            raise ValueError("node_types is empty: a NotearsMLP needs at least one node")
        if n_categories is None:
            if any(t is VarType.CATEGORICAL for t in types):
                raise ValueError("n_categories is required when a node is categorical")
            ncat = [1] * d
        else:
            ncat = [int(k) for k in n_categories]
            if len(ncat) != d:
                raise ValueError(f"n_categories has {len(ncat)} entries for {d} nodes")
        for j, (t, k) in enumerate(zip(types, ncat)):
            if t is VarType.CATEGORICAL and k < 2:
                raise ValueError(f"node {j} is categorical with n_categories={k}; need at least 2")
        hidden = tuple(int(h) for h in hidden)
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden must be a non-empty sequence of positive widths, got {hidden}")
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
        if not math.isfinite(log_var_min):
            raise ValueError(f"log_var_min must be finite, got {log_var_min}")
        if not (init_radius >= 0 and math.isfinite(init_radius)):
            raise ValueError(f"init_radius must be a non-negative finite number, got {init_radius}")
        dtype = torch.float32 if dtype is None else dtype
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")

        self.node_types = types
        self.n_categories = [k if t is VarType.CATEGORICAL else 1 for t, k in zip(types, ncat)]
        self.hidden = hidden
        self.score = score
        self.log_var_min = float(log_var_min)
        self.init_radius = float(init_radius)
        self.bias = bool(bias)
        self.d = d

        widths = [k if t is VarType.CATEGORICAL else 1 for t, k in zip(types, ncat)]
        self.in_width = int(sum(widths))
        self.out_width = int(max(widths))
        src = torch.repeat_interleave(torch.arange(d), torch.tensor(widths))
        starts = torch.cumsum(torch.tensor([0] + widths[:-1]), 0)
        level = torch.arange(self.in_width) - starts[src]
        is_cat_col = torch.tensor([types[int(s)] is VarType.CATEGORICAL for s in src], dtype=torch.bool)

        mask = self._check_allowed(allowed, d)
        self.register_buffer("allowed", mask)
        self.register_buffer("_src", src, persistent=False)
        self.register_buffer("_is_cat_col", is_cat_col, persistent=False)
        # float masks (they follow the module's dtype/device under .to())
        self.register_buffer("_in_mask", mask[src][:, :, None].to(dtype), persistent=False)  # (D_in, d, 1)
        out_mask = torch.arange(self.out_width)[None, :] < torch.tensor(widths)[:, None]  # (d, o_max)
        self.register_buffer("_out_mask", out_mask.to(dtype), persistent=False)
        self.register_buffer("_level_f", level.to(dtype), persistent=False)
        self._all_continuous = all(t is VarType.CONTINUOUS for t in types)
        self._padded = bool((~out_mask).any())
        idx = {vt: [j for j, t in enumerate(types) if t is vt] for vt in VarType}
        self.register_buffer("_cont_idx", torch.tensor(idx[VarType.CONTINUOUS], dtype=torch.long), persistent=False)
        self.register_buffer("_bin_idx", torch.tensor(idx[VarType.BINARY], dtype=torch.long), persistent=False)
        self._cat_groups: list[tuple[int, str]] = []  # (K, buffer name of node indices)
        for k in sorted({self.n_categories[j] for j in idx[VarType.CATEGORICAL]}):
            name = f"_cat_idx_{k}"
            self.register_buffer(name, torch.tensor([j for j in idx[VarType.CATEGORICAL]
                                                     if self.n_categories[j] == k], dtype=torch.long),
                                 persistent=False)
            self._cat_groups.append((k, name))
        self._has_cat = bool(idx[VarType.CATEGORICAL])
        self._has_bin = bool(idx[VarType.BINARY])

        factory = {"device": device, "dtype": dtype}
        h1 = hidden[0]
        self.fc1_weight = nn.Parameter(torch.zeros(self.in_width, d, h1, **factory))
        self.fc1_bias = nn.Parameter(torch.zeros(d, h1, **factory)) if bias else None
        dims = list(hidden) + [self.out_width]
        self.lc_weights = nn.ParameterList(
            [nn.Parameter(torch.zeros(d, dims[i], dims[i + 1], **factory)) for i in range(len(hidden))])
        self.lc_biases = nn.ParameterList(
            [nn.Parameter(torch.zeros(d, dims[i + 1], **factory)) for i in range(len(hidden))] if bias else [])
        self.log_var = nn.Parameter(torch.zeros(d, **factory)) if score == "gauss_nll" else None
        if device is not None:
            self.to(device=device)  # the index / mask buffers
        self.reset_parameters(generator=generator)

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _check_allowed(allowed: torch.Tensor | np.ndarray | None, d: int) -> torch.Tensor:
        if allowed is None:
            mask = torch.ones(d, d, dtype=torch.bool)
        else:
            arr = allowed.detach().cpu() if isinstance(allowed, torch.Tensor) else torch.as_tensor(np.asarray(allowed))
            if tuple(arr.shape) != (d, d):
                raise ValueError(f"allowed must have shape ({d}, {d}), got {tuple(arr.shape)}")
            if arr.dtype != torch.bool:
                vals = torch.unique(arr.to(torch.float64))
                if not bool(((vals == 0) | (vals == 1)).all()):
                    raise ValueError(f"allowed must be boolean (or 0/1), got values {vals.tolist()[:5]}")
            mask = arr.to(torch.bool).clone()
        mask.fill_diagonal_(False)
        return mask

    @torch.no_grad()
    def reset_parameters(self, *, generator: torch.Generator | None = None) -> None:
        """Re-initialise.

        First-layer weights ~ U(-b, b) with ``b`` such that every row of ``E[W∘W]`` sums to
        ``init_radius`` (so the spectral radius of ``W∘W`` starts around ``init_radius``: inside the
        log-det domain for the default 0.5); other weights and biases U(-1/√fan_in, 1/√fan_in);
        log-variances 0.
        """
        fan = max(1, self.in_width - 1) * self.hidden[0]
        b1 = math.sqrt(3.0 * self.init_radius / fan)
        self.fc1_weight.copy_(_uniform(tuple(self.fc1_weight.shape), b1, generator))
        if self.fc1_bias is not None:
            b = 1.0 / math.sqrt(self.in_width)
            self.fc1_bias.copy_(_uniform(tuple(self.fc1_bias.shape), b, generator))
        for i, w in enumerate(self.lc_weights):
            b = 1.0 / math.sqrt(w.shape[1])
            w.copy_(_uniform(tuple(w.shape), b, generator))
            if self.bias:
                self.lc_biases[i].copy_(_uniform(tuple(self.lc_biases[i].shape), b, generator))
        # padded outputs of nodes with fewer than out_width outputs stay exactly 0
        self.lc_weights[-1].mul_(self._out_mask[:, None, :])
        if self.bias:
            self.lc_biases[-1].mul_(self._out_mask)
        self.fc1_weight.mul_(self._in_mask)
        if self.log_var is not None:
            self.log_var.zero_()

    @torch.no_grad()
    def allow_edge(self, i: int, j: int) -> None:
        """Let the edge i -> j exist from now on (its first-layer weights keep their values)."""
        self.allowed[i, j] = True
        self._in_mask[self._src == i, j, :] = 1.0

    @torch.no_grad()
    def forbid_edge(self, i: int, j: int) -> None:
        """Remove the edge i -> j: masked out, and its first-layer weights set to 0."""
        self.allowed[i, j] = False
        self._in_mask[self._src == i, j, :] = 0.0
        self.fc1_weight[self._src == i, j, :] = 0.0

    @property
    def input_mask(self) -> torch.Tensor:
        """The first-layer weight mask (D_in, d, 1) that ``allowed`` expands to (not in the state_dict)."""
        return self._in_mask

    @torch.no_grad()
    def set_input_mask(self, mask: torch.Tensor) -> None:
        """Restore a mask saved from :attr:`input_mask` (e.g. with a checkpoint)."""
        self._in_mask.copy_(mask.to(self._in_mask))

    def extra_repr(self) -> str:
        types = "".join({"continuous": "c", "binary": "b", "categorical": "k"}[t.value] for t in self.node_types)
        return (f"d={self.d}, types={types}, in_width={self.in_width}, hidden={self.hidden}, "
                f"out_width={self.out_width}, score={self.score!r}, allowed_edges={int(self.allowed.sum())}")

    # ------------------------------------------------------------------ input handling
    def _check_v(self, V: torch.Tensor) -> None:
        if not isinstance(V, torch.Tensor):
            raise ValueError(f"V must be a torch.Tensor, got {type(V).__name__}")
        if V.ndim != 2 or V.shape[1] != self.d:
            raise ValueError(f"V must have shape (N, {self.d}), got {tuple(V.shape)}")
        p = self.fc1_weight
        if V.dtype != p.dtype or V.device != p.device:
            raise ValueError(f"V is {V.dtype} on {V.device} but the model is {p.dtype} on {p.device}; "
                             "move one of them (model.to(V))")

    def _check_discrete(self, V: torch.Tensor, *, targets: bool) -> None:
        """Categorical codes must be integers in [0, K); binary targets must be 0/1."""
        Vd = V.detach()
        for k, name in self._cat_groups:
            codes = Vd[:, getattr(self, name)]
            bad = (codes < 0) | (codes > k - 1) | (codes != torch.round(codes))
            if bool(bad.any()):
                raise ValueError(f"categorical columns with K={k} must hold integer codes 0..{k - 1}; "
                                 f"got e.g. {float(codes[bad][0])}")
        if targets and self._has_bin:
            vals = Vd[:, self._bin_idx]
            bad = (vals != 0) & (vals != 1)
            if bool(bad.any()):
                raise ValueError(f"binary columns must hold 0/1; got e.g. {float(vals[bad][0])}")

    def expand(self, V: torch.Tensor) -> torch.Tensor:
        """One-hot expand categorical columns.

        Parameters
        ----------
        V : torch.Tensor, shape (N, d)

        Returns
        -------
        torch.Tensor, shape (N, in_width)
            Node i's columns in node order; continuous/binary columns are ``V[:, i]`` (differentiable).
        """
        self._check_v(V)
        if self._has_cat:
            self._check_discrete(V, targets=False)
        cols = V[:, self._src]
        if not self._has_cat:
            return cols
        onehot = (torch.round(cols.detach()) == self._level_f).to(V.dtype)
        return torch.where(self._is_cat_col, onehot, cols)

    # ------------------------------------------------------------------ model
    def _w1(self) -> torch.Tensor:
        return self.fc1_weight * self._in_mask

    def forward(self, V: torch.Tensor) -> torch.Tensor:
        """Packed predictions.

        Parameters
        ----------
        V : torch.Tensor, shape (N, d)

        Returns
        -------
        torch.Tensor, shape (N, d, out_width)
            ``out[:, j, 0]`` is the predicted mean (continuous) or logit (binary) of node j;
            ``out[:, j, :K]`` are the K logits of a categorical node. Unused entries are exactly 0.
            :meth:`split` gives one tensor per node.
        """
        x = self.expand(V)
        n = x.shape[0]
        w1 = self._w1()
        h = (x @ w1.reshape(self.in_width, -1)).reshape(n, self.d, self.hidden[0])
        if self.fc1_bias is not None:
            h = h + self.fc1_bias
        last = len(self.lc_weights) - 1
        for i, w in enumerate(self.lc_weights):
            h = torch.sigmoid(h)
            if i == last and self._padded:
                w = w * self._out_mask[:, None, :]
            # (N, d, h_in) x (d, h_in, h_out) as a batched matmul over nodes
            h = torch.bmm(h.transpose(0, 1), w).transpose(0, 1)
            if self.bias:
                b = self.lc_biases[i]
                h = h + (b * self._out_mask if i == last and self._padded else b)
        return h

    def split(self, out: torch.Tensor) -> list[torch.Tensor]:
        """Per-node views of :meth:`forward`'s output: (N,) for continuous/binary, (N, K) for categorical."""
        return [out[:, j, :k] if t is VarType.CATEGORICAL else out[:, j, 0]
                for j, (t, k) in enumerate(zip(self.node_types, self.n_categories))]

    def adjacency(self) -> torch.Tensor:
        """Weighted adjacency ``W`` (d, d): ``W[i, j]`` = L2 norm of all first-layer weights from node
        i's input columns (all one-hot columns of a categorical node) into node j's MLP.

        Differentiable; the gradient at an exactly-zero entry (masked edges) is 0.
        """
        sq = (self._w1() ** 2).sum(dim=2)  # (D_in, d)
        w2 = sq.new_zeros(self.d, self.d).index_add(0, self._src, sq)
        return _safe_sqrt(w2)

    def l1_first_layer(self) -> torch.Tensor:
        """``Σ |first-layer weights|`` (allowed entries only), the NOTEARS sparsity penalty."""
        return self._w1().abs().sum()

    def l2_reg(self) -> torch.Tensor:
        """``0.5 Σ w²`` over all weight matrices (not biases, not log-variances), so that
        ``lambda2 * l2_reg()`` matches NOTEARS' ``0.5 * lambda2 * ||θ||²``."""
        reg = (self._w1() ** 2).sum()
        last = len(self.lc_weights) - 1
        for i, w in enumerate(self.lc_weights):
            reg = reg + ((w * self._out_mask[:, None, :]) ** 2 if i == last and self._padded else w ** 2).sum()
        return 0.5 * reg

    def node_nll(self, V: torch.Tensor) -> torch.Tensor:
        """Per-sample, per-node negative log-likelihood of ``V`` given the other nodes.

        Continuous: ``0.5 log σ²_j + 0.5 (v - f)² / σ²_j`` (``score="gauss_nll"``, without the
        constant ``0.5 log 2π``) or ``0.5 (v - f)²`` (``score="mse"``); binary: BCE with logits;
        categorical: softmax cross-entropy.

        Parameters
        ----------
        V : torch.Tensor, shape (N, d)

        Returns
        -------
        torch.Tensor, shape (N, d)
            The total loss of the score is ``node_nll(V).sum(1).mean()``.
        """
        out = self.forward(V)
        if self._all_continuous:
            r = V - out[:, :, 0]
            if self.log_var is None:
                return 0.5 * r * r
            lv = self.log_var.clamp(min=self.log_var_min)
            return 0.5 * lv + 0.5 * r * r * torch.exp(-lv)
        if self._has_bin:
            self._check_discrete(V, targets=True)
        pieces: list[torch.Tensor] = []
        order: list[torch.Tensor] = []
        if len(self._cont_idx):
            r = V[:, self._cont_idx] - out[:, self._cont_idx, 0]
            if self.log_var is not None:
                lv = self.log_var[self._cont_idx].clamp(min=self.log_var_min)
                pieces.append(0.5 * lv + 0.5 * r * r * torch.exp(-lv))
            else:
                pieces.append(0.5 * r * r)
            order.append(self._cont_idx)
        if self._has_bin:
            pieces.append(F.binary_cross_entropy_with_logits(out[:, self._bin_idx, 0], V[:, self._bin_idx],
                                                             reduction="none"))
            order.append(self._bin_idx)
        for k, name in self._cat_groups:
            idx = getattr(self, name)
            logits = out[:, idx, :k].transpose(1, 2)  # (N, K, g)
            codes = torch.round(V[:, idx].detach()).long()
            pieces.append(F.cross_entropy(logits, codes, reduction="none"))
            order.append(idx)
        nll = torch.cat(pieces, dim=1)
        perm = torch.cat(order)
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(self.d, device=perm.device)
        return nll[:, inv]

    @torch.no_grad()
    def noise_std(self) -> torch.Tensor:
        """Learned noise standard deviation per node (d,) (1 for ``score="mse"``; unused for discrete nodes)."""
        if self.log_var is None:
            return torch.ones(self.d, dtype=self.fc1_weight.dtype, device=self.fc1_weight.device)
        return torch.exp(0.5 * self.log_var.clamp(min=self.log_var_min))

    def predict(self, V: torch.Tensor) -> torch.Tensor:
        """Point predictions (N, d) of each node from the others: continuous -> predicted mean,
        binary -> P(v = 1) (the conditional mean), categorical -> most probable code (as float).
        Differentiable in ``V`` and the parameters except for the categorical columns."""
        out = self.forward(V)
        pred = out[:, :, 0].clone()
        if self._has_bin:
            pred[:, self._bin_idx] = torch.sigmoid(out[:, self._bin_idx, 0])
        for k, name in self._cat_groups:
            idx = getattr(self, name)
            pred[:, idx] = out[:, idx, :k].argmax(dim=2).to(pred.dtype)
        return pred

    def predict_continuous(self, V: torch.Tensor) -> torch.Tensor:
        """Alias of :meth:`predict` (its continuous columns are the structural means used for
        counterfactuals)."""
        return self.predict(V)


# =============================================================================== loss
def notears_objective(model: NotearsMLP, V: torch.Tensor, *, lambda1: float = 0.0,
                      lambda2: float = 0.0) -> torch.Tensor:
    """Score plus regularisation (no acyclicity term).

    ``mean_n Σ_j nll[n, j] + lambda1 * l1_first_layer + lambda2 * l2_reg``.

    Parameters
    ----------
    model : NotearsMLP
    V : torch.Tensor, shape (N, d)
    lambda1, lambda2 : float
        Non-negative L1 (first layer) and L2 weights.

    Returns
    -------
    torch.Tensor, shape ()
    """
    if lambda1 < 0 or lambda2 < 0:
        raise ValueError(f"lambda1 and lambda2 must be >= 0, got {lambda1} and {lambda2}")
    loss = model.node_nll(V).sum(dim=1).mean()
    if lambda1:
        loss = loss + lambda1 * model.l1_first_layer()
    if lambda2:
        loss = loss + lambda2 * model.l2_reg()
    return loss


@torch.no_grad()
def prox_l1_first_layer_(model: NotearsMLP, optimizer: torch.optim.Optimizer, lambda1: float) -> None:
    """Proximal step of ``lambda1 * l1_first_layer()`` after ``optimizer.step()`` (in place).

    Soft-thresholds the first-layer weights, ``w ← sign(w) max(|w| - τ, 0)``, with the step's own
    metric: ``τ = lr λ1 / (sqrt(v̂) + eps)`` per weight for Adam/AdamW (``v̂`` the bias-corrected
    second moment), ``τ = lr λ1`` for optimisers without that state (SGD). Weights whose smooth
    gradient stays below ``λ1`` become exactly 0 -- unlike the subgradient of ``|w|``, which leaves
    them oscillating at about ``lr``, so that ``h(W)`` never falls below ~1e-6 and the augmented
    Lagrangian keeps raising ``ρ`` until it crushes true edges.

    Parameters
    ----------
    model : NotearsMLP
    optimizer : torch.optim.Optimizer
        The optimiser that just stepped; must hold ``model.fc1_weight``.
    lambda1 : float
        L1 weight (>= 0); the L1 term must then be left out of the loss.
    """
    if lambda1 < 0:
        raise ValueError(f"lambda1 must be >= 0, got {lambda1}")
    p = model.fc1_weight
    group = next((g for g in optimizer.param_groups if any(q is p for q in g["params"])), None)
    if group is None:
        raise ValueError("optimizer does not hold model.fc1_weight")
    state = optimizer.state.get(p, {})
    lr = float(group["lr"])
    if "exp_avg_sq" in state and "betas" in group:
        step = float(state["step"])
        v_hat = state["exp_avg_sq"] / (1.0 - group["betas"][1] ** step)
        tau = (lr * lambda1) / (v_hat.sqrt() + group["eps"])
    else:
        tau = lr * lambda1
    p.copy_(torch.sign(p) * torch.clamp(p.abs() - tau, min=0.0))


# =============================================================================== trainer
@dataclass
class NotearsResult:
    """Output of :func:`fit_notears` / :meth:`NotearsTrainer.train`.

    Attributes
    ----------
    W : numpy.ndarray, shape (d, d)
        Raw learned weighted adjacency (before thresholding).
    adjacency : numpy.ndarray, shape (d, d)
        ``W`` after :func:`~xcausal.structure.threshold_to_dag` (acyclic, weights kept).
    dropped_edges : list of (int, int, float)
        Edges above the threshold removed to break cycles.
    history : list of dict
        One row per outer iteration: ``outer, h, loss, nll, rho, alpha, steps, seconds``.
    n_outer : int
        Outer (dual) iterations run.
    converged : bool
        Whether the augmented Lagrangian converged (h <= h_tol or rho reached rho_max).
    seconds : float
        Wall time of training.
    model : NotearsMLP
        The trained model (in training dtype/device).
    W_standardized : numpy.ndarray or None, shape (d, d)
        :func:`fit_notears` with ``standardize=True``: ``W`` in the units the learner saw (continuous
        columns standardised), the matrix that was thresholded. ``None`` otherwise.
    """

    W: np.ndarray
    adjacency: np.ndarray
    dropped_edges: list[tuple[int, int, float]]
    history: list[dict[str, float]]
    n_outer: int
    converged: bool
    seconds: float
    model: NotearsMLP = field(repr=False)
    W_standardized: np.ndarray | None = field(default=None, repr=False)


class NotearsTrainer:
    """Full-batch augmented-Lagrangian training of a :class:`NotearsMLP` (standalone NOTEARS).

    Each outer iteration approximately minimises the primal
    ``mean nll + λ1 ||W1||_1 + λ2 l2_reg + ρ/2 h² + α h`` and then calls
    :meth:`AugmentedLagrangian.update` with the reached ``h``; training stops when the Lagrangian has
    converged (``h <= h_tol`` or ``ρ = rho_max``) or after ``max_outer`` iterations.

    Two primal solvers (both use torch for the objective and its gradient):

    * ``"lbfgsb"`` (default): L-BFGS-B (:func:`scipy.optimize.minimize`) on float64 copies of the
      parameters, with the NOTEARS split ``W1 = W1⁺ - W1⁻``, ``W1± >= 0``, which makes the L1 term
      linear and lets absent edges reach exactly 0 (the reference NOTEARS-MLP solver). Each solve is
      run to L-BFGS-B's own convergence or ``inner_steps`` iterations.
    * ``"adam"``: a fresh Adam per outer iteration with the proximal L1 step
      (:func:`prox_l1_first_layer_`), at most ``inner_steps`` steps, stopping early when the objective
      changes by less than ``inner_tol`` (relative) over ``check_every`` steps. The same pieces CMCL
      uses with minibatches; slower and less precise than L-BFGS-B here.

    Parameters
    ----------
    lambda1, lambda2 : float, default 0.01
        L1 on the first layer, L2 on all weights (see :func:`notears_objective`).
    h_func : {"logdet", "expm"}, default "logdet"
    s : float, default 1.0
        Log-det scale (ignored for ``"expm"``).
    w_threshold : float, default 0.3
        Edge threshold for :func:`~xcausal.structure.threshold_to_dag`.
    optimizer : {"lbfgsb", "adam"}, default "lbfgsb"
    max_outer : int, default 20
    inner_steps : int, default 500
        Iteration cap of one primal solve (L-BFGS-B iterations or Adam steps).
    lr : float, default 0.01
        Adam learning rate (``"adam"`` only).
    inner_tol : float, default 1e-6
        ``"lbfgsb"``: relative objective tolerance (scipy's ``ftol``); ``"adam"``: relative change over
        ``check_every`` steps.
    check_every : int, default 50
    warmup_steps : int, default 200
        ``"lbfgsb"`` only: Adam steps (with ``lr``, without the L1/L2 terms) before the first
        L-BFGS-B solve. Without them a deeper MLP (e.g. ``hidden=(10, 10, 10)``) converges to the
        empty graph: the L2/L1 pull beats the tiny gradient reaching the first layer at
        initialisation.
    h_tol, rho_init, rho_max, progress_rate, rho_mult
        Passed to :class:`~xcausal.structure.AugmentedLagrangian`.
    """

    def __init__(self, *, lambda1: float = 0.01, lambda2: float = 0.01, h_func: HFunc = "logdet",
                 s: float = 1.0, w_threshold: float = 0.3, optimizer: InnerOptimizer = "lbfgsb",
                 max_outer: int = 20, inner_steps: int = 500, lr: float = 1e-2, inner_tol: float = 1e-6,
                 check_every: int = 50, warmup_steps: int = 200, h_tol: float = 1e-8, rho_init: float = 1.0,
                 rho_max: float = 1e16, progress_rate: float = 0.25, rho_mult: float = 10.0) -> None:
        if h_func not in _HFUNCS:
            raise ValueError(f"h_func must be one of {_HFUNCS}, got {h_func!r}")
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}")
        for name, val in (("lambda1", lambda1), ("lambda2", lambda2), ("w_threshold", w_threshold),
                          ("inner_tol", inner_tol)):
            if not (val >= 0 and math.isfinite(val)):
                raise ValueError(f"{name} must be a non-negative finite number, got {val}")
        for name, val in (("max_outer", max_outer), ("inner_steps", inner_steps), ("check_every", check_every)):
            if int(val) != val or val < 1:
                raise ValueError(f"{name} must be a positive integer, got {val}")
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a non-negative integer, got {warmup_steps}")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive finite number, got {lr}")
        if not (s > 0 and math.isfinite(s)):
            raise ValueError(f"s must be a positive finite number, got {s}")
        self.lambda1 = lambda1
        self.lambda2 = lambda2
        self.h_func = h_func
        self.s = s
        self.w_threshold = w_threshold
        self.optimizer = optimizer
        self.max_outer = int(max_outer)
        self.inner_steps = int(inner_steps)
        self.lr = lr
        self.inner_tol = inner_tol
        self.check_every = int(check_every)
        self.warmup_steps = int(warmup_steps)
        self.h_tol = h_tol
        self.rho_init = rho_init
        self.rho_max = rho_max
        self.progress_rate = progress_rate
        self.rho_mult = rho_mult
        # validate the Lagrangian settings now rather than in train()
        self._new_lagrangian()

    def _new_lagrangian(self) -> AugmentedLagrangian:
        return AugmentedLagrangian(rho_init=self.rho_init, rho_max=self.rho_max, h_tol=self.h_tol,
                                   progress_rate=self.progress_rate, rho_mult=self.rho_mult)

    def h(self, W: torch.Tensor) -> torch.Tensor:
        """The configured acyclicity function."""
        return h_logdet(W, self.s) if self.h_func == "logdet" else h_expm(W)

    def _smooth(self, model: NotearsMLP, V: torch.Tensor, alm: AugmentedLagrangian, *,
                l2: bool = True) -> torch.Tensor:
        """Primal objective without the L1 term."""
        return (notears_objective(model, V, lambda2=self.lambda2 if l2 else 0.0)
                + alm.penalty(self.h(model.adjacency())))

    # ------------------------------------------------------------------ Adam + prox
    def _inner_adam(self, model: NotearsMLP, V: torch.Tensor, alm: AugmentedLagrangian,
                    n_steps: int | None = None, reg: bool = True) -> int:
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        prev = math.inf
        steps = 0
        for steps in range(1, (self.inner_steps if n_steps is None else n_steps) + 1):
            opt.zero_grad(set_to_none=True)
            obj = self._smooth(model, V, alm, l2=reg)
            obj.backward()
            opt.step()
            if self.lambda1 and reg:
                prox_l1_first_layer_(model, opt, self.lambda1)
            if steps % self.check_every == 0:
                obj_val = float(obj.detach()) + self.lambda1 * float(model.l1_first_layer().detach())
                if not math.isfinite(obj_val):
                    raise FloatingPointError(f"NOTEARS objective became {obj_val} (rho={alm.rho:.3g}); "
                                             "try a smaller lr")
                if math.isfinite(prev) and abs(prev - obj_val) <= self.inner_tol * max(abs(prev), 1.0):
                    break
                prev = obj_val
        return steps

    # ------------------------------------------------------------------ L-BFGS-B
    def _inner_lbfgsb(self, model: NotearsMLP, V: torch.Tensor, alm: AugmentedLagrangian) -> int:
        from scipy.optimize import minimize

        warm = 0
        if alm.n_updates == 0 and self.warmup_steps:
            # From a small random start the L2 / L1 pull beats the tiny gradient that reaches the
            # first layer through deeper sigmoid MLPs (hidden=(10, 10, 10): ~2e-3 vs ~3e-3 for
            # lambda2 = 0.01), and every optimiser -- L-BFGS-B at once -- converges to the all-zero
            # stationary point. Unregularised Adam steps get past that plateau first.
            warm = self._inner_adam(model, V, alm, n_steps=self.warmup_steps, reg=False)

        w1 = model.fc1_weight
        rest = [p for p in model.parameters() if p is not w1]
        n1 = w1.numel()
        sizes = [p.numel() for p in rest]
        free = model._in_mask.expand_as(w1).reshape(-1).detach().cpu().numpy() > 0
        bounds = ([(0.0, None) if f else (0.0, 0.0) for f in free] * 2 + [(None, None)] * sum(sizes))
        with torch.no_grad():
            w = w1.detach().reshape(-1).double().cpu().numpy()
            x0 = np.concatenate([np.maximum(w, 0.0), np.maximum(-w, 0.0)]
                                + [p.detach().reshape(-1).double().cpu().numpy() for p in rest])
        lam1 = float(self.lambda1)

        def load(x: np.ndarray) -> None:
            with torch.no_grad():
                w1.copy_(torch.from_numpy(x[:n1] - x[n1:2 * n1]).reshape(w1.shape))
                off = 2 * n1
                for p, k in zip(rest, sizes):
                    p.copy_(torch.from_numpy(x[off:off + k]).reshape(p.shape))
                    off += k

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            load(x)
            model.zero_grad(set_to_none=False)
            obj = self._smooth(model, V, alm)
            obj.backward()
            g1 = w1.grad.detach().reshape(-1).double().cpu().numpy()
            grads = [np.zeros(k) if p.grad is None else p.grad.detach().reshape(-1).double().cpu().numpy()
                     for p, k in zip(rest, sizes)]
            val = float(obj.detach()) + lam1 * float(x[:2 * n1].sum())
            if not math.isfinite(val):
                raise FloatingPointError(f"NOTEARS objective became {val} (rho={alm.rho:.3g})")
            return val, np.concatenate([g1 + lam1, -g1 + lam1] + grads)

        res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": self.inner_steps, "ftol": self.inner_tol, "gtol": 1e-10})
        load(res.x)
        model.zero_grad(set_to_none=True)
        logger.debug("L-BFGS-B: %s after %d iterations", res.message, res.nit)
        return warm + int(res.nit)

    # ------------------------------------------------------------------ loop
    def train(self, model: NotearsMLP, V: torch.Tensor) -> NotearsResult:
        """Train ``model`` in place on ``V`` (N, d), which must already be in the model's dtype/device.

        Returns
        -------
        NotearsResult
        """
        model._check_v(V)
        model._check_discrete(V, targets=True)
        alm = self._new_lagrangian()
        inner = self._inner_lbfgsb if self.optimizer == "lbfgsb" else self._inner_adam
        history: list[dict[str, float]] = []
        t0 = time.perf_counter()
        model.train()
        n_outer = 0
        for n_outer in range(1, self.max_outer + 1):
            steps = inner(model, V, alm)
            with torch.no_grad():
                h_val = float(self.h(model.adjacency()))
                nll = float(model.node_nll(V).sum(dim=1).mean())
                loss = float(notears_objective(model, V, lambda1=self.lambda1, lambda2=self.lambda2))
            alm.update(max(h_val, 0.0))
            row = {"outer": n_outer, "h": h_val, "loss": loss, "nll": nll, "rho": alm.rho, "alpha": alm.alpha,
                   "steps": steps, "seconds": time.perf_counter() - t0}
            history.append(row)
            logger.info("notears outer %d: h=%.3e loss=%.4f rho=%.1e alpha=%.3e steps=%d", n_outer, h_val, loss,
                        alm.rho, alm.alpha, steps)
            if alm.converged:
                break
        seconds = time.perf_counter() - t0
        if not alm.converged:
            logger.warning("NOTEARS did not converge in %d outer iterations (h=%.3e, rho=%.1e)",
                           n_outer, alm.h_prev, alm.rho)
        model.eval()
        W = model.adjacency().detach().cpu().numpy().astype(float)
        adj, dropped = threshold_to_dag(W, self.w_threshold)
        for i, j, w in dropped:
            logger.warning("dropped edge %d -> %d (|W| = %.3f) to break a cycle", i, j, abs(w))
        return NotearsResult(W=W, adjacency=adj, dropped_edges=dropped, history=history, n_outer=n_outer,
                             converged=alm.converged, seconds=seconds, model=model)


def _to_tensor(V: np.ndarray | torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    if isinstance(V, torch.Tensor):
        t = V.detach()
    else:
        arr = np.asarray(V)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"V must be numeric, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if device is not None:
        t = t.to(device)
    if t.ndim != 2:
        raise ValueError(f"V must be 2-D (N, d), got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("V contains NaN or inf")
    return t


@torch.no_grad()
def _fold_standardization_(model: NotearsMLP, mean: torch.Tensor, scale: torch.Tensor) -> None:
    """Rewrite a model trained on ``(V - mean) / scale`` (continuous columns) so that it takes and
    predicts ``V`` in its original units; exact (an affine change of the first layer's input and of
    the last layer's output). ``mean``, ``scale`` (d,): 0 and 1 for non-continuous nodes."""
    src = model._src
    is_cont = torch.tensor([t is VarType.CONTINUOUS for t in model.node_types], device=mean.device)
    col_mean = torch.where(is_cont[src], mean[src], torch.zeros_like(mean[src]))  # (D_in,)
    col_scale = torch.where(is_cont[src], scale[src], torch.ones_like(scale[src]))
    w1 = model.fc1_weight  # (D_in, d, h1): h = x_std @ w1 + b1 = x @ (w1 / s) + (b1 - (m / s) @ w1)
    if model.fc1_bias is not None:
        model.fc1_bias.sub_(torch.einsum("c,cjh->jh", col_mean / col_scale, w1 * model._in_mask))
    w1.div_(col_scale[:, None, None])
    # outputs: continuous node j predicts v_std; v = mean_j + scale_j * v_std
    out_scale = torch.where(is_cont, scale, torch.ones_like(scale))
    model.lc_weights[-1][:, :, 0].mul_(out_scale[:, None])
    if model.bias:
        model.lc_biases[-1][:, 0].mul_(out_scale).add_(torch.where(is_cont, mean, torch.zeros_like(mean)))
    if model.log_var is not None:
        model.log_var.add_(2.0 * torch.log(out_scale))


def fit_notears(V: np.ndarray | torch.Tensor, node_types: Sequence[VarType | str], *,
                n_categories: Sequence[int] | None = None, allowed: torch.Tensor | np.ndarray | None = None,
                hidden: Sequence[int] = (10,), lambda1: float = 0.01, lambda2: float = 0.01,
                h_func: HFunc = "logdet", score: Score = "gauss_nll", standardize: bool = True,
                w_threshold: float = 0.3, optimizer: InnerOptimizer = "lbfgsb", max_outer: int = 20,
                inner_steps: int = 500, lr: float = 1e-2, inner_tol: float = 1e-6, warmup_steps: int = 200,
                h_tol: float = 1e-8, rho_max: float = 1e16, seed: int = 0,
                device: torch.device | str | None = None) -> NotearsResult:
    """Learn a DAG over the columns of ``V`` with NOTEARS-MLP (mixed node types).

    By default (``standardize=True``) continuous columns are centred and scaled to unit standard
    deviation before learning, so the result does not depend on their units: ``lambda1``,
    ``lambda2`` and ``w_threshold`` are in standardised units, and rescaling a column (or not
    standardising it beforehand) leaves the learned graph unchanged. The trained model is then
    rewritten exactly into original units (it takes and predicts ``V`` as given), and ``W`` /
    ``adjacency`` hold weights in original units (``W[i, j]`` of a continuous parent ``i`` is its
    standardised value divided by column ``i``'s standard deviation); the edges are those of the
    thresholded standardised ``W`` (kept as ``W_standardized``). Binary and categorical columns are
    used as given. With ``standardize=False`` the data are used as given (the penalties, the threshold
    and, for ``score="mse"``, the orientation then depend on the columns' scales).

    Parameters
    ----------
    V : numpy.ndarray or torch.Tensor, shape (N, d)
        One column per node (continuous floats, binary 0/1, categorical codes 0..K-1). Computation
        runs in ``V``'s floating dtype (integer input -> float64) on ``device`` (default: ``V``'s).
    node_types : sequence of VarType or str, length d
    n_categories, allowed, score
        See :class:`NotearsMLP`.
    hidden : sequence of int, default (10,)
        MLP widths. One hidden layer of 10 is NOTEARS-MLP's own setting; deeper MLPs (CMCL's
        ``(10, 10, 10)``) need the Adam warm-up (``warmup_steps``) and are slower.
    standardize : bool, default True
        Learn on standardised continuous columns (see above). A constant column is centred only.
    lambda1, lambda2, h_func, w_threshold, optimizer, max_outer, inner_steps, lr, inner_tol, warmup_steps,
    h_tol, rho_max
        See :class:`NotearsTrainer`.
    seed : int, default 0
        Seeds a private ``torch.Generator`` for the initialisation (the global RNG is untouched;
        training itself is deterministic: full batch, L-BFGS-B or Adam), so the same seed gives the
        same result on the same device and thread count.
    device : torch.device or str, optional

    Returns
    -------
    NotearsResult
        ``dropped_edges`` carry standardised weights when ``standardize=True``.
    """
    t = _to_tensor(V, device)
    types = _as_var_types(node_types)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    model = NotearsMLP(node_types=types, n_categories=n_categories, hidden=hidden, allowed=allowed,
                       score=score, generator=gen, device=t.device, dtype=t.dtype)
    trainer = NotearsTrainer(lambda1=lambda1, lambda2=lambda2, h_func=h_func, w_threshold=w_threshold,
                             optimizer=optimizer, max_outer=max_outer, inner_steps=inner_steps, lr=lr,
                             inner_tol=inner_tol, warmup_steps=warmup_steps, h_tol=h_tol, rho_max=rho_max)
    model._check_v(t)
    cont = torch.tensor([ty is VarType.CONTINUOUS for ty in types], device=t.device)
    if not standardize or not bool(cont.any()):
        return trainer.train(model, t)
    mean = torch.where(cont, t.mean(dim=0), torch.zeros_like(t[0]))
    sd = t.std(dim=0, unbiased=False)
    scale = torch.where(cont & (sd > torch.finfo(t.dtype).eps * t.abs().amax(dim=0).clamp_min(1.0)), sd,
                        torch.ones_like(sd))
    res = trainer.train(model, (t - mean) / scale)
    _fold_standardization_(model, mean, scale)
    W = model.adjacency().detach().cpu().numpy().astype(float)
    res.W_standardized = res.W
    res.W = W
    res.adjacency = np.where(res.adjacency != 0, W, 0.0)
    return res
