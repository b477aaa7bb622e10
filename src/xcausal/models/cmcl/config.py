"""CMCL's options: defaults that depend on the data, and ONE table of the rules every option obeys.

This module imports neither torch nor the rest of the package, so the command line and the
config-file reader can check options against it before any work starts. :func:`validate` raises
one ``ValueError`` with one message per broken rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

CR_VARS = 4
"""Default ``cr_vars``: at most this many variables are intervened on per CR step."""
MIN_EFFECT = 1.0
"""Default ``min_effect``: a variable -> latent edge is kept when the variable accounts for at least
this many times the latent's posterior variance (see :func:`xcausal.models.cmcl.refit.effect_ratios`)."""
ORIENT_RESAMPLES = 16
"""Default ``orient_resamples``: subsamples on which the final refit rescores each edge it oriented by
the pairwise score (:func:`xcausal.models.cmcl.orientation.margin_noise`); enough for the standard
deviation of the margin to within about 20%, few enough to cost a fraction of the refit."""
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
MAX_LATENTS = 256
"""Largest ``latent_dim``: the DAG has (variables + latents)² edges and one MLP per node."""
MAX_BATCH = 65536
"""Largest ``batch_size`` (a batch is decoded, encoded and decoded again per CR variable)."""
AUTO_MEMORY_BYTES = 2 * 1024 ** 3
"""``data_loading="auto"`` decodes the images into memory up to this many bytes (float32), else streams."""
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


@dataclass(frozen=True)
class Option:
    """One CMCL option: its name (the same in Python, the command line, YAML and config.json), its
    default, its type (for reading it from text), its group and a one-line help."""

    name: str
    default: Any
    type: Any
    group: str
    help: str


def _choice(name: str) -> Any:
    return Literal.__getitem__(CHOICES[name])


_OPTIONS = [
    # model
    Option("latent_dim", None, Optional[int], "model", "number of image latents m (default: variables + 4, at most 32)"),
    Option("embed_dim", None, Optional[int], "model", "size of the first module's embedding z0 (default: max(2m, 16))"),
    Option("use_cm", True, bool, "model", "the causal representation module (off: z0 is used as z; the paper's ablation)"),
    Option("use_cr", True, bool, "model", "the counterfactual contrastive regularizer (off: the paper's ablation)"),
    Option("allow_all_edges", False, bool, "model", "allow variable-variable and latent-latent edges (default: u-z only)"),
    Option("h_func", "logdet", _choice("h_func"), "model", "acyclicity function: logdet (DAGMA) or expm (NOTEARS)"),
    Option("dag_hidden", (10,), tuple, "model", "hidden widths of each DAG node's MLP"),
    Option("likelihood", "gaussian", _choice("likelihood"), "model", "image likelihood: gaussian or bernoulli (the paper's)"),
    Option("pixel_sigma", 0.1, float, "model", "pixel noise of the gaussian likelihood"),
    Option("posterior_uses_u", False, bool, "model", "the paper's q(z | z0, u) (default q(z | z0): u would leak into z)"),
    Option("decoder", "conv", _choice("decoder"), "model", "causal decoder: conv, or pose (z1-z3 turn and shift the image)"),
    Option("prior", "dag", _choice("prior"), "model", "latent prior: dag (the learned DAG) or ivae (the paper's p(z | u))"),
    Option("channel_plan", "synthetic", Union[str, tuple], "model", "conv widths: synthetic, mnist, xray or a list"),
    Option("convs_per_stage", 1, int, "model", "convolutions per resolution stage (the paper: 2)"),
    # training
    Option("epochs", None, Optional[int], "training", "training epochs (default: about 3,000 steps up to 64 px, fewer for larger images; 30-300 epochs)"),
    Option("batch_size", 64, int, "training", "rows per gradient step"),
    Option("lr", 1e-3, float, "training", "Adam learning rate"),
    Option("lambda1", 0.01, float, "training", "L1 weight on the DAG's first layer"),
    Option("lambda2", 0.001, float, "training", "L2 weight on the DAG's weights"),
    Option("dag_weight", 1.0, float, "training", "weight of the DAG's likelihood and penalty"),
    Option("cr_weight", 1.0, float, "training", "weight of CR"),
    Option("beta", 1.0, float, "training", "weight of the KL terms"),
    Option("dag_warmup", 0.2, float, "training", "share of the epochs before the acyclicity penalty and CR start"),
    Option("kl_warmup", 0.2, float, "training", "share of the epochs over which the KL weight ramps up"),
    Option("dual_every", 2, int, "training", "epochs between augmented-Lagrangian dual updates"),
    Option("rho_max", 1e4, float, "training", "largest augmented-Lagrangian penalty"),
    Option("cr_batch", 32, int, "training", "rows of each batch CR intervenes on"),
    Option("cr_vars", CR_VARS, Union[int, str], "training", "variables intervened on per CR step (drawn anew), or all"),
    Option("init", "auto", _choice("init"), "training", "linear anchor of the latents during the warm-up: auto, varimax, "
           "ica or none"),
    Option("init_weight", None, Optional[float], "training", "anchor weight (default: 100 varimax, 10 ica)"),
    # orientation
    Option("orient", "anm", _choice("orient"), "orientation", "orient variable-latent pairs during training by the "
           "pairwise score (anm) or leave it to the DAG (dag)"),
    Option("orient_every", 5, int, "orientation", "epochs between orientation passes"),
    Option("anm_method", "pnl", _choice("anm_method"), "orientation", "pairwise score: pnl (post-nonlinear), entropy "
           "(additive noise) or hsic"),
    Option("anm_decontaminate", True, bool, "orientation", "clean a latent of other latents' linear share before scoring"),
    Option("anm_latent_scale", "auto", _choice("anm_latent_scale"), "orientation", "score the latent's normal scores "
           "(normal) or raw values (raw); auto: normal with pnl"),
    Option("anm_entropy", "auto", _choice("anm_entropy"), "orientation", "entropy estimator: gmm, vasicek, or auto "
           "(gmm from 1000 rows)"),
    # refit
    Option("dag_refit", True, bool, "refit", "solve the DAG once more, full batch, on the final latents"),
    Option("refit_orient", "anm", _choice("refit_orient"), "refit", "orient the refit's variable-latent pairs by the "
           "pairwise score (anm) or by NOTEARS (dag)"),
    Option("orient_resamples", ORIENT_RESAMPLES, int, "refit", "resamples that measure the noise of each scored "
           "edge's direction; within it the edge is reported undetermined (undirected), not guessed (0: off)"),
    Option("min_effect", MIN_EFFECT, float, "refit", "keep a variable -> latent edge only if it moves the latent at "
           "least this many posterior variances (0 keeps all)"),
    Option("exogenous", (), list, "refit", "variables nothing in the image causes (e.g. age,site): no edge into them"),
    Option("measured_from_image", (), list, "refit", "variables computed from the image (a score, an ink measure): "
           "no edge from them into a latent"),
    Option("forbid", (), list, "refit", "edges never allowed, SOURCE->TARGET between variables (e.g. a->b,c->d); "
           "'image' as an end stands for every latent"),
    Option("require", (), list, "refit", "edges SOURCE->TARGET between two variables always reported, their reverse "
           "never allowed (needs allow_all_edges)"),
    Option("w_threshold", 0.3, float, "refit", "report edges with |W| above this"),
    # runtime
    Option("data_loading", "auto", _choice("data_loading"), "runtime", "images decoded once into memory, or per batch "
           "(stream); auto: memory up to 2 GB"),
    Option("num_workers", 2, int, "runtime", "DataLoader worker processes when streaming"),
    Option("devices", 1, int, "runtime", "train data-parallel in this many processes (GPUs with device cuda)"),
    Option("strategy", "auto", Literal["auto", "ddp"], "runtime", "ddp or auto (both: one spawned process per device)"),
    Option("precision", "32", Literal["32", "bf16-mixed"], "runtime", "32 or bf16-mixed (image networks in bfloat16)"),
    Option("seed", 0, int, "runtime", "random seed (the fit is a pure function of it on CPU)"),
    Option("device", "auto", str, "runtime", "auto, cpu, cuda or cuda:N"),
    Option("progress", False, bool, "runtime", "show a progress bar"),
]
#: every CMCL option by name, in signature order; CMCL's __init__ and the fit command are built from it
OPTIONS: dict[str, Option] = {o.name: o for o in _OPTIONS}
GROUPS = ("model", "training", "orientation", "refit", "runtime")


def default_latent_dim(n_variables: int) -> int:
    """Latent size when the user gives none: one per variable plus room for other image content."""
    return int(min(32, max(4, n_variables + 4)))


def default_epochs(n_samples: int, image_size: int = 32) -> int:
    """About 3,000 gradient steps at batch 64 for images up to 64 px, fewer above (a step's cost
    grows with the pixels: 128 px gets a quarter), between 30 and 300 epochs."""
    steps_per_epoch = max(1, math.ceil(n_samples / 64))
    steps = 3000 * min(1.0, (64 / max(int(image_size), 1)) ** 2)
    return int(min(300, max(30, round(steps / steps_per_epoch))))


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


def _names(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(s, str) for s in x)


#: (option, test of its value, message after "option=value: ") for the options that are not CHOICES
RANGES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("exogenous", _names, "must be a list of variable names"),
    ("measured_from_image", _names, "must be a list of variable names"),
    ("forbid", _names, "must be a list of edges SOURCE->TARGET"),
    ("require", _names, "must be a list of edges SOURCE->TARGET"),
    ("latent_dim", lambda v: v is None or (_integer(v) and 1 <= v <= MAX_LATENTS), f"must be 1 to {MAX_LATENTS}"),
    ("embed_dim", lambda v: v is None or (_integer(v) and 1 <= v <= 4 * MAX_LATENTS),
     f"must be 1 to {4 * MAX_LATENTS}"),
    ("epochs", lambda v: v is None or (_integer(v) and v >= 1), "must be at least 1"),
    ("batch_size", lambda v: _integer(v) and 2 <= v <= MAX_BATCH, f"must be 2 to {MAX_BATCH}"),
    ("lr", lambda v: _number(v) and math.isfinite(v) and v > 0, "must be a finite number > 0"),
    ("w_threshold", _finite_nonneg, "must be a finite number >= 0"),
    ("lambda1", _finite_nonneg, "must be a finite number >= 0"),
    ("lambda2", _finite_nonneg, "must be a finite number >= 0"),
    ("dag_weight", _finite_nonneg, "must be a finite number >= 0"),
    ("cr_weight", _finite_nonneg, "must be a finite number >= 0"),
    ("beta", _finite_nonneg, "must be a finite number >= 0"),
    ("kl_warmup", lambda v: _number(v) and 0 <= v <= 1, "must be in [0, 1]"),
    ("rho_max", lambda v: _number(v) and math.isfinite(v) and v > 0, "must be a finite number > 0"),
    ("dual_every", lambda v: _integer(v) and v >= 1, "must be an integer >= 1"),
    ("orient_every", lambda v: _integer(v) and v >= 1, "must be an integer >= 1"),
    ("cr_batch", lambda v: _integer(v) and v >= 1, "must be an integer >= 1"),
    ("convs_per_stage", lambda v: _integer(v) and v in (1, 2), "must be 1 or 2"),
    ("dag_hidden", lambda v: isinstance(v, (list, tuple)) and len(v) >= 1 and all(_integer(k) and 1 <= k <= 1024
                                                                                  for k in v),
     "must be one or more integers from 1 to 1024"),
    ("cr_vars", lambda v: v == "all" or (_integer(v) and v >= 1), "must be 'all' or an integer >= 1"),
    ("init_weight", lambda v: v is None or _finite_nonneg(v), "must be None or a finite number >= 0"),
    ("min_effect", _finite_nonneg, "must be a finite number >= 0"),
    ("orient_resamples", lambda v: _integer(v) and (v == 0 or 4 <= v <= 1000), "must be 0 (off) or 4 to 1000"),
    ("pixel_sigma", lambda v: _number(v) and math.isfinite(v) and v > 0, "must be positive"),
    ("dag_warmup", lambda v: _number(v) and 0 <= v < 1, "must be in [0, 1)"),
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


def validate_ranges(params: Mapping[str, Any]) -> None:
    """ValueError for the first option of ``params`` (any subset of CMCL's) outside its range."""
    for name, ok, message in RANGES:
        if name not in params:
            continue
        value = params[name]
        try:
            good = bool(ok(value))
        except TypeError:
            good = False
        if not good:
            raise ValueError(f"{name}={_show(value)}: {message}")


def validate(params: Mapping[str, Any]) -> None:
    """ValueError naming the first option of ``params`` (CMCL's parameters) that breaks a rule."""
    for name, allowed in CHOICES.items():
        if params[name] not in allowed:
            raise ValueError(f"{name}='{params[name]}': must be {one_of(allowed)}")
    validate_ranges(params)
    for ok, message in RULES:
        if not ok(params):
            raise ValueError(message(params))
    check_knowledge(params)


# ---------------------------------------------------------------- background knowledge
IMAGE = "image"
"""The word that, as an end of a ``forbid`` edge, stands for every latent of the image."""
KNOWLEDGE_OPTIONS = ("exogenous", "measured_from_image", "forbid", "require")
"""The background-knowledge options: each a list of variable names or of edges "a->b"."""


def parse_edges(option: str, values: Sequence[str]) -> list[tuple[str, str]]:
    """The (source, target) pairs of ``forbid`` / ``require`` written as ``"a->b"`` texts (the
    one parser of both options). ValueError naming the option and the value for a text that is not
    one edge between two different names."""
    out = []
    for text in values:
        src, sep, dst = str(text).partition("->")
        src, dst = src.strip(), dst.strip()
        if not sep or not src or not dst or "->" in dst:
            raise ValueError(f"{option}={text!r}: expected one edge SOURCE->TARGET, e.g. age->score")
        if src == dst:
            raise ValueError(f"{option}={text!r}: a self-loop; an edge joins two different variables")
        out.append((src, dst))
    return out


def knowledge_names(params: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every variable name the background knowledge of ``params`` mentions, as (option, value as
    written, name): what a caller checks against the table's columns (``image`` is not a name)."""
    out = [(o, str(v), str(v)) for o in ("exogenous", "measured_from_image") for v in params.get(o, ())]
    for option in ("forbid", "require"):
        for a, b in parse_edges(option, params.get(option, ())):
            out += [(option, f"{a}->{b}", name) for name in (a, b) if name != IMAGE]
    return out


def knowledge_summary(params: Mapping[str, Any]) -> str:
    """One line naming the background knowledge a fit was given (``params``: its options, e.g. a
    run's config.json ``params``; missing or malformed entries count as none), e.g. "Background
    knowledge used: age exogenous; score measured from the image; forbidden: a->b; required: c->d"."""
    def listed(name: str) -> list[str]:
        value = params.get(name)
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else []

    parts = []
    for name, words in (("exogenous", "exogenous"), ("measured_from_image", "measured from the image")):
        if listed(name):
            parts.append(f"{', '.join(listed(name))} {words}")
    for name, words in (("forbid", "forbidden"), ("require", "required")):
        if listed(name):
            parts.append(f"{words}: {', '.join(v.replace(' ', '') for v in listed(name))}")
    return "Background knowledge used: " + ("; ".join(parts) if parts else "none")


def check_knowledge(params: Mapping[str, Any]) -> None:
    """ValueError (naming the option and the value) for background knowledge that contradicts
    itself, checked without the data: a variable both exogenous (nothing causes it) and measured
    from the image (the image causes it), a malformed or self-loop edge, an edge both required and
    forbidden, required edges that form a cycle or end in an exogenous variable, ``image`` as an
    end of a required edge, and required edges without ``allow_all_edges`` (by default the graph has
    only variable-latent edges, so an edge between two variables cannot be drawn)."""
    exo = [str(v) for v in params.get("exogenous", ())]
    for name in params.get("measured_from_image", ()):
        if name in exo:
            raise ValueError(f"measured_from_image={name!r}: also listed as exogenous; an exogenous variable has no "
                             "cause, one measured from the image is caused by it")
    forbid = parse_edges("forbid", params.get("forbid", ()))
    require = parse_edges("require", params.get("require", ()))
    for a, b in require:
        if IMAGE in (a, b):
            raise ValueError(f"require='{a}->{b}': '{IMAGE}' (every latent) can only be forbidden; a required edge "
                             "names two variables")
        if (a, b) in forbid:
            raise ValueError(f"require='{a}->{b}': the same edge is forbidden (forbid='{a}->{b}')")
        if b in exo:
            raise ValueError(f"require='{a}->{b}': {b} is exogenous (no edge into it)")
        if not params.get("allow_all_edges", False):
            raise ValueError(f"require='{a}->{b}': an edge between two variables needs allow_all_edges=True (by "
                             "default the graph has only variable-latent edges)")
    import networkx as nx

    try:
        cycle = [a for a, _ in nx.find_cycle(nx.DiGraph(require))]
    except nx.NetworkXNoCycle:
        return
    raise ValueError(f"require={','.join(f'{a}->{b}' for a, b in require)!r}: the required edges form a cycle "
                     f"({' -> '.join(cycle + cycle[:1])})")
