"""A messy table through `xcausal info` and `xcausal fit`: an image column called image_path, a
patient_id of distinct texts (the row id, never a variable) and an ignored free-text column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xcausal.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 60


def _patient_ids() -> list[str]:
    return [f"P{(37 * i + 11) % 1000:04d}" for i in range(N)]  # distinct, not sorted


@pytest.fixture
def messy(tmp_path) -> Path:
    data = tmp_path / "d"
    assert main(["simulate", "--graph", "first", "--n", str(N), "--seed", "0", "--out", str(data)]) == 0
    t = pd.read_csv(data / "table.csv")
    t = t.rename(columns={"image": "image_path"})
    t.insert(1, "patient_id", _patient_ids())
    t["notes"] = ["", "follow-up", "ok", "seen twice"] * (N // 4)  # empty cells: fine once ignored
    t.to_csv(data / "table.csv", index=False)
    return data


ROLES = ["--image-column", "image_path", "--ignore", "notes"]


def test_info_shows_the_id_column_and_only_the_variables(messy, capsys):
    assert main(["info", str(messy), *ROLES]) == 0
    out = capsys.readouterr().out
    assert "row ids: column 'patient_id' (not a variable)" in out
    assert "60 rows" in out and "notes" not in out and out.count("patient_id") == 1
    rows = [line.split("│")[1].strip() for line in out.splitlines() if line.count("│") >= 3]
    assert rows == ["u1", "u2", "u3", "u4", "u5"]


def test_info_refuses_an_identifier_beside_an_id_column(messy, capsys):
    t = pd.read_csv(messy / "table.csv", keep_default_na=False)
    t.insert(1, "id", [f"x{i}" for i in range(N)])
    t.to_csv(messy / "table.csv", index=False)
    assert main(["info", str(messy), *ROLES]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ("column 'patient_id': 60 distinct texts in 60 rows, an identifier and not a variable; pass "
            "--id-column patient_id to use it as the row id, or --ignore patient_id") in err


def test_info_refuses_too_many_levels(messy, capsys):
    t = pd.read_csv(messy / "table.csv", keep_default_na=False)
    t["site"] = [f"s{i % 30}" for i in range(N)]
    t.to_csv(messy / "table.csv", index=False)
    assert main(["info", str(messy), *ROLES]) == 2
    err = capsys.readouterr().err
    assert ("column 'site': categorical with 30 levels, more than --max-categories 20; pass --max-categories 30 "
            "to keep it, or --ignore site") in err
    assert main(["info", str(messy), *ROLES, "--max-categories", "30"]) == 0
    assert "categorical" in capsys.readouterr().out


def test_fit_records_the_roles_and_latents_csv_carries_the_ids(messy, tmp_path, capsys):
    from xcausal.api import load_run_dataset

    run = tmp_path / "run"
    assert main(["fit", str(messy), "--out", str(run), *ROLES, "--epochs", "1", "--latent-dim", "2", "--device",
                 "cpu", "-q"]) == 0
    g = json.loads((run / "graph.json").read_text())
    observed = [n["name"] for n in g["nodes"] if n["kind"] == "observed"]
    assert observed == ["u1", "u2", "u3", "u4", "u5"]
    lat = pd.read_csv(run / "latents.csv", dtype={"patient_id": str})
    assert list(lat.columns) == ["row", "patient_id", "z1", "z2"]
    assert list(lat["row"]) == list(range(1, N + 1))  # table.csv's data rows, 1 = the line after the header
    assert list(lat["patient_id"]) == _patient_ids()  # table order
    fc = json.loads((run / "config.json").read_text())["fit_config"]
    assert (fc["image_column"], fc["id_column"], fc["ignore"], fc["max_categories"]) == \
        ("image_path", None, ["notes"], 20)
    ds = load_run_dataset(run)  # how evaluate / report / intervene reload the data
    assert ds.variable_names == observed and ds.id_column == "patient_id"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--truth", str(messy), "--json"]) == 0  # reads latents.csv
    assert "mcc" in json.loads(capsys.readouterr().out)
    assert main(["intervene", str(run), "--var", "u1", "--values", "0,1", "--rows", "1,60",
                 "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").is_file()


def test_fit_refuses_the_messy_table_without_the_roles_in_one_line(messy, tmp_path, capsys):
    code = main(["fit", str(messy), "--out", str(tmp_path / "r"), "--epochs", "1", "--device", "cpu", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "no 'image' column" in err and "--image-column" in err
    assert not (tmp_path / "r").exists()


def test_latents_csv_names_the_id_column_and_never_shadows_a_latent(tmp_path):
    from xcausal.run import RunResult, read_run, write_run
    from xcausal.types import Edge, Graph, Node

    g = Graph([Node("u1", "observed"), Node("z1", "latent"), Node("z2", "latent")], [Edge("u1", "z1", 0.5)])
    lat = np.arange(6.0).reshape(3, 2)
    for name, want in (("patient_id", "patient_id"), ("z1", "id"), ("row", "id")):
        run = write_run(tmp_path / name, RunResult(g, lat, {}, pd.DataFrame(), ids=pd.Series(["c", "a", "b"],
                                                                                             name=name)))
        assert list(pd.read_csv(run / "latents.csv").columns) == ["row", want, "z1", "z2"]
        np.testing.assert_array_equal(read_run(run).latents, lat)
    run = write_run(tmp_path / "rows", RunResult(g, lat, {}, pd.DataFrame(), row_numbers=np.array([2, 5, 9])))
    assert list(pd.read_csv(run / "latents.csv")["row"]) == [2, 5, 9]
    with pytest.raises(ValueError, match="2 ids for 3 rows"):
        write_run(tmp_path / "bad", RunResult(g, lat, {}, pd.DataFrame(), ids=pd.Series(["a", "b"])))


def test_max_pixels_is_one_option_for_info_and_fit(messy, tmp_path, capsys):
    from xcausal.data.dataset import MAX_PIXELS
    from xcausal.options import FIT_OPTIONS
    assert FIT_OPTIONS["max_pixels"].default == MAX_PIXELS  # options.py cannot import the torch module
    assert main(["info", str(messy), *ROLES, "--max-pixels", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pixels; at most 100 are allowed (row 1) (--max-pixels)" in err
    out = tmp_path / "run"
    assert main(["fit", str(messy), "--out", str(out), *ROLES, "--max-pixels", "100", "--epochs", "1", "-q"]) == 2
    assert "at most 100 are allowed" in capsys.readouterr().err and not out.exists()
    assert main(["info", str(messy), *ROLES, "--max-pixels", "0"]) == 2
    assert "--max-pixels 0: must be a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--id-column", "patient_id"], []])
def test_a_repeated_id_is_refused_naming_both_rows(messy, capsys, flags):
    t = pd.read_csv(messy / "table.csv", keep_default_na=False)
    t.loc[41, "patient_id"] = t.loc[6, "patient_id"]
    t.to_csv(messy / "table.csv", index=False)
    assert main(["info", str(messy), *ROLES, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert (f"column 'patient_id': id '{t.loc[6, 'patient_id']}' is in row 7 and row 42; row ids must be distinct "
            "(pass --ignore patient_id if the column is not a row id)") in err
