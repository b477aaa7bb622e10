"""benchmarks/orientation_warps.py: a tiny run end to end, and the method names it accepts."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def ow(load_benchmark):
    return load_benchmark("orientation_warps")


def test_tiny_run_scores_each_warp_with_and_without_normal_scores(ow, tmp_path):
    out = tmp_path / "ow"
    rows = ow.main(["--datasets", "1", "--n", "300", "--methods", "entropy,pnl+normal", "--out", str(out)])
    assert [(r["warp"], r["method"]) for r in rows] == [(w, m) for w in ow.WARPS for m in ("entropy", "pnl+normal")]
    for r in rows:
        assert r["pairs"] == 5 and 0 <= r["right"] <= 1, r  # 5/10: five pairs per dataset
    saved = json.loads((out / "results.json").read_text())
    assert saved["rows"] == rows and "--methods entropy,pnl+normal --entropy auto" in saved["command"]
    assert (out / "results.md").read_text().count("| pnl+normal |") == len(ow.WARPS)


@pytest.mark.parametrize("bad", ["pnl+rank", "anm", "+normal"])
def test_unknown_methods_are_refused(ow, tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as e:
        ow.main(["--datasets", "1", "--methods", f"pnl,{bad}", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and f"unknown method '{bad}'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_entropy_estimator_is_passed_on_and_checked(ow, tmp_path, capsys, monkeypatch):
    seen = set()
    real = ow.anm_direction

    def spy(*args, **kwargs):
        seen.add(kwargs["entropy"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ow, "anm_direction", spy)
    ow.main(["--datasets", "1", "--n", "200", "--methods", "entropy", "--entropy", "vasicek", "--out", str(tmp_path / "v")])
    assert seen == {"vasicek"}
    with pytest.raises(SystemExit) as e:
        ow.main(["--datasets", "1", "--entropy", "knn", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "--entropy: invalid choice: 'knn'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
