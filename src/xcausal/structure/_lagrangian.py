"""Augmented Lagrangian for the equality constraint h(W) = 0 (NOTEARS dual ascent)."""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

__all__ = ["AugmentedLagrangian"]

logger = logging.getLogger(__name__)


class AugmentedLagrangian:
    """Penalty ``0.5 ρ h² + α h`` and the NOTEARS dual update of ``(ρ, α)``.

    The primal problem (score + penalty) is minimised by the caller -- to convergence by
    :class:`~xcausal.structure.NotearsTrainer`, or approximately by some epochs of SGD inside a jointly
    trained model (CMCL) -- and :meth:`update` is called with the resulting ``h`` once per primal
    solve, however many gradient steps that was.

    Parameters
    ----------
    rho_init : float, default 1.0
        Initial quadratic penalty weight ``ρ`` (> 0).
    rho_max : float, default 1e16
        ``ρ`` is never raised above this; reaching it counts as convergence (NOTEARS' stopping rule).
    alpha_init : float, default 0.0
        Initial Lagrange multiplier ``α``.
    h_tol : float, default 1e-8
        ``h`` at or below this counts as converged.
    progress_rate : float, default 0.25
        ``ρ`` is multiplied by ``rho_mult`` when ``h`` did not fall below ``progress_rate * h_prev``.
    rho_mult : float, default 10
        Growth factor of ``ρ`` (> 1).

    Attributes
    ----------
    rho, alpha : float
        Current penalty weight and multiplier.
    h_prev : float
        ``h`` at the last update (``inf`` before the first).
    n_updates : int
        Number of :meth:`update` calls so far.

    Notes
    -----
    :meth:`update` is the single-step form: ``α`` and ``h_prev`` change on every call. The reference
    NOTEARS loop instead re-solves the primal with a larger ``ρ`` *without* touching ``α`` or
    ``h_prev`` until ``h`` has dropped below ``0.25 h_prev``; with approximate primal solves (SGD) the
    single-step form is the usual choice and is what CMCL needs.
    """

    def __init__(self, *, rho_init: float = 1.0, rho_max: float = 1e16, alpha_init: float = 0.0,
                 h_tol: float = 1e-8, progress_rate: float = 0.25, rho_mult: float = 10) -> None:
        for name, val in (("rho_init", rho_init), ("rho_max", rho_max)):
            if not (val > 0 and math.isfinite(val)):
                raise ValueError(f"{name} must be a positive finite number, got {val}")
        if rho_init > rho_max:
            raise ValueError(f"rho_init={rho_init} is larger than rho_max={rho_max}")
        if not math.isfinite(alpha_init):
            raise ValueError(f"alpha_init must be finite, got {alpha_init}")
        if not (h_tol >= 0 and math.isfinite(h_tol)):
            raise ValueError(f"h_tol must be a non-negative finite number, got {h_tol}")
        if not 0 < progress_rate < 1:
            raise ValueError(f"progress_rate must be in (0, 1), got {progress_rate}")
        if not (rho_mult > 1 and math.isfinite(rho_mult)):
            raise ValueError(f"rho_mult must be a finite number > 1, got {rho_mult}")
        self.rho_init = float(rho_init)
        self.rho_max = float(rho_max)
        self.alpha_init = float(alpha_init)
        self.h_tol = float(h_tol)
        self.progress_rate = float(progress_rate)
        self.rho_mult = float(rho_mult)
        self.rho = float(rho_init)
        self.alpha = float(alpha_init)
        self.h_prev = math.inf
        self.n_updates = 0

    def penalty(self, h: torch.Tensor) -> torch.Tensor:
        """``0.5 ρ h² + α h`` (differentiable in ``h``; same dtype/device as ``h``)."""
        return 0.5 * self.rho * h * h + self.alpha * h

    def update(self, h_value: float) -> None:
        """Dual step after a (possibly approximate) primal solve that reached ``h = h_value``.

        If ``h_value > progress_rate * h_prev``: ``ρ ← min(ρ · rho_mult, rho_max)``. Then
        ``α ← α + ρ · h_value`` and ``h_prev ← h_value``.

        Raises
        ------
        ValueError
            If ``h_value`` is NaN, infinite or negative beyond rounding.
        """
        h_value = float(h_value)
        if not math.isfinite(h_value):
            raise ValueError(f"h_value must be finite, got {h_value}")
        if h_value < -1e-6:
            raise ValueError(f"h_value must be >= 0 (an acyclicity value), got {h_value}")
        if h_value > self.progress_rate * self.h_prev:
            self.rho = min(self.rho * self.rho_mult, self.rho_max)
        self.alpha += self.rho * h_value
        self.h_prev = h_value
        self.n_updates += 1
        logger.debug("dual update %d: h=%.3e rho=%.3e alpha=%.3e", self.n_updates, h_value, self.rho, self.alpha)

    @property
    def converged(self) -> bool:
        """``h_prev <= h_tol`` or ``ρ`` has reached ``rho_max``."""
        return self.h_prev <= self.h_tol or self.rho >= self.rho_max

    def state_dict(self) -> dict[str, Any]:
        """Plain-float state (JSON-serialisable except that ``h_prev`` may be ``inf``)."""
        return {"rho_init": self.rho_init, "rho_max": self.rho_max, "alpha_init": self.alpha_init,
                "h_tol": self.h_tol, "progress_rate": self.progress_rate, "rho_mult": self.rho_mult,
                "rho": self.rho, "alpha": self.alpha, "h_prev": self.h_prev, "n_updates": self.n_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`.

        Raises
        ------
        ValueError
            If a key is missing or a value is not a number.
        """
        missing = sorted(set(self.state_dict()) - set(state))
        if missing:
            raise ValueError(f"AugmentedLagrangian state is missing keys {missing}")
        try:
            vals = {k: float(state[k]) for k in self.state_dict()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"AugmentedLagrangian state has a non-numeric value ({exc})") from None
        for k in ("rho_init", "rho_max", "alpha_init", "h_tol", "progress_rate", "rho_mult", "rho", "alpha",
                  "h_prev"):
            setattr(self, k, vals[k])
        self.n_updates = int(vals["n_updates"])

    def __repr__(self) -> str:
        return (f"AugmentedLagrangian(rho={self.rho:.3g}, alpha={self.alpha:.3g}, h_prev={self.h_prev:.3g}, "
                f"n_updates={self.n_updates})")
