"""The memory-mapped image cache (issue 8, item 2): values, reuse, invalidation, atomic builds,
cheap pickling, and use through a DataLoader with workers."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from xcausal.data import dataset as dataset_module
from xcausal.data.dataset import CACHE_DIR, ImageCache, build_image_cache, load_dataset, save_dataset_dir

N = 24
QUANTUM = 0.5 / 255  # cache = decoded value rounded to the nearest 1/255: error <= half a step


@pytest.fixture
def data_dir(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 1, 20, 20), dtype=np.uint8)
    table = pd.DataFrame({"a": rng.normal(size=N), "b": [0, 1] * (N // 2)})
    return save_dataset_dir(tmp_path / "d", images, table)


def _cache_files(d):
    return sorted(p.name for p in (d / CACHE_DIR).iterdir()) if (d / CACHE_DIR).exists() else []


def test_cached_images_equal_decoded_ones(data_dir):
    # 8-bit PNGs at their stored size: the cache is exact (k / 255 both ways)
    ds = load_dataset(data_dir, image_size=20)
    c = ds.cached()
    assert isinstance(c.image_cache, ImageCache) and ds.image_cache is None  # the input is not modified
    assert np.array_equal(c.images(), ds.images())
    assert c.images().dtype == np.float32
    for i in (0, 5, N - 1):
        assert np.array_equal(c.image(i), ds.image(i))
        x, u = c[i]
        assert x.dtype == torch.float32 and torch.equal(x, torch.from_numpy(ds.image(i)))
        assert torch.equal(u, ds[i][1])
    assert np.array_equal(c.images([3, 1, 3]), ds.images([3, 1, 3]))
    assert c.images([]).shape == (0, 1, 20, 20)
    assert _cache_files(data_dir) == ["images-20px-1ch.json", "images-20px-1ch.npy"]


@pytest.mark.parametrize("size, channels", [(13, 1), (32, 3)])
def test_resized_images_within_half_a_step(data_dir, size, channels):
    ds = load_dataset(data_dir, image_size=size, channels=channels)
    c = ds.cached()
    full = ds.images()
    err = np.abs(c.images() - full)
    assert err.max() <= QUANTUM + 1e-7
    assert c.images().shape == (N, channels, size, size)
    assert (data_dir / CACHE_DIR / f"images-{size}px-{channels}ch.npy").is_file()


def test_cache_is_reused_on_the_second_call(data_dir, monkeypatch):
    load_dataset(data_dir, image_size=20).cached()
    npy = data_dir / CACHE_DIR / "images-20px-1ch.npy"
    before = npy.stat().st_mtime_ns
    calls = []
    real = dataset_module._to_chw
    monkeypatch.setattr(dataset_module, "_to_chw", lambda *a: calls.append(1) or real(*a))
    c = load_dataset(data_dir, image_size=20).cached()
    assert calls == [] and npy.stat().st_mtime_ns == before  # nothing decoded, nothing written
    c.images()
    assert calls == []
    load_dataset(data_dir, image_size=20).cached(rebuild=True)
    assert len(calls) == N


def test_rebuilt_when_an_image_file_changes(data_dir):
    ds = load_dataset(data_dir, image_size=20)
    ds.cached()
    new = np.full((20, 20), 7, dtype=np.uint8)
    Image.fromarray(new, mode="L").save(data_dir / "images" / "000004.png")
    ds2 = load_dataset(data_dir, image_size=20)
    c2 = ds2.cached()
    assert np.array_equal(c2.image(4)[0], new / np.float32(255.0))
    assert np.array_equal(c2.images(), ds2.images())


def test_rebuilt_when_table_changes_and_after_a_corrupt_cache(data_dir):
    load_dataset(data_dir, image_size=20).cached()
    npy = data_dir / CACHE_DIR / "images-20px-1ch.npy"
    table = pd.read_csv(data_dir / "table.csv")
    table.iloc[::-1].to_csv(data_dir / "table.csv", index=False)  # rows reversed
    ds = load_dataset(data_dir, image_size=20)
    assert np.array_equal(ds.cached().images(), ds.images())
    with open(npy, "r+b") as fh:  # truncated (e.g. a disk-full copy)
        fh.truncate(npy.stat().st_size - 10)
    assert np.array_equal(ds.cached().images(), ds.images())


def test_interrupted_build_leaves_no_cache(data_dir, monkeypatch):
    ds = load_dataset(data_dir, image_size=20)
    real = dataset_module._to_chw
    calls = []

    def interrupt(*a):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(dataset_module, "_to_chw", interrupt)
    with pytest.raises(KeyboardInterrupt):
        build_image_cache(ds, chunk_size=4)
    assert _cache_files(data_dir) == []  # neither the array, nor its fingerprint, nor the temporary file
    monkeypatch.setattr(dataset_module, "_to_chw", real)
    assert np.array_equal(ds.cached().images(), ds.images())


def test_interrupted_rebuild_keeps_no_stale_fingerprint(data_dir, monkeypatch):
    ds = load_dataset(data_dir, image_size=20)
    ds.cached()
    Image.fromarray(np.zeros((20, 20), np.uint8), mode="L").save(data_dir / "images" / "000000.png")
    ds = load_dataset(data_dir, image_size=20)
    monkeypatch.setattr(dataset_module, "_to_chw", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        ds.cached()
    monkeypatch.undo()
    c = ds.cached()  # the old array is not reused for the changed image
    assert np.array_equal(c.images(), ds.images()) and c.image(0).max() == 0


def test_temporary_file_of_a_killed_build_is_removed(data_dir):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (data_dir / CACHE_DIR).mkdir()
    stale = data_dir / CACHE_DIR / f".images-20px-1ch.npy.tmp-{dead.pid}-abc"
    stale.write_bytes(b"x" * 100)
    mine = data_dir / CACHE_DIR / f".images-20px-1ch.npy.tmp-{os.getpid()}-keep"  # a live process's build
    mine.write_bytes(b"x")
    load_dataset(data_dir, image_size=20).cached()
    assert not stale.exists() and mine.exists()


def test_pickle_stores_the_path_not_the_pixels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 1, 64, 64), dtype=np.uint8)  # 98 kB of pixels
    d = save_dataset_dir(tmp_path / "d", images, pd.DataFrame({"a": rng.normal(size=N)}))
    ds = load_dataset(d, image_size=64)
    c = ds.cached()
    c.images()  # mapped in this process
    blob = pickle.dumps(c)
    assert len(blob) < len(pickle.dumps(ds)) + 2000 < images.nbytes / 4
    back = pickle.loads(blob)
    assert back.image_cache._mm is None and np.array_equal(back.images(), c.images())


def test_subset_and_pickled_subset_read_the_right_rows(data_dir):
    ds = load_dataset(data_dir, image_size=20)
    c = ds.cached()
    sub = c.subset([5, 2, 9]).subset([2, 0])
    assert np.array_equal(sub.images(), ds.images([9, 5]))
    assert np.array_equal(pickle.loads(pickle.dumps(sub)).images(), ds.images([9, 5]))


def test_dataloader_workers_read_the_cache(data_dir):
    ds = load_dataset(data_dir, image_size=20)
    c = ds.cached()
    loader = torch.utils.data.DataLoader(c, batch_size=5, shuffle=False, num_workers=2)
    x = torch.cat([xb for xb, _ in loader])
    assert torch.equal(x, torch.from_numpy(ds.images()))


def test_in_memory_dataset_is_returned_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    ds = dataset_module.dataset_from_arrays(rng.random((N, 1, 8, 8)), pd.DataFrame({"a": rng.normal(size=N)}))
    assert ds.cached() is ds


def test_explicit_path_and_bad_location(data_dir, tmp_path):
    ds = load_dataset(data_dir, image_size=20)
    c = ds.cached(tmp_path / "elsewhere" / "cache.npy")
    assert (tmp_path / "elsewhere" / "cache.json").is_file() and not (data_dir / CACHE_DIR).exists()
    assert np.array_equal(c.images(), ds.images())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(dataset_module.DataError, match="cannot write the image cache"):
        ds.cached(blocker / "cache.npy")


def test_image_paths_are_one_compact_array(tmp_path):
    # one bytes array, not a Path per row (forked DataLoader workers would copy those page by page)
    d = tmp_path / "d"
    (d / "imgs" / "sub").mkdir(parents=True)
    names = [f"imgs/sub/é{i}.png" if i % 2 else f"./imgs/{i}.png" for i in range(N)]
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        Image.fromarray(np.full((6, 6), i, np.uint8), mode="L").save(d / name)
    pd.DataFrame({"image": names, "a": rng.normal(size=N)}).to_csv(d / "table.csv", index=False)
    ds = load_dataset(d, image_size=6)
    paths = ds.image_paths
    assert isinstance(paths, dataset_module.ImagePaths) and paths.rel.dtype.kind == "S"
    assert paths[1] == d / "imgs" / "sub" / "é1.png" and paths[2] == d / "imgs" / "2.png"
    assert list(paths)[3] == paths[3] and len(paths) == N and list(paths[1:3]) == [paths[1], paths[2]]
    sub = ds.subset([3, 0])
    assert list(sub.image_paths) == [paths[3], paths[0]]
    assert sub.image(0)[0, 0, 0] == np.float32(3 / 255)
    back = pickle.loads(pickle.dumps(ds))
    assert list(back.image_paths) == list(paths) and np.array_equal(back.images(), ds.images())
    assert np.array_equal(ds.cached().images(), ds.images())
