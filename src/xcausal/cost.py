"""How much memory a fit will ask for, estimated before it starts, and the refusal when this
machine does not have it.

The kernel kills a process that outgrows the machine (exit 137, no message), so options that scale
the memory of a fit (``image_size``, ``batch_size``, ``latent_dim``, and the rows held in memory)
are checked against an estimate first. The estimate counts what dominates: the images decoded into
memory, the activations a training step keeps for the backward pass, the parameters with their
gradients and Adam moments, and the interpreter with torch loaded. It errs high; the check refuses
only what would not fit in this machine's physical memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from xcausal.io import DataError

__all__ = ["FitMemory", "estimate_fit_memory", "physical_memory", "check_fit_memory", "probe_pass_seconds",
           "estimate_fit_seconds", "cmcl_orientation_work", "estimate_cmcl_fit", "clock_text"]

#: resident memory of the interpreter with torch, numpy and the package loaded
BASE_BYTES = 512 * 2**20
#: conv-net passes a training step keeps activations of (encoder, two decoders, counterfactual
#: decoder passes of the CR term), each output stored before and after its ReLU
NET_PASSES = 3
#: copies of one image a step holds besides the nets' activations (input, reconstructions, their
#: losses and gradients, counterfactual images)
IMAGE_COPIES = 12
FLOAT_BYTES = 4


@dataclass(frozen=True)
class FitMemory:
    """Estimated bytes of a fit, by part."""

    data: int
    step: int
    params: int
    base: int = BASE_BYTES

    @property
    def total(self) -> int:
        return self.data + self.step + self.params + self.base

    def describe(self) -> str:
        gib = 2**30
        return (f"about {self.total / gib:,.1f} GiB (images in memory {self.data / gib:,.1f}, one training step "
                f"{self.step / gib:,.1f}, parameters and optimiser {self.params / gib:,.1f}, runtime "
                f"{self.base / gib:,.1f})")


def estimate_fit_memory(*, rows: int, channels: int, image_size: int, batch_size: int, latent_dim: int,
                        plan: str | tuple[int, ...] = "synthetic", in_memory: bool = True) -> FitMemory:
    """Estimated peak memory of fitting ``rows`` images of ``channels`` × ``image_size``² with conv
    nets of channel ``plan``, ``batch_size`` rows per step and ``latent_dim`` latents."""
    from xcausal.nn.blocks import channel_plan

    chans = channel_plan(plan, image_size)
    side = image_size
    acts = 0  # activations of one conv net for one image, encoder and decoder alike
    weights = 0
    c_in = channels
    for ch in chans:
        side = max(1, side // 2)
        acts += ch * side * side
        weights += c_in * ch * 16 + ch
        c_in = ch
    flat = chans[-1] * side * side
    weights += 2 * (flat * 2 * latent_dim)  # encoder head and decoder input layer
    pixels = channels * image_size * image_size
    per_row = FLOAT_BYTES * (2 * NET_PASSES * acts + IMAGE_COPIES * pixels + 8 * latent_dim)
    data = rows * pixels * FLOAT_BYTES if in_memory else 0
    params = 3 * weights * FLOAT_BYTES * 4  # three conv nets; weights, gradients, two Adam moments
    return FitMemory(data=data, step=min(batch_size, rows) * per_row, params=params)


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_fit_memory(est: FitMemory, *, options: str, limit: int | None = None) -> None:
    """DataError printing the estimate when it exceeds ``limit`` (default: the physical memory).
    ``options``: the options that set the size, e.g. "--image-size 512 --batch-size 64", named in
    the message."""
    limit = physical_memory() if limit is None else limit
    if limit is not None and est.total > limit:
        fix = ("pass --data-loading stream or a smaller --image-size" if est.data > est.step
               else "lower --batch-size or --image-size")
        raise DataError(f"{options}: a fit needs {est.describe()}; this machine has {limit / 2**30:,.1f} GiB: {fix}")


# --------------------------------------------------------------------------- time
# The constants below are fitted to the default fits of benchmarks/results/fit_profile (the
# numbers, and how close the estimate comes, are in its README).
#: a training step costs STEP_PASSES forward + backward passes of one conv encoder and decoder pair
#: at the same batch, plus STEP_OVERHEAD_S that does not grow with the image (the DAG's MLPs, the
#: optimiser)
STEP_PASSES = 1.31
STEP_OVERHEAD_S = 0.0245
#: seconds outside the steps and the orientation passes: the anchor, the final refit, the outputs
FIXED_S = 30.0
#: seconds to orient one variable-latent pair on 1,000 rows (at most 2,000 rows are scored)
PAIR_SECONDS_PER_1000_ROWS = 0.73
#: share of the continuous variable-latent pairs scored in a pass (only pairs with an edge in play are)
PAIRS_IN_PLAY = 0.2


def probe_pass_seconds(*, channels: int, image_size: int, batch_size: int, plan: str | tuple[int, ...] = "synthetic",
                       convs_per_stage: int = 1, repeats: int = 3) -> float:
    """Seconds of one forward + backward pass of a conv encoder and decoder of this shape over one
    batch, timed here (the fastest of ``repeats`` passes after a warm-up) with the current torch
    threads. The nets are built on the meta device and filled with constants: no random numbers
    are drawn."""
    import time

    import torch

    from xcausal.nn.blocks import ConvDecoder, ConvEncoder

    m = 16
    with torch.device("meta"):
        enc = ConvEncoder(in_channels=channels, image_size=image_size, latent_dim=m, plan=plan,
                          convs_per_stage=convs_per_stage)
        dec = ConvDecoder(out_channels=channels, image_size=image_size, latent_dim=m, plan=plan,
                          convs_per_stage=convs_per_stage)
    nets = [enc.to_empty(device="cpu"), dec.to_empty(device="cpu")]
    for net in nets:
        for p in net.parameters():
            with torch.no_grad():
                p.fill_(0.01)
    x = torch.full((batch_size, channels, image_size, image_size), 0.5)

    def one() -> None:
        mu, _ = enc(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(dec(mu), x)
        loss.backward()

    one()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        one()
        times.append(time.perf_counter() - start)
    return min(times)  # the pass's own cost: a brief stall of a busy machine does not count


def estimate_fit_seconds(*, rows: int, epochs: int, batch_size: int, pass_seconds: float,
                         orientation_passes: int = 0, orientation_pairs: int = 0) -> float:
    """Estimated wall seconds of a CMCL fit: steps × (STEP_PASSES probe passes + overhead), the
    orientation passes (a share PAIRS_IN_PLAY of the continuous variable-latent pairs) and the fixed
    cost of the anchor, final refit and outputs."""
    steps = epochs * max(1, -(-rows // batch_size))
    orient = (orientation_passes * orientation_pairs * PAIRS_IN_PLAY * PAIR_SECONDS_PER_1000_ROWS
              * min(rows, 2000) / 1000)
    return steps * (STEP_PASSES * pass_seconds + STEP_OVERHEAD_S) + orient + FIXED_S


def cmcl_orientation_work(*, epochs: int, continuous_variables: int, latents: int,
                          params: dict | None = None) -> tuple[int, int]:
    """(orientation passes, pairs) of a CMCL fit with these options (``params``: CMCL options that
    differ from the defaults), for :func:`estimate_fit_seconds`."""
    from xcausal.models.cmcl.config import OPTIONS

    opt = {name: o.default for name, o in OPTIONS.items()} | dict(params or {})
    if opt["orient"] != "anm":
        return 0, 0
    warm = int(round(opt["dag_warmup"] * epochs))
    passes = sum(1 for e in range(warm, int(0.75 * epochs)) if (e - warm) % opt["orient_every"] == 0)
    return passes, continuous_variables * latents


def clock_text(seconds: float) -> str:
    """'about 40 s', 'about 7 min', 'about 1.5 h'."""
    if seconds < 90:
        return f"about {max(1, round(seconds / 5) * 5) if seconds >= 10 else max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def estimate_cmcl_fit(ds, *, batch_size: int, epochs: int | None = None, latent_dim: int | None = None,
                      plan: str | tuple[int, ...] = "synthetic", convs_per_stage: int = 1,
                      params: dict | None = None) -> tuple[int, float]:
    """(epochs, estimated seconds) of a CMCL fit of dataset ``ds`` with these options (None: the
    defaults), timing one pass of its conv nets here."""
    from xcausal.models.cmcl.config import default_epochs, default_latent_dim
    from xcausal.types import VarType

    epochs = epochs or default_epochs(len(ds), ds.image_size)
    probe = probe_pass_seconds(channels=ds.channels, image_size=ds.image_size, batch_size=min(batch_size, len(ds)),
                               plan=plan, convs_per_stage=convs_per_stage)
    passes, pairs = cmcl_orientation_work(
        epochs=epochs, continuous_variables=sum(v.type is VarType.CONTINUOUS for v in ds.variables),
        latents=latent_dim or default_latent_dim(len(ds.variables)), params=params)
    return epochs, estimate_fit_seconds(rows=len(ds), epochs=epochs, batch_size=batch_size, pass_seconds=probe,
                                        orientation_passes=passes, orientation_pairs=pairs)
