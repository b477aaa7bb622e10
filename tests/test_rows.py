"""xcausal.rows: the one parser of --rows / --ids / --samples and the table-row numbering."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from xcausal.io import DataError
from xcausal.rows import file_label, parse_rows, row_label, select_rows


def test_numbers_and_inclusive_ranges_in_the_order_given():
    assert parse_rows("3,7,10-12") == [3, 7, 10, 11, 12]
    assert parse_rows(" 5 , 2-3, 5") == [5, 2, 3]  # blanks allowed, repeats removed
    assert parse_rows(4) == [4] and parse_rows([2, 9]) == [2, 9] and parse_rows(np.int64(3)) == [3]
    assert parse_rows("40", table_rows=40) == [40]


@pytest.mark.parametrize("text, needle", [
    ("", "--rows: give at least one row number"),
    ("3,,4", "--rows 3,,4: empty entry between commas"),
    ("x", "--rows x: 'x' is not a row number or a range such as 10-19"),
    ("-3", "'-3' is not a row number"),
    ("1-5-7", "'1-5-7' is not a row number"),
    ("2.5", "'2.5' is not a row number"),
    ("9-3", "--rows 9-3: range 9-3 runs backwards (write 3-9)"),
    ("0", "--rows 0: rows are numbered from 1"),
    ("0-4", "rows are numbered from 1"),
    ("41", "--rows 41: row 41 is out of range (the table has 40 row(s), numbered 1 to 40)"),
    ("30-45", "row 45 is out of range"),
    ("1-1000000", "row 1000000 is out of range"),
])
def test_a_bad_selection_is_one_line_naming_the_option(text, needle):
    with pytest.raises(DataError) as info:
        parse_rows(text, table_rows=40)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg, msg


def test_a_huge_range_is_refused_before_it_is_listed():
    with pytest.raises(DataError, match="longer than 100,000 rows"):
        parse_rows("1-999999999")


def _ds(ids=None):
    """10 table rows, rows 3 and 8 dropped: 8 kept rows numbered 1, 2, 4, 5, 6, 7, 9, 10."""
    numbers = np.array([1, 2, 4, 5, 6, 7, 9, 10])
    return SimpleNamespace(row_numbers=numbers, table_rows=10, ids=ids, id_column="pid",
                           dropped_rows={3: "empty cell in column 'age'", 8: "empty cell in column 'site'"},
                           dropped_ids={"c": 3} if ids is not None else {})


def test_select_rows_maps_table_row_numbers_to_positions():
    ds = _ds()
    assert select_rows(ds, rows="1,4-5,10") == [0, 2, 3, 7]
    assert select_rows(ds, samples=3) == [0, 4, 7]  # spread over the kept rows
    assert select_rows(ds, samples=50) == list(range(8))
    with pytest.raises(DataError, match=r"--rows: row 3 is not in the fitted data \(dropped by --missing drop: "
                                        r"empty cell in column 'age'\)"):
        select_rows(ds, rows="2-4")
    with pytest.raises(DataError, match="--rows 11: row 11 is out of range"):
        select_rows(ds, rows="11")
    with pytest.raises(DataError, match="--samples 0: must be at least 1"):
        select_rows(ds, samples=0)
    with pytest.raises(DataError, match="--ids: the data has no id column"):
        select_rows(ds, ids="a")


def test_select_rows_by_id():
    ds = _ds(ids=np.array(["a", "b", "d", "e", "f", "g", "i", "P 10"], dtype=object))
    assert select_rows(ds, ids="g,a") == [5, 0]
    assert select_rows(ds, ids=["P 10"]) == [7]
    with pytest.raises(DataError, match="--ids: no row has id 'zz' in column 'pid'"):
        select_rows(ds, ids="a,zz")
    with pytest.raises(DataError, match=r"--ids: id 'c' \(row 3\) is not in the fitted data"):
        select_rows(ds, ids="c")
    with pytest.raises(DataError, match="--rows and --ids: give one of them"):
        select_rows(ds, rows="1", ids="a")
    assert row_label(ds, 7) == "row 10 (P 10)" and file_label(ds, 7) == "row10_P_10"
    assert row_label(_ds(), 2) == "row 4" and file_label(_ds(), 2) == "row4"


def test_a_loaded_dataset_numbers_rows_as_table_csv_after_drop(tmp_path):
    from xcausal.data.dataset import load_dataset
    from xcausal.cli import main

    data = tmp_path / "d"
    assert main(["simulate", "--graph", "first", "--n", "30", "--seed", "0", "--out", str(data)]) == 0
    lines = (data / "table.csv").read_text().splitlines()
    lines[4] = lines[4].replace(",", ",,", 1).rsplit(",", 1)[0]  # data row 4: an empty cell
    (data / "table.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(data, missing="drop")
    assert len(ds) == 29 and 4 not in ds.row_numbers and list(ds.row_numbers[:4]) == [1, 2, 3, 5]
    assert ds.table_rows == 30 and "empty cell" in ds.dropped_rows[4]
    assert list(ds.subset([3, 0]).row_numbers) == [5, 1]
    with pytest.raises(DataError, match="table.csv row 4, column"):
        load_dataset(data)
