"""The grid runner both benchmark suites share: cells cached as JSON files, run one after another
or in parallel processes, each finished cell reported as it lands (a killed run resumes from the
files)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("xcausal.bench")

__all__ = ["run_cached_cells"]


def run_cached_cells(cells: Sequence[Hashable], key: Callable[[Any], str], out: Path,
                     job: Callable[..., str], *, jobs: int, threads: int | None,
                     parallel: Callable[[], contextlib.AbstractContextManager] | None = None,
                     on_done: Callable[[Any, int, int, Path], None] | None = None) -> dict[Any, Path]:
    """Run ``job(cell, path, threads)`` (which writes the cell's JSON to ``path`` and returns
    ``path``) for every cell whose file ``out/cells/<key(cell)>.json`` does not exist yet; returns
    every cell's path. ``jobs`` > 1 runs them in parallel through ``parallel()`` (a context manager
    yielding a joblib ``Parallel`` with unordered results; default: loky), each process taking
    ``threads`` threads (default: the cores divided among the jobs). ``on_done(cell, done, total,
    path)`` is called as each cell finishes."""
    cache = out / "cells"
    cache.mkdir(parents=True, exist_ok=True)
    paths = {c: cache / f"{key(c)}.json" for c in cells}
    todo = [c for c in cells if not paths[c].is_file()]
    logger.info("%d cells, %d cached, %d to run", len(cells), len(cells) - len(todo), len(todo))
    done = len(cells) - len(todo)
    if not todo:
        return paths
    from xcausal._runtime import threads_per_process

    threads = threads_per_process(jobs, threads) if jobs > 1 else None
    if jobs == 1:
        for c in todo:
            job(c, str(paths[c]), threads)
            done += 1
            if on_done:
                on_done(c, done, len(cells), paths[c])
        return paths
    from joblib import Parallel, delayed

    cell_of = {str(paths[c]): c for c in todo}
    par_cm = parallel() if parallel else contextlib.nullcontext(
        Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered"))
    with par_cm as par:
        for p in par(delayed(job)(c, str(paths[c]), threads) for c in todo):
            done += 1
            if on_done:
                on_done(cell_of[p], done, len(cells), Path(p))
    return paths
