"""Methods: CMCL, causalPIMA (and its PIMA baseline), the two-stage ``<representation>+<structure>`` pipelines and their representation
learners (the four VAE baselines of the CMCL paper and a linear ICA).

Imports are lazy (PEP 562): ``from xcausal.models import CMCL`` loads only what it names.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CMCL": "xcausal.models.cmcl",
    "CausalPIMA": "xcausal.models.causal_pima",
    "PIMA": "xcausal.models.causal_pima",
    "Pipeline": "xcausal.models.pipeline",
    "ICA": "xcausal.models.linear",
    "BetaVAE": "xcausal.models.representation",
    "FactorVAE": "xcausal.models.representation",
    "TCVAE": "xcausal.models.representation",
    "IVAE": "xcausal.models.representation",
    "REPRESENTATIONS": "xcausal.models.representation",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'xcausal.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
