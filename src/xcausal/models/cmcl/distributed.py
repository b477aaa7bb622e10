"""CMCL's training in several processes (Lightning Fabric's ddp_spawn): process 0's trained state
comes back to the caller. The training itself is :func:`xcausal.models.cmcl.trainer.train`, which
splits every batch over the processes and all-reduces the gradients."""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from xcausal._runtime import make_fabric
from xcausal.data.dataset import CrossModalDataset
from xcausal.models.cmcl.checkpoint import Checkpointing, FitInterrupted
from xcausal.structure import AugmentedLagrangian

if TYPE_CHECKING:
    from xcausal.models.cmcl.estimator import CMCL


def _forward_stop(stop: Any, mp_stop: Any, finished: threading.Event) -> None:
    while not finished.is_set():
        if stop is not None and stop.wait(0.2):
            mp_stop.set()
            return
        if stop is None:
            return


def train_distributed(model: CMCL, ds: CrossModalDataset, epochs: int, dev: torch.device,
                      ckpt: Checkpointing | None, stop: Any) -> None:
    """Train in ``model.devices`` processes; ``stop`` (e.g. set by a signal handler) is forwarded to them."""
    import multiprocessing as mp

    fabric = make_fabric(dev, model.devices, model.strategy, model.precision)
    mp_stop = mp.get_context("spawn").Event()
    finished = threading.Event()
    watcher = threading.Thread(target=_forward_stop, args=(stop, mp_stop, finished), daemon=True)
    watcher.start()
    try:
        # one pickle for the model, data and checkpoint (Fabric's launcher walks its arguments
        # and rejects frozen dataclasses such as Variable); the Event goes as itself (by inheritance)
        payload = pickle.dumps((model, ds, epochs, ckpt), protocol=pickle.HIGHEST_PROTOCOL)
        with tempfile.TemporaryDirectory(prefix="xcausal-ddp-") as tmp:
            out = fabric.launch(distributed_worker, payload, mp_stop, tmp)
            if "error" not in out:
                state = torch.load(Path(tmp) / "state.pt", map_location="cpu", weights_only=True)
                info = json.loads((Path(tmp) / "state.json").read_text())
    finally:
        finished.set()
    if "error" in out:
        kind, msg, extra = out["error"]
        if kind == "FitInterrupted":
            raise FitInterrupted(msg, checkpoint_dir=Path(extra["checkpoint_dir"]) if extra["checkpoint_dir"]
                                 else None, epoch=extra["epoch"], step=extra["step"])
        raise {"FloatingPointError": FloatingPointError, "ValueError": ValueError}.get(kind, RuntimeError)(msg)
    _adopt(model, state, info, dev)


def _adopt(model: CMCL, state: dict[str, torch.Tensor], info: dict[str, Any], dev: torch.device) -> None:
    """Make process 0's trained state (as written by :func:`distributed_worker`) the model's."""
    model.net_.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    model.net_.dag.set_input_mask(state["in_mask"])
    model.net_.to(dev)
    model.history_ = pd.DataFrame(info["history"])
    model.time_parts_ = dict(info["time_parts"])
    total = sum(model.time_parts_.values()) or 1.0
    model.time_share_ = {k: v / total for k, v in model.time_parts_.items()}
    model.alm_ = AugmentedLagrangian(rho_max=model.rho_max)
    model.alm_.load_state_dict({k: float(v) for k, v in info["alm"].items()})
    model._anm_pairs = {(int(i), int(j)) for i, j in info["anm_pairs"]}
    model.anchor_ = info.get("anchor")


def distributed_worker(fabric: Any, payload: bytes, stop: Any, out_dir: str) -> dict[str, Any]:
    """One process of :func:`train_distributed` (``payload``: the pickled model, dataset, epochs and
    checkpointing). Process 0 writes the trained state to ``out_dir`` (state.pt, tensors only, and
    state.json): Fabric returns process 0's value through a pipe that its launcher reads only after
    joining the processes, so a large return value would deadlock. Errors every process reaches
    together (NaN, stop) come back as small values so that process 0's message reaches the caller."""
    import signal

    from xcausal.models.cmcl.trainer import train

    model, ds, epochs, ckpt = pickle.loads(payload)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which sets ``stop``
    if fabric.global_rank != 0:
        logging.getLogger("xcausal").setLevel(logging.WARNING)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // fabric.world_size))
    dev = fabric.device
    model.net_.to(dev)
    try:
        train(model, ds, epochs, dev, ckpt, stop, fabric=fabric)
    except FitInterrupted as exc:
        return {"error": ("FitInterrupted", str(exc), {"checkpoint_dir": str(exc.checkpoint_dir)
                                                        if exc.checkpoint_dir else None,
                                                        "epoch": exc.epoch, "step": exc.step})}
    except (FloatingPointError, ValueError) as exc:
        return {"error": (type(exc).__name__, str(exc), {})}
    if fabric.global_rank == 0:
        tensors = {f"net.{k}": v.detach().cpu() for k, v in model.net_.state_dict().items()}
        tensors["in_mask"] = model.net_.dag.input_mask.detach().cpu()
        torch.save(tensors, Path(out_dir) / "state.pt")
        info = {"history": model.history_.to_dict("records"), "time_parts": model.time_parts_,
                "alm": {k: float(v) for k, v in model.alm_.state_dict().items()},
                "anm_pairs": sorted([int(i), int(j)] for i, j in model._anm_pairs),
                "anchor": model.anchor_}
        (Path(out_dir) / "state.json").write_text(json.dumps(info))
    return {"ok": True}


def reduce_step(run: Any, terms: dict[str, torch.Tensor], stop_now: bool) -> tuple[dict[str, float], bool]:
    """Sum gradients and loss terms over the processes (one all-reduce); returns the batch's terms
    and whether process 0 was asked to stop."""
    keys = list(terms)
    vec = torch.stack([terms[k].detach().float().reshape(()).cpu() for k in keys]
                      + [torch.tensor(1.0 if stop_now else 0.0)])
    if run.world > 1:
        grads = [p.grad for p in run.model.net_.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1).float() for g in grads] + [vec.to(grads[0].device)])
        flat = run.fabric.all_reduce(flat, reduce_op="sum")
        off = 0
        for g in grads:
            g.copy_(flat[off:off + g.numel()].view_as(g))
            off += g.numel()
        vec = flat[off:].cpu()
    vals = vec.tolist()
    return dict(zip(keys, vals[:-1])), vals[-1] > 0


def stop_requested(stop: Any, rank: int, fabric: Any) -> bool:
    """Whether process 0 was asked to stop, agreed by every process."""
    flag = rank == 0 and stop is not None and stop.is_set()
    if fabric is None or fabric.world_size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=fabric.device)
    return bool(fabric.all_reduce(t, reduce_op="sum").item() > 0)
