"""The demo script runs end to end with tiny arguments."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import demo  # noqa: E402


def test_demo_runs_with_tiny_arguments(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path / "o"), "--n", "200", "--epochs", "2", "--graph", "3/10"]) == 0
    out = capsys.readouterr().out
    assert "SHD" in out and "true vs found" in out
    assert (tmp_path / "o" / "run" / "graph.png").is_file()
    assert (tmp_path / "o" / "run" / "graph.json").is_file()
