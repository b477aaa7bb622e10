"""Filesystem helpers shared by every writer: atomic output directories and JSON files."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # not on Windows: outputs are then written without locks
    fcntl = None  # type: ignore[assignment]

__all__ = ["DataError", "check_output", "atomic_output_dir", "exclusive_lock", "write_json", "read_json", "read_checkpoint_meta", "checkpoint_errors", "check_checkpoint_file",
           "one_line", "cut_middle"]


class DataError(ValueError):
    """Bad user input. The message is one line naming the file, row and/or column.

    Line breaks inside the message (e.g. from a quoted CSV cell or a file name) are shown as
    escapes (``\\n``), so that the message stays one line whatever the input holds.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(one_line(str(message)))


_LINE_BREAKS = {c: repr(chr(c))[1:-1] for c in (0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)}


def one_line(text: str) -> str:
    """``text`` with every character that ``str.splitlines`` breaks on written as an escape."""
    return text.translate(_LINE_BREAKS)


def cut_middle(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: two thirds from its start, ``…``, the rest from its
    end, so that a long path keeps its beginning and its file name."""
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def check_output(path: str | Path, *, overwrite: bool, kind: str = "directory") -> Path:
    """Refuse, before any work, an output ``path`` (a ``kind``: "directory" or "file") that could
    only fail once the work is done: it exists and ``overwrite`` is false, it exists as the other
    kind, or a file stands where one of its parent directories would go.

    Raises
    ------
    DataError
        Naming ``path`` and what is in the way.
    """
    path = Path(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
        up = path.parent
        while not up.exists() and up != up.parent:
            up = up.parent
        blocked = up.exists() and not up.is_dir()
    except (OSError, ValueError) as exc:  # e.g. a name too long for the filesystem
        raise DataError(f"{path}: cannot be used as an output ({getattr(exc, 'strerror', None) or exc})") from None
    if exists and not overwrite:
        raise DataError(f"{path}: output already exists (pass --overwrite to replace it)")
    if exists and is_dir != (kind == "directory"):
        what = "is not a directory" if kind == "directory" else "is a directory"
        raise DataError(f"{path}: exists and {what} (--overwrite replaces only a {kind}); move it away or "
                        "choose another output")
    if blocked:
        raise DataError(f"{path}: cannot be created: {up} is a file, not a directory")
    return path


@contextlib.contextmanager
def atomic_output_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds.

    The temporary directory ``.NAME.tmp-*`` sits next to ``path`` (same filesystem, so the final
    move is a rename), is created with the user's umask (the output gets the permissions of any
    directory they make) and is locked (``flock``) while it is written. On any exception it is
    removed and ``path`` is left as it was, so a failure never leaves a half-written output. After
    the rename, the ``.NAME.tmp-*`` / ``.NAME.old-*`` siblings that a killed writer left behind
    (older than this write and not locked by a live one) are removed.

    Raises
    ------
    DataError
        If ``path`` exists and ``overwrite`` is false, or its parent cannot be created.
    """
    path = check_output(path, overwrite=overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{path.parent}: cannot create directory ({exc.strerror})") from None
    started = time.time()
    tmp, lock_fd = _make_locked_dir(path)
    try:
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{tmp.name.rpartition('-')[2]}"
            path.rename(old)
        tmp.rename(path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    _remove_stale_siblings(path, started)


def _make_locked_dir(path: Path) -> tuple[Path, int | None]:
    """A new directory ``.NAME.tmp-<random>`` beside ``path``, made with mode 0o777 (so the umask
    applies, unlike ``tempfile.mkdtemp``'s 0o700), and a descriptor holding an exclusive ``flock``
    on it (None where the filesystem has no locks)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(4)}"
        try:
            os.mkdir(tmp, 0o777)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise DataError(f"{path}: cannot create the output ({exc.strerror})") from None
    else:
        raise DataError(f"{path}: cannot create the output (no free temporary name beside it)")
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(tmp, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            if fd is not None:
                os.close(fd)
            fd = None
    return tmp, fd


#: seconds a leftover ``.NAME.tmp-*`` must predate a write to be removed by it: a writer that began
#: at about the same time may not hold its lock yet, and file times can lag the clock slightly
STALE_AGE = 2.0


def _remove_stale_siblings(path: Path, started: float) -> None:
    """Remove ``.NAME.tmp-*`` and ``.NAME.old-*`` beside ``path`` last changed :data:`STALE_AGE`
    seconds or more before ``started`` and not locked by a live writer."""
    for sibling in list(path.parent.glob(f".{glob.escape(path.name)}.tmp-*")) + list(
            path.parent.glob(f".{glob.escape(path.name)}.old-*")):
        try:
            if not sibling.is_dir() or sibling.is_symlink() or sibling.stat().st_mtime > started - STALE_AGE:
                continue
        except OSError:
            continue
        if fcntl is not None:
            try:
                fd = os.open(sibling, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a live writer: OSError, keep it
            except OSError:
                continue
            finally:
                os.close(fd)
        shutil.rmtree(sibling, ignore_errors=True)


@contextlib.contextmanager
def exclusive_lock(path: str | Path, *, busy: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (created if needed) for the block, or raise
    DataError(``busy``) at once when another process holds it. The file is removed on exit; a lock
    taken on a file that was meanwhile removed (by the previous holder) is taken again on the new one.
    Where there are no locks (Windows, some network filesystems) the block runs unlocked."""
    path = Path(path)
    if fcntl is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{path.parent}: cannot create directory ({exc.strerror})") from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise DataError(f"{path}: cannot create the lock file ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataError(busy) from None
        except OSError:  # no locks on this filesystem
            os.close(fd)
            yield
            return
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still locked: a waiting process then finds a new file
        os.close(fd)


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


def read_json(path: str | Path, *, what: str = "valid JSON") -> Any:
    """The parsed JSON in ``path``; DataError naming the file when it is missing, unreadable,
    not UTF-8, not JSON, nested too deeply or holding an integer too long to parse (``{path}: not
    {what} (the reason)``)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {what} (not UTF-8 text: byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not {what} (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise DataError(f"{path}: not {what} (nested too deeply to read)") from None
    except ValueError as exc:  # int(): Python reads at most sys.get_int_max_str_digits() digits
        raise DataError(f"{path}: not {what} ({json_number_error(exc)})") from None


def json_number_error(exc: ValueError) -> str:
    """A ValueError of ``json.loads`` that is not a JSONDecodeError, in words: Python's message
    about its limit on integer digits tells the user to call a Python function."""
    if "digits" in str(exc):
        return f"an integer of more than {sys.get_int_max_str_digits()} digits"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def read_checkpoint_meta(path: str | Path, method: str, format_version: int) -> dict[str, Any]:
    """The JSON sidecar (``path.json``) of a model checkpoint, checked to be ``method``'s, in
    ``format_version``, beside a tensors-only ``path`` (see :func:`check_checkpoint_file`);
    DataError (a ValueError) naming the file otherwise. The checkpoints of every method are
    ``path`` (tensors only, read with ``torch.load(weights_only=True)``) + ``path.json`` (config)."""
    path = Path(path)
    mp = path.with_suffix(path.suffix + ".json")
    if not path.is_file() or not mp.is_file():
        raise DataError(f"{path}: checkpoint or its {mp.name} not found")
    meta = read_json(mp, what="a valid checkpoint config")
    if not isinstance(meta, dict):
        raise DataError(f"{mp}: expected a JSON object (the checkpoint's config), got {type(meta).__name__}")
    if meta.get("method") != method:
        raise DataError(f"{path}: checkpoint is for method '{meta.get('method')}', not '{method}'")
    if meta.get("format") != format_version:
        raise DataError(f"{path}: checkpoint in format {meta.get('format')} (xcausal {meta.get('xcausal_version')}); "
                        f"this version reads format {format_version} only: fit the model again")
    check_checkpoint_file(path)
    return meta


@contextlib.contextmanager
def checkpoint_errors(path: str | Path) -> Iterator[None]:
    """Around rebuilding a model from a checkpoint (after :func:`read_checkpoint_meta`): a config
    that lacks a key or holds a value of the wrong type, or tensors that do not fit the network it
    describes (a hand-edited or truncated ``path.json``), become a one-line DataError naming the
    file instead of a KeyError / TypeError / RuntimeError from deep inside the loader."""
    path = Path(path)
    try:
        yield
    except DataError:
        raise
    except KeyError as exc:
        raise DataError(f"{path}: the checkpoint or its config {path.name}.json has no {exc} entry "
                        "(written by another version, or edited?)") from None
    except (TypeError, ValueError, AttributeError, RuntimeError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise DataError(f"{path}: the checkpoint does not match its config {path.name}.json "
                        f"({lines[0] if lines else type(exc).__name__})") from None


def check_checkpoint_file(path: str | Path) -> None:
    """Refuse, without unpickling it, a checkpoint that holds anything but tensors and plain data.

    ``torch.load(weights_only=True)`` (what every loader uses) already refuses to build other
    objects; this static scan of the pickle's globals
    (``torch.serialization.get_unsafe_globals_in_checkpoint``) turns such a file, a corrupt one, or
    one that ``torch.save`` did not write, into a one-line DataError naming it.
    """
    import torch

    path = Path(path)
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - any failure to parse untrusted bytes means "not a checkpoint"
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise DataError(f"{path}: not a readable checkpoint written by torch.save "
                        f"({lines[0] if lines else type(exc).__name__})") from None
    if unsafe:
        shown = ", ".join(unsafe[:3]) + (", ..." if len(unsafe) > 3 else "")
        raise DataError(f"{path}: refusing to load a checkpoint that holds Python objects, not only tensors "
                        f"({shown}); xcausal checkpoints are tensors only")
