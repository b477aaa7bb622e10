"""What every trainer shares: resolving the device, and the training progress bar."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["resolve_device", "FitProgress", "fit_progress", "load_net_state"]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ValueError for CUDA on a machine without it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    return torch.device(device)


def load_net_state(net: torch.nn.Module, path, device: torch.device) -> torch.nn.Module:
    """Load the ``net.*`` tensors of a checkpoint (``torch.load(weights_only=True)``) into ``net``,
    then move it to ``device``; returns ``net``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    return net.to(device)


class FitProgress:
    """A rich progress bar over epochs whose text is ``describe(row)`` of the latest history row."""

    def __init__(self, total: int, label: str, describe: Callable[[Mapping[str, Any]], str]) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._describe = describe
        self._p = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                           TextColumn("{task.fields[info]}"), transient=False)
        self._p.start()
        self._t = self._p.add_task(label, total=total, info="")

    def update(self, row: Mapping[str, Any], advance: int = 1) -> None:
        self._p.update(self._t, advance=advance, info=self._describe(row))

    def close(self) -> None:
        self._p.stop()


def fit_progress(enabled: bool, total: int, label: str,
                 describe: Callable[[Mapping[str, Any]], str]) -> FitProgress | None:
    """A :class:`FitProgress`, or None when progress display is off."""
    return FitProgress(total, label, describe) if enabled else None
