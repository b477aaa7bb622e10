"""A messy folder through every verb: PNG and JPEG files, grayscale and RGB, sub-folders and spaces
in the names, an image column called image_path, a patient_id column and empty cells.

Run with the role flags (--image-column image_path --id-column patient_id --missing drop), each verb
succeeds, the id is never a variable, and rows are numbered one way everywhere: as table.csv's
data rows (row 1 = the line after the header), the numbers data errors print, kept through
--missing drop. latents.csv, --rows, --ids and the counterfactual file names all use them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from xcausal.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 40
SIDE = 16
EMPTY = {4: "age", 17: "site", 30: "age"}  # 0-based data row -> the column left empty there
DROPPED = sorted(r + 1 for r in EMPTY)  # their table.csv row numbers: 5, 18, 31
ROLES = ["--image-column", "image_path", "--id-column", "patient_id", "--missing", "drop"]


def _pid(i: int) -> str:
    return f"P{(37 * i + 11) % 1000:05d}"  # distinct, not in table order


def _build(root: Path) -> Path:
    rng = np.random.default_rng(0)
    age = rng.uniform(20, 80, N).round(1)
    radius = 2.0 + 5.0 * (age - 20) / 60  # age -> the disc's size (a visible effect)
    rows = []
    for i in range(N):
        sub = ["scans 2021", "scans 2022/ward B"][i % 2]
        rgb = i % 3 == 0
        ext = "jpg" if i % 4 == 1 else "png"
        rel = f"{sub}/patient {_pid(i)}.{ext}"
        img = Image.new("RGB" if rgb else "L", (SIDE, SIDE), 0)
        c, r = SIDE / 2, radius[i]
        ImageDraw.Draw(img).ellipse([c - r, c - r, c + r, c + r], fill=(200, 180, 160) if rgb else 200)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        img.save(root / rel, **({"quality": 95} if ext == "jpg" else {}))
        rows.append({"patient_id": _pid(i), "image_path": rel, "age": age[i],
                     "site": "ABC"[i % 3], "score": round(float(radius[i] + rng.normal(0, 0.3)), 3)})
    t = pd.DataFrame(rows)
    t["age"] = t["age"].astype(object)
    for r, col in EMPTY.items():
        t.loc[r, col] = ""
    t.to_csv(root / "table.csv", index=False)
    truth = {"method": "truth", "latents": "latents.npy",
             "nodes": [{"name": n, "kind": "observed"} for n in ("age", "site", "score")] + [{"name": "z1", "kind": "latent"}],
             "edges": [{"source": "age", "target": "z1", "weight": 1.0}, {"source": "z1", "target": "score", "weight": 1.0}]}
    (root / "truth.json").write_text(json.dumps(truth))
    np.save(root / "latents.npy", radius[:, None])
    return root


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("messy") / "my data")


@pytest.fixture(scope="module")
def run(messy, tmp_path_factory) -> Path:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("runs") / "run 1"
        assert main(["fit", str(messy), "--out", str(out), *ROLES, "--epochs", "2", "--latent-dim", "2",
                     "--device", "cpu", "-q"]) == 0
    finally:
        torch.set_num_threads(before)
    return out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error:"), err
    return lines[0]


def test_info_reads_the_messy_folder(messy, capsys):
    assert main(["info", str(messy), *ROLES]) == 0
    out = capsys.readouterr().out
    assert f"{N - len(DROPPED)} rows" in out
    assert "row ids: column 'patient_id' (not a variable)" in out
    assert "mixed grayscale and RGB" in out
    assert f"rows dropped (--missing drop): {len(DROPPED)} of {N}: empty cell in column " in out
    assert "rows " + ", ".join(str(r) for r in sorted(DROPPED)) in out
    names = [line.split("│")[1].strip() for line in out.splitlines() if line.count("│") >= 3]
    assert names == ["age", "site", "score"]


def test_info_without_drop_names_the_table_row_of_the_empty_cell(messy, capsys):
    assert main(["info", str(messy), "--image-column", "image_path", "--id-column", "patient_id"]) == 2
    assert "table.csv row 5, column 'age': empty cell" in _one_line_error(capsys)


def test_an_error_after_drop_names_the_row_as_in_table_csv(messy, tmp_path, capsys):
    """A broken image below a dropped row was named by its position after the drop (row 39 for the
    last row); its number in table.csv is 40."""
    import shutil

    data = tmp_path / "d"
    shutil.copytree(messy, data)
    t = pd.read_csv(data / "table.csv", dtype=str, keep_default_na=False)
    (data / t.loc[N - 1, "image_path"]).write_bytes(b"not an image")
    assert main(["info", str(data), *ROLES]) == 2
    line = _one_line_error(capsys)
    assert f"(row {N})" in line and "not a readable" in line, line


def test_fit_keeps_the_id_out_of_the_variables_and_latents_csv_lines_up(run, messy):
    g = json.loads((run / "graph.json").read_text())
    assert [n["name"] for n in g["nodes"] if n["kind"] == "observed"] == ["age", "site", "score"]
    fc = json.loads((run / "config.json").read_text())["fit_config"]
    assert (fc["image_column"], fc["id_column"], fc["missing"]) == ("image_path", "patient_id", "drop")
    lat = pd.read_csv(run / "latents.csv", dtype={"patient_id": str})
    assert list(lat.columns) == ["row", "patient_id", "z1", "z2"]
    kept = [r for r in range(1, N + 1) if r not in DROPPED]
    assert list(lat["row"]) == kept
    table = pd.read_csv(messy / "table.csv", dtype=str, keep_default_na=False)
    assert list(lat["patient_id"]) == [table.loc[r - 1, "patient_id"] for r in kept]  # row r = table line r + 1


def test_evaluate_and_report(run, messy, capsys):
    assert main(["evaluate", str(run), "--truth", str(messy), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert "shd" in res and res["mcc"] is not None
    assert main(["report", str(run), "--rows", "1-3", "--overwrite"]) == 0
    assert (run / "report.html").stat().st_size > 0
    capsys.readouterr()
    assert main(["report", str(run), "--rows", "5", "--overwrite"]) == 2
    assert "row 5 is not in the fitted data (dropped by --missing drop: empty cell in column 'age')" in \
        _one_line_error(capsys)


def test_intervene_by_rows_and_ids(run, tmp_path, capsys):
    out = tmp_path / "grid a.png"
    assert main(["intervene", str(run), "--var", "age", "--values", "30,70", "--rows", "1,7-8", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out2 = tmp_path / "grid b.png"
    assert main(["intervene", str(run), "--var", "age", "--values", "30", "--ids", f"{_pid(6)},{_pid(0)}",
                 "--out", str(out2)]) == 0
    assert out2.is_file()


def test_counterfactual_files_are_named_by_the_selected_rows(run, tmp_path, capsys):
    out = tmp_path / "cf"
    assert main(["counterfactual", str(run), "--set", "age=70", "--rows", "2,19-20", "--out", str(out)]) == 0
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == sorted(f"row{r}_{_pid(r - 1)}_{k}.png" for r in (2, 19, 20) for k in ("original", "counterfactual"))
    cf = pd.read_csv(out / "counterfactuals.csv", dtype={"patient_id": str})
    assert list(cf["row"]) == [2, 19, 20] and list(cf["patient_id"]) == [_pid(1), _pid(18), _pid(19)]
    by_id = tmp_path / "cf by id"
    assert main(["counterfactual", str(run), "--set", "age=70", "--ids", _pid(19), "--out", str(by_id)]) == 0
    assert sorted(p.name for p in (by_id / "images").iterdir()) == [f"row20_{_pid(19)}_counterfactual.png",
                                                                     f"row20_{_pid(19)}_original.png"]
    assert main(["counterfactual", str(run), "--set", "age=70", "--samples", "3", "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s" / "images").iterdir())) == 6  # a count is --samples, never --rows


@pytest.mark.parametrize("args, needle", [
    (["--rows", "41"], "--rows 41: row 41 is out of range (the table has 40 row(s), numbered 1 to 40)"),
    (["--rows", "1199"], "row 1199 is out of range"),  # the count: now a row number, refused
    (["--rows", "0"], "--rows 0: rows are numbered from 1"),
    (["--rows", "9-3"], "--rows 9-3: range 9-3 runs backwards (write 3-9)"),
    (["--rows", "2,x"], "--rows 2,x: 'x' is not a row number or a range"),
    (["--rows", "18"], "--rows: row 18 is not in the fitted data (dropped by --missing drop: empty cell in "
                       "column 'site')"),
    (["--ids", "P99999"], "--ids: no row has id 'P99999' in column 'patient_id'"),
    (["--ids", _pid(4)], f"--ids: id '{_pid(4)}' (row 5) is not in the fitted data (dropped by --missing drop"),
    (["--rows", "1", "--ids", _pid(0)], "--rows and --ids: give one of them"),
    (["--samples", "0"], "--samples 0: must be at least 1"),
])
def test_a_bad_selection_is_one_line_naming_the_option(run, tmp_path, capsys, args, needle):
    out = tmp_path / "bad"
    code = main(["counterfactual", str(run), "--set", "age=70", *args, "--out", str(out)])
    line = _one_line_error(capsys)
    assert code == 2 and needle in line, line
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".npz", ""])
def test_convert_takes_the_role_flags_and_writes_what_a_fit_reads(messy, tmp_path, capsys, suffix):
    out = tmp_path / f"clean{suffix}"
    assert main(["convert", str(messy), "--out", str(out), *ROLES, "--image-size", "16"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0  # the standard layout: no role flags needed any more
    text = capsys.readouterr().out
    assert f"{N - len(DROPPED)} rows, images 3×16×16" in text and "row ids: column 'id' (not a variable)" in text
    names = [line.split("│")[1].strip() for line in text.splitlines() if line.count("│") >= 3]
    assert names == ["age", "site", "score"]
    from xcausal.data.dataset import load_dataset

    ds = load_dataset(out)
    kept = [i for i in range(N) if i + 1 not in DROPPED]
    assert list(ds.ids) == [_pid(i) for i in kept]
    assert main(["convert", str(messy), "--out", str(tmp_path / "x.npz"), "--image-column", "image_path"]) == 2
    assert "empty cell" in _one_line_error(capsys)
