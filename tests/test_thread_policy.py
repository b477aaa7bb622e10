"""Threads: a fit's process takes --set threads=N (torch and BLAS); parallel bootstrap refits take the
cores divided among them unless told otherwise; both are recorded in config.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from xcausal._runtime import threads_per_process


def test_threads_per_process_divides_the_cores():
    cores = os.cpu_count() or 1
    assert threads_per_process(1) == cores
    assert threads_per_process(2) == max(1, cores // 2)
    assert threads_per_process(10 * cores) == 1
    assert threads_per_process(2, threads=3) == 3


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xcausal.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_fit_threads_and_bootstrap_refit_threads_are_applied_and_recorded(tmp_path):
    data = tmp_path / "d"
    assert _cli("simulate", "--graph", "3/6", "--n", "60", "--out", str(data)).returncode == 0
    common = ["--epochs", "1", "--latent-dim", "2", "--device", "cpu", "-q", "--bootstrap", "2", "--jobs", "2",
              "--set", "dag_refit=false"]  # the final refit is not what this test is about
    done = _cli("fit", str(data), "--out", str(tmp_path / "a"), *common, "--set", "threads=1")
    assert done.returncode == 0, done.stderr
    threads = json.loads((tmp_path / "a" / "config.json").read_text())["threads"]
    assert threads == {"fit": 1, "bootstrap_refit": 1}
    bad = _cli("fit", str(data), "--out", str(tmp_path / "c"), *common, "--set", "threads=0")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: threads=0: must be an integer >= 1"


@pytest.mark.slow
def test_parallel_bootstrap_refits_divide_the_cores_by_default(tmp_path):
    data = tmp_path / "d"
    assert _cli("simulate", "--graph", "3/6", "--n", "60", "--out", str(data)).returncode == 0
    done = _cli("fit", str(data), "--out", str(tmp_path / "b"), "--epochs", "1", "--latent-dim", "2", "--device", "cpu",
                "-q", "--bootstrap", "2", "--jobs", "2", "--set", "dag_refit=false")
    assert done.returncode == 0, done.stderr
    threads = json.loads((tmp_path / "b" / "config.json").read_text())["threads"]
    assert threads["bootstrap_refit"] == threads_per_process(2)
