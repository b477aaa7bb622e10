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


import mnist_intervention  # noqa: E402


def test_mnist_examples_run_with_tiny_arguments(tmp_path, capsys):
    for kind, var in (("rotate", "angle"), ("shift", "v")):
        out = tmp_path / kind
        code = mnist_intervention.main(["--out", str(out), "--n", "60", "--epochs", "2", "--latent-dim", "4",
                                        "--image-size", "16", "--samples", "12", "--figures", str(tmp_path / "fig")],
                                       kind=kind)
        assert code == 0
        printed = capsys.readouterr().out
        assert f"do({var}): effectiveness r =" in printed and "reversibility" in printed
        assert (out / "interventions.png").is_file() and (out / "run" / "graph.json").is_file()
        assert (tmp_path / "fig" / f"mnist_{kind}_interventions.png").is_file()


import circles_causal_pima  # noqa: E402


def test_circles_example_runs_with_tiny_arguments(tmp_path, capsys):
    code = circles_causal_pima.main(["--out", str(tmp_path / "c"), "--n", "60", "--image-size", "16", "--epochs", "1",
                                     "--pretrain-epochs", "1", "--samples", "10", "--physics",
                                     "--figures", str(tmp_path / "fig")])
    assert code == 0
    out = capsys.readouterr().out
    assert "cluster accuracy" in out and "do(hue)" in out
    assert (tmp_path / "c" / "interventions.png").is_file()
    assert (tmp_path / "fig" / "circles_causal_pima_interventions.png").is_file()


import clinic_folder  # noqa: E402


def test_clinic_folder_is_messy_and_info_reads_it_with_the_role_flags(tmp_path, capsys):
    import pandas as pd

    from xcausal.cli import main

    root = tmp_path / "clinic"
    assert clinic_folder.main(["--out", str(root), "--n", "40", "--image-size", "16"]) == 0
    t = pd.read_csv(root / "table.csv", keep_default_na=False)
    assert list(t.columns[:2]) == ["patient_id", "image_path"] and (t["weight"] == "").sum() == 22
    assert set(t["implant"]) == {"yes", "no"} and any(" " in p for p in t["image_path"])
    assert {p.rsplit(".", 1)[1] for p in t["image_path"]} == {"png", "jpg"}
    capsys.readouterr()
    assert main(["info", str(root), "--image-column", "image_path", "--id-column", "patient_id", "--ignore", "notes",
                 "--missing", "drop"]) == 0
    out = capsys.readouterr().out
    assert "18 rows" in out and "stored up to 32 px, downscaled to 16" in out
    assert "rows dropped (--missing drop): 22 of 40" in out and "ground truth: 5 edge(s) over 11 nodes" in out
