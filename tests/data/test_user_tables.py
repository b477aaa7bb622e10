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


@pytest.mark.parametrize("blank", ["", "NA", "nan"])
def test_missing_cells_name_row_column_and_count(tmp_path, blank):
    site = ["north", "south", "east", "north"] * (N // 4)
    site[2] = site[6] = blank
    d = _write(tmp_path, _rows(site=site))
    with pytest.raises(DataError) as exc:
        load_dataset(d)
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
    with pytest.raises(DataError, match=r"table\.csv: 9 row\(s\); at least 10 are needed"):
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
