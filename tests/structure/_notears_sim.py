"""Small NOTEARS-style simulators for the structure tests (pure numpy, explicit RNG)."""

from __future__ import annotations

import numpy as np

from xcausal.data.tabular import simulate_mlp_sem as mlp_sem  # noqa: F401  (re-exported for the tests)
from xcausal.metrics import count_accuracy


def shd(b_true: np.ndarray, b_est: np.ndarray) -> int:
    """Structural Hamming distance of the supports, by :func:`xcausal.metrics.count_accuracy`."""
    return int(count_accuracy((np.asarray(b_true) != 0).astype(float), (np.asarray(b_est) != 0).astype(float))["shd"])


def standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / x.std(0)
