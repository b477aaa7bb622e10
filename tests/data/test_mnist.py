"""Semi-synthetic MNIST (rotate / shift): shapes, determinism, digits, truth, dataset round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from xcausal.data import dataset_from_arrays, load_dataset, save_dataset_dir
from xcausal.data.mnist import (
    N_MNIST,
    load_mnist,
    rotation_of_angle,
    simulate_mnist,
    transform_images,
)
from xcausal.types import VarType

N = 200


@pytest.fixture(scope="module")
def rot():
    return simulate_mnist("rotate", N, seed=0)


@pytest.fixture(scope="module")
def sh():
    return simulate_mnist("shift", N, seed=0)


# ------------------------------------------------------------------ source digits
def test_load_mnist() -> None:
    x, y = load_mnist()
    assert x.shape == (N_MNIST, 28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.array_equal(np.bincount(y), [500] * 10)
    x[0] = 0.5  # a fresh array: the cached digits are untouched
    assert load_mnist()[0][0].min() == 0.0
    x16, _ = load_mnist(16)
    assert x16.shape == (N_MNIST, 16, 16) and 0.0 <= x16.min() and x16.max() <= 1.0


# ------------------------------------------------------------------ shapes, ranges, truth
@pytest.mark.parametrize("kind, var, lat", [("rotate", "angle", "rotation"), ("shift", "v", "shift")])
def test_shapes_ranges_truth(kind: str, var: str, lat: str, rot, sh) -> None:
    d = rot if kind == "rotate" else sh
    assert d.images.shape == (N, 1, 28, 28) and d.images.dtype == np.float32
    assert d.images.min() >= 0.0 and d.images.max() <= 1.0 and d.images.max() > 0.9
    assert list(d.table.columns) == [var, "digit"]
    assert d.table[var].dtype == np.float64
    lo, hi = (0.0, 10.0) if kind == "rotate" else (-5.0, 5.0)
    assert lo <= d.table[var].min() and d.table[var].max() <= hi
    assert set(d.table["digit"]) <= {f"d{c}" for c in range(10)}
    assert d.latents.shape == (N, 1) and d.latents.dtype == np.float64
    g = d.truth
    assert g.method == "truth"
    assert g.observed == [var, "digit"] and g.latent == [lat]
    assert [(e.source, e.target, e.weight) for e in g.edges] == [(var, lat, 1.0)]
    assert g.extra["kind"] == kind and isinstance(g.extra["f"], str)
    assert len(g.extra["base_indices"]) == 10
    json.dumps(d.info), json.dumps(g.to_dict())  # JSON-serialisable
    assert len(d.info["source_index"]) == N


def test_rotation_is_monotone_nonlinear_function_of_angle(rot) -> None:
    a, z = rot.table["angle"].to_numpy(), rot.latents[:, 0]
    resid = z - rotation_of_angle(a)
    assert abs(resid.std() - 2.0) < 0.3 and abs(resid.mean()) < 0.3  # default rotation_noise = 2 degrees
    exact = simulate_mnist("rotate", 200, seed=0, rotation_noise=0.0)  # the paper's noise-free version
    a0, z0 = exact.table["angle"].to_numpy(), exact.latents[:, 0]
    assert spearmanr(a0, z0).statistic == 1.0
    assert np.allclose(z0, rotation_of_angle(a0))
    with pytest.raises(ValueError, match="rotation_noise"):
        simulate_mnist("rotate", 20, seed=0, rotation_noise=-1.0)
    grid = np.linspace(0, 10, 101)
    f = rotation_of_angle(grid)
    assert np.all(np.diff(f) > 0)
    assert f[0] == pytest.approx(-f[-1]) and 25 < f[-1] < 35  # about +-30 degrees
    slope = np.diff(f) / np.diff(grid)
    assert slope.max() > 3 * slope.min()  # clearly non-linear


def test_shift_is_v_plus_two_unit_normals() -> None:
    d = simulate_mnist("shift", 2000, seed=1)
    resid = d.latents[:, 0] - d.table["v"].to_numpy()
    assert abs(resid.mean()) < 0.1
    assert resid.var() == pytest.approx(2.0, rel=0.1)


# ------------------------------------------------------------------ determinism
def test_deterministic_and_seed_dependent(rot) -> None:
    again = simulate_mnist("rotate", N, seed=0)
    assert np.array_equal(again.images, rot.images)
    assert again.table.equals(rot.table)
    assert np.array_equal(again.latents, rot.latents)
    assert again.info == rot.info
    other = simulate_mnist("rotate", N, seed=1)
    assert not np.array_equal(other.images, rot.images)
    assert not np.allclose(other.table["angle"], rot.table["angle"])
    assert other.truth.extra["base_indices"] != rot.truth.extra["base_indices"]


def test_rows_do_not_depend_on_n(sh) -> None:
    small = simulate_mnist("shift", 20, seed=0)
    assert np.array_equal(small.images, sh.images[:20])
    assert small.table.equals(sh.table.iloc[:20])
    assert small.truth.extra["base_indices"] == sh.truth.extra["base_indices"]


# ------------------------------------------------------------------ digits
def test_ten_base_images_one_per_class(rot) -> None:
    _, labels = load_mnist()
    base = rot.truth.extra["base_indices"]
    assert len(set(base)) == 10
    assert sorted(labels[base]) == list(range(10))
    src = np.asarray(rot.info["source_index"])
    assert set(src) <= set(base) and len(set(src)) == 10  # 200 draws hit all ten
    assert np.array_equal(rot.table["digit"], [f"d{c}" for c in labels[src]])


def test_digits_k_and_all() -> None:
    _, labels = load_mnist()
    d = simulate_mnist("rotate", 50, seed=2, digits=20)
    base = d.truth.extra["base_indices"]
    assert len(set(base)) == 20 and np.array_equal(np.bincount(labels[base]), [2] * 10)
    d = simulate_mnist("rotate", 100, seed=2, digits="all")
    assert d.truth.extra["base_indices"] == "all"
    assert len(set(d.info["source_index"])) > 90


def test_image_size_and_shift_scale() -> None:
    d = simulate_mnist("shift", 30, seed=4, image_size=32)
    ref = simulate_mnist("shift", 30, seed=4)
    assert d.images.shape == (30, 1, 32, 32)
    assert 0.0 <= d.images.min() and d.images.max() <= 1.0
    assert np.allclose(d.latents, ref.latents * 32 / 28)  # shift in output pixels


def test_transform_sign_conventions() -> None:
    img = np.zeros((9, 9))
    img[4, 8] = 1.0  # right of the centre
    up = transform_images("rotate", img, 90.0)[0, 0]  # counter-clockwise as displayed
    assert np.unravel_index(np.argmax(up), up.shape) == (0, 4)
    down = transform_images("shift", img, 3.0)[0, 0]  # positive = down
    assert np.unravel_index(np.argmax(down), down.shape) == (7, 8)


@pytest.mark.parametrize("kwargs", [
    {"kind": "flip"}, {"n": 5}, {"seed": -1}, {"digits": 1}, {"digits": 5001}, {"digits": "some"},
    {"image_size": 4},
])
def test_bad_input(kwargs: dict) -> None:
    args = {"kind": "rotate", "n": 20, "seed": 0} | kwargs
    with pytest.raises(ValueError):
        simulate_mnist(args.pop("kind"), args.pop("n"), **args)


# ------------------------------------------------------------------ dataset contract
def test_variable_types_detected(rot) -> None:
    ds = dataset_from_arrays(rot.images, rot.table, truth=rot.truth, latents=rot.latents)
    types = {v.name: v.type for v in ds.variables}
    assert types == {"angle": VarType.CONTINUOUS, "digit": VarType.CATEGORICAL}
    assert ds.variables[1].categories == tuple(f"d{c}" for c in range(10))
    assert ds.true_latents.shape == (N, 1)


def test_save_load_round_trip(sh, tmp_path) -> None:
    out = tmp_path / "mnist_shift"
    # what `xcausal simulate` writes: save_dataset_dir with simulation.json beside truth.json
    save_dataset_dir(out, sh.images, sh.table, truth=sh.truth, latents=sh.latents,
                     extra_files={"simulation.json": sh.info})
    ds = load_dataset(out, image_size=28)
    assert len(ds) == N
    assert {v.name: v.type for v in ds.variables} == {"v": VarType.CONTINUOUS,
                                                      "digit": VarType.CATEGORICAL}
    assert np.allclose(ds.u[:, 0], sh.table["v"])
    assert ds.truth.observed == ["v", "digit"] and ds.truth.latent == ["shift"]
    assert [(e.source, e.target) for e in ds.truth.edges] == [("v", "shift")]
    assert ds.truth.extra["base_indices"] == sh.truth.extra["base_indices"]
    assert np.array_equal(ds.true_latents, sh.latents)
    assert np.abs(ds.images(range(5)) - sh.images[:5]).max() <= 0.5 / 255 + 1e-6
    assert json.loads((out / "simulation.json").read_text())["source_index"] == sh.info["source_index"]
