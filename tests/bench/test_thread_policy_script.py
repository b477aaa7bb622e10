"""benchmarks/thread_policy.py on a tiny problem: every setting timed, results written."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow  # five fits in subprocesses (about 30 s): `make test-all`
def test_tiny_run_times_every_setting(load_benchmark, tmp_path):
    tp = load_benchmark("thread_policy")
    assert tp.main(["--out", str(tmp_path), "--graph", "3/6", "--n", "40", "--epochs", "1"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    runs = res["wall_seconds"]
    assert [len(v) for v in runs.values()] == [1, 2, 2]
    assert all(s > 0 for v in runs.values() for s in v)
    assert "commit" in res["machine"] and "| 2 side by side, cores // 2 each |" in (tmp_path / "README.md").read_text()
