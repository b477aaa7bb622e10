"""Column roles of a researcher's table: the image column, the id column, ignored columns, and
categoricals with too many levels (a patient_id is never a 1,178-level variable)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xcausal.data.dataset import MAX_CATEGORIES, dataset_from_arrays, load_dataset, save_dataset_npz
from xcausal.io import DataError
from xcausal.options import FIT_OPTIONS
from xcausal.types import VarType

N = 30


def _ids(n: int = N) -> list[str]:
    """Distinct patient ids, not in sorted order."""
    return [f"P{(7 * i + 3) % 101:04d}" for i in range(n)]


def _write(tmp_path: Path, columns: dict[str, list], image_column: str = "image_path") -> Path:
    d = tmp_path / "mine"
    (d / "images").mkdir(parents=True)
    n = len(next(iter(columns.values())))
    for i in range(n):
        Image.new("L", (8, 8), 5 * i).save(d / "images" / f"{i}.png")
    table = pd.DataFrame({image_column: [f"images/{i}.png" for i in range(n)], **columns})
    table.to_csv(d / "table.csv", index=False)
    return d


def _messy(n: int = N, **extra) -> dict[str, list]:
    return {"patient_id": _ids(n), "age": [20.0 + 1.5 * i for i in range(n)],
            "covid": ["yes", "no", "no"] * (n // 3), "notes": ["", "seen twice", "ok"] * (n // 3), **extra}


def test_defaults_match_the_fit_options():
    assert FIT_OPTIONS["max_categories"].default == MAX_CATEGORIES
    assert FIT_OPTIONS["image_column"].default == "image"
    assert FIT_OPTIONS["id_column"].default is None and FIT_OPTIONS["ignore"].default == []


def test_image_column_ignore_and_distinct_text_taken_as_id(tmp_path, caplog):
    d = _write(tmp_path, _messy())
    with caplog.at_level(logging.INFO, logger="xcausal.data.dataset"):
        ds = load_dataset(d, image_size=8, image_column="image_path", ignore=["notes"])
    assert [(v.name, v.type) for v in ds.variables] == [("age", VarType.CONTINUOUS), ("covid", VarType.BINARY)]
    assert ds.id_column == "patient_id" and list(ds.ids) == _ids()
    assert "notes" not in ds.table.columns  # ignored: its empty cells are not an error
    said = [r.getMessage() for r in caplog.records if "patient_id" in r.getMessage()]
    assert len(said) == 1 and "taken as the row id" in said[0]
    assert ds.subset([2, 0]).id_column == "patient_id" and list(ds.subset([2, 0]).ids) == [_ids()[2], _ids()[0]]


def test_named_id_column_is_not_a_variable(tmp_path):
    cols = _messy()
    cols["patient_id"] = [str(1000 + 7 * i) for i in range(N)]  # numbers: would be a continuous variable
    ds = load_dataset(_write(tmp_path, cols), image_size=8, image_column="image_path", id_column="patient_id",
                      ignore=["notes"])
    assert ds.variable_names == ["age", "covid"] and ds.id_column == "patient_id"
    cols["patient_id"] = [str(i % 3) for i in range(N)]  # a group, not a row id: refused
    with pytest.raises(DataError, match=r"column 'patient_id': id '0' is in row 1 and row 4; row ids must be distinct"):
        load_dataset(_write(tmp_path / "again", cols), image_size=8, image_column="image_path",
                     id_column="patient_id", ignore=["notes"])


def test_a_second_identifier_is_refused_naming_both_flags(tmp_path):
    d = _write(tmp_path, _messy(accession=[f"A{i}" for i in range(N)]))
    with pytest.raises(DataError) as exc:
        load_dataset(d, image_size=8, image_column="image_path", ignore=["notes"])
    msg = str(exc.value)
    assert "\n" not in msg
    assert (f"{d / 'table.csv'}, column 'accession': {N} distinct texts in {N} rows, an identifier and not a "
            f"variable; pass --id-column accession to use it as the row id, or --ignore accession") in msg
    ds = load_dataset(d, image_size=8, image_column="image_path", ignore=["notes", "accession"])
    assert ds.id_column == "patient_id" and ds.variable_names == ["age", "covid"]


def test_identifier_beside_a_named_id_column_is_refused(tmp_path):
    cols = _messy()
    cols["record"] = [f"r{1000 + i}" for i in range(N)]
    with pytest.raises(DataError, match="column 'patient_id': 30 distinct texts in 30 rows, an identifier and not "
                                        "a variable; pass --id-column patient_id .* or --ignore patient_id"):
        load_dataset(_write(tmp_path, cols), image_size=8, image_column="image_path", id_column="record",
                     ignore=["notes"])


def test_too_many_levels_is_refused_naming_the_count_and_flags(tmp_path):
    site = [f"site{i % 25}" for i in range(50)]  # 25 levels in 50 rows: not an identifier
    d = _write(tmp_path, {"site": site, "age": [float(i) for i in range(50)]}, image_column="image")
    with pytest.raises(DataError) as exc:
        load_dataset(d, image_size=8)
    msg = str(exc.value)
    assert "\n" not in msg
    assert (f"{d / 'table.csv'}, column 'site': categorical with 25 levels, more than --max-categories 20; "
            "pass --max-categories 25 to keep it, or --ignore site") in msg
    ds = load_dataset(d, image_size=8, max_categories=25)
    assert ds.variables[0].type is VarType.CATEGORICAL and ds.variables[0].n_categories == 25
    assert load_dataset(d, image_size=8, ignore=["site"]).variable_names == ["age"]


def test_forced_categorical_counts_levels_too(tmp_path):
    d = _write(tmp_path, {"grade": [str(i) for i in range(N)]}, image_column="image")
    assert load_dataset(d, image_size=8).variables[0].type is VarType.CONTINUOUS
    with pytest.raises(DataError, match=r"column 'grade': categorical with 30 levels, more than --max-categories 20"):
        load_dataset(d, image_size=8, categorical=["grade"])


@pytest.mark.parametrize("kw, match", [
    ({"image_column": "img"}, r"no 'img' column \(columns: image_path, patient_id, age, covid, notes; "
                              r"--image-column names the column of image paths\)"),
    ({"id_column": "pid"}, r"--id-column pid: no such column \(columns: image_path, patient_id"),
    ({"ignore": ["note"]}, r"--ignore note: no such column"),
    ({"ignore": ["image_path"]}, r"--ignore image_path: it is the image column"),
    ({"id_column": "patient_id", "ignore": ["patient_id"]}, r"--ignore patient_id: it is the id column"),
    ({"id_column": "image_path"}, r"--id-column image_path is also the image column"),
    ({"max_categories": 1}, r"--max-categories 1: must be an integer >= 2"),
])
def test_bad_roles_are_one_line_errors(tmp_path, kw, match):
    d = _write(tmp_path, _messy())
    kw = {"image_column": "image_path", **kw}
    with pytest.raises(DataError, match=match):
        load_dataset(d, image_size=8, **kw)


def test_npz_roles(tmp_path):
    table = pd.DataFrame({k: v for k, v in _messy().items() if k != "notes"})
    images = np.zeros((N, 1, 8, 8), np.uint8)
    path = save_dataset_npz(tmp_path / "d.npz", images, table)
    ds = load_dataset(path, image_size=8)
    assert ds.variable_names == ["age", "covid"] and ds.id_column == "patient_id" and list(ds.ids) == _ids()
    assert load_dataset(path, image_size=8, ignore=["patient_id"]).id_column is None
    save_dataset_npz(tmp_path / "i.npz", images, table.assign(id=[f"x{i}" for i in range(N)]))
    with pytest.raises(DataError, match="holds an 'ids' array and --id-column patient_id names another id"):
        load_dataset(tmp_path / "i.npz", image_size=8, id_column="patient_id")


def test_in_memory_tables_take_the_same_roles():
    table = pd.DataFrame({k: v for k, v in _messy().items() if k != "notes"})
    ds = dataset_from_arrays(np.zeros((N, 1, 8, 8), np.float32), table)
    assert ds.variable_names == ["age", "covid"] and ds.id_column == "patient_id"
