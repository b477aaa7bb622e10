"""Property tests (hypothesis) of the dataset loaders on random, mostly broken, input.

The property, for a dataset directory or an ``.npz`` built from random parts: ``load_dataset``
either returns a consistent dataset (as many rows in ``u`` as in the table, finite codes, the
first images decodable to ``(C, S, S)`` in [0, 1]) or raises :class:`xcausal.io.DataError` with a
one-line message. Any other exception is a loader bug. Bugs found this way are kept as plain
regression tests at the end of the file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from xcausal.data.dataset import load_dataset
from xcausal.io import DataError

EXAMPLES = int(os.environ.get("XCAUSAL_FUZZ_EXAMPLES", "40"))  # raise it for a longer hunt
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SIZE = 8  # image side the loaders resize to: small keeps each example fast
N_DECODE = 3  # images decoded per successful load


# --------------------------------------------------------------------------- checks
def _check_one_line(exc: DataError) -> None:
    msg = str(exc)
    assert msg.strip(), "empty DataError message"
    assert len(msg.splitlines()) == 1, f"multi-line DataError: {msg!r}"


def _check_loaded(ds) -> None:
    n = len(ds)
    assert n == ds.u.shape[0] == len(ds.table) >= 10
    assert ds.u.ndim == 2 and ds.u.shape[1] == len(ds.variables)
    assert np.isfinite(ds.u).all()
    for arr in ds.modalities.values():
        assert arr.shape[0] == n and np.isfinite(arr).all()
    if ds.true_latents is not None:
        assert ds.true_latents.shape[0] == n
    for i in range(min(N_DECODE, n)):
        try:
            img = ds.image(i)
        except DataError as exc:  # images decode lazily: a truncated file fails here, cleanly
            _check_one_line(exc)
            continue
        assert img.shape == (ds.channels, ds.image_size, ds.image_size) and img.dtype == np.float32
        assert np.isfinite(img).all() and img.min() >= 0.0 and img.max() <= 1.0


def _load_or_data_error(path: Path, **kw) -> None:
    try:
        ds = load_dataset(path, **kw)
    except DataError as exc:
        _check_one_line(exc)
        event(re.sub(r"'[^']*'|\d+|/\S*", "_", str(exc))[:60])  # --hypothesis-show-statistics
        return
    event("loaded")
    _check_loaded(ds)


# --------------------------------------------------------------------------- image files
def _png_bytes(mode: str, w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if mode in ("I;16",):
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    elif mode == "1":
        img = Image.fromarray(rng.integers(0, 2, (h, w), dtype=np.uint8) * 255).convert("1")
    elif mode == "P":
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert("P")
    else:
        bands = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
        arr = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
        img = Image.merge(mode, [Image.fromarray(arr[..., b]) for b in range(bands)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes(w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG signature + IHDR claiming ``w`` × ``h`` (e.g. a decompression bomb), no pixel data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + end


image_file = st.one_of(
    st.builds(_png_bytes, st.sampled_from(["L", "LA", "RGB", "RGBA", "P", "I;16", "1"]),
              st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**16)),
    st.builds(_jpeg_bytes, st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**16)),
    st.binary(max_size=64),  # random bytes
    st.builds(lambda b, k: b[: max(1, len(b) - k)],  # a truncated valid PNG
              st.builds(_png_bytes, st.just("RGB"), st.integers(4, 12), st.integers(4, 12), st.integers(0, 99)),
              st.integers(1, 60)),
    st.builds(lambda b, pos, byte: b[:pos] + bytes([byte]) + b[pos + 1:],  # one corrupted byte
              st.builds(_png_bytes, st.just("L"), st.integers(4, 12), st.integers(4, 12), st.integers(0, 99)),
              st.integers(0, 80), st.integers(0, 255)),
    st.builds(_png_header_only, st.sampled_from([0, 1, 70_000, 2**31 - 1]), st.sampled_from([0, 1, 70_000])),
)


# --------------------------------------------------------------------------- table cells
weird_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**20, 10**20).map(str),
    st.sampled_from(["", " ", "NaN", "nan", "NA", "inf", "-inf", "Infinity", "1e400", "-0", "0x10", "1,5",
                     '"', '""', "'", "a\"b", "\n", "é", "日本", "🙂", "None", "null", "TRUE", "yes"]),
    weird_text,
    st.text(alphabet="ab", min_size=300, max_size=2000),  # very long strings
)
column_name = st.one_of(st.sampled_from(["image", "id", "x", "y", " image", "image ", "", "x"]), weird_text)


def _column_values(kind: str, n: int) -> st.SearchStrategy[list[str]]:
    """Cells of one column: clean ones of a type, or anything at all ("chaos")."""
    if kind == "continuous":
        return st.lists(st.floats(-1e6, 1e6, allow_nan=False).map(repr), min_size=n, max_size=n)
    if kind == "binary":
        return st.lists(st.sampled_from(["0", "1"]), min_size=n, max_size=n)
    if kind == "text":
        return st.lists(st.sampled_from(["a", "b", "c", "é", "日本", "a,b", 'say "hi"']), min_size=n, max_size=n)
    return st.lists(cell, min_size=n, max_size=n)


bad_image_cell = st.one_of(
    st.sampled_from(["../outside.png", "/etc/passwd", "images", "images/", "./images/0.png", "images/../images/0.png",
                     "images/missing.png", "link.png", "loop.png", "dirlink/0.png", "", "a" * 300,
                     "a/" * 200 + "b.png", "images\\0.png", "~/x.png"]),
    weird_text)
DEFECTS = ["rename_column", "chaos_column", "bad_image_cell", "bad_cell", "no_image_column", "duplicate_column",
           "broken_file", "unquoted_csv", "junk_bytes", "ragged_row", "random_truth", "random_latents",
           "random_modality"]


@st.composite
def dataset_dirs(draw) -> dict:
    """A random dataset directory (a spec for :func:`_write_spec`): a valid one with 0-3 defects.

    Starting from a valid directory keeps the success path exercised (a fully random one almost
    never loads); each defect breaks one part of it in a random way.
    """
    n = draw(st.one_of(st.integers(10, 14), st.integers(0, 12)))
    mode = draw(st.sampled_from(["L", "LA", "RGB", "RGBA", "P", "I;16", "1"]))
    files = [_png_bytes(mode, draw(st.integers(1, 12)), draw(st.integers(1, 12)), k)
             for k in range(draw(st.integers(1, 4)))]
    names = draw(st.lists(st.sampled_from(["x", "y", "site", "dose", "id"]), unique=True, max_size=3))
    kinds = [draw(st.sampled_from(["continuous", "binary", "text"])) for _ in names]
    defects = draw(st.lists(st.sampled_from(DEFECTS), max_size=3))
    columns = ["image", *names]
    cells = [draw(st.lists(st.integers(0, len(files) - 1).map(lambda k: f"images/{k}.png"), min_size=n, max_size=n))]
    cells += [draw(_column_values(k, n)) for k in kinds]
    for d in defects:
        j = draw(st.integers(0, len(columns) - 1))
        if d == "rename_column":
            columns[j] = draw(column_name)
        elif d == "chaos_column":
            columns.append(draw(column_name))
            cells.append(draw(_column_values("chaos", n)))
        elif d == "bad_image_cell" and n:
            cells[0][draw(st.integers(0, n - 1))] = draw(bad_image_cell)
        elif d == "bad_cell" and n and len(columns) > 1:
            cells[max(j, 1)][draw(st.integers(0, n - 1))] = draw(cell)
        elif d == "no_image_column":
            del columns[0], cells[0]
            if not columns:
                columns, cells = ["x"], [["1"] * n]
        elif d == "duplicate_column":
            columns.append(columns[j])
            cells.append(list(cells[j]))
        elif d == "broken_file":
            files[draw(st.integers(0, len(files) - 1))] = draw(image_file)
    rows = [[c[i] for c in cells] for i in range(n)]
    if "ragged_row" in defects and rows:
        rows[draw(st.integers(0, len(rows) - 1))].extend(draw(st.lists(cell, min_size=1, max_size=2)))
    raw = "joined" if "unquoted_csv" in defects else "bytes" if "junk_bytes" in defects else "csv"
    junk = draw(st.binary(min_size=1, max_size=40)) if raw == "bytes" else b""
    observed = [c for c in columns if c not in ("image", "id")]
    truth = latents = None
    mods = {}
    if draw(st.booleans()):  # a valid truth.json with latents
        k = draw(st.integers(0, 3))
        lat = [f"z{i + 1}" for i in range(k)]
        nodes = [{"name": c, "kind": "observed"} for c in dict.fromkeys(observed)] + \
                [{"name": z, "kind": "latent"} for z in lat]
        pairs = [(a["name"], b["name"]) for a in nodes for b in nodes if a["name"] != b["name"]]
        edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=3)) if pairs else []
        truth = {"nodes": nodes, "edges": [{"source": a, "target": b} for a, b in edges], "latents": "latents.npy"}
        latents = np.random.default_rng(k).normal(size=(n, k))
    if draw(st.booleans()):
        mods["curve"] = np.random.default_rng(n).normal(size=(n, draw(st.integers(2, 6))))
    if "random_truth" in defects:
        truth = draw(truth_json())
    if "random_latents" in defects:
        latents = draw(npy_arrays())
    if "random_modality" in defects:
        mods[draw(st.sampled_from(["curve", "bad name", "x", ".hidden", "y.txt"]))] = draw(npy_arrays())
    return {"columns": columns, "rows": rows, "files": files, "raw": raw, "junk": junk, "truth": truth,
            "latents": latents, "modalities": mods, "defects": defects}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False) | weird_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(weird_text, inner, max_size=3), max_leaves=8)
node_names = st.sampled_from(["x", "y", "z1", "z2", "image", "q"])


@st.composite
def truth_json(draw):
    """Random truth.json content: graph-shaped dicts with random defects, or any JSON at all."""
    if draw(st.integers(0, 3)) == 0:
        return draw(json_values)
    nodes = draw(st.lists(st.one_of(
        st.fixed_dictionaries({"name": node_names, "kind": st.sampled_from(["observed", "latent", "other"])}),
        st.fixed_dictionaries({"name": node_names}), json_values), max_size=4))
    edges = draw(st.lists(st.one_of(
        st.fixed_dictionaries({"source": node_names, "target": node_names},
                              optional={"weight": json_values, "support": json_values}),
        json_values), max_size=4))
    d = {"nodes": nodes, "edges": edges}
    if draw(st.booleans()):
        d["latents"] = draw(st.sampled_from(["latents.npy", "../latents.npy", "/etc/passwd", "missing.npy", 3,
                                             "modalities", ""]))
    for key in draw(st.sets(st.sampled_from(["nodes", "edges"]), max_size=1)):
        del d[key]
    return d


def _array(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    if dtype == "object":
        return np.array([{"a": 1}] * size + [None], dtype=object)[:size].reshape(shape)
    if dtype in ("U8", "S8"):
        vals = ["a", "b", "", "nan", "1.5"] + (["é"] if dtype == "U8" else [])
        return rng.choice(np.array(vals, dtype=dtype), size=size).reshape(shape)
    if dtype == "bool":
        return rng.integers(0, 2, size).astype(bool).reshape(shape)
    if dtype == "complex128":
        return (rng.normal(size=size) + 1j).reshape(shape)
    if dtype in ("float32", "float64", "float16"):
        vals = rng.choice(np.array([0.0, 0.5, 1.0, -1.0, 2.0, np.nan, np.inf, 1e39]), size=size)
        with np.errstate(over="ignore"):
            return vals.astype(dtype).reshape(shape)
    return rng.integers(0, 256, size).astype(dtype).reshape(shape)


dtypes = st.sampled_from(["uint8", "uint16", "int64", "float16", "float32", "float64", "bool", "complex128", "U8",
                          "S8", "object"])
shapes = st.lists(st.integers(0, 12), max_size=4).map(tuple)


def npy_arrays() -> st.SearchStrategy[np.ndarray]:
    return st.one_of(
        st.builds(_array, dtypes, shapes, st.integers(0, 99)),
        st.builds(_array, st.sampled_from(["float32", "float64", "int64"]), st.tuples(st.integers(8, 14), st.integers(0, 4)),
                  st.integers(0, 99)))


def _write_spec(root: Path, spec: dict) -> None:
    (root / "images").mkdir(parents=True)
    for k, b in enumerate(spec["files"]):
        (root / "images" / f"{k}.png").write_bytes(b)
    outside = root.parent / "outside"  # symlinks out of the directory, and a loop
    (outside / "images").mkdir(parents=True)
    (outside / "0.png").write_bytes(spec["files"][0])
    (root / "link.png").symlink_to(outside / "0.png")
    (root / "dirlink").symlink_to(outside)
    (root / "loop.png").symlink_to(root / "loop.png")
    if spec["raw"] == "joined":  # no quoting at all: may well be malformed CSV
        text = "\n".join(",".join(r) for r in [spec["columns"], *spec["rows"]]) + "\n"
        (root / "table.csv").write_text(text, encoding="utf-8", errors="surrogatepass")
    else:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(spec["columns"])
        w.writerows(spec["rows"])
        data = buf.getvalue().encode("utf-8", errors="surrogatepass")
        if spec["raw"] == "bytes":  # e.g. invalid UTF-8 or a NUL byte spliced in
            data = data[: len(data) // 2] + spec["junk"] + data[len(data) // 2:]
        (root / "table.csv").write_bytes(data)
    if spec["truth"] is not None:
        (root / "truth.json").write_text(json.dumps(spec["truth"]))
    if spec["latents"] is not None:
        np.save(root / "latents.npy", spec["latents"], allow_pickle=True)
    if spec["modalities"]:
        (root / "modalities").mkdir()
        for name, arr in spec["modalities"].items():
            if name.endswith(".txt"):
                (root / "modalities" / name).write_text("not an array")
            else:
                np.save(root / "modalities" / f"{name}.npy", arr, allow_pickle=True)


@FUZZ
@given(spec=dataset_dirs(), image_size=st.sampled_from([SIZE, None]), channels=st.sampled_from([None, 1, 3]),
       missing=st.sampled_from(["error", "drop"]))
def test_fuzz_dataset_directory(spec, image_size, channels, missing):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "d"
        _write_spec(root, spec)
        _load_or_data_error(root, image_size=image_size, channels=channels, missing=missing)


# --------------------------------------------------------------------------- npz
array_names = st.sampled_from(["images", "table", "columns", "ids", "truth", "latents", "modality_curve",
                               "modality_bad name", "other"])


@st.composite
def npz_specs(draw) -> dict[str, np.ndarray]:
    n = draw(st.sampled_from([0, 3, 10, 12]))
    arrays: dict[str, np.ndarray] = {}
    # a plausible core (so that some loads succeed), then random replacements and extras
    d = draw(st.integers(0, 3))
    arrays["images"] = _array(draw(st.sampled_from(["uint8", "float32"])), (n, draw(st.sampled_from([1, 3])), 6, 6),
                              draw(st.integers(0, 99)))
    if arrays["images"].dtype.kind == "f":
        arrays["images"] = np.nan_to_num(arrays["images"], nan=0.5, posinf=1.0).clip(0, 1)
    arrays["table"] = _array(draw(st.sampled_from(["float64", "U8"])), (n, d), draw(st.integers(0, 99)))
    arrays["columns"] = np.array([f"c{j}" for j in range(d)], dtype=str)
    for name in draw(st.sets(array_names, max_size=4)):
        if draw(st.booleans()):
            arrays.pop(name, None)
        else:
            arrays[name] = draw(npy_arrays())
    if draw(st.booleans()):
        arrays["truth"] = np.asarray(json.dumps(draw(truth_json())))
    return arrays


@FUZZ
@given(arrays=npz_specs(), image_size=st.sampled_from([SIZE, None]), channels=st.sampled_from([None, 1, 3]),
       missing=st.sampled_from(["error", "drop"]))
def test_fuzz_npz(arrays, image_size, channels, missing):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "d.npz"
        np.savez(p, **arrays)  # object arrays are pickled here; the loader must refuse them
        _load_or_data_error(p, image_size=image_size, channels=channels, missing=missing)


@FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_npz_random_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "d.npz"
        p.write_bytes(data)
        _load_or_data_error(p)


# --------------------------------------------------------------------------- regressions
# Each of these raised something other than a one-line DataError (or loaded wrong data) before
# the fix; found by the properties above or while writing them.
def _valid_dir(root: Path, n: int = 12) -> Path:
    (root / "images").mkdir(parents=True)
    for k in range(n):
        (root / "images" / f"{k}.png").write_bytes(_png_bytes("L", 4, 4, k))
    pd.DataFrame({"image": [f"images/{k}.png" for k in range(n)], "x": np.arange(n) * 1.5}).to_csv(
        root / "table.csv", index=False)
    return root


def _expect(path: Path, match: str, **kw) -> None:
    with pytest.raises(DataError, match=match) as info:
        load_dataset(path, **kw)
    _check_one_line(info.value)


def test_header_names_equal_after_stripping(tmp_path):  # was TypeError from pandas
    root = _valid_dir(tmp_path / "d")
    (root / "table.csv").write_text("image,image \n" + "".join(f"images/{k}.png,{k}\n" for k in range(12)))
    _expect(root, r"column name 'image' appears more than once in the header row")


def test_repeated_or_empty_header_name(tmp_path):  # pandas renamed them to x.1 / Unnamed: 2
    root = _valid_dir(tmp_path / "d")
    (root / "table.csv").write_text("image,x,x\n" + "".join(f"images/{k}.png,{k},{k % 3}\n" for k in range(12)))
    _expect(root, r"column name 'x' appears more than once")
    (root / "table.csv").write_text("image,x,\n" + "".join(f"images/{k}.png,{k},{k % 3}\n" for k in range(12)))
    _expect(root, r"column 3 has an empty name in the header row")


def test_data_row_longer_than_header(tmp_path):  # pandas made column 1 the index: every cell shifted
    root = _valid_dir(tmp_path / "d")
    (root / "table.csv").write_text("image,x\n" + "".join(f"images/{k}.png,{k},{k * 2}\n" for k in range(12)))
    _expect(root, r"cannot parse CSV .*Expected 2 fields in line 2, saw 3")


def test_line_break_in_a_column_name_stays_one_line(tmp_path):  # the message had two lines
    root = _valid_dir(tmp_path / "d")
    (root / "table.csv").write_text('image,"a\nb"\n' + "".join(f"images/{k}.png,7\n" for k in range(12)))
    _expect(root, r"column 'a\\nb': constant column")


def test_overlong_path_and_image_cell(tmp_path):  # OSError: [Errno 36] File name too long
    _expect(tmp_path / ("a" * 300), r"a+…a+: cannot be accessed")
    root = _valid_dir(tmp_path / "d")
    (root / "table.csv").write_text("image,x\n" + "a" * 300 + ",0\n" +
                                    "".join(f"images/{k}.png,{k}\n" for k in range(1, 12)))
    _expect(root, r"row 1, column 'image': path 'a+…a+' cannot be used")


def test_decompression_bomb_header(tmp_path):  # PIL's DecompressionBombError is not an OSError
    root = _valid_dir(tmp_path / "d")
    (root / "images" / "3.png").write_bytes(_png_header_only(70_000, 70_000))
    _expect(root, r"3\.png: image too large \(row 4\): Image size")


def test_npz_object_array_is_refused(tmp_path):  # ValueError from numpy, not a DataError
    p = tmp_path / "d.npz"
    np.savez(p, images=np.zeros((12, 4, 4), np.uint8), table=np.array([{"a": 1}] * 12, dtype=object),
             columns=np.array(["x"]))
    _expect(p, r"array 'table' holds Python objects \(pickled data is never loaded")


def test_npz_malformed_truth_graph(tmp_path):  # AttributeError: 'NoneType' object has no attribute 'get'
    p = tmp_path / "d.npz"
    np.savez(p, images=np.zeros((12, 4, 4), np.uint8), table=np.arange(12.0)[:, None], columns=np.array(["x"]),
             truth=np.asarray(json.dumps({"nodes": [None], "edges": []})))
    _expect(p, r"'truth' is not a valid graph JSON string .*node 1 must be an object with a string 'name'")


@pytest.mark.parametrize("arrays, match", [
    ({"columns": np.asarray("x")}, r"'columns' must be a 1-D array of names"),  # TypeError: iteration over 0-d
    ({"ids": np.asarray("p")}, r"'ids' has shape \(\)"),  # TypeError: len() of unsized object
    ({"latents": np.zeros((3, 1)), "truth": np.asarray(json.dumps({"nodes": [{"name": "z1", "kind": "latent"}]}))},
     r"'latents' has shape \(3, 1\), expected 12 rows"),  # IndexError
    ({"latents": np.array([["a"]] * 12), "truth": np.asarray(json.dumps({"nodes": [{"name": "z1", "kind": "latent"}]}))},
     r"true latents have dtype <U1"),  # ValueError: could not convert string to float
    ({"images": np.zeros((12, 1, 0, 4), np.float32)}, r"'images' are 0×4 pixels"),  # ValueError from min()
    ({"truth": np.array(["{}", "{}"])}, r"'truth' must be one JSON string"),
    ({"table": np.ones((12, 1), complex)}, r"'table' dtype complex128 not supported"),
])
def test_npz_malformed_arrays(tmp_path, arrays, match):
    p = tmp_path / "d.npz"
    base = {"images": np.zeros((12, 4, 4), np.uint8), "table": np.arange(12.0)[:, None], "columns": np.array(["x"])}
    np.savez(p, **{**base, **arrays})
    _expect(p, match)


def test_npy_file_named_npz(tmp_path):  # AttributeError: an ndarray is not an NpzFile
    p = tmp_path / "d.npz"
    with open(p, "wb") as fh:
        np.save(fh, np.zeros(3))
    _expect(p, r"not an \.npz archive")


def test_dir_latents_pickled_or_non_numeric(tmp_path):  # ValueError from np.load / float conversion
    root = _valid_dir(tmp_path / "d")
    truth = {"nodes": [{"name": "x"}, {"name": "z1", "kind": "latent"}], "edges": [], "latents": "latents.npy"}
    (root / "truth.json").write_text(json.dumps(truth))
    np.save(root / "latents.npy", np.array([[{"a": 1}]] * 12, dtype=object), allow_pickle=True)
    _expect(root, r"latents\.npy: not a readable \.npy file \(Object arrays cannot be loaded")
    np.save(root / "latents.npy", np.full((12, 1), np.nan))
    _expect(root, r"latents\.npy row 1: true latents contain NaN or inf")
    truth["latents"] = 3
    (root / "truth.json").write_text(json.dumps(truth))
    _expect(root, r"'latents' must be a file name")


# --------------------------------------------------------------------------- npz array headers
npy_header_shapes = st.lists(st.one_of(st.integers(0, 16), st.integers(10**4, 10**7)), min_size=0, max_size=5).map(tuple)


@FUZZ
@given(key=st.sampled_from(["images", "table", "columns", "ids", "latents", "modality_curve"]),
       shape=npy_header_shapes, descr=st.sampled_from(["|u1", "<f4", "<f8", "<i8", "<U8", "|S4", "|b1", "<c16"]),
       fortran=st.booleans(), version=st.sampled_from([1, 2]), truncate=st.sampled_from([None, 0, 5, 12]))
def test_fuzz_npz_member_headers(key, shape, descr, fortran, version, truncate):
    """An npz member that is only a .npy header (random shape, possibly huge; random dtype; maybe cut
    short): a DataError naming the file, never a MemoryError or an allocation of the declared size."""
    import zipfile

    buf = io.BytesIO()
    write = np.lib.format.write_array_header_1_0 if version == 1 else np.lib.format.write_array_header_2_0
    write(buf, {"descr": descr, "fortran_order": fortran, "shape": shape})
    member = buf.getvalue() if truncate is None else buf.getvalue()[:truncate]
    arrays = {"images": np.zeros((12, 1, 4, 4), np.uint8), "table": np.arange(12.0)[:, None], "columns": np.array(["x"])}
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "d.npz"
        with zipfile.ZipFile(p, "w") as zf:
            for k, a in arrays.items():
                if k != key:
                    b = io.BytesIO()
                    np.save(b, a)
                    zf.writestr(f"{k}.npy", b.getvalue())
            zf.writestr(f"{key}.npy", member)
        _load_or_data_error(p, image_size=None)
