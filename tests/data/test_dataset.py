"""Dataset contract: loading, type detection, round trips, and every bad-input case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xcausal.data.dataset import (
    convert_dataset,
    infer_variables,
    load_dataset,
    save_dataset_dir,
    save_dataset_npz,
)
from xcausal.io import DataError
from xcausal.types import Edge, Graph, Node, VarType

N = 12


def _table(rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({
        "id": [f"p{i}" for i in range(N)],
        "age": rng.normal(50, 10, N).round(2),
        "covid": ["yes", "no"] * (N // 2),
        "site": ["a", "b", "c"] * (N // 3),
        "dose": [0, 1, 2, 3] * (N // 4),
    })


@pytest.fixture
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(N, 1, 8, 8), dtype=np.uint8)


@pytest.fixture
def data_dir(tmp_path, images):
    rng = np.random.default_rng(1)
    truth = Graph([Node("age", "observed"), Node("covid", "observed"), Node("site", "observed"),
                   Node("dose", "observed"), Node("z1", "latent"), Node("z2", "latent")],
                  [Edge("covid", "z1"), Edge("z2", "age")], method="truth")
    return save_dataset_dir(tmp_path / "d", images, _table(rng), truth=truth, latents=rng.normal(size=(N, 2)))


def test_type_detection(data_dir):
    ds = load_dataset(data_dir, image_size=8)
    types = {v.name: v.type for v in ds.variables}
    assert types == {"age": VarType.CONTINUOUS, "covid": VarType.BINARY, "site": VarType.CATEGORICAL,
                     "dose": VarType.CONTINUOUS}
    assert ds.variable_names == ["age", "covid", "site", "dose"]  # id and image are not variables
    covid = ds.u[:, 1]
    assert set(covid) == {0.0, 1.0}
    assert ds.variables[1].categories == ("no", "yes")
    assert list(ds.variables[1].decode(covid[:2])) == ["yes", "no"]
    assert ds.ids is not None and ds.ids[3] == "p3"


def test_overrides(data_dir):
    ds = load_dataset(data_dir, categorical=["dose"], image_size=8)
    dose = ds.variables[3]
    assert dose.type is VarType.CATEGORICAL and dose.categories == ("0", "1", "2", "3")
    with pytest.raises(DataError, match="column 'site'.*not a number"):
        load_dataset(data_dir, continuous=["site"])
    with pytest.raises(DataError, match="unknown column 'nope'"):
        load_dataset(data_dir, categorical=["nope"])


def test_numeric_binary_codes_are_sorted():
    t = pd.DataFrame({"b": [1.0, 0.0] * 6, "c": ["x", "y", "z"] * 4})
    vs = infer_variables(t)
    assert vs[0].type is VarType.BINARY and vs[0].categories == ("0", "1")
    assert list(vs[0].encode(t["b"], where="t")[:2]) == [1.0, 0.0]


def test_lazy_loading_and_resize(data_dir, images):
    ds = load_dataset(data_dir, image_size=8)
    assert ds.image_array is None  # nothing decoded up front
    x, u = ds[2]
    assert x.shape == (1, 8, 8) and x.dtype.name == "float32" if hasattr(x.dtype, "name") else True
    np.testing.assert_allclose(x.numpy()[0], images[2, 0] / 255.0, atol=1e-6)
    assert u.shape == (4,)
    big = load_dataset(data_dir, image_size=16, channels=3)
    assert big[0][0].shape == (3, 16, 16)
    assert float(big[0][0].min()) >= 0 and float(big[0][0].max()) <= 1


def test_dir_npz_dir_round_trip(tmp_path, data_dir):
    npz = convert_dataset(data_dir, tmp_path / "d.npz")
    back = convert_dataset(npz, tmp_path / "back")
    a, b, c = (load_dataset(p, image_size=8) for p in (data_dir, npz, back))
    for other in (b, c):
        np.testing.assert_array_equal(a.images(), other.images())
        np.testing.assert_array_equal(a.u, other.u)
        assert [v.to_dict() for v in a.variables] == [v.to_dict() for v in other.variables]
        assert other.truth is not None
        assert (other.truth.nodes, other.truth.edges) == (a.truth.nodes, a.truth.edges)
        np.testing.assert_array_equal(a.true_latents, other.true_latents)
        assert list(other.ids) == list(a.ids)


def test_numeric_npz_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    imgs = rng.random((N, 3, 6, 6)).astype(np.float32)
    tab = pd.DataFrame({"x": rng.normal(size=N), "b": [0, 1] * (N // 2)})
    p = save_dataset_npz(tmp_path / "n.npz", imgs, tab)
    ds = load_dataset(p, image_size=6)
    assert ds.channels == 3
    np.testing.assert_allclose(ds.images(), np.rint(imgs * 255) / 255, atol=1e-6)
    np.testing.assert_allclose(ds.u[:, 0], tab["x"].to_numpy())


# ---------------------------------------------------------------- bad input, one case each
def _write_dir(tmp_path, table: pd.DataFrame, sizes=None, modes=None) -> str:
    d = tmp_path / "bad"
    (d / "images").mkdir(parents=True)
    names = []
    for i in range(len(table)):
        mode = (modes or {}).get(i, "L")
        Image.new(mode, (8, 8)).save(d / "images" / f"{i}.png")
        names.append(f"images/{i}.png")
    t = table.copy()
    t.insert(0, "image", names)
    t.to_csv(d / "table.csv", index=False)
    return d


def _ok_table(n=N):
    return pd.DataFrame({"x": np.arange(n, dtype=float), "b": [0, 1] * (n // 2) + [0] * (n % 2)})


def test_missing_table(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"table\.csv: not found"):
        load_dataset(tmp_path / "empty")


def test_missing_image_column(tmp_path):
    d = _write_dir(tmp_path, _ok_table())
    t = pd.read_csv(d / "table.csv").rename(columns={"image": "img"})
    t.to_csv(d / "table.csv", index=False)
    with pytest.raises(DataError, match="no 'image' column"):
        load_dataset(d)


def test_missing_image_file(tmp_path):
    d = _write_dir(tmp_path, _ok_table())
    (d / "images" / "4.png").unlink()
    with pytest.raises(DataError, match=r"row 5, column 'image': file 'images/4.png' not found"):
        load_dataset(d)


def test_unreadable_image(tmp_path):
    d = _write_dir(tmp_path, _ok_table())
    (d / "images" / "3.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"3\.png: not a readable PNG, JPEG or TIFF image \(row 4\)"):
        load_dataset(d)


def test_image_size_default_is_the_stored_size_as_on_the_command_line(tmp_path):
    """load_dataset without image_size keeps the stored side (at most 64), like `xcausal fit`."""
    import inspect

    from xcausal.options import FIT_OPTIONS

    d = _write_dir(tmp_path, _ok_table())
    assert load_dataset(d).image_size == 8 and load_dataset(d).images([0]).shape == (1, 1, 8, 8)
    assert inspect.signature(load_dataset).parameters["image_size"].default is FIT_OPTIONS["image_size"].default


def test_mixed_grayscale_and_rgb_load_as_rgb(tmp_path):
    """A folder mixing grayscale and colour files is read as RGB by default (gray repeated in the
    three channels); --channels 1 still converts colour to grayscale."""
    d = _write_dir(tmp_path, _ok_table())
    Image.new("L", (8, 8), 100).save(d / "images" / "2.png")
    Image.new("RGB", (8, 8), (255, 0, 0)).save(d / "images" / "6.png")
    ds = load_dataset(d, image_size=8)
    assert ds.channels == 3 and ds.stored_channels == (1, 3) and ds.mixed_channels
    np.testing.assert_allclose(ds.image(2), np.full((3, 8, 8), 100 / 255), atol=1e-6)
    np.testing.assert_allclose(ds.image(6)[:, 0, 0], [1.0, 0.0, 0.0])
    s = ds.summary()
    assert s["channels"] == 3 and s["stored_channels"] == [1, 3]
    assert ds.subset([0, 6]).mixed_channels
    gray = load_dataset(d, image_size=8, channels=1)
    assert gray.channels == 1 and gray.image(6).shape == (1, 8, 8)
    np.testing.assert_allclose(gray.image(6)[0, 0, 0], 76 / 255)  # luma of pure red (PIL "L")
    single = load_dataset(_write_dir(tmp_path / "g", _ok_table()), image_size=8)
    assert single.channels == 1 and not single.mixed_channels and "stored_channels" not in single.summary()


@pytest.mark.parametrize("bad, match", [
    ("", r"row 3, column 'x': empty cell"),
    ("nan", r"row 3, column 'x': numbers and 'nan' \(1 such row\(s\)\): pass --na-values nan"),  # not missing by default
    ("inf", r"row 3, column 'x': invalid value 'inf'"),
])
def test_bad_cells(tmp_path, bad, match):
    t = _ok_table().astype({"x": object})
    t.loc[2, "x"] = bad
    d = _write_dir(tmp_path, t)
    with pytest.raises(DataError, match=match):
        load_dataset(d)


def test_missing_drop_policy(tmp_path):
    t = _ok_table(N + 2).astype({"x": object})
    t.loc[2, "x"] = ""
    d = _write_dir(tmp_path, t)
    ds = load_dataset(d, missing="drop")
    assert len(ds) == N + 1 and 2.0 not in ds.u[:, 0]


def test_constant_column(tmp_path):
    t = _ok_table()
    t["c"] = 7
    with pytest.raises(DataError, match="column 'c': constant column"):
        load_dataset(_write_dir(tmp_path, t))


def test_too_few_rows(tmp_path):
    with pytest.raises(DataError, match="9 row.*at least 10"):
        load_dataset(_write_dir(tmp_path, _ok_table(9)))


def test_path_escape_rejected(tmp_path):
    d = _write_dir(tmp_path, _ok_table())
    t = pd.read_csv(d / "table.csv")
    t.loc[1, "image"] = "../outside.png"
    t.to_csv(d / "table.csv", index=False)
    with pytest.raises(DataError, match="row 2, column 'image': path '../outside.png' must be relative"):
        load_dataset(d)


def test_npz_row_mismatch(tmp_path):
    p = tmp_path / "m.npz"
    np.savez(p, images=np.zeros((11, 4, 4), np.uint8), table=np.zeros((12, 1)), columns=np.array(["x"]))
    with pytest.raises(DataError, match="row-count mismatch: 'images' has 11 rows, 'table' has 12"):
        load_dataset(p)


def test_npz_missing_array(tmp_path):
    p = tmp_path / "m.npz"
    np.savez(p, images=np.zeros((12, 4, 4), np.uint8), table=np.zeros((12, 1)))
    with pytest.raises(DataError, match="missing array 'columns'"):
        load_dataset(p)


def test_npz_nan(tmp_path):
    p = tmp_path / "m.npz"
    tab = np.arange(12.0)[:, None]
    tab[5, 0] = np.nan
    np.savez(p, images=np.zeros((12, 4, 4), np.uint8), table=tab, columns=np.array(["x"]))
    with pytest.raises(DataError, match="row 6, column 'x': empty cell"):
        load_dataset(p)


def test_existing_output_not_overwritten(tmp_path, images):
    out = save_dataset_dir(tmp_path / "o", images, _ok_table())
    marker = out / "table.csv"
    before = marker.read_text()
    with pytest.raises(DataError, match="already exists"):
        save_dataset_dir(out, images, _ok_table())
    save_dataset_dir(out, images[::-1].copy(), _ok_table(), overwrite=True)
    assert marker.read_text() == before  # same table, new images; directory replaced whole


def test_failed_write_leaves_nothing(tmp_path, images):
    with pytest.raises(DataError, match="row-count mismatch"):
        save_dataset_dir(tmp_path / "x", images, _ok_table(N - 2))
    assert not (tmp_path / "x").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


# --------------------------------------------------------------------------- array headers vs memory
def _npy_header_only(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    """A .npy header declaring ``shape`` and no data."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _npz_with_header(path, key: str, shape: tuple[int, ...], descr: str = "|u1", n: int = 12):
    """A valid small .npz whose member ``key`` is replaced by a header-only .npy declaring ``shape``."""
    import io
    import zipfile

    arrays = {"images": np.zeros((n, 1, 4, 4), np.uint8), "table": np.arange(n, dtype=float)[:, None],
              "columns": np.array(["x"])}
    with zipfile.ZipFile(path, "w") as zf:
        for k, a in arrays.items():
            if k != key:
                buf = io.BytesIO()
                np.save(buf, a)
                zf.writestr(f"{k}.npy", buf.getvalue())
        zf.writestr(f"{key}.npy", _npy_header_only(shape, descr))
    return path


def test_npz_images_header_beyond_memory_is_refused_before_reading(tmp_path, monkeypatch):
    """A header declaring (60, 1, 30000, 30000) made np.load allocate 54 GB (MemoryError)."""
    p = _npz_with_header(tmp_path / "big.npz", "images", (60, 1, 30000, 30000))
    read = []
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: read.append(1) or pytest.fail("array read"))
    with pytest.raises(DataError) as exc:
        load_dataset(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: array 'images': array of shape (60, 1, 30000, 30000) and dtype uint8 needs "
                          "251.5 GiB to load, more than the ")
    assert "\n" not in msg and read == []


def test_npz_header_check_uses_the_memory_budget(tmp_path, monkeypatch):
    import xcausal.data.dataset as dataset_module

    p = tmp_path / "d.npz"
    np.savez(p, images=np.zeros((12, 1, 8, 8), np.uint8), table=np.arange(12.0)[:, None], columns=np.array(["x"]))
    monkeypatch.setattr(dataset_module, "memory_budget", lambda: 12 * 64 * 5)  # uint8 + float32 copy: exactly
    assert len(load_dataset(p, image_size=None)) == 12  # kept at 8×8: no resized copy
    monkeypatch.setattr(dataset_module, "memory_budget", lambda: 12 * 64 * 5 - 1)
    with pytest.raises(DataError, match=r"d\.npz: array 'images': array of shape \(12, 1, 8, 8\) and dtype uint8"):
        load_dataset(p, image_size=None)


@pytest.mark.parametrize("key, shape, descr", [("table", (10**7, 10**6), "<f8"), ("columns", (10**12,), "<U8"),
                                               ("latents", (12, 10**11), "<f4")])
def test_npz_other_member_headers_beyond_memory(tmp_path, key, shape, descr):
    p = _npz_with_header(tmp_path / "big.npz", key, shape, descr)
    with pytest.raises(DataError, match=rf"big\.npz: array '{key}': array of shape .* needs [\d,.]+ GiB to load"):
        load_dataset(p)


def test_npz_broken_header(tmp_path):
    import zipfile

    p = _npz_with_header(tmp_path / "d.npz", "images", (12, 1, 4, 4))
    with zipfile.ZipFile(p, "a") as zf:
        zf.writestr("ids.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'nope'")
    with pytest.raises(DataError, match=r"d\.npz: array 'ids': not a readable \.npy array"):
        load_dataset(p)


def test_modality_npy_header_beyond_memory(tmp_path):
    d = Path(_write_dir(tmp_path, _ok_table()))
    (d / "modalities").mkdir()
    (d / "modalities" / "curve.npy").write_bytes(_npy_header_only((12, 10**12), "<f8"))
    with pytest.raises(DataError, match=r"modalities/curve\.npy: array of shape \(12, 1000000000000\) and dtype "
                                        r"float64 needs [\d,.]+ GiB to load"):
        load_dataset(d)


def test_cli_npz_header_beyond_memory_is_one_line(tmp_path, capsys):
    from xcausal.cli import main

    p = _npz_with_header(tmp_path / "big.npz", "images", (60, 1, 30000, 30000))
    assert main(["info", str(p)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {p}: array 'images': array of shape (60, 1, 30000, 30000)")


def test_image_size_bounded_by_max_pixels_and_memory(tmp_path, monkeypatch):
    """--image-size 10**9 overflowed torch's size computation (internal error); 100000 asked torch
    for 2.4 TB; both are now refused before any work."""
    import xcausal.data.dataset as dataset_module

    p = tmp_path / "d.npz"
    np.savez(p, images=np.zeros((12, 1, 8, 8), np.uint8), table=np.arange(12.0)[:, None], columns=np.array(["x"]))
    for size in (8001, 10**9, 10**20):
        with pytest.raises(DataError, match=rf"--image-size {size}: at most 8000 \(images of at most 64,000,000 pixels\)"):
            load_dataset(p, image_size=size)
    monkeypatch.setattr(dataset_module, "memory_budget", lambda: 12 * 16 * 16 * 4)
    assert load_dataset(p, image_size=16).images([0]).shape == (1, 1, 16, 16)
    with pytest.raises(DataError, match=r"d\.npz: 'images' resized to 17×17: array of shape \(12, 1, 17, 17\)"):
        load_dataset(p, image_size=17)
