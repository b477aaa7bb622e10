"""The options of ``xcausal fit``, declared once.

Run, data and causalPIMA options are declared here; CMCL's own options come from
:data:`xcausal.models.cmcl.config.OPTIONS`. Each option has ONE name, used by
:class:`xcausal.api.FitConfig` (built from this table), the command line (``--name``, or ``--set
name=value`` for any option), the YAML config file (``name:``) and the run's config.json. Options
with a ``panel`` are shown in ``xcausal fit --help`` under that panel; the others are expert
options, reachable by their flag, ``--set`` and YAML, and listed in docs/cli.md.

This module imports no torch: the command line checks options before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

from xcausal.models.cmcl import config as cmcl_config


@dataclass(frozen=True)
class FitOption:
    """One option of ``xcausal fit``. ``flags``: its command-line spelling when it is not
    ``--name`` (e.g. ``--quiet`` / ``-q``); ``panel``: where ``--help`` shows it (None: expert);
    ``methods``: the methods it applies to ("all", or a tuple of method names; the others refuse
    a value other than the default)."""

    name: str
    default: Any
    type: Any
    help: str
    panel: str | None = None
    flags: tuple[str, ...] = ()
    methods: Any = "all"

    @property
    def is_list(self) -> bool:
        return self.type is list

    def cli_flags(self) -> tuple[str, ...]:
        if self.flags:
            return self.flags
        dash = "--" + self.name.replace("_", "-")
        if self.type is bool and self.default is True:
            return (f"{dash}/--no-{self.name.replace('_', '-')}",)
        return (dash,)


DATA, MODEL, TRAINING, OUTPUT, CONFIG = "Data", "Method and model", "Training", "Output", "Config and expert options"
CMCL_ONLY = ("cmcl",)
PIMA = ("causal-pima", "pima")

_RUN = [
    FitOption("data", None, Optional[str], "dataset directory or .npz file (or `data:` in --config)"),
    FitOption("out", None, Optional[str], "run directory to write (or `out:` in --config)", OUTPUT, ("--out", "-o")),
    FitOption("method", "cmcl", str, "cmcl, causal-pima, pima, or a pipeline <representation>+<structure> "
              "(betavae|factorvae|tcvae|ivae|ica + notears|ges)", MODEL),
    FitOption("image_size", None, Optional[int], "resize images to this side (default: stored size, at most 64)", DATA),
    FitOption("channels", None, Optional[int], "1 or 3 (default: as stored; RGB when files mix both)", DATA),
    FitOption("categorical", [], list, "columns forced categorical (comma-separated)", DATA),
    FitOption("continuous", [], list, "columns forced continuous (comma-separated)", DATA),
    FitOption("missing", "error", Literal["error", "drop"], "rows with missing cells: error or drop", DATA),
    FitOption("na_values", [], list, "cell texts that also mean missing, e.g. NA,n/a (comma-separated; default: "
              "only empty cells)", DATA),
    # column roles: expert options (no room in fit --help), shared with `xcausal info`
    FitOption("image_column", "image", str, "the table column of image paths (directory form)"),
    FitOption("id_column", None, Optional[str], "the table column of row ids, not a variable (default: `id`, "
              "else a text column of nearly all distinct values)"),
    FitOption("ignore", [], list, "table columns that are neither variables nor ids (comma-separated)"),
    FitOption("max_categories", 20, int, "most levels of a categorical variable; more is refused"),
    # = xcausal.data.dataset.MAX_PIXELS (not imported: that module imports torch); a test checks they agree
    FitOption("max_pixels", 64_000_000, int, "largest image file accepted, in pixels (width × height); larger "
              "files are refused before they are decoded"),
    FitOption("bootstrap", 0, int, "refit on B resamples: edges.csv, verdicts.csv (0 = off)", TRAINING),
    FitOption("jobs", 1, int, "parallel bootstrap refits (processes)", TRAINING),
    FitOption("threads", None, Optional[int], "torch and BLAS threads of the fit (default: every core) and of each "
              "parallel bootstrap refit (default: cores // jobs)"),
    FitOption("nodes", 3, int, "causal-pima / pima: binary feature nodes n (2^n mixture components)", MODEL,
              methods=PIMA),
    FitOption("modalities", [], list, "causal-pima / pima: modalities to use, e.g. image,curve (default: all)",
              methods=PIMA),
    FitOption("physics", [], list, "causal-pima / pima: physics decoders NAME=FORM (linear or strain-hardening)",
              methods=PIMA),
    FitOption("pretrain_epochs", None, Optional[int], "causal-pima / pima: plain-VAE pre-training epochs "
              "(default 20)", methods=PIMA),
    FitOption("overwrite", False, bool, "replace OUT if it exists", OUTPUT),
    FitOption("quiet", False, bool, "no progress bar", OUTPUT, ("--quiet", "-q")),
    # cmcl only, refused for the others with their own message (api.fit: "writes no training checkpoints")
    FitOption("checkpoint_every", 10, int, "cmcl: checkpoint training to OUT.partial every K epochs (0 = none)",
              OUTPUT),
    FitOption("resume", False, bool, "cmcl: continue the interrupted fit in OUT.partial", OUTPUT),
    FitOption("command", None, Optional[str], "the command line that asked for the fit (recorded, not an option)"),
]

#: the options :func:`xcausal.data.dataset.load_dataset` takes: `xcausal info` takes the same flags, and
#: config.json's fit_config records them so later verbs reload the data as the fit read it
DATA_OPTIONS = ("image_size", "channels", "categorical", "continuous", "missing", "na_values", "image_column",
                "id_column", "ignore", "max_categories", "max_pixels")

#: CMCL options ``fit --help`` shows, by panel; every other one is an expert option
_CMCL_PANELS = {"latent_dim": MODEL, "decoder": MODEL, "exogenous": MODEL, "epochs": TRAINING, "seed": TRAINING,
                "device": TRAINING}
#: CMCL options that other methods take too (the rest are cmcl-only)
_SHARED = ("latent_dim", "epochs", "batch_size", "lr", "seed", "device", "channel_plan", "h_func", "w_threshold",
           "allow_all_edges", "use_cm", "use_cr")
#: CMCL options the command line takes differently: progress is ``quiet``; data_loading adds "cache"
_CMCL_SKIP = ("progress",)
_CMCL_FLAGS = {"use_cm": ("--use-cm/--no-cm",), "use_cr": ("--use-cr/--no-cr",)}


def _from_cmcl(o: cmcl_config.Option) -> FitOption:
    typ = o.type
    default = list(o.default) if o.type is list else o.default
    help_ = o.help
    if o.name == "data_loading":
        typ = Literal["auto", "memory", "stream", "cache"]
        help_ += "; cache: decode once into DATA/.xcausal-cache/ and stream from it"
    methods = "all" if o.name in _SHARED else CMCL_ONLY
    return FitOption(o.name, default, typ, help_ if methods != CMCL_ONLY else f"cmcl: {help_}",
                     _CMCL_PANELS.get(o.name), _CMCL_FLAGS.get(o.name, ()), methods)


#: every option of ``xcausal fit``, by name
FIT_OPTIONS: dict[str, FitOption] = {o.name: o for o in _RUN}
FIT_OPTIONS.update({o.name: _from_cmcl(o) for o in cmcl_config.OPTIONS.values() if o.name not in _CMCL_SKIP})
PANELS = (DATA, MODEL, TRAINING, OUTPUT, CONFIG)


def expert_options() -> list[FitOption]:
    """The options ``fit --help`` leaves to ``--set`` (and their hidden flags), in table order."""
    return [o for o in FIT_OPTIONS.values() if o.panel is None and o.name not in ("data", "command")]


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


#: option types a flag reads as text and :func:`parse_text` turns into their value
TEXT_TYPED = (tuple, Union[int, str], Union[str, tuple])


def parse_text(o: FitOption, text: str) -> Any:
    """The value of option ``o`` written as text (``--set name=text``, or a flag of a type in
    :data:`TEXT_TYPED`); ValueError naming the option. Types are checked loosely here (numbers,
    booleans, lists, none, integer tuples); the rules come later."""
    t = text.strip()
    typ = o.type
    if typ == Union[int, str]:  # cr_vars: an integer or a word ("all")
        return int(t) if t.isascii() and t.isdecimal() else t.lower()
    if typ is tuple or (typ == Union[str, tuple] and t[:1].isdigit()):  # integer widths, e.g. 10,10
        parts = [p.strip() for p in t.strip("()[]").split(",") if p.strip()]
        if not all(p.isascii() and p.isdecimal() for p in parts):
            raise ValueError(f"{o.name}={text!r}: must be integers separated by commas")
        return tuple(int(p) for p in parts)
    optional = o.default is None or typ in (Optional[int], Optional[float], Optional[str])
    if optional and t.lower() in ("none", "null", ""):
        return None
    if typ is bool:
        if t.lower() in _TRUE:
            return True
        if t.lower() in _FALSE:
            return False
        raise ValueError(f"--set {o.name}={text}: must be true or false")
    if typ is list:
        return [s.strip() for s in t.split(",") if s.strip()]
    for number in (int, float):
        if typ in (number, Optional[number]):
            try:
                return number(t)
            except ValueError:
                raise ValueError(f"--set {o.name}={text}: must be {'an integer' if number is int else 'a number'}") \
                    from None
    return t
