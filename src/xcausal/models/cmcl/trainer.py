"""CMCL's training loop (Algorithm 1): all parts jointly, by Adam on mini-batches.

Every random draw of training comes from the fit's own generators, identical in every process:
``shuffle`` the batch order, ``noise`` the reparametrisation noise (drawn for the whole batch, each
process using its rows), ``cr`` CR's permutations. With Fabric over W processes, process r trains on
rows r, r+W, ... of every batch; each loss term is weighted by its share of the batch and the
gradients (and the terms) are summed over processes by one all-reduce per step, so W processes take
the same steps as one up to float summation order. The schedules are the small functions below;
the loss is :func:`xcausal.models.cmcl.losses.step_losses`; checkpoints and orientation are called
at the end of each epoch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from xcausal._runtime import fit_progress
from xcausal.data.dataset import CrossModalDataset
from xcausal.models.cmcl.checkpoint import Checkpointing, TrainState, initial_state, interrupted, save
from xcausal.models.cmcl.distributed import reduce_step, stop_requested
from xcausal.models.cmcl.config import AUTO_MEMORY_BYTES, GRAD_CLIP_NORM
from xcausal.models.cmcl.losses import CRBatch, acyclicity, step_losses
from xcausal.models.cmcl.orientation import orient_during_training
from xcausal.structure import prox_l1_first_layer_

if TYPE_CHECKING:
    from xcausal.models.cmcl.estimator import CMCL

logger = logging.getLogger("xcausal.models.cmcl")


# ------------------------------------------------------------------ schedules
def warmup_epochs(model: CMCL, epochs: int) -> int:
    """Epochs trained as a plain model before the acyclicity penalty (and CR) start."""
    return int(round(model.dag_warmup * epochs))


def kl_weight(model: CMCL, epoch: int, epochs: int) -> float:
    """The KL weight ramps linearly to ``beta`` over the first ``kl_warmup`` of the epochs."""
    return model.beta * min(1.0, (epoch + 1) / max(1.0, model.kl_warmup * epochs))


def anchor_weight(model: CMCL, epoch: int, warm: int) -> float:
    """Full anchor weight during the DAG warm-up, then fading to 0 over as many epochs."""
    fade = 1.0 if epoch < warm else max(0.0, 1.0 - (epoch - warm + 1) / max(1, warm))
    return model.anchor_["weight"] * fade


def dual_update_due(model: CMCL, epoch: int, warm: int) -> bool:
    """The augmented Lagrangian's multipliers are updated every ``dual_every`` constrained epochs."""
    return epoch >= warm and (epoch - warm) % model.dual_every == model.dual_every - 1


def orientation_due(model: CMCL, epoch: int, warm: int, epochs: int) -> bool:
    """Pairs are (re)oriented every ``orient_every`` epochs from the warm-up's end to 75% of training."""
    return (model.orient == "anm" and epoch >= warm and epoch < int(0.75 * epochs)
            and (epoch - warm) % model.orient_every == 0)


# ------------------------------------------------------------------ state
class EpochBatches:
    """Batch sampler of the streaming DataLoader: the current epoch's batches (lists of rows), set
    by the trainer before each epoch (it is iterated in the main process, also with workers)."""

    def __init__(self) -> None:
        self.lists: list[list[int]] = []

    def __iter__(self):
        return iter(self.lists)

    def __len__(self) -> int:
        return len(self.lists)


@dataclass
class Run:
    """One call of :func:`train`: the data, the processes and where to checkpoint."""

    model: CMCL
    ds: CrossModalDataset
    epochs: int
    dev: torch.device
    ckpt: Checkpointing | None
    stop: Any
    fabric: Any
    rank: int = 0
    world: int = 1
    ds_u: torch.Tensor | None = None  # the table's columns (CPU), for CR's rows of each batch
    x_all: torch.Tensor | None = None
    u_all: torch.Tensor | None = None
    loader: Any = None
    sampler: EpochBatches | None = None


def data_mode(model: CMCL, ds: CrossModalDataset) -> str:
    """"memory" (all images decoded into one tensor) or "stream" (decoded per batch by a DataLoader)."""
    if model.data_loading != "auto":
        return model.data_loading
    nbytes = len(ds) * ds.channels * ds.image_size ** 2 * 4
    return "memory" if nbytes <= AUTO_MEMORY_BYTES else "stream"


def _open_data(run: Run) -> None:
    if data_mode(run.model, run.ds) == "memory":
        run.x_all = torch.from_numpy(run.ds.images()).to(run.dev)
        run.u_all = torch.from_numpy(run.ds.u.astype(np.float32)).to(run.dev)
    else:
        run.sampler = EpochBatches()
        workers = run.model.num_workers
        run.loader = torch.utils.data.DataLoader(run.ds, batch_sampler=run.sampler, num_workers=workers,
                                                 persistent_workers=workers > 0, pin_memory=run.dev.type == "cuda")


# ------------------------------------------------------------------ errors and collectives
def _nonfinite(run: Run, what: str, epoch: int, step: int | None, n_steps: int | None) -> FloatingPointError:
    at = f"epoch {epoch + 1}" + (f", step {step} of {n_steps}" if step is not None else "")
    last = run.ckpt.last_epoch() if run.ckpt is not None else None
    if last is not None:
        hint = (f"; the last good checkpoint (epoch {last}) is kept in {run.ckpt.directory}: "
                "resume from it with a smaller learning rate (--resume --lr ...)")
    else:
        hint = "; try a smaller learning rate (--lr)"
    return FloatingPointError(f"{what} became NaN/inf at {at}{hint}")


# ------------------------------------------------------------------ one step, one epoch
def _step(run: Run, st: TrainState, idx: torch.Tensor, xb: torch.Tensor, ub: torch.Tensor, *, epoch: int,
          step: int, n_steps: int, constrain: bool, kl_w: float, a_w: float) -> bool:
    """One gradient step on the batch ``idx`` (this process's rows ``xb``, ``ub``); returns whether to stop."""
    model, net, W, rank = run.model, run.model.net_, run.world, run.rank
    n_g = len(idx)
    gen_noise = st.gens["noise"]
    noise = (torch.randn(n_g, model.embed_dim_, generator=gen_noise)[rank::W].to(run.dev),
             torch.randn(n_g, model.n_latents_, generator=gen_noise)[rank::W].to(run.dev))
    cr_ctx = CRBatch(u=run.ds_u[idx[:min(model.cr_batch, n_g)]].to(run.dev), rank=rank, world=W, gen=st.gens["cr"])
    autocast = run.fabric.autocast if run.fabric is not None and str(model.precision) != "32" else contextlib.nullcontext
    with autocast():
        terms = step_losses(model, xb, ub, st.alm if constrain else None, st.t_parts, cr=model.use_cr and constrain,
                            kl_w=kl_w, anchor=st.anchor if a_w > 0 else None, anchor_w=a_w, noise=noise,
                            cr_ctx=cr_ctx, share=len(xb) / n_g, world=W)
    loss = terms.pop("loss")
    t_bw = time.perf_counter()
    st.opt.zero_grad(set_to_none=True)
    loss.backward()
    vals, stop_now = reduce_step(run, {**terms, "loss": loss}, rank == 0 and run.stop is not None and run.stop.is_set())
    total = vals.pop("loss")
    bad = [f"{k}={v}" for k, v in vals.items() if not math.isfinite(v)]
    if bad or not math.isfinite(total):
        what = f"loss term {', '.join(bad)}" if bad else f"the total loss ({total})"
        raise _nonfinite(run, what, epoch, step + 1, n_steps)
    params = list(net.parameters())
    gnorm = float(nn.utils.clip_grad_norm_(params, GRAD_CLIP_NORM))
    if not math.isfinite(gnorm):
        raise _nonfinite(run, f"the gradient norm ({gnorm}; the loss terms were finite)", epoch, step + 1, n_steps)
    st.opt.step()
    # clipping scaled this step's smooth gradient by `clip`; the L1 term belongs to the same
    # objective, so its proximal step is scaled alike (unscaled, it can zero every DAG weight where
    # reconstruction gradients are large)
    clip = min(1.0, GRAD_CLIP_NORM / (gnorm + 1e-6))
    prox_l1_first_layer_(net.dag, st.opt, model.lambda1 * model.dag_weight * clip)
    st.t_parts["backward"] += time.perf_counter() - t_bw
    if model._dag_prior and net.dag.log_var is not None:
        with torch.no_grad():  # latents have unit noise variance: it pins their scale
            net.dag.log_var[len(model.encoding_.variables):] = 0.0
    for k, v in vals.items():
        st.sums[k] = st.sums.get(k, 0.0) + v
    st.nb += 1
    return stop_now


def _epoch(run: Run, st: TrainState, epoch: int, warm: int) -> None:
    """The gradient steps of one epoch (from ``st.start_step`` when resuming mid-epoch)."""
    model, W, rank, n = run.model, run.world, run.rank, len(run.ds)
    skip = st.start_step if epoch == st.start_epoch else 0
    if skip == 0:
        st.sums, st.nb = {}, 0
        st.perm = torch.randperm(n, generator=st.gens["shuffle"])
    drop = n > model.batch_size
    parts = [idx for idx in st.perm.split(model.batch_size) if not (drop and len(idx) < 2 * W)]
    mine = [idx[rank::W] for idx in parts[skip:]]
    if run.loader is None:
        batches = ((run.x_all[i.to(run.dev)], run.u_all[i.to(run.dev)]) for i in mine)
    else:
        run.sampler.lists = [i.tolist() for i in mine]
        batches = ((xb.to(run.dev, non_blocking=True), ub.to(run.dev, non_blocking=True)) for xb, ub in run.loader)
    constrain = epoch >= warm
    kl_w = kl_weight(model, epoch, run.epochs)
    a_w = anchor_weight(model, epoch, warm) if st.anchor is not None else 0.0
    step = skip
    for idx, (xb, ub) in zip(parts[skip:], batches):
        stop_now = _step(run, st, idx, xb, ub, epoch=epoch, step=step, n_steps=len(parts), constrain=constrain,
                         kl_w=kl_w, a_w=a_w)
        step += 1
        if stop_now:
            raise interrupted(run, st, epoch, step)


def _end_epoch(run: Run, st: TrainState, epoch: int, warm: int) -> dict[str, Any]:
    """Dual update, orientation and the epoch's history row."""
    model, net = run.model, run.model.net_
    with torch.no_grad():
        h_val = float(acyclicity(model, net.dag.adjacency()))
        w = net.dag.adjacency().detach().cpu().numpy()
    if not math.isfinite(h_val):
        raise _nonfinite(run, f"h(W) ({h_val})", epoch, None, None)
    if dual_update_due(model, epoch, warm):
        st.alm.update(h_val)
    if orientation_due(model, epoch, warm, run.epochs):
        orient_during_training(model, run.ds, run.x_all, run.u_all, log=run.rank == 0)
        w = net.dag.adjacency().detach().cpu().numpy()
    row = {"epoch": epoch + 1, **{k: v / max(st.nb, 1) for k, v in st.sums.items()}, "h": h_val,
           "rho": st.alm.rho, "alpha": st.alm.alpha, "edges": int((np.abs(w) > model.w_threshold).sum())}
    bad = [f"{k}={v}" for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise _nonfinite(run, f"epoch mean of {', '.join(bad)}", epoch, None, None)
    return row


def train(model: CMCL, ds: CrossModalDataset, epochs: int, dev: torch.device, ckpt: Checkpointing | None = None,
          stop: Any = None, fabric: Any = None) -> None:
    """Train ``model.net_`` for ``epochs`` (resuming from ``ckpt.loaded`` when set); sets ``history_``,
    ``time_parts_``, ``time_share_`` and ``alm_``. Raises FitInterrupted when ``stop`` is set and
    FloatingPointError when a loss term, the gradient or h(W) is not finite."""
    run = Run(model, ds, epochs, dev, ckpt, stop, fabric,
              rank=fabric.global_rank if fabric is not None else 0, world=fabric.world_size if fabric is not None else 1)
    _open_data(run)
    run.ds_u = torch.from_numpy(ds.u.astype(np.float32))
    warm = warmup_epochs(model, epochs)
    st = initial_state(run, warm)
    bar = fit_progress(model.progress and run.rank == 0, epochs, "fit", describe)
    if bar is not None and st.rows:
        bar.update(st.rows[-1], advance=st.start_epoch)
    try:
        for epoch in range(st.start_epoch, epochs):
            model.net_.train()
            _epoch(run, st, epoch, warm)
            row = _end_epoch(run, st, epoch, warm)
            st.rows.append(row)
            if bar is not None:
                bar.update(row)
            st.sums, st.nb, st.perm = {}, 0, None
            done = epoch + 1
            if done == epochs:
                save(run, st, done, 0, "final", finished=True)
            elif done % (ckpt.every if ckpt else 1) == 0:
                save(run, st, done, 0, "periodic")
            if done < epochs and stop_requested(stop, run.rank, fabric):
                raise interrupted(run, st, done, 0)
    finally:
        if bar is not None:
            bar.close()
    model.history_ = pd.DataFrame(st.rows)
    model.time_parts_ = dict(st.t_parts)
    total = sum(st.t_parts.values()) or 1.0
    model.time_share_ = {k: v / total for k, v in st.t_parts.items()}
    model.alm_ = st.alm


def describe(row: dict[str, Any]) -> str:
    """The progress bar's summary of an epoch's history row."""
    keys = [k for k in ("rec", "rec0", "dag_nll", "cr") if k in row]
    return " ".join(f"{k}={row[k]:.3g}" for k in keys) + f" h={row['h']:.2e} edges={row['edges']}"
