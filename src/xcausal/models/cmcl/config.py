"""CMCL's options: defaults that depend on the data, and ONE table of the rules every option obeys.

This module imports neither torch nor the rest of the package, so the command line and the
config-file reader can check options against it before any work starts. :func:`validate` raises
one ``ValueError`` with one message per broken rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

CR_VARS = 4
"""Default ``cr_vars``: at most this many variables are intervened on per CR step."""
MIN_EFFECT = 1.0
"""Default ``min_effect``: a variable -> latent edge is kept when the variable accounts for at least
this many times the latent's posterior variance (see :func:`xcausal.models.cmcl.refit.effect_ratios`)."""
DEPENDENCE_ALPHA = 1e-3
"""Family-wise level of the check that the variables the refitted DAG calls independent are
(:func:`xcausal.structure.unexplained_dependences`, Bonferroni over those pairs)."""
GRAD_CLIP_NORM = 100.0
"""Training clips the gradient of all parameters to this total norm (per step)."""
AUTO_LINEAR_R2 = 0.95
"""``init="auto"`` anchors to varimax factors when the first m principal components of the pixels
explain at least this share of their variance (a linear mixture of m factors), else to FastICA."""
ANCHOR_WEIGHT = {"varimax": 100.0, "ica": 10.0}
"""Anchor weight per method when ``init_weight`` is None."""
POSE_LATENT_COUNT = 3
"""Latents a pose decoder reserves for the turn and the shift (``xcausal.nn.POSE_LATENTS``)."""

#: options whose value is one of a fixed set (the first is not necessarily the default)
CHOICES: dict[str, tuple[str, ...]] = {
    "h_func": ("logdet", "expm"),
    "likelihood": ("gaussian", "bernoulli"),
    "orient": ("anm", "dag"),
    "decoder": ("conv", "pose"),
    "prior": ("dag", "ivae"),
    "anm_method": ("entropy", "pnl", "hsic"),
    "anm_latent_scale": ("auto", "normal", "raw"),
    "anm_entropy": ("auto", "gmm", "vasicek"),
    "refit_orient": ("dag", "anm"),
    "init": ("auto", "varimax", "ica", "none"),
    "data_loading": ("auto", "memory", "stream"),
}


def default_latent_dim(n_variables: int) -> int:
    """Latent size when the user gives none: one per variable plus room for other image content."""
    return int(min(32, max(4, n_variables + 4)))


def default_epochs(n_samples: int) -> int:
    """About 3,000 gradient steps at batch 64, between 30 and 300 epochs."""
    steps_per_epoch = max(1, math.ceil(n_samples / 64))
    return int(min(300, max(30, round(3000 / steps_per_epoch))))


def one_of(values: tuple[str, ...]) -> str:
    """'a' or 'b'; 'a', 'b' or 'c'."""
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _integer(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _finite_nonneg(x: Any) -> bool:
    return _number(x) and math.isfinite(x) and x >= 0


#: (option, test of its value, message after "option=value: ") for the options that are not CHOICES
RANGES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("exogenous", lambda v: isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v),
     "must be a list of variable names"),
    ("latent_dim", lambda v: v is None or v >= 1, "must be at least 1"),
    ("epochs", lambda v: v is None or v >= 1, "must be at least 1"),
    ("batch_size", lambda v: v >= 2, "must be at least 2"),
    ("cr_vars", lambda v: v == "all" or (_integer(v) and v >= 1), "must be 'all' or an integer >= 1"),
    ("init_weight", lambda v: v is None or _finite_nonneg(v), "must be None or a finite number >= 0"),
    ("min_effect", _finite_nonneg, "must be a finite number >= 0"),
    ("pixel_sigma", lambda v: v > 0, "must be positive"),
    ("dag_warmup", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("num_workers", lambda v: _integer(v) and v >= 0, "must be an integer >= 0"),
]

#: rules between options: (test of all options, message)
RULES: list[tuple[Callable[[Mapping[str, Any]], bool], Callable[[Mapping[str, Any]], str]]] = [
    (lambda p: not (p["decoder"] == "pose" and not p["use_cm"]),
     lambda p: "decoder='pose' needs the causal module (use_cm=True): it is that module's decoder"),
    (lambda p: not (p["decoder"] == "pose" and p["init"] in ("varimax", "ica")),
     lambda p: f"decoder='pose' with init='{p['init']}': a linear anchor on the pixels cannot describe a pose "
               "latent; use init='auto' or 'none'"),
    (lambda p: not (p["decoder"] == "pose" and p["latent_dim"] is not None and p["latent_dim"] <= POSE_LATENT_COUNT),
     lambda p: f"latent_dim={p['latent_dim']}: decoder='pose' needs more than {POSE_LATENT_COUNT} latents "
               "(rotation, shift_x, shift_y and at least one for the content)"),
]


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else f"{value!r}" if not _number(value) else f"{value}"


def validate(params: Mapping[str, Any]) -> None:
    """ValueError naming the first option of ``params`` (CMCL's parameters) that breaks a rule."""
    for name, allowed in CHOICES.items():
        if params[name] not in allowed:
            raise ValueError(f"{name}='{params[name]}': must be {one_of(allowed)}")
    for name, ok, message in RANGES:
        value = params[name]
        try:
            good = bool(ok(value))
        except TypeError:
            good = False
        if not good:
            raise ValueError(f"{name}={_show(value)}: {message}")
    for ok, message in RULES:
        if not ok(params):
            raise ValueError(message(params))
