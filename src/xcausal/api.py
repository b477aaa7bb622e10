"""Public functions behind the CLI verbs: config dataclass in, run directory out."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
import time
from dataclasses import asdict, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from xcausal.data.dataset import CrossModalDataset, load_dataset
from xcausal.io import DataError, check_output, exclusive_lock
from xcausal.models.cmcl.config import KNOWLEDGE_OPTIONS
from xcausal.options import DATA_OPTIONS  # the FitConfig fields load_dataset takes
from xcausal.run import CHECKPOINT_NAME, read_run, write_run
from xcausal.types import Relation

__all__ = ["FitConfig", "fit", "partial_dir", "fit_lock_file", "RESUMABLE_METHODS", "read_config_file", "load_model", "load_run_dataset", "intervention_grid", "METHODS", "method_names",
           "method_entry", "explain_latent", "counterfactual_pairs", "load_generative_model"]

logger = logging.getLogger(__name__)


def _cmcl_factory(cfg: "FitConfig"):
    from xcausal.models.cmcl import CMCL
    from xcausal.models.cmcl.config import OPTIONS

    params = {name: getattr(cfg, name) for name in OPTIONS if hasattr(cfg, name)}
    params["progress"] = not cfg.quiet
    for name in KNOWLEDGE_OPTIONS:
        params[name] = list(getattr(cfg, name))
    # "cache": fit() hands over a dataset reading a memory-mapped image cache; stream it
    params["data_loading"] = "stream" if cfg.data_loading == "cache" else cfg.data_loading
    return CMCL(**params)


def _cmcl_loader():
    from xcausal.models.cmcl import CMCL

    return CMCL


def _pima_kwargs(cfg: "FitConfig") -> dict[str, Any]:
    physics = {}
    for item in cfg.physics:
        name, _, form = item.partition("=")
        if not name or not form:
            raise DataError(f"--physics {item}: expected NAME=FORM, e.g. curve=strain-hardening")
        physics[name.strip()] = form.strip()
    kw: dict[str, Any] = {"n_nodes": cfg.nodes, "latent_dim": cfg.latent_dim, "batch_size": cfg.batch_size,
                          "lr": cfg.lr, "seed": cfg.seed, "device": cfg.device, "channel_plan": cfg.channel_plan,
                          "progress": not cfg.quiet, "modalities": cfg.modalities or None, "physics": physics or None}
    if cfg.epochs is not None:
        kw["epochs"] = cfg.epochs
    if cfg.pretrain_epochs is not None:
        kw["pretrain_epochs"] = cfg.pretrain_epochs
    return kw


def _causal_pima_factory(cfg: "FitConfig"):
    from xcausal.models.causal_pima import CausalPIMA

    return CausalPIMA(**_pima_kwargs(cfg))


def _pima_factory(cfg: "FitConfig"):
    from xcausal.models.causal_pima import PIMA

    return PIMA(**_pima_kwargs(cfg))


def _causal_pima_loader():
    from xcausal.models.causal_pima import CausalPIMA

    return CausalPIMA


def _pima_loader():
    from xcausal.models.causal_pima import PIMA

    return PIMA


def _pipeline_loader():
    from xcausal.models.pipeline import Pipeline

    return Pipeline


#: method name -> (factory from FitConfig, class with .load); pipelines are resolved by :func:`method_entry`
METHODS: dict[str, tuple[Any, Any]] = {"cmcl": (_cmcl_factory, _cmcl_loader),
                                        "causal-pima": (_causal_pima_factory, _causal_pima_loader),
                                        "pima": (_pima_factory, _pima_loader)}


def method_names() -> list[str]:
    """Every method ``xcausal fit --method`` takes: cmcl and each ``<representation>+<structure>``."""
    from xcausal.models.pipeline import pipeline_names

    return list(METHODS) + pipeline_names()


def method_entry(name: str) -> tuple[Any, Any]:
    """(factory from FitConfig, loader of the class) for ``name``; DataError listing the valid names."""
    if name in METHODS:
        return METHODS[name]
    if "+" in name:
        from xcausal.models.pipeline import make_pipeline_factory

        try:
            return make_pipeline_factory(name), _pipeline_loader
        except ValueError:
            pass
    raise DataError(f"unknown method '{name}' (available: {', '.join(method_names())})")


def _fit_config_class():
    """FitConfig, built from :data:`xcausal.options.FIT_OPTIONS` (one field per option, same name)."""
    import dataclasses

    from xcausal.options import FIT_OPTIONS

    fields = []
    for o in FIT_OPTIONS.values():
        spec = (field(default_factory=lambda d=o.default: list(d), metadata={"help": o.help})
                if isinstance(o.default, list) else field(default=o.default, metadata={"help": o.help}))
        fields.append((o.name, o.type, spec))
    required = [("data", str), ("out", str)]
    fields = required + [f for f in fields if f[0] not in ("data", "out")]

    def data_options(self) -> dict[str, Any]:
        """The options :func:`xcausal.data.dataset.load_dataset` takes."""
        return {k: list(v) if isinstance(v, (list, tuple)) else v for k in DATA_OPTIONS
                for v in [getattr(self, k)]}

    cls = dataclasses.make_dataclass("FitConfig", fields, namespace={"data_options": data_options})
    cls.__module__ = __name__  # picklable as xcausal.api.FitConfig (bootstrap refits in other processes)
    cls.__doc__ = ("Everything ``xcausal fit`` takes, one field per option of :data:`xcausal.options.FIT_OPTIONS` "
                   "(the same names on the command line, in YAML and in config.json).")
    return cls


FitConfig = _fit_config_class()


def _check_type(val: Any, hint: Any, what: str) -> Any:
    """``val`` converted to ``hint`` (int, float, str, bool, Literal, Optional of these) or DataError."""
    import types
    import typing

    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if val is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_type(val, inner[0], what) if len(inner) == 1 else val
    if origin is typing.Literal:
        if val not in args and not isinstance(val, bool) and str(val) in args:
            val = str(val)  # `precision: 32` in YAML
        if val not in args:
            raise DataError(f"{what} must be one of {', '.join(map(str, args))}, got {val!r}")
        return val
    if hint is bool:
        if not isinstance(val, bool):
            raise DataError(f"{what} must be true or false, got {val!r}")
        return val
    if hint is int:
        if isinstance(val, bool) or not isinstance(val, int):
            raise DataError(f"{what} must be int, got {val!r}")
        return val
    if hint is float:
        if isinstance(val, bool) or not isinstance(val, (int, float)):
            raise DataError(f"{what} must be a number, got {val!r}")
        return float(val)
    if hint is str:
        if not isinstance(val, (str, int, float)) or isinstance(val, bool):
            raise DataError(f"{what} must be text, got {val!r}")
        return str(val)
    return val


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options for ``xcausal fit`` from a YAML (or JSON) file: keys are the option names, with
    dashes or underscores (``image-size`` = ``image_size``); list options take a list or a
    comma-separated string. DataError naming the file and key for anything unknown or mistyped."""

    import yaml

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping of option: value, got {type(raw).__name__}")

    from xcausal.options import FIT_OPTIONS

    fields = {n: o for n, o in FIT_OPTIONS.items() if n != "command"}
    hints = {n: o.type for n, o in fields.items()}
    out: dict[str, Any] = {}
    for key, val in raw.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise DataError(f"{path}: unknown option '{key}' (options: {', '.join(sorted(k.replace('_', '-') for k in fields))})")
        if fields[name].is_list:
            if isinstance(val, str):
                val = [t.strip() for t in val.split(",") if t.strip()]
            elif isinstance(val, dict) and name == "physics":
                val = [f"{k}={v}" for k, v in val.items()]
            elif not (isinstance(val, list) and all(isinstance(v, (str, int, float)) for v in val)):
                raise DataError(f"{path}: option '{key}' takes a list or a comma-separated string")
            val = [str(v) for v in val]
        else:
            val = _check_type(val, hints[name], f"{path}: option '{key}'")
        out[name] = val
    return out


#: methods whose training writes resumable checkpoints (``--checkpoint-every``, ``--resume``)
RESUMABLE_METHODS = ("cmcl",)
#: FitConfig fields a resumed fit may change: they do not alter what the checkpoint holds (``lr``
#: applies to the remaining steps, e.g. after a NaN; the model checks the device it resolves to)
_RESUME_MAY_CHANGE = ("out", "overwrite", "quiet", "command", "resume", "checkpoint_every", "lr", "jobs", "device",
                      "devices", "strategy", "data_loading", "num_workers", "min_effect")
#: methods trained through Lightning Fabric (``devices``, ``strategy``, ``precision``, ``data_loading``)
FABRIC_METHODS = ("cmcl",)
_FIT_CONFIG_FILE = "fit_config.json"


def fit_lock_file(out: str | Path) -> Path:
    """``OUT.partial.lock``, locked by the fit writing ``OUT`` for as long as it runs."""
    out = Path(out)
    return out.with_name(out.name + ".partial.lock")


def partial_dir(out: str | Path) -> Path:
    """The work directory ``OUT.partial`` beside a run directory, where training checkpoints live
    until the run directory is written (the run directory itself only ever appears complete)."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def _has_checkpoint(work: Path) -> bool:
    from xcausal.models.cmcl import TRAINING_CHECKPOINT_META

    return (work / TRAINING_CHECKPOINT_META).is_file()


def _conf_dict(cfg: FitConfig) -> dict[str, Any]:
    """The options as config.json holds them (tuples as lists), so a resumed fit compares like with like."""
    import json

    conf = json.loads(json.dumps(asdict(cfg)))
    conf["data"] = str(Path(cfg.data).resolve())
    return conf


def _prepare_partial(cfg: FitConfig, work: Path) -> dict[str, Any] | None:
    """Check ``work`` against ``cfg`` (DataError when it cannot be used); returns the checkpoint's
    meta when resuming, else None after clearing (with --overwrite) a stale checkpoint."""
    from xcausal.io import read_json
    from xcausal.models.cmcl import read_training_checkpoint_meta

    try:
        meta = read_training_checkpoint_meta(work) if work.is_dir() else None
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if cfg.resume:
        if meta is None:
            raise DataError(f"--resume: {work} holds no training checkpoint to continue "
                            f"(run without --resume to start the fit)")
        saved = read_json(work / _FIT_CONFIG_FILE) if (work / _FIT_CONFIG_FILE).is_file() else {}
        now = _conf_dict(cfg)
        diff = sorted(k for k in set(saved) | set(now) if k not in _RESUME_MAY_CHANGE and saved.get(k) != now.get(k))
        if diff:
            raise DataError(f"--resume: the options differ from the checkpointed fit's in {work}: "
                            + "; ".join(f"{k} = {now.get(k)!r} (checkpoint: {saved.get(k)!r})" for k in diff))
        return meta
    if work.exists():
        if meta is not None and not cfg.overwrite:
            raise DataError(f"{work}: holds the checkpoint of an unfinished fit (epoch {meta.get('epoch')} of "
                            f"{meta.get('epochs')}); pass --resume to continue it, or --overwrite to start over")
        ours = {_FIT_CONFIG_FILE, f"{_FIT_CONFIG_FILE}.tmp"}
        foreign = [p.name for p in work.iterdir() if meta is None and p.name not in ours
                   and not p.name.startswith("checkpoint")] if work.is_dir() else [work.name]
        if foreign:
            raise DataError(f"{work}: exists and is not a training checkpoint directory; move it away")
        shutil.rmtree(work)
    return None


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, received: list[int], work: Path):
    """While active, SIGINT and SIGTERM set ``stop`` (training then checkpoints at the next step and
    raises FitInterrupted); a second signal raises FitInterrupted at once. The previous handlers are
    restored on exit. Outside the main thread (where Python cannot install handlers) it does nothing."""
    from xcausal.models.cmcl import FitInterrupted

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        received.append(signum)
        if stop.is_set():
            exc = FitInterrupted(f"{signal.Signals(signum).name} received twice: stopped at once; {work} keeps the "
                                 "last checkpoint written", checkpoint_dir=work, epoch=-1, step=-1)
            exc.signum = signum
            raise exc
        logger.info("%s received: stopping after the current step (send it again to stop at once)",
                       signal.Signals(signum).name)
        stop.set()

    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def _fit_checkpointed(cfg: FitConfig, model, ds: CrossModalDataset, work: Path) -> dict[str, Any] | None:
    """``model.fit`` with checkpoints in ``work`` and SIGINT/SIGTERM as a clean stop; returns the
    meta of the checkpoint it resumed from (None for a fresh fit)."""
    from xcausal.io import write_json
    from xcausal.models.cmcl import FitInterrupted

    resumed = _prepare_partial(cfg, work)
    if resumed is None:
        work.mkdir(parents=True)
        write_json(work / _FIT_CONFIG_FILE, _conf_dict(cfg))
    stop = threading.Event()
    received: list[int] = []
    try:
        with _stop_on_signals(stop, received, work):
            model.fit(ds, checkpoint_dir=work, checkpoint_every=cfg.checkpoint_every, resume=cfg.resume, stop=stop)
        if stop.is_set():  # a signal after the model's last look at ``stop``
            raise FitInterrupted(f"stopped after training; the finished training is checkpointed in {work}",
                                 checkpoint_dir=work, epoch=model.epochs_, step=0)
    except FitInterrupted as exc:
        if exc.signum is None and received:
            exc.signum = received[0]
        raise
    except BaseException:
        if resumed is None and not _has_checkpoint(work):  # failed before its first checkpoint: leave nothing
            shutil.rmtree(work, ignore_errors=True)
        raise
    return resumed


def _threads_used(cfg: FitConfig) -> dict[str, int]:
    """The threads this fit ran with (recorded in config.json): the fit's own process, and each
    parallel bootstrap refit's."""
    import torch

    from xcausal._runtime import threads_per_process

    out = {"fit": torch.get_num_threads()}
    if cfg.bootstrap:
        out["bootstrap_refit"] = threads_per_process(cfg.jobs, cfg.threads) if cfg.jobs > 1 else out["fit"]
    return out


def _check_devices(cfg: FitConfig) -> None:
    """``devices`` processes must each get a core (CPU) or a GPU (cuda): more only fill the memory."""
    import os

    if cfg.devices <= 1:
        return
    import torch

    cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
    have = torch.cuda.device_count() if cuda else (os.cpu_count() or 1)
    if cfg.devices > have:
        what = f"{have} GPU(s)" if cuda else f"{have} CPU core(s)"
        raise DataError(f"devices={cfg.devices}: this machine has {what}; use at most {have}")


def _check_options(cfg: FitConfig) -> None:
    """Every option, before any work starts: options of other methods at their defaults, then (for
    cmcl) the rules of :func:`xcausal.models.cmcl.config.validate`, one message per rule."""
    from xcausal._runtime import check_distributed
    from xcausal.models.cmcl.config import OPTIONS, validate, validate_ranges
    from xcausal.options import FIT_OPTIONS, TEXT_TYPED, parse_text

    for o in FIT_OPTIONS.values():
        value = getattr(cfg, o.name)
        if o.type in TEXT_TYPED and isinstance(value, str):  # a flag gives these as text
            try:
                setattr(cfg, o.name, parse_text(o, value))
            except ValueError as exc:
                raise DataError(str(exc)) from None
    if cfg.data_loading not in ("auto", "memory", "stream", "cache"):
        raise DataError(f"data_loading={cfg.data_loading!r}: must be 'auto', 'memory', 'stream' or 'cache'")
    if cfg.threads is not None and (isinstance(cfg.threads, bool) or not isinstance(cfg.threads, int)
                                    or cfg.threads < 1):
        raise DataError(f"threads={cfg.threads!r}: must be an integer >= 1")
    for o in FIT_OPTIONS.values():
        value = getattr(cfg, o.name)
        if o.methods != "all" and cfg.method not in o.methods and value != o.default:
            shown = ",".join(map(str, value)) if isinstance(value, list) else value
            raise DataError(f"{o.name}={shown!r}: implemented for {', '.join(o.methods)} only (not for method "
                            f"'{cfg.method}')")
    if cfg.method != "cmcl":  # the options every method takes obey the same ranges
        shared = {o.name: getattr(cfg, o.name) for o in FIT_OPTIONS.values() if o.methods == "all" and o.name in OPTIONS}
        try:
            validate_ranges(shared)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        return
    params = {name: getattr(cfg, name) for name in OPTIONS if hasattr(cfg, name)}
    params["data_loading"] = "stream" if cfg.data_loading == "cache" else cfg.data_loading
    try:
        validate(params)
        check_distributed(cfg.devices, cfg.strategy, cfg.precision)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    _check_devices(cfg)


def _cached(ds, *, progress: bool):
    """``ds`` reading its images from the default memory-mapped cache, built (with a progress bar
    when ``progress``) on first use; an in-memory dataset (npz form) is returned unchanged."""
    bar = None
    if progress and ds.image_array is None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("image cache"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                       transient=True)
        bar.start()
        task = bar.add_task("cache", total=len(ds))
    try:
        return ds.cached(progress=(lambda done, total: bar.update(task, completed=done)) if bar else None)
    finally:
        if bar is not None:
            bar.stop()


def fit(cfg: FitConfig) -> Path:
    """Load the data, fit the method, write the run directory; returns its path.

    For the methods in :data:`RESUMABLE_METHODS`, with ``cfg.checkpoint_every > 0`` training
    checkpoints go to :func:`partial_dir` (``OUT.partial``) every that many epochs, and SIGINT /
    SIGTERM stop training after the current step with a checkpoint (the previous signal handlers
    are restored afterwards); ``cfg.resume`` continues from it. ``OUT.partial`` is removed once
    ``OUT`` is written.

    A fit holds :func:`fit_lock_file` (``OUT.partial.lock``) from its checks to its end, so that a
    second fit to the same ``OUT`` stops at once instead of writing over the first's ``OUT.partial``.

    Raises
    ------
    DataError
        Bad options or data; with ``resume``, no checkpoint or one from a fit with other options;
        another fit is writing ``OUT``.
    FitInterrupted
        A signal stopped training (``.signum``; the checkpoint is in ``OUT.partial``).
    FloatingPointError
        Training diverged (NaN/inf); the last good checkpoint stays in ``OUT.partial``.
    """
    factory = method_entry(cfg.method)[0]
    out = check_output(cfg.out, overwrite=cfg.overwrite)  # not only once training is done
    if cfg.bootstrap < 0:
        raise DataError(f"--bootstrap {cfg.bootstrap}: must be 0 (off) or a number of resamples")
    if cfg.jobs < 1:
        raise DataError(f"--jobs {cfg.jobs}: must be at least 1")
    _check_options(cfg)
    if isinstance(cfg.checkpoint_every, bool) or not isinstance(cfg.checkpoint_every, int) or cfg.checkpoint_every < 0:
        raise DataError(f"--checkpoint-every {cfg.checkpoint_every}: must be 0 (no checkpoints) or a number of epochs")
    checkpointed = cfg.method in RESUMABLE_METHODS and cfg.checkpoint_every > 0
    if cfg.resume and cfg.method not in RESUMABLE_METHODS:
        raise DataError(f"--resume: method '{cfg.method}' writes no training checkpoints "
                        f"(resumable: {', '.join(RESUMABLE_METHODS)})")
    if cfg.resume and not checkpointed:
        raise DataError("--resume needs checkpoints: drop --checkpoint-every 0")
    lock = fit_lock_file(out)
    with exclusive_lock(lock, busy=f"{out}: another fit is writing this run (lock {lock} held); wait for it or "
                                   "choose another --out"):
        return _fit_locked(cfg, factory, out, checkpointed)


def _check_memory(cfg: FitConfig, ds: CrossModalDataset) -> None:
    """Refuse (DataError printing the estimate) a fit whose images, batch and latents would not fit
    in this machine's memory, before the model is built."""
    from xcausal.cost import check_fit_memory, estimate_fit_memory
    from xcausal.models.cmcl.config import AUTO_MEMORY_BYTES, default_latent_dim

    stream = cfg.data_loading in ("stream", "cache") or (
        cfg.data_loading == "auto" and len(ds) * ds.channels * ds.image_size ** 2 * 4 > AUTO_MEMORY_BYTES)
    m = cfg.latent_dim or default_latent_dim(len(ds.variables))
    est = estimate_fit_memory(rows=len(ds), channels=ds.channels, image_size=ds.image_size,
                              batch_size=cfg.batch_size, latent_dim=m, plan=cfg.channel_plan, in_memory=not stream)
    check_fit_memory(est, options=f"{len(ds):,} images at --image-size {ds.image_size}, --batch-size "
                                  f"{cfg.batch_size}, --latent-dim {m}")


def _announce(cfg: FitConfig, ds: CrossModalDataset) -> float | None:
    """Before a cmcl fit: one stderr line with the data's size, the image size (saying when stored
    images are downscaled), the epochs and the estimated time (unless ``quiet``); returns the
    estimated seconds (None for other methods, whose cost model is not measured)."""
    import sys

    from xcausal.cost import clock_text, estimate_cmcl_fit

    stored = max(ds.stored_sizes) if ds.stored_sizes else ds.image_size
    size = f"{ds.image_size} px"
    if stored > ds.image_size and cfg.image_size is None:
        size += f" (stored up to {stored} px, downscaled; --image-size {stored} keeps them)"
    if cfg.method != "cmcl":
        if not cfg.quiet:
            sys.stderr.write(f"fit: {len(ds):,} images at {size}\n")
        return None
    plan = tuple(cfg.channel_plan) if isinstance(cfg.channel_plan, list) else cfg.channel_plan
    epochs, seconds = estimate_cmcl_fit(ds, batch_size=cfg.batch_size, epochs=cfg.epochs, latent_dim=cfg.latent_dim,
                                        plan=plan, convs_per_stage=cfg.convs_per_stage,
                                        params={k: getattr(cfg, k) for k in ("orient", "dag_warmup", "orient_every")})
    if not cfg.quiet:
        sys.stderr.write(f"fit: {len(ds):,} images at {size}, {epochs} epochs of {-(-len(ds) // cfg.batch_size)} "
                         f"steps; estimated time {clock_text(seconds)}\n")
        sys.stderr.flush()
    return seconds


def _fit_locked(cfg: FitConfig, factory: Any, out: Path, checkpointed: bool) -> Path:
    """:func:`fit` from the data on, under the lock of ``out``."""
    check_output(out, overwrite=cfg.overwrite)  # again: a fit that held the lock may have written it
    work = partial_dir(out)
    if cfg.resume and not _has_checkpoint(work):  # before the (possibly slow) data loading
        raise DataError(f"--resume: {work} holds no training checkpoint to continue "
                        "(run without --resume to start the fit)")
    ds = load_dataset(cfg.data, **cfg.data_options())
    if cfg.data_loading == "cache":
        ds = _cached(ds, progress=not cfg.quiet)
    names = [v.name for v in ds.variables]
    if cfg.method == "cmcl":
        from xcausal.models.cmcl.config import knowledge_names

        for option, value, name in knowledge_names({o: getattr(cfg, o) for o in KNOWLEDGE_OPTIONS}):
            if name not in names:
                raise DataError(f"--{option.replace('_', '-')} {value}: {cfg.data} has no variable column '{name}' "
                                f"(variables: {', '.join(names) or 'none'})")
    if cfg.bootstrap and not ds.variables:
        raise DataError(f"{cfg.data}: --bootstrap scores variable–latent edges, and the table has no variables")
    _check_memory(cfg, ds)
    estimate = _announce(cfg, ds)
    started = time.monotonic()
    model = factory(cfg)
    resumed = None
    if checkpointed:
        resumed = _fit_checkpointed(cfg, model, ds, work)
    else:
        model.fit(ds)
    conf = _conf_dict(cfg)
    extra: dict[str, Any] = {"fit_config": conf, "threads": _threads_used(cfg)}
    if resumed is not None:
        extra["resumed_from"] = {"epoch": resumed.get("epoch"), "step": resumed.get("step"),
                                 "written": resumed.get("written"), "lr": resumed.get("params", {}).get("lr")}
    if cfg.command:
        extra["command"] = cfg.command
    extra["fit_seconds"] = {"estimated": None if estimate is None else round(estimate, 1),
                            "measured": round(time.monotonic() - started, 1)}
    result = model.run_result(ds, extra_config=extra)
    if ds.ids is not None:
        import pandas as pd

        result.ids = pd.Series(ds.ids, name=ds.id_column or "id")
    result.row_numbers = ds.row_numbers
    if cfg.bootstrap:
        import dataclasses

        from xcausal.bootstrap import bootstrap_refits, edge_table, verdict_table, with_support

        def refit_factory(seed: int, _cfg=cfg, _factory=factory):
            return _factory(dataclasses.replace(_cfg, seed=seed, quiet=True))

        refits = bootstrap_refits(refit_factory, ds, result.graph, result.latents, b=cfg.bootstrap, seed=cfg.seed,
                                  n_jobs=cfg.jobs, threads=cfg.threads, progress=not cfg.quiet)
        table = edge_table(result.graph, refits)
        result.graph = with_support(result.graph, table)
        result.tables["edges.csv"] = table
        result.tables["verdicts.csv"] = verdict_table(result.graph, refits)
    path = write_run(out, result, overwrite=cfg.overwrite)
    if checkpointed:
        shutil.rmtree(work, ignore_errors=True)
    return path


def load_model(run: str | Path, *, device: str = "cpu"):
    """The fitted model stored in a run directory."""
    rd = read_run(run)
    method = rd.config.get("method") or rd.graph.method
    try:
        cls = method_entry(str(method))[1]()
    except DataError:
        raise DataError(f"{run}: method '{method}' has no loadable model") from None
    return cls.load(Path(run) / CHECKPOINT_NAME, device=device)


def load_generative_model(run: str | Path, *, device: str = "cpu"):
    """:func:`load_model`, refusing (DataError) a method that cannot generate images under do()."""
    model = load_model(run, device=device)
    if not hasattr(model, "counterfactual"):
        raise DataError(f"{run}: method '{model.method_name}' cannot regenerate images under interventions "
                        "(a two-stage pipeline has no model from the variables to the image); use cmcl")
    return model


def load_run_dataset(run: str | Path, data: str | Path | None = None) -> CrossModalDataset:
    """The dataset a run was fitted on (or ``data``), loaded with the run's data options."""
    rd = read_run(run)
    fc = rd.config.get("fit_config", {})
    src = data or fc.get("data")
    if not src:
        raise DataError(f"{run}: config.json does not record the data; pass --data")
    opts = {k: fc[k] for k in DATA_OPTIONS if k in fc}
    if opts.get("image_size") is None and rd.config.get("data", {}).get("image_size"):
        opts["image_size"] = int(rd.config["data"]["image_size"])  # the size the run was fitted at
    if opts.get("channels") is None and rd.config.get("data", {}).get("channels") in (1, 3):
        opts["channels"] = int(rd.config["data"]["channels"])  # the channels the run was fitted with
    return load_dataset(src, **opts)


RowSelection = str | int | Sequence[int] | None
"""Table rows as ``--rows`` takes them: ``"3,7,10-19"``, one number or a list (see :mod:`xcausal.rows`)."""


def intervention_grid(run: str | Path, var: str, values: list[Any], out: str | Path, *, rows: RowSelection = None,
                      ids: str | Sequence[Any] | None = None, samples: int = 10, data: str | Path | None = None,
                      device: str = "cpu") -> Path:
    """Figure 4/6 layout: grid rows = samples, columns = do(var = value); first column the original.

    The samples are the table rows ``rows`` (row numbers as in table.csv, 1 = first data row), or
    the rows whose id is in ``ids``, or else ``samples`` rows spread over the table (see
    :func:`xcausal.rows.select_rows`)."""
    from xcausal.rows import row_label, select_rows
    from xcausal.viz.grid import image_grid

    model = load_generative_model(run, device=device)
    ds = load_run_dataset(run, data)
    rng_rows = select_rows(ds, rows=rows, ids=ids, samples=samples)
    cols = [ds.images(rng_rows)]
    titles = ["original"]
    for v in values:
        cols.append(model.intervene({var: v}, ds, rows=rng_rows))
        titles.append(f"do({var}={v})")
    g = model.graph_obj_
    if var in g.latent:  # a discovered feature node (causal-pima): name its children instead
        kids = [e.target for e in g.edges if e.source == var]
        what = f"children: {', '.join(kids)}" if kids else "no children"
    else:
        what = f"{g.relation(var).value} in the learned graph"
    undetermined = var not in g.latent and g.relation(var) is Relation.UNDETERMINED
    if undetermined:
        # the DAG keeps a direction for every edge so that do() can run; the data did not decide it
        logger.warning("the data do not decide whether %s changes the image or the image %s (its edges with the "
                       "latents are undirected in graph.json): the grid shows the direction the model was fitted "
                       "in, not an effect the data establish", var, var)
    note = extrapolated(ds, var, values)
    caution = _contradicts_data(ds, var, values, cols[-1] - cols[1]) if len(values) > 1 else None
    image_grid(cols, titles, out, row_titles=[row_label(ds, r) for r in rng_rows],
               title=f"interventions on {var} ({what})" + (f"; {note}" if note else "")
               + ("; CAUTION: opposite to the data" if caution else "")
               + ("; CAUTION: direction undetermined" if undetermined else ""))
    return Path(out)


def _contradicts_data(ds: CrossModalDataset, var: str, values: Sequence[Any], signed: np.ndarray) -> str | None:
    """When the generated images get brighter (darker) from the first to the last value while the
    real images get darker (brighter) over the same pixels as ``var`` rises: a warning (logged, and
    returned), else None."""
    from xcausal.effects import check_against_data, image_change

    if var not in ds.variable_names:
        return None
    change = image_change(signed)
    trend = check_against_data(ds, var, values, change)
    if trend is None or trend.sign == 0 or trend.sign == change.sign:
        return None
    msg = (f"do({var}) makes the generated images {change.direction} in the {change.where}, but the real images "
           f"there are {'brighter' if trend.sign > 0 else 'darker'} where {var} is higher ({trend.text()}): the "
           "grid contradicts the data; do not read it as the effect of " + var)
    logger.warning(msg)
    return msg


def explain_latent(run: str | Path, latent: str, out: str | Path, *, rows: RowSelection = None,
                   ids: str | Sequence[Any] | None = None, samples: int = 8, data: str | Path | None = None,
                   sign: int = 1, device: str = "cpu") -> Path:
    """Grad-CAM++ of latent ``latent`` (e.g. ``"z3"``) over some input images, as a PNG (Figure 5).

    Images: the table rows ``rows``, the rows with ids ``ids``, or ``samples`` rows spread over the
    table (see :func:`intervention_grid`)."""
    from xcausal.rows import row_label, select_rows
    from xcausal.viz.gradcam import heatmap_figure, latent_heatmaps

    model = load_model(run, device=device)
    ds = load_run_dataset(run, data)
    idx = select_rows(ds, rows=rows, ids=ids, samples=samples)
    try:
        images, heat = latent_heatmaps(model, ds, latent, rows=idx, sign=sign)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    rel = []
    graph = model.graph_obj_
    for e in graph.edges:
        if latent in (e.source, e.target):
            rel.append(f"{e.source} → {e.target}")
    title = f"Grad-CAM++ of {latent}" + (f" ({', '.join(rel)})" if rel else " (no edge in the learned graph)")
    return heatmap_figure(images, heat, out, titles=[row_label(ds, r) for r in idx], title=title)


def extrapolated(ds: CrossModalDataset, var: str, values: Sequence[Any]) -> str | None:
    """A note when a value of a continuous ``var`` lies outside the range observed in ``ds`` (the
    model is then used where it saw no data), else None; the note is also logged as a warning."""
    names = [v.name for v in ds.variables]
    if var not in names or ds.variables[names.index(var)].type.value != "continuous":
        return None
    col = ds.u[:, names.index(var)]
    lo, hi = float(np.min(col)), float(np.max(col))
    outside = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if not lo <= x <= hi:
            outside.append(v)
    if not outside:
        return None
    note = f"extrapolated: {var} = {', '.join(map(str, outside))} outside the observed {lo:.3g} to {hi:.3g}"
    logger.warning("%s; the images there show the model, not the data", note)
    return note


def counterfactual_pairs(run: str | Path, values: dict[str, Any], out: str | Path, *,
                         rows: RowSelection = None, ids: str | Sequence[Any] | None = None, samples: int = 10,
                         data: str | Path | None = None, overwrite: bool = False, device: str = "cpu") -> Path:
    """Each chosen row's original, reconstruction and counterfactual under ``values``.

    The rows: table rows ``rows``, the rows with ids ``ids``, or ``samples`` rows spread over the
    table (see :func:`intervention_grid`). Writes ``out/`` atomically: ``counterfactuals.png``
    (columns original | reconstruction | counterfactual), ``images/`` (``row<N>_original.png`` and
    ``row<N>_counterfactual.png``, ``N`` the table row number; ``row<N>_<id>_...`` when the data
    has ids) and ``counterfactuals.csv`` (row, the intervened values, the row's table cells).
    """
    from PIL import Image

    from xcausal.io import atomic_output_dir
    from xcausal.rows import file_label, row_label, select_rows
    from xcausal.viz.grid import image_grid

    check_output(out, overwrite=overwrite)
    model = load_generative_model(run, device=device)
    ds = load_run_dataset(run, data)
    idx = select_rows(ds, rows=rows, ids=ids, samples=samples)
    try:
        res = model.counterfactual(ds, values, rows=idx)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    setting = ", ".join(f"{k}={v}" for k, v in values.items())
    notes = [n for k, v in values.items() if (n := extrapolated(ds, k, list(v) if isinstance(v, (list, tuple))
                                                                else [v]))]
    title = f"counterfactuals: do({setting})" + (f" ({'; '.join(notes)})" if notes else "")

    def png(a: np.ndarray, path: Path) -> None:
        img = np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
        Image.fromarray(img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)).save(path)

    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        for k, r in enumerate(idx):
            png(res["original"][k], tmp / "images" / f"{file_label(ds, r)}_original.png")
            png(res["counterfactual"][k], tmp / "images" / f"{file_label(ds, r)}_counterfactual.png")
        image_grid([res["original"], res["reconstruction"], res["counterfactual"]],
                   ["original", "reconstruction", f"do({setting})"], tmp / "counterfactuals.png",
                   row_titles=[row_label(ds, r) for r in idx], title=title)
        import pandas as pd

        rows_df = pd.DataFrame({"row": ds.row_numbers[idx]})
        for k, v in values.items():
            rows_df[f"do_{k}"] = v
        observed = ds.table.iloc[idx]
        for c in observed.columns:
            rows_df[c] = observed[c].to_numpy()
        rows_df.to_csv(tmp / "counterfactuals.csv", index=False)
    return Path(out)
