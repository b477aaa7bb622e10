"""Multimodal datasets: ``modalities/<name>.npy`` and ``modality_<name>``, validation, alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xcausal.data.dataset import (
    convert_dataset,
    dataset_from_arrays,
    load_dataset,
    save_dataset_dir,
    save_dataset_npz,
)
from xcausal.io import DataError

N = 12


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(N, 3, 8, 8), dtype=np.uint8)


@pytest.fixture
def curve() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(N, 7))


def _table() -> pd.DataFrame:
    return pd.DataFrame({"id": [f"p{i}" for i in range(N)], "x": np.arange(N, dtype=float)})


def _only_table_dir(tmp_path, images):
    """A valid dataset directory with no modalities yet."""
    return save_dataset_dir(tmp_path / "d", images, _table())


def test_dir_round_trip(tmp_path, images, curve):
    d = save_dataset_dir(tmp_path / "d", images, _table(), modalities={"curve": curve, "spec-2": curve[:, :3] * 2})
    assert (d / "modalities" / "curve.npy").is_file()
    ds = load_dataset(d, image_size=8)
    assert set(ds.modalities) == {"curve", "spec-2"}
    assert ds.modalities["curve"].dtype == np.float32 and ds.modalities["curve"].shape == (N, 7)
    np.testing.assert_allclose(ds.modalities["curve"], curve, rtol=1e-6)
    assert ds.summary()["modalities"] == {"curve": 7, "spec-2": 3}
    sub = ds.subset([3, 1])
    np.testing.assert_array_equal(sub.modalities["curve"], ds.modalities["curve"][[3, 1]])


def test_npz_round_trip_and_conversion(tmp_path, images, curve):
    z = save_dataset_npz(tmp_path / "d.npz", images, _table(), modalities={"curve": curve})
    with np.load(z, allow_pickle=False) as f:
        assert "modality_curve" in f.files
    ds = load_dataset(z, image_size=8)
    np.testing.assert_allclose(ds.modalities["curve"], curve, rtol=1e-6)
    back = load_dataset(convert_dataset(z, tmp_path / "d2"), image_size=8)
    np.testing.assert_array_equal(back.modalities["curve"], ds.modalities["curve"])
    again = load_dataset(convert_dataset(tmp_path / "d2", tmp_path / "d3.npz"), image_size=8)
    np.testing.assert_array_equal(again.modalities["curve"], ds.modalities["curve"])


def test_no_modalities_is_an_empty_dict(tmp_path, images):
    ds = load_dataset(_only_table_dir(tmp_path, images), image_size=8)
    assert ds.modalities == {} and ds.summary()["modalities"] == {}


def test_dataset_from_arrays_validates_modalities(images, curve):
    ds = dataset_from_arrays(images, _table(), modalities={"curve": curve})
    assert ds.modalities["curve"].shape == (N, 7)
    with pytest.raises(DataError, match="modality 'curve'.*11 row"):
        dataset_from_arrays(images, _table(), modalities={"curve": curve[:11]})


@pytest.mark.parametrize("name, arr, match", [
    ("curve", np.zeros((N - 1, 5)), r"curve\.npy: 11 row\(s\) but the table has 12"),
    ("curve", np.zeros(N), r"curve\.npy: expected a 2-D array"),
    ("curve", np.zeros((N, 1)), r"curve\.npy: length 1 per row"),
    ("curve", np.array([["a", "b"]] * N), r"curve\.npy: dtype <U1 is not numeric"),
    ("bad name", np.zeros((N, 5)), r"bad name\.npy: modality name 'bad name' must match"),
])
def test_dir_validation_errors(tmp_path, images, name, arr, match):
    d = _only_table_dir(tmp_path, images)
    (d / "modalities").mkdir()
    np.save(d / "modalities" / f"{name}.npy", arr)
    with pytest.raises(DataError, match=match):
        load_dataset(d, image_size=8)


def test_dir_nan_names_file_and_row(tmp_path, images, curve):
    d = _only_table_dir(tmp_path, images)
    (d / "modalities").mkdir()
    curve[4, 2] = np.nan
    curve[9, 0] = np.inf
    np.save(d / "modalities" / "curve.npy", curve)
    with pytest.raises(DataError, match=r"modalities/curve\.npy row 5: NaN, inf.*2 such row"):
        load_dataset(d, image_size=8)


def test_dir_unreadable_and_stray_files(tmp_path, images):
    d = _only_table_dir(tmp_path, images)
    (d / "modalities").mkdir()
    (d / "modalities" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"notes\.txt: modalities/ may hold only <name>\.npy"):
        load_dataset(d, image_size=8)
    (d / "modalities" / "notes.txt").unlink()
    np.save(d / "modalities" / "obj.npy", np.array([{"a": 1}] * N, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy: not a readable \.npy file"):
        load_dataset(d, image_size=8)


@pytest.mark.parametrize("key, arr, match", [
    ("modality_curve", np.zeros((N + 1, 5)), r"d\.npz: array 'modality_curve': 13 row"),
    ("modality_curve", np.zeros((N, 2, 2)), r"d\.npz: array 'modality_curve': expected a 2-D array"),
    ("modality_curve", np.full((N, 3), np.nan), r"d\.npz: array 'modality_curve' row 1: NaN"),
    ("modality_curve", np.zeros((N, 3), dtype=bool), r"d\.npz: array 'modality_curve': dtype bool"),
    ("modality_a.b", np.zeros((N, 3)), r"d\.npz: array 'modality_a\.b': modality name 'a\.b' must match"),
])
def test_npz_validation_errors(tmp_path, images, key, arr, match):
    z = save_dataset_npz(tmp_path / "ok.npz", images, _table())
    with np.load(z, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays[key] = arr
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=match):
        load_dataset(tmp_path / "d.npz", image_size=8)


def test_writers_refuse_bad_modalities(tmp_path, images, curve):
    with pytest.raises(DataError, match="modality 'c c'.*must match"):
        save_dataset_dir(tmp_path / "d", images, _table(), modalities={"c c": curve})
    assert not (tmp_path / "d").exists()
    with pytest.raises(DataError, match="modality 'curve'.*NaN"):
        save_dataset_npz(tmp_path / "d.npz", images, _table(), modalities={"curve": np.full((N, 3), np.nan)})
    assert not (tmp_path / "d.npz").exists()


def _with_blank_rows(tmp_path, images, curve, truth_latents: bool):
    from xcausal.types import Edge, Graph, Node

    tab = _table()
    tab["x"] = tab["x"].astype(object)
    tab.loc[[2, 7], "x"] = ""
    truth = Graph([Node("x", "observed"), Node("z", "latent")], [Edge("x", "z")], method="truth")
    lat = np.arange(N, dtype=float)[:, None] * 10
    d = save_dataset_dir(tmp_path / "d", images, tab, modalities={"curve": curve},
                         truth=truth if truth_latents else None, latents=lat if truth_latents else None)
    return d


def test_missing_drop_keeps_rows_aligned_dir(tmp_path, images, curve):
    d = _with_blank_rows(tmp_path, images, curve, truth_latents=True)
    with pytest.raises(DataError, match="row 3, column 'x': empty cell"):
        load_dataset(d, image_size=8)
    ds = load_dataset(d, image_size=8, missing="drop")
    kept = [i for i in range(N) if i not in (2, 7)]
    assert len(ds) == N - 2
    assert list(ds.ids) == [f"p{i}" for i in kept]
    np.testing.assert_allclose(ds.modalities["curve"], curve[kept], rtol=1e-6)
    np.testing.assert_array_equal(ds.true_latents[:, 0], np.asarray(kept, dtype=float) * 10)


def test_missing_drop_keeps_rows_aligned_npz(tmp_path, images, curve):
    tab = _table()
    tab.loc[[0, 5], "x"] = np.nan
    arrays = {"images": images, "table": tab[["x"]].to_numpy(), "columns": np.array(["x"]),
              "ids": tab["id"].to_numpy().astype(str), "modality_curve": curve}
    np.savez(tmp_path / "d.npz", **arrays)
    ds = load_dataset(tmp_path / "d.npz", image_size=8, missing="drop")
    kept = [i for i in range(N) if i not in (0, 5)]
    np.testing.assert_allclose(ds.modalities["curve"], curve[kept], rtol=1e-6)
    assert list(ds.ids) == [f"p{i}" for i in kept]


@pytest.mark.parametrize("with_id", [True, False])
def test_table_without_variables_loads(tmp_path, images, curve, with_id):
    tab = pd.DataFrame({"id": [f"p{i}" for i in range(N)]}) if with_id else pd.DataFrame(index=range(N))
    d = save_dataset_dir(tmp_path / "d", images, tab, modalities={"curve": curve})
    for src in (d, convert_dataset(d, tmp_path / "d.npz")):
        ds = load_dataset(src, image_size=8)
        assert ds.variables == [] and ds.u.shape == (N, 0)
        assert len(ds) == N and ds.summary()["variables"] == {}
        image, u = ds[3]
        assert tuple(image.shape) == (3, 8, 8) and tuple(u.shape) == (0,)
        assert (ds.ids is not None) == with_id
        assert ds.modalities["curve"].shape == (N, 7)
