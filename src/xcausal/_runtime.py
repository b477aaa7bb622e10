"""What every trainer shares: resolving the device, and the training progress bar."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["resolve_device", "FitProgress", "fit_progress", "load_net_state", "make_fabric", "check_distributed",
           "threads_per_process", "limit_process_threads"]

_PRECISIONS = ("32", "bf16-mixed")
_STRATEGIES = ("auto", "ddp")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ValueError for CUDA on a machine without it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    return torch.device(device)


def check_distributed(devices: Any, strategy: Any, precision: Any) -> None:
    """ValueError (one line) for an unusable ``devices`` / ``strategy`` / ``precision``."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(f"devices={devices!r}: must be an integer >= 1")
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy={strategy!r}: must be one of {', '.join(_STRATEGIES)}")
    if str(precision) not in _PRECISIONS:
        raise ValueError(f"precision={precision!r}: must be one of {', '.join(_PRECISIONS)}")


def make_fabric(device: torch.device, devices: int, strategy: str, precision: str):
    """A Lightning Fabric for ``device`` (its type: CPU or CUDA) with ``devices`` processes.

    One device: Fabric's single-device strategy (no extra process), on ``device`` itself (so
    ``cuda:1`` stays on GPU 1). Several (``strategy`` "ddp" or "auto"): Fabric's ``ddp_spawn``, one
    process per device started by spawn, connected by gloo on CPU and NCCL on CUDA; spawn rather
    than Fabric's script re-launcher because fits start from the CLI, from Python and from tests
    alike. ``devices`` > 1 on CPU means that many CPU processes.
    """
    from lightning_fabric import Fabric

    check_distributed(devices, strategy, precision)
    prec = "32-true" if str(precision) == "32" else str(precision)
    if device.type == "cuda":
        if devices > torch.cuda.device_count():
            raise ValueError(f"devices={devices}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        ids: Any = [device.index if device.index is not None else 0] if devices == 1 else devices
        accel = "cuda"
    elif device.type == "cpu":
        ids, accel = devices, "cpu"
    else:
        raise ValueError(f"device {device}: xcausal trains on CPU or CUDA")
    strat = "auto" if devices == 1 else "ddp_spawn"
    return Fabric(accelerator=accel, devices=ids, strategy=strat, precision=prec)


def load_state(net: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """``net.load_state_dict(state)`` (strict), with one RuntimeError naming missing and unexpected keys."""
    missing, unexpected = net.load_state_dict(dict(state), strict=False)
    if missing or unexpected:
        raise RuntimeError("Error(s) in loading state_dict: "
                           + "; ".join(part for part in (f"missing keys {missing}" if missing else "",
                                                         f"unexpected keys {unexpected}" if unexpected else "") if part))


def load_net_state(net: torch.nn.Module, path, device: torch.device) -> torch.nn.Module:
    """Load the ``net.*`` tensors of a checkpoint (``torch.load(weights_only=True)``) into ``net``,
    then move it to ``device``; returns ``net``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    load_state(net, {k[4:]: v for k, v in state.items() if k.startswith("net.")})
    return net.to(device)


class FitProgress:
    """Progress over epochs whose text is ``describe(row)`` of the latest history row: a rich bar
    on a terminal; in a log (stderr not a terminal, e.g. redirected to a file), one plain line per
    epoch, at most one every ``log_every`` seconds, with the elapsed time and an estimate of what is
    left (a bar redraws in place and writes nothing useful to a file)."""

    def __init__(self, total: int, label: str, describe: Callable[[Mapping[str, Any]], str], *,
                 stream: Any = None, log_every: float = 0.0, unit: str = "epoch") -> None:
        import sys
        import time

        self._describe = describe
        self._total, self._label, self._done = total, label, 0
        self._stream = sys.stderr if stream is None else stream
        self._clock = time.monotonic
        self._start = self._last = self._clock()
        self._log_every = log_every
        self._unit = unit
        self._p = None
        if self._stream.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._p = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                               TextColumn("{task.fields[info]}"), transient=False)
            self._p.start()
            self._t = self._p.add_task(label, total=total, info="")

    def update(self, row: Mapping[str, Any], advance: int = 1) -> None:
        self._done += advance
        if self._p is not None:
            self._p.update(self._t, advance=advance, info=self._describe(row))
            return
        now = self._clock()
        if now - self._last < self._log_every and self._done < self._total:
            return
        self._last = now
        elapsed = now - self._start
        left = elapsed / max(self._done, 1) * (self._total - self._done)
        self._stream.write(f"{self._label} {self._unit} {self._done}/{self._total} {self._describe(row)} "
                           f"[{_clock_text(elapsed)} elapsed, ~{_clock_text(left)} left]\n")
        self._stream.flush()

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def fit_progress(enabled: bool, total: int, label: str,
                 describe: Callable[[Mapping[str, Any]], str], *, unit: str = "epoch") -> FitProgress | None:
    """A :class:`FitProgress` counting ``unit``s (epochs, refits), or None when progress display is off."""
    return FitProgress(total, label, describe, unit=unit) if enabled else None


def threads_per_process(processes: int, threads: int | None = None) -> int:
    """Threads each of ``processes`` parallel processes takes: ``threads`` when given, else the
    cores divided among them (at least 1), so that parallel work never runs more threads than cores."""
    import os

    if threads is not None:
        return int(threads)
    return max(1, (os.cpu_count() or 1) // max(1, int(processes)))


def limit_process_threads(threads: int) -> None:
    """Set this process's torch intra-op threads and its BLAS / OpenMP pools (numpy, scikit-learn)
    to ``threads``. Process-wide: only for the command line's own process and for worker
    processes of our own, never inside library calls."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
