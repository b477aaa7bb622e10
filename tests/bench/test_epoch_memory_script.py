"""benchmarks/epoch_memory.py end to end on a tiny dataset (issue 8, 6b): data generation, the
measured subprocesses and the three result files."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest


@pytest.mark.slow  # a benchmark script's end-to-end smoke run (make test-all)
def test_tiny_run_writes_results(tmp_path, load_benchmark):
    em = load_benchmark("epoch_memory")
    out = tmp_path / "out"
    res = em.main(["--data", str(tmp_path / "data"), "--out", str(out), "--configs", "200x16",
                   "--modes", "stream,cache", "--runners", "loader", "--nice", "0", "--timeout", "120"])
    d = tmp_path / "data" / "n200_s16"
    assert len(list((d / "images").glob("*.png"))) == 200 and (d / "table.csv").is_file()
    assert (d / ".xcausal-cache" / "images-16px-1ch.npy").is_file()  # built by the "build" run
    for f in ("results.csv", "results.json", "README.md"):
        assert (out / f).is_file(), f
    rows = pd.read_csv(out / "results.csv")
    assert sorted(zip(rows["runner"], rows["mode"])) == [("build", "cache"), ("loader", "cache"), ("loader", "stream")]
    assert (rows["n"] == 200).all() and (rows["size"] == 16).all()
    assert (rows["epoch_s"] > 0).all() and (rows["epoch_s"] < 60).all() and (rows["epoch_cpu_s"] > 0).all()
    # a Python process with torch imported takes 50 MB to a few GB; its DataLoader workers are counted
    assert rows["peak_pss_mb"].between(50, 4000).all() and rows["peak_anon_mb"].between(10, 4000).all()
    assert (rows["peak_rss_sum_mb"] >= rows["peak_pss_mb"] - 1).all()
    loader = rows[rows["runner"] == "loader"]
    assert (loader["processes"] >= 2).all()  # the main process and at least one worker were sampled
    js = json.loads((out / "results.json").read_text())
    assert js["rows"] and js["commit"] and "cores" in js["machine"] and js["command"].startswith("python benchmarks/")
    assert res["rows"][0]["n"] == 200
    md = (out / "README.md").read_text()
    assert "| 200 | 16 | loader | stream |" in md and "Machine:" in md and "Commit:" in md


def test_linear_fit_and_summary(load_benchmark):
    em = load_benchmark("epoch_memory")
    a, b, r2 = em._fit_line([1000, 10000, 50000], [1.0 + 0.001 * n for n in (1000, 10000, 50000)])
    assert math.isclose(a, 1.0, abs_tol=1e-9) and math.isclose(b, 1000.0, rel_tol=1e-9) and math.isclose(r2, 1.0)
    rows = [{"n": n, "size": 32, "runner": "loader", "mode": "stream", "epoch_s": 0.5 + n * 1e-4, "epoch_cpu_s": n * 2e-4,
             "peak_pss_mb": 300.0 + n * 1e-3, "peak_anon_mb": 250.0} for n in (1000, 50000)]
    rows.append({**rows[0], "size": 128, "n": 5000})  # a single N at 128 px is left out of the fit
    lines, verdicts = em.summarise(rows)
    v = verdicts["loader/stream"]
    assert v["size"] == 32 and math.isclose(v["us_per_image"], 100.0) and math.isclose(v["pss_growth_mb"], 49.0)
    assert math.isclose(v["cpu_us_per_image"], 200.0)
    assert len(lines) == 1 and em.parse_configs("1000x32, 5000x128") == [(1000, 32), (5000, 128)]
