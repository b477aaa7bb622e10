"""The cached-cell runner both suites use: cached cells are skipped, each finished cell reported."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path


def _job(cell, path, threads):
    Path(path).write_text(json.dumps({"cell": cell, "threads": threads}))
    return path


def test_cached_cells_are_skipped_and_each_finished_cell_is_reported(tmp_path):
    from joblib import Parallel

    from xcausal._runtime import threads_per_process
    from xcausal.bench._cells import run_cached_cells

    seen = []
    paths = run_cached_cells(["a", "b"], str, tmp_path, _job, jobs=1, threads=None,
                             on_done=lambda c, done, total, p: seen.append((c, done, total, p.name)))
    assert seen == [("a", 1, 2, "a.json"), ("b", 2, 2, "b.json")]
    assert json.loads(paths["a"].read_text()) == {"cell": "a", "threads": None}
    seen.clear()
    # the parallel branch (a sequential joblib Parallel stands in for the processes)
    sequential = lambda: contextlib.nullcontext(Parallel(n_jobs=1, return_as="generator_unordered"))  # noqa: E731
    paths = run_cached_cells(["a", "b", "c"], str, tmp_path, _job, jobs=2, threads=None, parallel=sequential,
                             on_done=lambda c, done, total, p: seen.append((c, done, total)))
    assert seen == [("c", 3, 3)]  # a and b were cached
    assert json.loads(paths["c"].read_text())["threads"] == threads_per_process(2)
