"""benchmarks/refactor_equivalence.py: records fits through the CLI and compares two records."""

from __future__ import annotations

import json
import shutil

import pytest


def _write(d, name, edges, latents):
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.graph.json").write_text(json.dumps({"edges": [{"source": s, "target": t, "weight": w}
                                                                for s, t, w in edges]}))
    (d / f"{name}.latents.csv").write_text("row,z1\n" + "".join(f"{i},{v}\n" for i, v in enumerate(latents)))


def test_compare_passes_identical_records_and_names_every_difference(load_benchmark, tmp_path, capsys):
    eq = load_benchmark("refactor_equivalence")
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "case", [("u1", "z1", 0.8)], [0.1, 0.2])
    shutil.copytree(a, b)
    assert eq.compare(a, b, 1e-6) == 0
    assert "1 of 1 cases identical" in capsys.readouterr().out
    _write(b, "case", [("u1", "z1", 0.8)], [0.1, 0.2 + 1e-5])  # latents differ beyond 1e-6
    assert eq.compare(a, b, 1e-6) == 1
    assert "DIFFERENT" in capsys.readouterr().out
    _write(b, "case", [("z1", "u1", 0.8)], [0.1, 0.2])  # an edge reversed
    assert eq.compare(a, b, 1e-6) == 1
    out = capsys.readouterr().out
    assert "edges DIFFER" in out and "u1 -> z1: 0.8 / None" in out
    assert eq.compare(tmp_path / "empty", b, 1e-6) == 1  # nothing compared is not a pass
    capsys.readouterr()
    assert eq.compare(a, tmp_path / "empty", 1e-6) == 1  # a case the other record lacks
    assert "case: not recorded in" in capsys.readouterr().out


@pytest.mark.slow  # a benchmark script's end-to-end smoke run (make test-all)
def test_record_runs_a_case_through_the_cli(load_benchmark, tmp_path, monkeypatch):
    eq = load_benchmark("refactor_equivalence")
    monkeypatch.setitem(eq.CASES, "tiny", (["--graph", "3/6", "--n", "40", "--seed", "0"],
                                           ["--seed", "0", "--epochs", "1", "--latent-dim", "2"]))
    eq.record(tmp_path / "rec", ["tiny"])
    assert (tmp_path / "rec" / "tiny.graph.json").is_file() and (tmp_path / "rec" / "tiny.latents.csv").is_file()
    assert eq.compare(tmp_path / "rec", tmp_path / "rec", 0.0) == 0
