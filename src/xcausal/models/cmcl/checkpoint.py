"""Training checkpoints of CMCL: the files, what they hold, and resuming from them.

A checkpoint directory holds ``checkpoint.json`` (the commit point: progress, parameters, data
fingerprint, history, and the name and sha256 of its tensor file) and one ``checkpoint-NNNNNN.pt``
(tensors only, loaded with ``weights_only=True``). To change what a checkpoint holds, change
:func:`checkpoint_state` and :func:`restore_state` together and bump :data:`TRAINING_FORMAT_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from xcausal import __version__
from xcausal._runtime import load_state
from xcausal.data.dataset import CrossModalDataset
from xcausal.models.cmcl.anchor import build_anchor
from xcausal.structure import AugmentedLagrangian

if TYPE_CHECKING:
    from xcausal.models.cmcl.estimator import CMCL

logger = logging.getLogger("xcausal.models.cmcl")

#: the commit point of a training checkpoint directory: JSON naming the tensor file it goes with
TRAINING_CHECKPOINT_META = "checkpoint.json"
TRAINING_FORMAT_VERSION = 3  # 3: every parameter recorded; no defaults filled in for older files
_TRAINING_KIND = "xcausal-training-checkpoint"
#: CMCL parameters a resumed fit may change: they do not alter the state a checkpoint holds (the
#: batch split over processes and the way images are read change the result only up to float
#: summation order; min_effect and orient_resamples act only after training, in the final refit)
RESUMABLE_CHANGES = ("lr", "progress", "device", "devices", "strategy", "data_loading", "num_workers", "min_effect",
                     "orient_resamples")


class FitInterrupted(Exception):
    """Training stopped on request (``stop`` was set, e.g. by SIGINT/SIGTERM in :func:`xcausal.api.fit`).

    Attributes
    ----------
    checkpoint_dir : Path or None
        Directory holding the checkpoint written at the stop (None: training ran without checkpoints).
    epoch, step : int
        Completed epochs, and steps of the next epoch, that the checkpoint holds.
    signum : int or None
        The signal that asked for the stop, when the caller records it.
    """

    def __init__(self, message: str, *, checkpoint_dir: Path | None, epoch: int, step: int) -> None:
        super().__init__(message)
        self.checkpoint_dir = checkpoint_dir
        self.epoch = epoch
        self.step = step
        self.signum: int | None = None


def json_float(x: float) -> float | str:
    """JSON has no inf/NaN: non-finite floats as the strings "inf", "-inf", "nan"."""
    return x if math.isfinite(x) else repr(float(x))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_training_checkpoint_meta(directory: str | Path) -> dict[str, Any] | None:
    """The JSON half of the training checkpoint in ``directory`` (None when there is none).

    Raises
    ------
    ValueError
        If ``directory/checkpoint.json`` exists but is not a readable xcausal training checkpoint.
    """
    mp = Path(directory) / TRAINING_CHECKPOINT_META
    if not mp.is_file():
        return None
    try:
        meta = json.loads(mp.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{mp}: unreadable training checkpoint ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != _TRAINING_KIND:
        raise ValueError(f"{mp}: not an xcausal training checkpoint")
    if meta.get("format") != TRAINING_FORMAT_VERSION:
        raise ValueError(f"{mp}: training checkpoint in format {meta.get('format')} (xcausal "
                         f"{meta.get('xcausal_version')}); this version reads format {TRAINING_FORMAT_VERSION} "
                         "only: start the fit again without --resume")
    return meta


def read_training_checkpoint(directory: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(meta, tensors) of the checkpoint in ``directory``, its tensor file checked against its sha256."""
    meta = read_training_checkpoint_meta(directory)
    if meta is None:
        raise ValueError(f"{directory}: no training checkpoint ({TRAINING_CHECKPOINT_META}) to resume from")
    name = str(meta.get("tensors", ""))
    # only a file this module writes, directly in the directory: checkpoint.json is data, and a path
    # in it must not make the resume read a file elsewhere (a symlink out is refused alike)
    if not re.fullmatch(r"checkpoint-\d{6}\.pt", name) or (directory / name).is_symlink():
        raise ValueError(f"{directory / TRAINING_CHECKPOINT_META}: names the tensor file {name[:80]!r}, not a "
                         "checkpoint-NNNNNN.pt file in its own directory")
    tp = directory / name
    if not tp.is_file():
        raise ValueError(f"{directory}: the checkpoint's tensor file {tp.name} is missing")
    if _sha256(tp) != meta.get("sha256"):
        raise ValueError(f"{tp}: does not match its {TRAINING_CHECKPOINT_META} (sha256 differs)")
    tensors = torch.load(tp, map_location="cpu", weights_only=True)
    return meta, tensors


def write_training_checkpoint(directory: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Tensor file first, then ``checkpoint.json`` (naming it, with its sha256) by an atomic rename,
    then the older tensor files: at any instant the directory holds one complete checkpoint."""
    directory.mkdir(parents=True, exist_ok=True)
    previous = read_training_checkpoint_meta(directory) if (directory / TRAINING_CHECKPOINT_META).is_file() else None
    serial = int(previous.get("serial", 0)) + 1 if previous else 1
    name = f"checkpoint-{serial:06d}.pt"
    tmp = directory / (name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(tensors, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / name)
    meta = {**meta, "serial": serial, "tensors": name, "sha256": _sha256(directory / name)}
    tmp_meta = directory / (TRAINING_CHECKPOINT_META + ".tmp")
    with open(tmp_meta, "w") as f:
        f.write(json.dumps(meta, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_meta, directory / TRAINING_CHECKPOINT_META)
    for old in directory.glob("checkpoint-*.pt*"):
        if old.name != name:
            old.unlink(missing_ok=True)


@dataclass
class Checkpointing:
    """Where :meth:`CMCL.fit` writes training checkpoints, how often, and the state it resumes from."""

    directory: Path
    every: int
    loaded: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None

    def write(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        write_training_checkpoint(self.directory, meta, tensors)
        logger.info("checkpoint (%s) after epoch %d, step %d written to %s", meta["reason"], meta["epoch"],
                    meta["step"], self.directory)

    def last_epoch(self) -> int | None:
        """Epochs held by the checkpoint on disk (None: none written yet)."""
        try:
            meta = read_training_checkpoint_meta(self.directory)
        except ValueError:
            return None
        return None if meta is None else int(meta["epoch"])


def stop_point(model: CMCL, stop: Any, ckpt: Checkpointing | None, where: str) -> None:
    """Raise FitInterrupted when ``stop`` is set after training (the final checkpoint is written)."""
    if stop is None or not stop.is_set():
        return
    where_ckpt = f"; the finished training is checkpointed in {ckpt.directory}" if ckpt else ""
    raise FitInterrupted(f"stopped {where} (epoch {model.epochs_} of {model.epochs_}){where_ckpt}",
                         checkpoint_dir=ckpt.directory if ckpt else None, epoch=model.epochs_, step=0)


def data_fingerprint(ds: CrossModalDataset) -> dict[str, Any]:
    """What identifies the training data of a checkpoint: the dataset summary and a hash of the table."""
    summ = {k: v for k, v in ds.summary().items() if k != "source"}
    u = np.ascontiguousarray(ds.u, dtype=np.float64)
    return {**summ, "u_sha256": hashlib.sha256(u.tobytes()).hexdigest()}


def check_resumable(model: CMCL, meta: Mapping[str, Any], ds: CrossModalDataset) -> None:
    """DataError unless ``meta``'s checkpoint was trained by the same method, parameters (but
    :data:`RESUMABLE_CHANGES`), device, data and number of epochs as this fit."""
    from xcausal.io import DataError

    where = f"resume from {meta.get('tensors')}"
    if meta.get("method") != model.method_name:
        raise DataError(f"{where}: the checkpoint is for method '{meta.get('method')}', not '{model.method_name}'")
    now = model.get_params()
    defaults = type(model)().get_params()  # an option newer than the checkpoint was at its default there
    saved = {**{k: v for k, v in defaults.items() if k not in meta.get("params", {})}, **meta.get("params", {})}
    diff = sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
    if diff:
        raise DataError(f"{where}: parameters differ from the checkpoint's: "
                        + ", ".join(f"{k}={now.get(k)!r} (checkpoint: {saved.get(k)!r})" for k in diff))
    if meta.get("resolved", {}).get("device") != str(model.device_):
        raise DataError(f"{where}: the checkpoint was trained on {meta.get('resolved', {}).get('device')}, "
                        f"this fit runs on {model.device_}; resume on the same device")
    if meta.get("data") != data_fingerprint(ds):
        raise DataError(f"{where}: the dataset {ds.source} is not the one the checkpoint was trained on")
    if int(meta.get("epochs", -1)) != model.epochs_:
        raise DataError(f"{where}: the checkpoint trains {meta.get('epochs')} epochs, this fit {model.epochs_}")


def checkpoint_state(model: CMCL, state: Any, *, epoch: int, step: int, finished: bool, reason: str,
                     ds: CrossModalDataset) -> tuple[dict, dict[str, torch.Tensor]]:
    """(JSON meta, tensors) of the training ``state`` (a :class:`xcausal.models.cmcl.trainer.TrainState`)
    after ``epoch`` epochs and ``step`` steps of the next.

    Tensors (``torch.load(weights_only=True)``): ``net.<name>`` the network's state_dict;
    ``net.dag._in_mask`` the DAG's input mask (not in its state_dict; the orientation edits it);
    ``opt.<param index>.<name>`` Adam's per-parameter state; ``rng.shuffle``, ``rng.noise``,
    ``rng.cr`` the training generators; ``epoch.perm`` the current epoch's batch order (mid-epoch);
    ``anchor.mean`` / ``anchor.unmix`` the anchor. The meta holds everything else: progress,
    parameters, data fingerprint, history rows, the partial epoch's sums, the augmented
    Lagrangian, the ANM-oriented pairs and the timings.
    """
    net = model.net_
    tensors: dict[str, torch.Tensor] = {f"net.{k}": v.detach().cpu().clone() for k, v in net.state_dict().items()}
    tensors["net.dag._in_mask"] = net.dag.input_mask.detach().cpu().clone()
    index = {id(p): i for i, p in enumerate(net.parameters())}
    for p, st in state.opt.state.items():
        for k, v in st.items():
            if not isinstance(v, torch.Tensor):
                v = torch.tensor(v)
            tensors[f"opt.{index[id(p)]}.{k}"] = v.detach().cpu().clone()
    for name, g in state.gens.items():
        tensors[f"rng.{name}"] = g.get_state()
    if state.perm is not None and step > 0:
        tensors["epoch.perm"] = state.perm.detach().cpu().clone()
    if state.anchor is not None:
        tensors["anchor.mean"], tensors["anchor.unmix"] = (a.detach().cpu().clone() for a in state.anchor)
    alm_state = {k: json_float(float(v)) if isinstance(v, float) else v for k, v in state.alm.state_dict().items()}
    meta = {"format": TRAINING_FORMAT_VERSION, "kind": _TRAINING_KIND, "method": model.method_name,
            "xcausal_version": __version__, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "reason": reason,
            "epoch": epoch, "step": step, "epochs": model.epochs_, "finished": finished,
            "params": model.get_params(),
            "resolved": {"latent_dim": model.n_latents_, "embed_dim": model.embed_dim_, "epochs": model.epochs_,
                         "device": str(model.device_)},
            "data": data_fingerprint(ds), "history": state.rows, "epoch_sums": dict(state.sums),
            "epoch_batches": state.nb, "alm": alm_state,
            "anm_pairs": sorted([int(i), int(j)] for i, j in model._anm_pairs),
            "anchor": state.anchor is not None, "anchor_info": model.anchor_ if state.anchor is not None else None,
            "time_parts": dict(state.t_parts)}
    return meta, tensors


def restore_state(model: CMCL, meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor],
                  opt: torch.optim.Optimizer, alm: AugmentedLagrangian, gens: Mapping[str, torch.Generator]) -> None:
    """Inverse of :func:`checkpoint_state` for the network, optimiser, ALM, ANM pairs and generators."""
    net = model.net_
    try:
        load_state(net, {k[4:]: v for k, v in tensors.items() if k.startswith("net.") and k != "net.dag._in_mask"})
    except RuntimeError as exc:
        raise ValueError(f"the checkpoint's network does not fit this model ({str(exc).splitlines()[0]})") from None
    net.dag.set_input_mask(tensors["net.dag._in_mask"])
    params = list(net.parameters())
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    sd = opt.state_dict()
    sd["state"] = state
    if any(not 0 <= i < len(params) for i in state):
        raise ValueError("the checkpoint's optimiser state does not fit this model")
    opt.load_state_dict(sd)  # param groups (lr, betas, ...) come from this fit's parameters
    alm.load_state_dict({k: float(v) for k, v in meta["alm"].items()})
    model._anm_pairs = {(int(i), int(j)) for i, j in meta.get("anm_pairs", [])}
    for name, g in gens.items():
        g.set_state(tensors[f"rng.{name}"])


# ------------------------------------------------------------------ the training state
@dataclass
class TrainState:
    """Everything a checkpoint must hold beyond the network: optimiser, augmented Lagrangian,
    generators, history, the partial epoch (sums, batches, order) and the anchor."""

    opt: torch.optim.Optimizer
    alm: AugmentedLagrangian
    gens: dict[str, torch.Generator]
    rows: list[dict[str, Any]] = field(default_factory=list)
    # forward time of each part; "backward": the backward pass, the reduction across processes,
    # the finite checks and the optimiser step, of all parts together
    t_parts: dict[str, float] = field(default_factory=lambda: {"vae": 0.0, "dag": 0.0, "cr": 0.0, "backward": 0.0})
    start_epoch: int = 0
    start_step: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    nb: int = 0
    perm: torch.Tensor | None = None
    anchor: tuple[torch.Tensor, torch.Tensor] | None = None


def initial_state(run: Any, warm: int) -> TrainState:
    """A fresh state (with the anchor built), or the one of the checkpoint being resumed."""
    model, seed = run.model, run.model.seed
    opt = torch.optim.Adam(list(model.net_.parameters()), lr=model.lr)
    alm = AugmentedLagrangian(rho_max=model.rho_max)
    gens = {name: torch.Generator(device="cpu").manual_seed(seed + k)
            for k, name in ((1, "shuffle"), (2, "noise"), (3, "cr"))}
    st = TrainState(opt=opt, alm=alm, gens=gens)
    loaded = run.ckpt.loaded if run.ckpt is not None else None
    if loaded is not None:
        meta, tensors = loaded
        restore_state(model, meta, tensors, opt, alm, gens)
        if meta.get("anchor"):
            st.anchor = (tensors["anchor.mean"].to(run.dev), tensors["anchor.unmix"].to(run.dev))
            model.anchor_ = meta["anchor_info"]
        st.rows = [dict(r) for r in meta["history"]]
        st.t_parts.update(meta.get("time_parts", {}))
        st.start_epoch, st.start_step = int(meta["epoch"]), int(meta["step"])
        if st.start_step > 0:
            st.sums = {k: float(v) for k, v in meta["epoch_sums"].items()}
            st.nb = int(meta["epoch_batches"])
            st.perm = tensors.get("epoch.perm")
        if run.rank == 0:
            logger.info("resuming from %s: epoch %d, step %d", run.ckpt.directory, st.start_epoch, st.start_step)
    elif model.init == "auto" and model.decoder == "pose":
        if run.rank == 0:
            logger.info("anchor: none (init='auto' with the pose decoder: a linear anchor on the pixels "
                        "cannot describe a pose latent)")
    elif model.init != "none":
        if warm > 0:
            st.anchor = build_anchor(model, run.ds, run.dev)
        elif run.rank == 0:  # the anchor acts only during the DAG warm-up
            logger.warning("init='%s' has no effect: the DAG warm-up is 0 epochs (epochs=%d, dag_warmup=%g)",
                           model.init, run.epochs, model.dag_warmup)
    return st


def save(run: Any, st: TrainState, epoch_done: int, step: int, reason: str, finished: bool = False) -> None:
    if run.ckpt is None or run.rank != 0:
        return
    run.ckpt.write(*checkpoint_state(run.model, st, epoch=epoch_done, step=step, finished=finished, reason=reason,
                                     ds=run.ds))


def interrupted(run: Any, st: TrainState, epoch_done: int, step: int) -> FitInterrupted:
    save(run, st, epoch_done, step, "stop")
    where = f"epoch {epoch_done + 1}, step {step}" if step else f"epoch {epoch_done}"
    msg = f"training stopped after {where} of {run.epochs}"
    if run.ckpt is not None:
        msg += f"; checkpoint written to {run.ckpt.directory}"
    return FitInterrupted(msg, checkpoint_dir=run.ckpt.directory if run.ckpt else None, epoch=epoch_done, step=step)
