"""Orientation of a binary variable against a continuous one by the two-node likelihood.

For a binary ``b`` and a continuous ``z`` the two causal models are

* ``b -> z``: ``b ~ Bernoulli(p)``, ``z | b ~ N(f(b), σ²)``: the marginal of ``z`` is a two-component
  Gaussian mixture;
* ``z -> b``: ``z ~ N(μ, σ²)``, ``b | z ~ Bernoulli(sigmoid(g(z)))``: ``z`` is Gaussian and ``b``
  follows a logistic curve in ``z``.

Each is fitted with the NOTEARS-MLP score that the DAG learner uses for these node types (logistic
for binary nodes, Gaussian NLL with a learned variance for continuous ones; :func:`fit_notears`
with the other direction forbidden), and the direction whose mean negative log-likelihood is lower
by a decisive margin wins. Both models have the same parametrisation (one MLP for the child, a
constant for the root), so the maximised likelihoods compare like for like; the margin asks the
likelihood ratio of the whole sample to exceed :data:`DECISIVE_LOG_RATIO` (a ratio of 100:1, "decisive"
on Jeffreys' scale), else the pair is left undecided.

Why this exists: in a joint NOTEARS fit the direction of a binary–continuous pair is decided by the
augmented-Lagrangian race rather than by the score: on the x-ray phantoms with the *true* opacity
latent the joint fit lands in ``z1 -> infected`` on seeds 0–2 although the two-node score prefers
``infected -> z1`` (``benchmarks/results/xray_phantom_cmcl/diagnosis.md``).

What it can and cannot tell (``tests/structure/test_pairwise.py``, n = 1000): a binary cause that
shifts z by 4 standard deviations, and a binary effect that follows a steep logistic in z, are
both oriented right; a shift of 1.5 standard deviations or a logistic slope of 2.5 leave the two
likelihoods within 0.004 nats per sample (the Gaussian mixture is then nearly Gaussian), and the
pair is left undecided rather than guessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from xcausal.types import VarType

__all__ = ["DECISIVE_LOG_RATIO", "binary_pair_direction", "forced_pair_nll"]

DECISIVE_LOG_RATIO = math.log(100.0)
"""Whole-sample log-likelihood ratio a direction must win by (100:1)."""


def forced_pair_nll(b: np.ndarray, z: np.ndarray, *, b_to_z: bool, hidden: Sequence[int] = (10,),
                    seed: int = 0) -> float:
    """Mean NLL per sample of the two-node NOTEARS-MLP fit with only ``b -> z`` (or ``z -> b``) allowed.

    Fitted without the L1 / L2 penalties: the edge is forced, and a penalty on its weights would
    favour whichever direction needs the smaller weights (measured: with the DAG learner's
    ``lambda1 = lambda2 = 0.01``, data simulated as ``z -> b`` came out ``b -> z`` on 3 of 3 seeds).

    Parameters
    ----------
    b : array (N,) of 0/1
    z : array (N,) of floats, used as given (standardise it first for a scale-free comparison)
    b_to_z : direction allowed
    hidden, seed : MLP widths and initialisation seed (:func:`~xcausal.structure.fit_notears`)
    """
    from xcausal.structure.notears import fit_notears

    pair = torch.as_tensor(np.column_stack([b, z]), dtype=torch.float64)
    allow = torch.tensor([[False, b_to_z], [not b_to_z, False]])
    res = fit_notears(pair, [VarType.BINARY, VarType.CONTINUOUS], allowed=allow, hidden=tuple(hidden),
                      lambda1=0.0, lambda2=0.0, seed=seed, device="cpu")
    with torch.no_grad():
        return float(res.model.node_nll(pair).sum(1).mean())


def binary_pair_direction(b: np.ndarray, z: np.ndarray, *, hidden: Sequence[int] = (10,),
                          seed: int = 0) -> tuple[int, float, float]:
    """Direction between a binary ``b`` and a continuous ``z`` by the two-node likelihood.

    ``z`` is standardised first. Returns ``(direction, nll_b_to_z, nll_z_to_b)`` with mean NLLs per
    sample and ``direction`` 1 (``b -> z``), -1 (``z -> b``) or 0 (undecided: the likelihood ratio
    of the whole sample is below :data:`DECISIVE_LOG_RATIO`).

    Raises
    ------
    ValueError
        ``b`` is not 0/1 with both values present, ``z`` is constant, or the lengths differ.
    """
    b = np.asarray(b, dtype=float).ravel()
    z = np.asarray(z, dtype=float).ravel()
    if len(b) != len(z):
        raise ValueError(f"b and z have different lengths ({len(b)} and {len(z)})")
    if not np.isin(b, (0.0, 1.0)).all() or len(np.unique(b)) < 2:
        raise ValueError("b must be 0/1 with both values present")
    sd = float(np.std(z))
    if not sd > 0:
        raise ValueError("z is constant")
    z = (z - z.mean()) / sd
    kw = {"hidden": hidden, "seed": seed}
    uz = forced_pair_nll(b, z, b_to_z=True, **kw)
    zu = forced_pair_nll(b, z, b_to_z=False, **kw)
    margin = DECISIVE_LOG_RATIO / len(b)
    direction = 1 if uz < zu - margin else -1 if zu < uz - margin else 0
    return direction, uz, zu
