"""benchmarks/mnist_seeds.py (issue #5): a tiny run end to end, and cells already present are kept."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow  # a benchmark script's end-to-end smoke run (make test-all)
def test_tiny_run_writes_the_table_and_keeps_cells(load_benchmark, tmp_path):
    ms = load_benchmark("mnist_seeds")
    out = tmp_path / "ms"
    args = ["--out", str(out), "--kinds", "rotate,shift", "--seeds", "0", "--n", "60", "--epochs", "2",
            "--cf-rows", "4", "--set", "latent_dim=2"]
    assert ms.main(args) == 0
    df = pd.read_csv(out / "results.csv")
    assert list(df["kind"]) == ["rotate", "shift"] and (df["seed"] == 0).all()
    cell = json.loads((out / "rotate_seed0.json").read_text())
    assert cell["params"] == {"latent_dim": 2} and cell["epochs"] == 2
    assert len(cell["r2_digit"]) == len(cell["r2_transform_within_digit"]) == 2
    assert all(0.0 <= v <= 1.0 for v in cell["r2_digit"])
    assert cell["one_edge_right"] == (len(cell["children"]) == 1 and not cell["parents"])
    assert "commit" in cell["machine"]
    md = (out / "results.md").read_text()
    assert "| rotate | 0 |" in md and "| shift | 0 |" in md and "Machine:" in md
    # a second run reuses the stored cells instead of refitting
    cell["effectiveness_r"] = 0.123
    (out / "rotate_seed0.json").write_text(json.dumps(cell))
    assert ms.main(args) == 0
    assert "| 0.123 |" in (out / "results.md").read_text()
