"""CLI smoke tests: every verb's --help, simulate -> evaluate, and the one-line error contract."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from xcausal import __version__
from xcausal.cli import main

VERBS = ["simulate", "convert", "info", "evaluate", "fit", "intervene", "bench", "counterfactual", "explain", "report"]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"xcausal {__version__}"


@pytest.mark.parametrize("verb", VERBS)
def test_help_on_every_verb(verb, capsys):
    code, out, _ = run_cli([verb, "--help"], capsys)
    assert code == 0 and "Usage" in out


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "d"
    assert main(["simulate", "--graph", "10/20", "--n", "1000", "--seed", "0", "--out", str(d)]) == 0
    return d


def test_simulate_then_evaluate_truth_is_perfect(sim_dir, capsys):
    code, out, _ = run_cli(["evaluate", str(sim_dir / "truth.json"), "--truth", str(sim_dir), "--json"], capsys)
    assert code == 0
    res = json.loads(out)
    assert res["shd"] == 0 and res["tpr"] == 1.0 and res["fdr"] == 0.0 and res["fpr"] == 0.0
    assert res["nnz"] == 10 and res["n_agree"] == res["n_variables"] == 10
    code, out, _ = run_cli(["evaluate", str(sim_dir / "truth.json"), "--truth", str(sim_dir)], capsys)
    assert code == 0 and "10/10 variables agree" in out


def test_info_shows_types(sim_dir, capsys):
    code, out, _ = run_cli(["info", str(sim_dir)], capsys)
    assert code == 0 and "continuous" in out and "1000 rows" in out


def test_convert_round_trip(sim_dir, tmp_path, capsys):
    npz = tmp_path / "d.npz"
    assert run_cli(["convert", str(sim_dir), "--out", str(npz)], capsys)[0] == 0
    code, out, _ = run_cli(["evaluate", str(sim_dir / "truth.json"), "--truth", str(npz), "--json"], capsys)
    assert code == 0 and json.loads(out)["shd"] == 0


@pytest.mark.parametrize("args, needle", [
    (["simulate", "--graph", "abc", "--out", "{tmp}/x"], "unknown graph spec 'abc'"),
    (["simulate", "--graph", "5/10", "--n", "5", "--out", "{tmp}/x"], "n"),
    (["info", "{tmp}/nothing"], "no such file or directory"),
    (["evaluate", "{tmp}/nothing", "--truth", "{tmp}"], "not a run directory"),
    (["bench", "--suite", "nope", "--out", "{tmp}/x"], "unknown suite"),
    (["simulate", "--kind", "mnist-spin", "--out", "{tmp}/x"], "--kind mnist-spin"),
    (["simulate", "--kind", "mnist-rotate", "--digits", "ten", "--out", "{tmp}/x"], "--digits ten"),
    (["bench", "--graphs", "3/1", "--out", "{tmp}/x"], "3/1"),
    (["bench", "--suite", "realistic", "--families", "morpho,nope", "--out", "{tmp}/x"], "--families nope"),
    (["bench", "--suite", "realistic", "--methods", "cmcl,pca+nope", "--out", "{tmp}/x"], "pca+nope"),
    (["bench", "--suite", "realistic", "--graphs", "3/10", "--out", "{tmp}/x"], "only for --suite paper"),
    (["bench", "--methods", "cmcl", "--out", "{tmp}/x"], "only for --suite realistic"),
])
def test_bad_input_one_line_exit_2(args, needle, tmp_path, capsys):
    code, out, err = run_cli([a.replace("{tmp}", str(tmp_path)) for a in args], capsys)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_existing_output_refused(sim_dir, capsys):
    code, _, err = run_cli(["simulate", "--graph", "5/10", "--out", str(sim_dir)], capsys)
    assert code == 2 and "already exists" in err


def test_debug_shows_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "xcausal.cli", "--debug", "info", str(tmp_path / "none")],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_console_script_exit_code(tmp_path):
    res = subprocess.run([sys.executable, "-m", "xcausal.cli", "info", str(tmp_path / "none")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_fit_a_pipeline_then_evaluate(tmp_path, capsys):
    """`--method <representation>+<structure>` writes the same run directory; evaluate scores it;
    intervene refuses it with one line (a two-stage pipeline has no model from u to the image)."""
    data, run = tmp_path / "d", tmp_path / "run"
    assert main(["simulate", "--graph", "3/10", "--n", "300", "--seed", "1", "--out", str(data)]) == 0
    code, out, err = run_cli(["fit", str(data), "--method", "ica+ges", "--out", str(run), "--quiet"], capsys)
    assert code == 0, err
    g = json.loads((run / "graph.json").read_text())
    assert g["method"] == "ica+ges" and len([n for n in g["nodes"] if n["kind"] == "latent"]) == 7
    code, out, _ = run_cli(["evaluate", str(run), "--truth", str(data), "--json"], capsys)
    res = json.loads(out)
    # measured 0.66 / 1.0 here (n = 300 is small for a 7-source ICA of 1024 pixels); deterministic
    assert code == 0 and res["method"] == "ica+ges" and res["mcc"] > 0.5 and res["tpr"] >= 2 / 3, res
    code, _, err = run_cli(["intervene", str(run), "--var", "u1", "--values", "0", "--out", str(tmp_path / "g.png")],
                           capsys)
    assert code == 2 and "cannot regenerate images" in err and not (tmp_path / "g.png").exists()
    for args in (["counterfactual", str(run), "--set", "u1=0", "--out", str(tmp_path / "cf")],
                 ["evaluate", str(run), "--truth", str(data), "--counterfactual"]):
        code, _, err = run_cli(args, capsys)
        assert code == 2 and "cannot regenerate images" in err, err
    assert not (tmp_path / "cf").exists()
    code, _, err = run_cli(["fit", str(data), "--method", "pca+ges", "--out", str(tmp_path / "r2")], capsys)
    assert code == 2 and "unknown method 'pca+ges'" in err and "ivae+notears" in err


@pytest.mark.slow
def test_bench_quick_writes_all_tables(tmp_path, capsys):
    out = tmp_path / "bench"
    code, stdout, err = run_cli(["bench", "--suite", "paper", "--quick", "--jobs", "2", "--out", str(out)], capsys)
    assert code == 0, err
    for f in ("figure2.png", "table1.csv", "table2.csv", "timing.csv", "results.md"):
        assert (out / f).is_file()
    assert "Table 1" in stdout and "Table 2" in stdout


def test_simulate_mnist_rotate_then_info(tmp_path, capsys):
    d = tmp_path / "rot"
    code, _, err = run_cli(["simulate", "--kind", "mnist-rotate", "--n", "50", "--seed", "2", "--out", str(d)], capsys)
    assert code == 0 and "mnist-rotate" in err
    truth = json.loads((d / "truth.json").read_text())
    assert [(e["source"], e["target"]) for e in truth["edges"]] == [("angle", "rotation")]
    code, out, _ = run_cli(["info", str(d)], capsys)
    assert code == 0 and "angle" in out and "categorical" in out and "50 rows" in out


@pytest.fixture(scope="module")
def cmcl_run(tmp_path_factory):
    """A tiny CMCL run on rotated MNIST (2 epochs: the workflow, not a result)."""
    base = tmp_path_factory.mktemp("cf")
    data, run = base / "rot", base / "run"
    assert main(["simulate", "--kind", "mnist-rotate", "--n", "40", "--seed", "0", "--image-size", "16",
                 "--out", str(data)]) == 0
    assert main(["fit", str(data), "--out", str(run), "--epochs", "2", "--latent-dim", "2", "--image-size", "16",
                 "--quiet"]) == 0
    return data, run


def test_counterfactual_writes_pairs(cmcl_run, tmp_path, capsys):
    data, run = cmcl_run
    out = tmp_path / "cf"
    code, _, err = run_cli(["counterfactual", str(run), "--set", "angle=7", "--rows", "1,5-6,10", "--out", str(out)], capsys)
    assert code == 0, err
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == sorted(f"row{r}_{k}.png" for r in (1, 5, 6, 10) for k in ("original", "counterfactual"))
    import pandas as pd

    rows = pd.read_csv(out / "counterfactuals.csv")
    assert list(rows["row"]) == [1, 5, 6, 10] and (rows["do_angle"] == 7).all() and "digit" in rows
    assert (out / "counterfactuals.png").stat().st_size > 0
    for args, needle in ((["--set", "speed=1"], "unknown variable 'speed'"), (["--set", "angle"], "VAR=VALUE"),
                         (["--set", "angle=1", "--rows", "1,99"], "--rows 1,99: row 99 is out of range (the table has 40"),
                         (["--set", "angle=1", "--ids", "a"], "--ids: the data has no id column")):
        code, _, err = run_cli(["counterfactual", str(run), *args, "--out", str(tmp_path / "bad")], capsys)
        assert code == 2 and needle in err and not (tmp_path / "bad").exists(), err


def test_explain_writes_a_heatmap_png(cmcl_run, tmp_path, capsys):
    data, run = cmcl_run
    out = tmp_path / "heat.png"
    code, _, err = run_cli(["explain", str(run), "--latent", "z2", "--samples", "4", "--out", str(out)], capsys)
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run_cli(["explain", str(run), "--latent", "z7", "--out", str(tmp_path / "h2.png")], capsys)
    assert code == 2 and "z7" in err and "z1, z2" in err


def test_evaluate_counterfactual_reports_every_measure(cmcl_run, capsys):
    data, run = cmcl_run
    code, out, err = run_cli(["evaluate", str(run), "--truth", str(data), "--json", "--counterfactual",
                              "--samples", "12"], capsys)
    assert code == 0, err
    cf = json.loads(out)["counterfactual"]
    assert set(cf) == {"angle", "digit"}
    for var, d in cf.items():
        assert {"composition_l1_1", "composition_l1_10", "reversibility_l1"} <= set(d), d
        assert all(np.isfinite(v) and v >= 0 for k, v in d.items() if k != "effectiveness_r")
    assert "effectiveness_r" in cf["angle"] and "effectiveness_mae" in cf["angle"]
    assert "effectiveness_r" not in cf["digit"]
    code, _, err = run_cli(["evaluate", str(run / "graph.json"), "--truth", str(data), "--counterfactual"], capsys)
    assert code == 2 and "needs a run directory" in err


def test_intervene_beyond_float32_is_one_line(cmcl_run, tmp_path, capsys):
    """The issue's reproducer: a finite value that overflows float32 made the error handler crash
    (AttributeError traceback). Now a one-line refusal naming the value (exit 2)."""
    data, run = cmcl_run
    out = tmp_path / "g.png"
    code, _, err = run_cli(["intervene", str(run), "--var", "angle", "--values", "1e308", "--out", str(out)], capsys)
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert code == 2 and lines[0].startswith("error:") and "'1e308'" in lines[0] and "float32" in lines[0], err
    assert not out.exists()


def test_values_outside_the_observed_range_are_named_as_extrapolated(cmcl_run, tmp_path, capsys, caplog):
    import logging

    data, run = cmcl_run
    with caplog.at_level(logging.WARNING, logger="xcausal"):
        code, _, err = run_cli(["intervene", str(run), "--var", "angle", "--values", "5,500", "--out",
                                str(tmp_path / "g.png")], capsys)
    assert code == 0, err
    notes = [r.getMessage() for r in caplog.records if "extrapolated" in r.getMessage()]
    assert len(notes) == 1 and "angle = 500 outside the observed" in notes[0], notes
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xcausal"):
        assert run_cli(["intervene", str(run), "--var", "angle", "--values", "2,5", "--out",
                        str(tmp_path / "h.png")], capsys)[0] == 0
        assert run_cli(["counterfactual", str(run), "--set", "angle=-40", "--rows", "1-2", "--out",
                        str(tmp_path / "cf")], capsys)[0] == 0
    notes = [r.getMessage() for r in caplog.records if "extrapolated" in r.getMessage()]
    assert len(notes) == 1 and "angle = -40 outside" in notes[0], notes  # only the counterfactual's


def test_info_takes_every_data_option_of_fit(tmp_path, capsys):
    """info validates exactly what fit will read: the same data flags (from the option table),
    e.g. --channels 1 on a folder mixing grayscale and RGB files."""
    import typer.main
    from PIL import Image

    from xcausal.cli import app
    from xcausal.options import DATA_OPTIONS, FIT_OPTIONS

    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    flags = {c: {p.name: tuple(p.opts + p.secondary_opts) for p in group.get_command(ctx, c).params}
             for c in ("info", "fit")}
    for name in DATA_OPTIONS:
        assert name in flags["info"] and flags["info"][name] == flags["fit"][name], name
    assert flags["info"]["channels"] == FIT_OPTIONS["channels"].cli_flags()

    d = tmp_path / "d"
    (d / "images").mkdir(parents=True)
    for i in range(12):
        Image.new("RGB" if i % 2 else "L", (8, 8)).save(d / "images" / f"{i}.png")
    (d / "table.csv").write_text("image,x\n" + "".join(f"images/{i}.png,{i}\n" for i in range(12)))
    code, out, err = run_cli(["info", str(d), "--channels", "1", "--image-size", "6"], capsys)
    assert code == 0, err
    assert "12 rows, images 1×6×6" in out and "images: mixed grayscale and RGB -> grayscale" in out
    code, _, err = run_cli(["info", str(d), "--channels", "2"], capsys)
    assert code == 2 and "--channels 2: must be 1 (grayscale) or 3 (RGB)" in err
