"""A researcher's own table.csv: one-level columns, mixed types, missing cells (one-line errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xcausal.data.dataset import load_dataset
from xcausal.io import DataError
from xcausal.types import VarType

N = 12


def _write(tmp_path: Path, csv_body: str) -> Path:
    """A dataset directory whose table.csv is ``image,`` + the given text (header line first)."""
    d = tmp_path / "mine"
    (d / "images").mkdir(parents=True)
    lines = csv_body.strip().splitlines()
    out = ["image," + lines[0]]
    for i, line in enumerate(lines[1:]):
        Image.new("L", (8, 8), 10 * i).save(d / "images" / f"{i}.png")
        out.append(f"images/{i}.png,{line}")
    (d / "table.csv").write_text("\n".join(out) + "\n")
    return d


def _rows(age=None, covid=None, site=None) -> str:
    age = age or [f"{30 + 3.5 * i:.1f}" for i in range(N)]
    covid = covid or ["yes", "no", "no"] * (N // 3)
    site = site or ["north", "south", "east", "north"] * (N // 4)
    return "age,covid,site\n" + "\n".join(f"{a},{c},{s}" for a, c, s in zip(age, covid, site))


def test_one_level_categorical_names_file_and_column(tmp_path):
    d = _write(tmp_path, _rows(site=["north"] * N))
    with pytest.raises(DataError) as exc:
        load_dataset(d)
    msg = str(exc.value)
    assert "\n" not in msg
    assert f"{d / 'table.csv'}, column 'site': constant column (every row is 'north')" in msg


def test_mixed_types(tmp_path):
    ds = load_dataset(_write(tmp_path, _rows()), image_size=8)
    assert [(v.name, v.type) for v in ds.variables] == [
        ("age", VarType.CONTINUOUS), ("covid", VarType.BINARY), ("site", VarType.CATEGORICAL)]
    age, covid, site = ds.variables
    np.testing.assert_allclose(ds.u[:3, 0], [30.0, 33.5, 37.0])
    assert covid.categories == ("no", "yes") and list(ds.u[:3, 1]) == [1.0, 0.0, 0.0]
    assert site.categories == ("east", "north", "south") and list(ds.u[:4, 2]) == [1.0, 2.0, 0.0, 1.0]
    assert list(site.decode(ds.u[:4, 2])) == ["north", "south", "east", "north"]
    assert ds.table["covid"].tolist()[:2] == ["yes", "no"]  # original labels kept


@pytest.mark.parametrize("blank, na_values", [("", ()), ("   ", ()), ("NA", ("NA",)), ("nan", ("nan", "-999")),
                                              ("-999", ("NA", "-999"))])
def test_missing_cells_name_row_column_and_count(tmp_path, blank, na_values):
    site = ["north", "south", "east", "north"] * (N // 4)
    site[2] = site[6] = blank
    d = _write(tmp_path, _rows(site=site))
    with pytest.raises(DataError) as exc:
        load_dataset(d, na_values=na_values)
    msg = str(exc.value)
    assert "\n" not in msg and "table.csv row 3, column 'site': empty cell (2 such row(s) in this column)" in msg


def test_missing_drop_removes_those_rows(tmp_path):
    age = [f"{30 + 3.5 * i:.1f}" for i in range(N)]
    site = ["north", "south", "east", "north"] * (N // 4)
    age[1] = ""
    site[6] = ""
    ds = load_dataset(_write(tmp_path, _rows(age=age, site=site)), image_size=8, missing="drop")
    assert len(ds) == N - 2
    kept = [i for i in range(N) if i not in (1, 6)]
    assert ds.table["image"].tolist() == [f"images/{i}.png" for i in kept]
    np.testing.assert_allclose(ds.u[:, 0], [30 + 3.5 * i for i in kept])
    np.testing.assert_allclose(ds.images([1])[0, 0], np.full((8, 8), 20 / 255), atol=1e-6)  # row 2 -> image 2


def test_missing_drop_below_the_minimum_is_an_error(tmp_path):
    age = [f"{30 + 3.5 * i:.1f}" for i in range(N)]
    age[0] = age[1] = age[2] = ""
    with pytest.raises(DataError, match=r"table\.csv: --missing drop leaves 9 of 12 row\(s\) \(at least 10 are "
                                        r"needed\); missing cells: 'age' in 3 row\(s\)$"):
        load_dataset(_write(tmp_path, _rows(age=age)), missing="drop")


def test_image_size_defaults_to_the_stored_size_capped_at_128(tmp_path):
    from PIL import Image

    from xcausal.data.dataset import MAX_AUTO_SIZE, load_dataset

    for side, want in ((48, 48), (200, MAX_AUTO_SIZE)):
        d = tmp_path / f"s{side}"
        (d / "images").mkdir(parents=True)
        rows = []
        for i in range(12):
            Image.fromarray(np.full((side, side), i * 10, np.uint8), mode="L").save(d / "images" / f"{i}.png")
            rows.append({"image": f"images/{i}.png", "x": float(i)})
        pd.DataFrame(rows).to_csv(d / "table.csv", index=False)
        ds = load_dataset(d, image_size=None)
        assert ds.image_size == want and ds.images([0]).shape == (1, 1, want, want)
        assert load_dataset(d, image_size=16).image_size == 16


# --------------------------------------------------------------------------- NA, None, null are values
@pytest.mark.parametrize("word", ["NA", "None", "null", "nan", "N/A", "NULL"])
def test_missing_value_words_are_categories(tmp_path, word):
    """pandas' default NA list turned these category values into empty cells (an error, or a
    dropped row with --missing drop)."""
    site = ["north", "south", word, "north"] * (N // 4)
    ds = load_dataset(_write(tmp_path, _rows(site=site)), image_size=8)
    site_var = ds.variables[2]
    assert site_var.type is VarType.CATEGORICAL and word in site_var.categories
    assert ds.table["site"].tolist()[:4] == ["north", "south", word, "north"]
    assert list(site_var.decode(ds.u[:4, 2])) == ["north", "south", word, "north"]
    ds = load_dataset(_write(tmp_path / "drop", _rows(site=site)), image_size=8, missing="drop")
    assert len(ds) == N


def test_binary_column_with_a_none_value(tmp_path):
    ds = load_dataset(_write(tmp_path, _rows(covid=["yes", "None", "None"] * (N // 3))), image_size=8)
    assert ds.variables[1].type is VarType.BINARY and ds.variables[1].categories == ("None", "yes")


def test_na_values_marks_missing_cells(tmp_path):
    age = [f"{30 + 3.5 * i:.1f}" for i in range(N)]
    age[1] = "-999"
    site = ["north", "south", "east", "north"] * (N // 4)
    site[6] = "NA"
    ds = load_dataset(_write(tmp_path, _rows(age=age, site=site)), image_size=8, missing="drop",
                      na_values=["-999", " NA "])
    assert len(ds) == N - 2 and "NA" not in ds.variables[2].categories
    assert ds.table["image"].tolist() == [f"images/{i}.png" for i in range(N) if i not in (1, 6)]


def test_numbers_with_a_missing_value_word_are_ambiguous(tmp_path):
    age = [f"{30 + 3.5 * i:.1f}" for i in range(N)]
    age[3] = age[5] = "NA"
    d = _write(tmp_path, _rows(age=age))
    with pytest.raises(DataError) as exc:
        load_dataset(d)
    msg = str(exc.value)
    assert "table.csv row 4, column 'age': numbers and 'NA' (2 such row(s)): pass --na-values NA" in msg
    assert "--categorical age" in msg
    with pytest.raises(DataError, match=r"'NA' is not a number \(column forced continuous; pass --na-values NA"):
        load_dataset(d, continuous=["age"])
    ds = load_dataset(d, categorical=["age"], image_size=8)
    assert ds.variables[0].type is VarType.CATEGORICAL and "NA" in ds.variables[0].categories
    ds = load_dataset(d, na_values=["NA"], missing="drop", image_size=8)
    assert len(ds) == N - 2 and ds.variables[0].type is VarType.CONTINUOUS


def test_npz_text_table_na_values(tmp_path):
    from xcausal.data.dataset import save_dataset_npz

    table = pd.DataFrame({"site": ["north", "south", "NA", "east"] * (N // 4), "x": np.arange(N, dtype=float)})
    p = tmp_path / "d.npz"
    save_dataset_npz(p, np.zeros((N, 1, 8, 8), np.uint8), table)
    assert "NA" in load_dataset(p).variables[0].categories
    with pytest.raises(DataError, match=r"row 3, column 'site': empty cell"):
        load_dataset(p, na_values=["NA"])


def test_na_values_must_be_a_list_of_texts(tmp_path):
    d = _write(tmp_path, _rows())
    with pytest.raises(DataError, match="--na-values"):
        load_dataset(d, na_values="NA")


@pytest.mark.parametrize("sep, what", [(";", "';'-separated"), ("\t", "tab-separated")])
def test_table_saved_with_another_separator_is_named(tmp_path, sep, what):
    """A ;- or tab-separated table.csv (a spreadsheet's export in many locales) is refused naming
    the separator, not with pandas' "Expected 1 fields in line 2, saw 3" (decimal commas) or a
    missing 'image' column (one column named "image;age;site")."""
    for name, decimal in (("comma", ","), ("point", ".")):
        d = _write(tmp_path / name, _rows())  # the images; table.csv is rewritten below
        rows = [sep.join(["image", "age", "site"])] + [
            sep.join([f"images/{i}.png", f"{30 + i}{decimal}5", ["north", "south", "east"][i % 3]]) for i in range(N)]
        (d / "table.csv").write_text("\n".join(rows) + "\n")
        with pytest.raises(DataError) as exc:
            load_dataset(d)
        assert str(exc.value) == f"{d / 'table.csv'}: looks {what}; save it comma-separated"


def test_comma_separated_table_with_semicolons_in_cells_is_read(tmp_path):
    site = ["a;b", "c;d", "e;f", "a;b"] * (N // 4)
    ds = load_dataset(_write(tmp_path, _rows(site=site)), image_size=8)
    assert ds.variables[2].categories == ("a;b", "c;d", "e;f")


def test_dropping_rows_of_an_empty_column_names_it(tmp_path):
    """--missing drop of a table with a column empty in every row named neither the column nor a
    way out ("0 row(s); at least 10 are needed")."""
    rows = _rows().splitlines()
    body = "\n".join([rows[0] + ",notes,comment"] + [r + ",," for r in rows[1:]])
    with pytest.raises(DataError) as exc:
        load_dataset(_write(tmp_path, body), missing="drop")
    assert str(exc.value).endswith(": columns 'notes', 'comment' are empty in every row, so --missing drop "
                                   "leaves 0 row(s) (at least 10 are needed); pass --ignore notes,comment")
    ds = load_dataset(_write(tmp_path / "ok", body), missing="drop", ignore=["notes", "comment"], image_size=8)
    assert len(ds) == N and ds.variable_names == ["age", "covid", "site"]
    age = [f"{i}" for i in range(N)]
    age[:5] = [""] * 5  # 5 of 12 rows missing: 7 left
    with pytest.raises(DataError, match=r"--missing drop leaves 7 of 12 row\(s\) \(at least 10 are needed\); "
                                        r"missing cells: 'age' in 5 row\(s\)$"):
        load_dataset(_write(tmp_path / "few", _rows(age=age)), missing="drop")
