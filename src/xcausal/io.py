"""Filesystem helpers shared by every writer: atomic output directories and JSON files."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DataError", "atomic_output_dir", "write_json", "read_json"]


class DataError(ValueError):
    """Bad user input. The message is one line naming the file, row and/or column."""


@contextlib.contextmanager
def atomic_output_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds.

    The temporary directory sits next to ``path`` (same filesystem, so the final move is a
    rename). On any exception it is removed and ``path`` is left as it was, so a failure never
    leaves a half-written output.

    Raises
    ------
    DataError
        If ``path`` exists and ``overwrite`` is false, or its parent cannot be created.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(f"{path}: output already exists (pass --overwrite to replace it)")
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: exists and is not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{path.parent}: cannot create directory ({exc.strerror})") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{tmp.name[-8:]}"
        path.rename(old)
    tmp.rename(path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | Path, obj: Any) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, default=_default, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def read_checkpoint_meta(path: str | Path, method: str, format_version: int) -> dict[str, Any]:
    """The JSON sidecar (``path.json``) of a model checkpoint, checked to be ``method``'s, in
    ``format_version``; ValueError naming the file otherwise (the checkpoints of every method
    are ``path`` (tensors only) + ``path.json`` (config))."""
    path = Path(path)
    mp = path.with_suffix(path.suffix + ".json")
    if not path.is_file() or not mp.is_file():
        raise ValueError(f"{path}: checkpoint or its {mp.name} not found")
    meta = json.loads(mp.read_text())
    if meta.get("method") != method:
        raise ValueError(f"{path}: checkpoint is for method '{meta.get('method')}', not '{method}'")
    if meta.get("format") != format_version:
        raise ValueError(f"{path}: checkpoint format {meta.get('format')} (xcausal {meta.get('xcausal_version')}) "
                         f"is not readable by this version (format {format_version})")
    return meta
