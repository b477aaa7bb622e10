"""benchmarks/entropy_cost.py: a tiny run gives a positive time for every estimator and case."""

from __future__ import annotations


def test_tiny_run_times_every_case(load_benchmark):
    rows = load_benchmark("entropy_cost").main(["--n", "200", "--reps", "1"])
    assert len(rows) == 10 and {r["estimator"] for r in rows} == {"gmm", "vasicek"}
    assert all(r["cpu_ms"] >= 0 for r in rows)
