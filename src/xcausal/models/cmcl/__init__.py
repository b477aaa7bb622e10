"""CMCL: Cross-Modal Variational Causal representation and structure Learning (Mao et al. 2022).

``CMCL(...).fit(dataset)`` is the front (:mod:`.estimator`); its parts are importable on their own:
:mod:`.config` (defaults and the rules of every option; no torch), :mod:`.nets`, :mod:`.losses`,
:mod:`.trainer`, :mod:`.anchor`, :mod:`.orientation`, :mod:`.refit`, :mod:`.checkpoint` and
:mod:`.distributed`. Imports are lazy (PEP 562): the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CMCL": "estimator",
    "FORMAT_VERSION": "estimator",
    "CMCLNet": "nets",
    "Encoding": "nets",
    "FitInterrupted": "checkpoint",
    "read_training_checkpoint_meta": "checkpoint",
    "TRAINING_CHECKPOINT_META": "checkpoint",
    "default_latent_dim": "config",
    "default_epochs": "config",
    "CR_VARS": "config",
    "MIN_EFFECT": "config",
    "AUTO_LINEAR_R2": "config",
    "ANCHOR_WEIGHT": "config",
    "effect_spread": "refit",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
