"""benchmarks/fit_profile.py on a tiny run: every stage is timed and the fit's estimate recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_fit_profile_smoke(tmp_path):
    out = tmp_path / "prof"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fit_profile.py"), "--out", str(out), "--sizes",
                           "16", "--n", "40", "--epochs", "2"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["epochs"] == 2 and row["estimated_s"] > 0 and row["fit_s"] > 0
    assert row["stages"]["training epochs"]["calls"] == 2 and row["stages"]["final refit"]["calls"] == 1
    assert row["stages"]["writing outputs"]["calls"] == 1 and set(row["step_parts_s"]) >= {"vae", "dag", "backward"}
    assert "| final refit |" in (out / "README.md").read_text()
