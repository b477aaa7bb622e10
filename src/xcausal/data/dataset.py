"""The dataset contract: a directory (table.csv + images/) or one .npz, loaded lazily.

Directory form::

    DATA/
      table.csv      one row per sample; column ``image`` (``image_column``) = path relative to
                     DATA; optional ``id`` (``id_column``); every other column not in ``ignore``
                     is a structured variable
      images/        PNG, JPEG or TIFF, grayscale or RGB, at most MAX_PIXELS pixels (see "Images")
      truth.json     optional ground truth (a Graph + ``"latents": "latents.npy"``)
      latents.npy    optional true latents, (N, m), rows in table order, columns = latent nodes
      modalities/    optional further modalities, one ``<name>.npy`` each (see below)

A table with no variable columns (only ``image`` and optionally ``id``) is valid: ``d = 0``.

Column roles: the image column (``image_column``, default ``image``), the id column (``id_column``;
without it a column called ``id``) and the ``ignore``d columns (dropped as the table is read: their
cells are not checked) are not variables. A text column whose values are nearly all distinct (at
least 90% of the rows, and more than ``max_categories`` levels, e.g. a ``patient_id``) is never a
categorical variable: with no id column it is taken as the id (logged), otherwise it is refused
naming ``--id-column`` and ``--ignore``. Any other categorical variable with more than
``max_categories`` levels is refused too: one variable per level would make the fit slow and the
graph unreadable.
Missing cells are the empty and whitespace-only ones, plus any cell whose text is one of
``na_values`` (``--na-values``); every other text is a value, so ``NA``, ``None`` or ``null`` are
categories like any other (pandas would read them as missing). A column of numbers that also holds
such a marker (``1, 2, NA``) is refused as ambiguous: pass ``na_values`` or force the column's type.
table.csv is comma-separated: a header line holding more ``;`` (tab, ``|``) than commas is refused
naming the separator. Header names are stripped and must be non-empty and distinct; a data row may
not have more fields than the header. Image paths must stay inside DATA once symlinks are
resolved: relative to DATA (Windows ``\\`` separators are read as ``/``), or absolute and below
DATA; truth.json's ``latents`` must be relative and inside DATA, and table.csv, truth.json and
modalities/ (and each file in it) must resolve inside DATA too; nothing outside is opened.

Modalities (e.g. a measured curve per sample): ``modalities/<name>.npy`` holds one 2-D numeric
array (N, L) with one row per data row of table.csv, in table order, and ``L >= 2``; every value
finite; ``<name>`` matches ``[A-Za-z0-9_-]+``. Rows are counted before ``missing="drop"`` removes
rows, which then drops the same rows of every modality. Loaded eagerly as float32.

Images (directory form) are recognised by their content, not their file name: a file that is not
PNG, JPEG or TIFF (GIF, BMP, PostScript, ...; PIL would decode it, PostScript through Ghostscript)
is refused whatever its extension, and so is an image of more than ``max_pixels`` pixels
(default :data:`MAX_PIXELS`, 64 megapixels), from its header, before anything is decoded.
They are decoded to float32 in ``[0, 1]``:

* EXIF orientation (JPEG ``Orientation`` tag) is applied first, so images are upright before
  resizing;
* 16-bit grayscale (PIL modes ``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, and ``I``, which is read
  as 16-bit) is divided by 65535, its full range, and resized in float without 8-bit rounding;
  ``I`` values outside ``0..65535`` are clipped; 32-bit float ``F`` is taken as already in
  ``[0, 1]`` and clipped;
* transparency is composited on black (``colour * alpha``: a fully transparent pixel is
  black): ``RGBA``, ``PA`` and palette images with a transparent colour count as 3 channels,
  ``LA`` as 1;
* palette (``P``) images are converted to RGB (3 channels);
* with ``channels=1`` colour is converted to luma ``0.299 R + 0.587 G + 0.114 B`` (PIL ``L``);
  with ``channels=3`` gray is repeated in all three channels. Without ``channels`` images are read
  with their stored count, and a folder mixing grayscale and colour files is read as RGB (gray
  repeated), so no file loses colour; ``channels=1`` converts them all to grayscale instead.

Image cache (directory form): :meth:`CrossModalDataset.cached` (or :func:`build_image_cache`)
decodes every image once, in chunks, into a uint8 ``.npy`` file, by default
``DATA/.xcausal-cache/images-<size>px-<channels>ch.npy``, and returns a dataset that reads from
it memory-mapped (``np.load(mmap_mode="r")``), converting to float32 ``[0, 1]`` on access. Cached
values are the decoded ones rounded to 1/255: exact for 8-bit images kept at their stored size,
within ``0.5 / 255`` otherwise. A fingerprint of table.csv and of every image file (relative path,
size, mtime and ctime), the image size and the channel count is stored beside the array
(``<stem>.json``); a cache whose fingerprint no longer matches is rebuilt. The array is written
to a temporary file and moved into place with ``os.replace``, so an interrupted build never
leaves a cache that would be read. Pickling the dataset (e.g. into DataLoader workers) stores the
cache's path, not its pixels; each process maps the file itself.

NPZ form: arrays ``images`` (N, H, W) or (N, C, H, W) (uint8 in 0..255 or float in [0, 1]),
``table`` (N, d) (float, or str when a column is text), ``columns`` (d,), optional ``ids`` (N,),
``truth`` (a JSON string), ``latents`` (N, m) and ``modality_<name>`` (N, L), validated like the
files above. Loaded with ``allow_pickle=False``. Before any array of an ``.npz`` or ``.npy`` file is
read, its shape and dtype are taken from its header: an array (with the float copy loading makes)
larger than :func:`memory_budget` (half the machine's memory) is refused naming the file; so is a
``--image-size`` whose resized images would not fit in it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import struct
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps

from xcausal.io import DataError, atomic_output_dir, check_output, cut_middle, read_json, write_json
from xcausal.types import Graph, VarType

__all__ = [
    "Variable",
    "CrossModalDataset",
    "load_dataset",
    "dataset_from_arrays",
    "save_dataset_dir",
    "save_dataset_npz",
    "infer_variables",
    "MIN_ROWS",
    "MODALITY_DIR",
    "MAX_AUTO_SIZE",
    "MAX_PIXELS",
    "MAX_IMAGE_SIZE",
    "memory_budget",
    "IMAGE_FORMATS",
    "auto_image_size",
    "ImageCache",
    "ImagePaths",
    "build_image_cache",
    "default_cache_path",
    "CACHE_DIR",
    "MAX_CATEGORIES",
    "ID_DISTINCT_SHARE",
]

logger = logging.getLogger(__name__)

MIN_ROWS = 10
MODALITY_DIR = "modalities"
"""Subdirectory of a dataset directory holding one ``<name>.npy`` per modality."""
_MODALITY_PREFIX = "modality_"  # npz form: array ``modality_<name>``
_MODALITY_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_MIN_MODALITY_LEN = 2
_RESERVED = ("image", "id")  # the default image and id columns
MAX_CATEGORIES = 20
"""Default ``max_categories``: a categorical variable with more levels is refused."""
ID_DISTINCT_SHARE = 0.9
"""A text column with at least this share of distinct values (and more than ``max_categories``
levels) is an identifier, never a categorical variable."""
# Texts pandas reads as missing by default; here they are values, but a column of numbers holding
# one of them is ambiguous (a missing-value marker, or a category?) and is refused
_NA_LIKE = frozenset({"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                      "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
_MODE_CHANNELS = {"1": 1, "L": 1, "LA": 1, "I": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "I;16N": 1, "F": 1,
                  "P": 3, "PA": 3, "RGB": 3, "RGBA": 3, "RGBX": 3, "CMYK": 3, "YCbCr": 3}
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # grayscale, scaled by 1 / 65535
_ALPHA_MODES = ("RGBA", "LA", "PA")  # composited on black
_SIXTEEN_BIT_MAX = 65535.0
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
# What PIL raises on a corrupt or hostile file (UnidentifiedImageError is an OSError; plugins
# also raise SyntaxError, struct.error, ValueError, ...; DecompressionBombError on huge headers)
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, Image.DecompressionBombError)
IMAGE_FORMATS = ("PNG", "JPEG", "TIFF")
"""PIL formats a dataset's image files may have (recognised by content; others are refused)."""
MAX_PIXELS = 64_000_000
"""Default ``max_pixels``: larger images (width × height) are refused before they are decoded."""
MAX_IMAGE_SIZE = math.isqrt(MAX_PIXELS)
"""Largest ``image_size`` (the side images are resized to): 8000."""
# Leading bytes of formats PIL could decode but a dataset may not hold: named in the refusal
_OTHER_FORMATS = ((b"%!PS", "PostScript"), (b"\xc5\xd0\xd3\xc6", "EPS"), (b"%PDF", "PDF"), (b"GIF8", "GIF"),
                  (b"BM", "BMP"), (b"\x00\x00\x01\x00", "ICO"), (b"8BPS", "Photoshop"),
                  (b"\x00\x00\x00\x0cjP", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"))


def _format_name(path: Path) -> str | None:
    """The name of a known non-dataset image format from a file's first bytes (for messages)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _OTHER_FORMATS if head.startswith(magic)), None)


def _open_image(path: Path, max_pixels: int, where: str = "") -> Image.Image:
    """``PIL.Image.open`` (the header only) of a PNG, JPEG or TIFF file of at most ``max_pixels``
    pixels; DataError naming the file (and ``where``, e.g. the table row) otherwise. PIL's
    DecompressionBombWarning is not shown: the size is checked here instead."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path, formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as exc:  # beyond PIL's own limit, ~179 megapixels
        raise DataError(f"{path}: image too large{where}: {_first_line(exc)}") from None
    except Image.UnidentifiedImageError:
        name = _format_name(path)
        if name:
            raise DataError(f"{path}: a {name} file; images must be PNG, JPEG or TIFF{where}") from None
        raise DataError(f"{path}: not a readable PNG, JPEG or TIFF image{where}") from None
    w, h = img.size
    if w * h > max_pixels:
        img.close()
        raise DataError(f"{path}: image of {w}×{h} = {w * h:,} pixels; at most {max_pixels:,} are allowed{where} "
                        f"(--max-pixels)")
    return img


@dataclass(frozen=True)
class Variable:
    """A structured variable and how it is encoded as one numeric column.

    continuous: the value itself; binary: 0/1 = index into ``categories``; categorical: the
    integer code = index into ``categories`` (sorted original values, as strings).
    """

    name: str
    type: VarType
    categories: tuple[str, ...] = ()

    @property
    def n_categories(self) -> int:
        return len(self.categories) if self.type is not VarType.CONTINUOUS else 1

    def encode(self, values: pd.Series, *, where: str) -> np.ndarray:
        if self.type is VarType.CONTINUOUS:
            return pd.to_numeric(values).to_numpy(dtype=np.float64)
        lookup = {c: i for i, c in enumerate(self.categories)}
        keys = _as_category_keys(values)
        out = np.empty(len(keys), dtype=np.float64)
        for i, k in enumerate(keys):
            if k not in lookup:
                raise DataError(f"{where} row {_row_label(values, i)}, column '{self.name}': unknown value '{k}'")
            out[i] = lookup[k]
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        if self.type is VarType.CONTINUOUS:
            return np.asarray(codes, dtype=float)
        idx = np.clip(np.rint(codes).astype(int), 0, len(self.categories) - 1)
        return np.asarray(self.categories, dtype=object)[idx]

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type.value, "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, d: dict) -> "Variable":
        return cls(d["name"], VarType(d["type"]), tuple(d.get("categories", ())))


def _row_label(s: pd.Series | pd.DataFrame, i: int) -> int:
    """The table row number (1-based data row of table.csv) of position ``i`` of ``s``: its index
    label + 1 while a loaded table keeps the positions of the rows it was read with (rows dropped by
    ``missing="drop"`` keep their number), else ``i + 1``."""
    label = s.index[i]
    return int(label) + 1 if isinstance(label, (int, np.integer)) else i + 1


def _as_category_keys(values: pd.Series) -> list[str]:
    """String keys for category values; numeric 1 and 1.0 map to the same key."""
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all():
        return [_num_key(v) for v in num.to_numpy(dtype=float)]
    return [str(v) for v in values]


def _num_key(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def infer_variables(
    table: pd.DataFrame,
    *,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
    where: str = "table.csv",
    skip: Sequence[str | None] = _RESERVED,
    max_categories: int | None = MAX_CATEGORIES,
) -> list[Variable]:
    """Detect each variable column's type.

    Numeric with more than two distinct values -> continuous; exactly two distinct values ->
    binary; text with more than two -> categorical. ``categorical`` / ``continuous`` override.
    Columns in ``skip`` (the image and id columns) are not variables. A constant column is an
    error, and so is a column of numbers that also holds texts pandas reads as missing by default
    (``NA``, ``null``, ``nan``, ...) unless it is forced categorical: a missing-value marker or a
    category? So is a categorical variable of more than ``max_categories`` levels (None: no
    limit), named as an identifier when it is text with nearly all values distinct.
    """
    cols = [c for c in table.columns if c not in skip]
    for name in list(categorical) + list(continuous):
        if name not in cols:
            raise DataError(f"{where}: override names unknown column '{name}' (columns: {', '.join(cols)})")
    both = set(categorical) & set(continuous)
    if both:
        raise DataError(f"column '{sorted(both)[0]}' is given as both categorical and continuous")
    out = []
    for c in cols:
        s = table[c]
        num = pd.to_numeric(s, errors="coerce")
        is_num = bool(num.notna().all())
        keys = _as_category_keys(s)
        distinct = sorted(set(keys), key=lambda k: (float(k) if is_num else 0.0, k))
        if len(distinct) < 2:
            raise DataError(f"{where}, column '{c}': constant column (every row is '{distinct[0]}')")
        not_num = np.flatnonzero(num.isna().to_numpy())
        if c in continuous:
            if not is_num:
                bad = int(not_num[0])
                hint = (f"; pass --na-values {s.iloc[bad]} if it marks a missing value"
                        if str(s.iloc[bad]) in _NA_LIKE else "")
                raise DataError(f"{where} row {_row_label(s, bad)}, column '{c}': '{s.iloc[bad]}' is not a number "
                                f"(column forced continuous{hint})")
            out.append(Variable(c, VarType.CONTINUOUS))
            continue
        markers = sorted({str(v) for v in s.iloc[not_num]}) if c not in categorical and 0 < len(not_num) < len(s) else []
        if markers and set(markers) <= _NA_LIKE:  # numbers, and texts pandas would call missing
            bad = int(not_num[0])
            raise DataError(f"{where} row {_row_label(s, bad)}, column '{c}': numbers and '{s.iloc[bad]}' "
                            f"({len(not_num)} such row(s)): pass --na-values {','.join(markers)} if "
                            f"{'it marks' if len(markers) == 1 else 'they mark'} a missing value, or "
                            f"--categorical {c} to keep {'it' if len(markers) == 1 else 'them'} as a category")
        if c in categorical or (len(distinct) > 2 and not is_num):
            if max_categories is not None and len(distinct) > max_categories:
                _refuse_levels(c, len(distinct), len(s), is_num or c in categorical, max_categories, where)
            out.append(Variable(c, VarType.CATEGORICAL, tuple(distinct)))
        elif len(distinct) == 2:
            out.append(Variable(c, VarType.BINARY, tuple(distinct)))
        else:
            out.append(Variable(c, VarType.CONTINUOUS))
    return out


def _is_identifier(s: pd.Series, max_categories: int | None) -> bool:
    """Text (not all numbers) with more than ``max_categories`` levels, at least
    :data:`ID_DISTINCT_SHARE` of the rows distinct: a row identifier such as ``patient_id``."""
    cells = s[s.notna()].astype(str).str.strip()
    cells = cells[cells != ""]  # missing cells are neither text nor distinct values
    if max_categories is None or len(cells) == 0 or pd.to_numeric(cells, errors="coerce").notna().all():
        return False
    k = cells.nunique()
    return k > max_categories and k >= ID_DISTINCT_SHARE * len(s)


def _refuse_levels(c: str, k: int, n: int, forced: bool, max_categories: int, where: str) -> None:
    """The one-line DataError for categorical column ``c`` of ``k`` levels in ``n`` rows."""
    if not forced and k >= ID_DISTINCT_SHARE * n:
        raise DataError(f"{where}, column '{c}': {k} distinct texts in {n} rows, an identifier and not a "
                        f"variable; pass --id-column {c} to use it as the row id, or --ignore {c}")
    raise DataError(f"{where}, column '{c}': categorical with {k} levels, more than --max-categories "
                    f"{max_categories}; pass --max-categories {k} to keep it, or --ignore {c}")


def _column_roles(
    table: pd.DataFrame,
    *,
    image_column: str | None,
    id_column: str | None,
    ignore: Sequence[str],
    categorical: Sequence[str],
    continuous: Sequence[str],
    max_categories: int | None,
    where: str,
) -> tuple[pd.DataFrame, str | None]:
    """``table`` without its ignored columns, and the name of its id column (None: no ids).

    ``image_column`` (None: the images are not a column) and ``id_column`` must be columns of
    the table, distinct and not ignored. Without ``id_column`` the id is a column called ``id``,
    else the first text column that :func:`_is_identifier` calls one (not one forced categorical
    or continuous), logged at INFO level.
    """
    cols = list(table.columns)
    listed = ", ".join(cols)
    for flag, names in (("--image-column", [image_column]), ("--id-column", [id_column]), ("--ignore", ignore)):
        for name in names:
            if name is not None and name not in cols:
                raise DataError(f"{where}: {flag} {name}: no such column (columns: {listed})")
    if id_column is not None and id_column == image_column:
        raise DataError(f"{where}: --id-column {id_column} is also the image column")
    for name in ignore:
        if name in (image_column, id_column):
            raise DataError(f"{where}: --ignore {name}: it is the {'image' if name == image_column else 'id'} column")
    table = table.drop(columns=list(dict.fromkeys(ignore)))
    if id_column is None and "id" in table.columns and image_column != "id":
        id_column = "id"
    if id_column is None:
        forced = set(categorical) | set(continuous)
        for c in table.columns:
            if c != image_column and c not in forced and _is_identifier(table[c], max_categories):
                logger.info("%s: column '%s' (%d distinct texts in %d rows) is taken as the row id, not a variable "
                            "(--id-column or --ignore to choose otherwise)", where, c, table[c].nunique(), len(table))
                _check_distinct_ids(table[c], where)
                return table, c
    if id_column is not None:
        _check_distinct_ids(table[id_column], where)
    return table, id_column


def _check_distinct_ids(col: pd.Series, where: str) -> None:
    """DataError naming the first repeated id and both its rows: ids select rows (``--ids``) and
    label outputs, so each must name one row (empty cells are missing values, not ids)."""
    texts = col.astype(str).str.strip().where(col.notna(), "")
    dup = texts.duplicated(keep=False).to_numpy() & (texts != "").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        j = int(np.flatnonzero(dup & (texts == texts.iloc[i]).to_numpy())[1])
        raise DataError(f"{where}, column '{col.name}': id '{cut_middle(texts.iloc[i], 60)}' is in row "
                        f"{_row_label(col, i)} and row {_row_label(col, j)}; row ids must be distinct (pass "
                        f"--ignore {col.name} if the column is not a row id)")


def _check_cells(table: pd.DataFrame, where: str) -> None:
    """Empty cells, NaN and inf are errors naming the row and column (rows are 1-based data rows)."""
    for c in table.columns:
        s = table[c]
        bad = s.isna().to_numpy() | s.map(lambda v: isinstance(v, str) and v.strip() == "").to_numpy(dtype=bool)
        num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        bad |= np.isinf(num)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "empty cell" if pd.isna(s.iloc[i]) or str(s.iloc[i]).strip() == "" else f"invalid value '{s.iloc[i]}'"
            raise DataError(f"{where} row {_row_label(s, i)}, column '{c}': {what} ({int(bad.sum())} such row(s) in this "
                            "column)")


# --------------------------------------------------------------------------- images
def _to_chw(img: Image.Image, channels: int, size: int) -> np.ndarray:
    """Decode a PIL image to float32 (C, size, size) in [0, 1].

    Parameters
    ----------
    img : PIL.Image.Image
        Any supported mode (see the module docstring, "Images"); not modified.
    channels : {1, 3}
        Output channels: colour becomes luma, gray is repeated.
    size : int
        Output side; bilinear when enlarging, box filter when shrinking.

    Returns
    -------
    ndarray, shape (channels, size, size), float32
    """
    img = ImageOps.exif_transpose(img)  # a copy, upright; the same pixels when there is no tag
    if img.mode in _SIXTEEN_BIT_MODES or img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)  # handles big-endian I;16B
        if img.mode != "F":
            arr = arr / _SIXTEEN_BIT_MAX
        gray = Image.fromarray(np.clip(arr, 0.0, 1.0).astype(np.float32))  # mode "F": no 8-bit rounding
        if gray.size != (size, size):
            gray = gray.resize((size, size), _resample(gray.size, size))
        out = np.clip(np.asarray(gray, dtype=np.float32), 0.0, 1.0)[None]
        return out if channels == 1 else np.repeat(out, 3, axis=0)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in _ALPHA_MODES:
        black = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, img.convert("RGBA")).convert("RGB")
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (size, size):
        img = img.resize((size, size), _resample(img.size, size))
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1).copy()


def _resample(current: tuple[int, int], size: int) -> Image.Resampling:
    """Bilinear when enlarging (or keeping the larger side), box filter when shrinking."""
    return Image.Resampling.BILINEAR if max(current) <= size else Image.Resampling.BOX


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """PIL's errors while decoding ``path`` (a truncated or corrupt file: OSError, SyntaxError, ...)
    as one DataError naming the file; PIL's own messages carry no file name."""
    try:
        yield
    except DataError:
        raise
    except _IMAGE_ERRORS as exc:
        raise DataError(f"{path}: cannot decode image ({_first_line(exc) or type(exc).__name__})") from None


def _upright_size(img: Image.Image) -> tuple[int, int]:
    """``(width, height)`` after the EXIF orientation is applied, without decoding pixels."""
    w, h = img.size
    return (h, w) if img.getexif().get(_EXIF_ORIENTATION) in _TRANSPOSED_ORIENTATIONS else (w, h)


def _resize_array(x: np.ndarray, size: int) -> np.ndarray:
    """Resize float (N, C, H, W) in [0, 1] to (N, C, size, size) with antialiasing."""
    if x.shape[-2:] == (size, size):
        return x.astype(np.float32, copy=False)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t.clamp_(0, 1).numpy()


# --------------------------------------------------------------------------- image paths
class ImagePaths(Sequence[Path]):
    """The image files of a directory dataset, in row order: ``root / rel[i]``.

    Held as one numpy bytes array (``os.fsencode`` of each relative path) instead of a list of
    ``Path`` objects: no Python object per row whose reference count a forked DataLoader worker
    would write to (copying the list page by page into every worker, the memory growth of
    pytorch/pytorch#13246), and compact to pickle. Indexing returns a ``Path``; a slice or
    :meth:`take` returns another ``ImagePaths``.
    """

    def __init__(self, root: str | Path, rel: Sequence[str] | np.ndarray) -> None:
        self.root = Path(root)
        if not (isinstance(rel, np.ndarray) and rel.dtype.kind == "S"):
            rel = np.array([os.fsencode(str(r)) for r in rel], dtype=np.bytes_)
        self.rel = rel.reshape(-1)

    def __len__(self) -> int:
        return len(self.rel)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return ImagePaths(self.root, self.rel[i])
        return self.root / os.fsdecode(self.rel[i])

    def __iter__(self):
        root = self.root
        return (root / os.fsdecode(r) for r in self.rel)

    def __repr__(self) -> str:
        return f"ImagePaths({str(self.root)!r}, {len(self)} files)"

    def take(self, idx: Sequence[int] | np.ndarray) -> "ImagePaths":
        return ImagePaths(self.root, self.rel[np.asarray(idx, dtype=np.int64)])


# --------------------------------------------------------------------------- image cache
class ImageCache:
    """Read-only uint8 images ``(N, C, S, S)`` in a ``.npy`` file, memory-mapped on first access.

    Parameters
    ----------
    path : path of the ``.npy`` file (written by :func:`build_image_cache`)
    shape : ``(N, C, S, S)`` of the whole file
    rows : optional int array mapping this view's rows to rows of the file (a subset)

    Pickles as ``(path, shape, rows)``, never the pixels: a DataLoader worker maps the file itself.
    """

    def __init__(self, path: str | Path, shape: Sequence[int], rows: np.ndarray | None = None) -> None:
        self.path = Path(path)
        self.shape = tuple(int(k) for k in shape)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self._mm: np.ndarray | None = None

    def __len__(self) -> int:
        return self.shape[0] if self.rows is None else len(self.rows)

    def __repr__(self) -> str:
        return f"ImageCache({str(self.path)!r}, shape={self.shape}, rows={len(self)})"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_mm"] = None  # reopened (mapped) in the unpickling process
        return state

    def _array(self) -> np.ndarray:
        if self._mm is None:
            try:
                mm = np.load(self.path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(f"{self.path}: image cache cannot be opened ({_first_line(exc)}); "
                                "rebuild it with CrossModalDataset.cached()") from None
            if mm.dtype != np.uint8 or mm.shape != self.shape:
                raise DataError(f"{self.path}: image cache holds {mm.dtype} {mm.shape}, expected uint8 {self.shape} "
                                "(replaced since it was opened?); rebuild it with CrossModalDataset.cached()")
            self._mm = mm
        return self._mm

    def _file_rows(self, idx: np.ndarray) -> np.ndarray:
        return idx if self.rows is None else self.rows[idx]

    def read(self, i: int) -> np.ndarray:
        """Image ``i`` as float32 ``(C, S, S)`` in [0, 1] (a new array)."""
        j = int(self._file_rows(np.asarray(int(i))))
        out = np.array(self._array()[j], dtype=np.float32)
        out /= 255.0
        return out

    def read_many(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Images ``idx`` as float32 ``(len(idx), C, S, S)`` in [0, 1]; reads only those rows."""
        rows = self._file_rows(np.asarray(idx, dtype=np.int64).reshape(-1))
        out = np.array(self._array()[rows], dtype=np.float32)
        out /= 255.0
        return out

    def subset(self, idx: Sequence[int] | np.ndarray) -> "ImageCache":
        idx = np.asarray(idx, dtype=np.int64)
        rows = self._file_rows(np.arange(len(self), dtype=np.int64)[idx])
        return ImageCache(self.path, self.shape, rows)


CACHE_DIR = ".xcausal-cache"
"""Subdirectory of a dataset directory holding the default image caches."""
_CACHE_VERSION = 1  # bump when decoding changes, so old caches are rebuilt
_CACHE_CHUNK = 1024  # images decoded per chunk while building a cache


def default_cache_path(ds: "CrossModalDataset") -> Path:
    """``DATA/.xcausal-cache/images-<size>px-<channels>ch.npy`` for a directory dataset."""
    if ds.root is None:
        raise DataError(f"{ds.source or 'dataset'}: no dataset directory to keep an image cache in; pass a path")
    return Path(ds.root) / CACHE_DIR / f"images-{ds.image_size}px-{ds.channels}ch.npy"


def _cache_meta_path(path: Path) -> Path:
    return path.with_suffix(".json") if path.suffix == ".npy" else path.with_name(path.name + ".json")


def _image_fingerprint(ds: "CrossModalDataset") -> str:
    """sha256 over the decoding settings and (relative path, size, mtime, ctime) of table.csv and
    every image file, in row order."""
    assert ds.image_paths is not None
    h = hashlib.sha256(json.dumps({"version": _CACHE_VERSION, "image_size": ds.image_size,
                                   "channels": ds.channels, "rows": len(ds)}).encode())
    root = None if ds.root is None else Path(ds.root)
    files = ([root / "table.csv"] if root is not None else []) + list(ds.image_paths)
    for p in files:
        try:
            st = os.stat(p)
        except OSError as exc:
            raise DataError(f"{p}: cannot be read ({exc.strerror or _first_line(exc)})") from None
        try:
            name = str(p.relative_to(root)) if root is not None else str(p)
        except ValueError:
            name = str(p)
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode())
    return h.hexdigest()


def _cache_is_valid(path: Path, meta_path: Path, fingerprint: str, shape: tuple[int, ...]) -> bool:
    try:
        meta = json.loads(meta_path.read_text())
        if (meta.get("version") != _CACHE_VERSION or meta.get("fingerprint") != fingerprint
                or tuple(meta.get("shape", ())) != shape):
            return False
        mm = np.load(path, mmap_mode="r", allow_pickle=False)  # also checks the file is complete
        return mm.dtype == np.uint8 and mm.shape == shape
    except (OSError, ValueError, TypeError, AttributeError):  # missing, truncated, not JSON, ...
        return False


def _remove_stale_tmp(path: Path) -> None:
    """Temporary files of builds whose process no longer exists (killed mid-build)."""
    for p in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            pid = int(p.name[len(f".{path.name}.tmp-"):].split("-")[0])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                p.unlink()
        except OSError:  # exists but not ours (EPERM): leave it
            pass


def _write_cache(ds: "CrossModalDataset", path: Path, meta_path: Path, fingerprint: str,
                 shape: tuple[int, ...], chunk_size: int, progress: Callable[[int, int], None] | None) -> None:
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(path)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the image cache ({exc.strerror or _first_line(exc)}); "
                        "pass another path") from None
    tmp = Path(name)
    n = shape[0]
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            block = np.empty((stop - start,) + shape[1:], dtype=np.float32)
            for j in range(start, stop):
                block[j - start] = ds.image(j)
            block *= 255.0
            np.rint(block, out=block)
            out[start:stop] = np.clip(block, 0, 255).astype(np.uint8)
            logger.debug("%s: %d / %d images cached", path, stop, n)
            if progress is not None:
                progress(stop, n)
        out.flush()
        del out
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            meta_path.unlink()  # no moment where an old fingerprint describes the new array
        os.replace(tmp, path)
        meta = {"version": _CACHE_VERSION, "fingerprint": fingerprint, "shape": list(shape), "dtype": "uint8",
                "source": ds.source, "image_size": ds.image_size, "channels": ds.channels}
        meta_tmp = meta_path.with_name(f".{meta_path.name}.tmp-{os.getpid()}")
        meta_tmp.write_text(json.dumps(meta, indent=1))
        os.replace(meta_tmp, meta_path)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the image cache ({exc.strerror or _first_line(exc)})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def build_image_cache(ds: "CrossModalDataset", path: str | Path | None = None, *, rebuild: bool = False,
                      chunk_size: int = _CACHE_CHUNK,
                      progress: Callable[[int, int], None] | None = None) -> "CrossModalDataset":
    """The dataset reading its images from a memory-mapped uint8 cache (built if needed).

    Parameters
    ----------
    ds : CrossModalDataset
        Directory form (images decoded from files). A dataset whose images are already in memory
        (npz form, arrays) is returned unchanged.
    path : path, optional
        The ``.npy`` file; default :func:`default_cache_path` (inside the dataset directory).
        Its fingerprint is kept beside it in ``<stem>.json``.
    rebuild : bool
        Build even when a valid cache exists.
    chunk_size : int
        Images decoded per chunk; memory while building is one chunk of float32 images.
    progress : callable ``(done, total)``, optional
        Called after every chunk while building.

    Returns
    -------
    CrossModalDataset
        A copy of ``ds`` with ``image_cache`` set; ``ds`` is not modified.

    Raises
    ------
    DataError
        An image cannot be decoded or stat-ed, or the cache cannot be written.
    """
    if ds.image_array is not None:
        return ds
    if ds.image_paths is None:
        raise DataError(f"{ds.source or 'dataset'}: no images to cache")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r}: must be an integer >= 1")
    path = default_cache_path(ds) if path is None else Path(path)
    meta_path = _cache_meta_path(path)
    shape = (len(ds), ds.channels, ds.image_size, ds.image_size)
    fingerprint = _image_fingerprint(ds)
    if not rebuild and _cache_is_valid(path, meta_path, fingerprint, shape):
        logger.info("%s: using the image cache %s", ds.source, path)
    else:
        logger.info("%s: caching %d images (%d px, %d channel(s)) in %s", ds.source, shape[0], shape[2], shape[1], path)
        plain = dataclasses.replace(ds, image_cache=None) if ds.image_cache is not None else ds
        _write_cache(plain, path, meta_path, fingerprint, shape, chunk_size, progress)
    return dataclasses.replace(ds, image_cache=ImageCache(path, shape), extra=dict(ds.extra))


# --------------------------------------------------------------------------- dataset
@dataclass
class CrossModalDataset(torch.utils.data.Dataset):
    """Images plus structured variables for the same subjects.

    ``ds[i]`` returns ``(image, u)``: image float32 tensor (C, H, W) in [0, 1], decoded lazily
    from disk for the directory form; ``u`` float32 tensor (d,) of encoded variables (see
    :class:`Variable`).

    Attributes
    ----------
    table : DataFrame, (N, columns) — the table as read (original units and labels)
    variables : list of Variable, in column order
    u : ndarray (N, d) float64 — encoded variables
    truth : Graph or None;  true_latents : ndarray (N, m) or None
    modalities : dict of name -> ndarray (N, L) float32, rows in table order (may be empty)
    image_cache : ImageCache or None — set by :meth:`cached`; images are then read from it
    ids : ndarray (N,) or None — the id column's values;  id_column : its name in ``table``
    row_numbers : ndarray (N,) int — each row's number in the table as read (1 = first data row,
        as data errors print it); after ``missing="drop"`` the kept rows keep their numbers
    table_rows : rows of the table before dropping;  dropped_rows : row number -> why it was
        dropped;  dropped_ids : id -> row number of the dropped rows with an id
    """

    table: pd.DataFrame
    variables: list[Variable]
    u: np.ndarray
    image_size: int
    channels: int
    root: Path | None = None
    image_paths: Sequence[Path] | None = None  # ImagePaths when loaded from a directory
    image_array: np.ndarray | None = None  # (N, C, H, W) float32 in [0, 1], already resized
    ids: np.ndarray | None = None
    truth: Graph | None = None
    true_latents: np.ndarray | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)
    modalities: dict[str, np.ndarray] = field(default_factory=dict)
    image_cache: ImageCache | None = None  # uint8 memmap of the decoded images (see cached())
    max_pixels: int = MAX_PIXELS  # larger image files (width × height) are refused before decoding
    id_column: str | None = None  # the column of ``table`` holding ``ids``
    stored_channels: tuple[int, ...] = ()  # channel counts of the image files, e.g. (1, 3) when mixed
    stored_sizes: tuple[int, ...] = ()  # sides (the larger of width, height) of the stored images
    #: (N,) each row's number in the table as read: 1 = the first data row of table.csv (or of the
    #: npz arrays), the number data errors print; rows dropped by ``missing="drop"`` keep theirs
    row_numbers: np.ndarray | None = None
    table_rows: int | None = None  # data rows in the table before dropping (default N)
    dropped_rows: dict[int, str] = field(default_factory=dict)  # row number -> why it was dropped
    dropped_ids: dict[str, int] = field(default_factory=dict)  # id of a dropped row -> its row number

    def __post_init__(self) -> None:
        if self.row_numbers is None:
            self.row_numbers = np.arange(1, len(self.u) + 1)
        self.row_numbers = np.asarray(self.row_numbers, dtype=np.int64)
        if len(self.row_numbers) != len(self.u):
            raise ValueError(f"{len(self.row_numbers)} row numbers for {len(self.u)} rows")
        if self.table_rows is None:
            self.table_rows = int(self.row_numbers.max()) if len(self.row_numbers) else 0

    @property
    def mixed_channels(self) -> bool:
        """The image files mix grayscale and colour (all are read with ``channels``)."""
        return len(self.stored_channels) > 1

    def __len__(self) -> int:
        return len(self.u)

    @property
    def variable_names(self) -> list[str]:
        return [v.name for v in self.variables]

    def image(self, i: int) -> np.ndarray:
        if self.image_array is not None:
            return self.image_array[i]
        if self.image_cache is not None:
            return self.image_cache.read(i)
        assert self.image_paths is not None
        p = self.image_paths[i]
        with _decoding(p), _open_image(p, self.max_pixels) as img:
            return _to_chw(img, self.channels, self.image_size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.image(int(i))), torch.from_numpy(self.u[int(i)].astype(np.float32))

    def images(self, idx: Sequence[int] | None = None) -> np.ndarray:
        """Decode images into one array, (len(idx), C, H, W) float32. Loads everything if idx is None."""
        idx = range(len(self)) if idx is None else idx
        if self.image_array is not None:
            return self.image_array[np.asarray(list(idx), dtype=int)]
        if self.image_cache is not None:
            return self.image_cache.read_many(np.asarray(list(idx), dtype=np.int64))
        idx = np.asarray(list(idx), dtype=np.int64)
        out = np.empty((len(idx), self.channels, self.image_size, self.image_size), np.float32)
        for j, i in enumerate(idx):  # filled in place: no list of arrays beside the result
            out[j] = self.image(int(i))
        return out

    def subset(self, idx: Sequence[int]) -> "CrossModalDataset":
        idx = np.asarray(idx, dtype=int)
        return CrossModalDataset(
            table=self.table.iloc[idx].reset_index(drop=True), variables=self.variables, u=self.u[idx],
            image_size=self.image_size, channels=self.channels, root=self.root,
            image_paths=None if self.image_paths is None else (
                self.image_paths.take(idx) if isinstance(self.image_paths, ImagePaths)
                else [self.image_paths[i] for i in idx]),
            image_array=None if self.image_array is None else self.image_array[idx],
            ids=None if self.ids is None else self.ids[idx], truth=self.truth,
            true_latents=None if self.true_latents is None else self.true_latents[idx],
            source=self.source, extra=dict(self.extra),
            modalities={k: v[idx] for k, v in self.modalities.items()},
            image_cache=None if self.image_cache is None else self.image_cache.subset(idx),
            max_pixels=self.max_pixels, id_column=self.id_column, stored_channels=self.stored_channels,
            stored_sizes=self.stored_sizes,
            row_numbers=self.row_numbers[idx], table_rows=self.table_rows, dropped_rows=dict(self.dropped_rows),
            dropped_ids=dict(self.dropped_ids))

    def cached(self, path: str | Path | None = None, *, rebuild: bool = False,
               progress: Callable[[int, int], None] | None = None) -> "CrossModalDataset":
        """This dataset reading its images from a memory-mapped uint8 cache, built on first use.

        See :func:`build_image_cache` (default location ``DATA/.xcausal-cache/``; rebuilt when
        table.csv or an image changes). Values differ from decoding by at most ``0.5 / 255``.
        """
        return build_image_cache(self, path, rebuild=rebuild, progress=progress)

    def summary(self) -> dict:
        """What the data is, as a run records it (config.json ``data``). ``channels`` is the count
        images are read with (resolved when no ``channels`` was asked for); ``stored_channels``
        appears only for a folder mixing grayscale and colour files, so that the summary (and the
        checkpoint fingerprint built from it) of any other dataset is unchanged."""
        out = {"source": self.source, "rows": len(self), "image_size": self.image_size,
               "channels": self.channels, "variables": {v.name: v.type.value for v in self.variables},
               "modalities": {k: int(v.shape[1]) for k, v in self.modalities.items()},
               "has_truth": self.truth is not None}
        if self.mixed_channels:
            out["stored_channels"] = list(self.stored_channels)
        return out


def dataset_from_arrays(
    images: np.ndarray,
    table: pd.DataFrame,
    *,
    truth: Graph | None = None,
    latents: np.ndarray | None = None,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
    source: str = "memory",
    modalities: Mapping[str, np.ndarray] | None = None,
) -> CrossModalDataset:
    """An in-memory dataset from arrays, validated like a loaded one.

    Parameters
    ----------
    images : (N, C, H, W) or (N, H, W), float in [0, 1] or uint8; square
    table : (N, d) DataFrame of variables (optional ``id`` column); d may be 0
    modalities : optional ``{name: (N, L) numeric array}``, rows in table order (see module doc)
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[-1] != images.shape[-2] or images.shape[1] not in (1, 3):
        raise DataError(f"{source}: images must be (N, C, S, S) with C in (1, 3), got {images.shape}")
    if len(images) != len(table):
        raise DataError(f"{source}: row-count mismatch: {len(images)} images, {len(table)} table rows")
    if len(table) < MIN_ROWS:
        raise DataError(f"{source}: {len(table)} row(s); at least {MIN_ROWS} are needed")
    arr = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32, copy=False)
    table = table.reset_index(drop=True)
    _check_cells(table, source)
    table, id_name = _column_roles(table, image_column=None, id_column=None, ignore=(), categorical=categorical,
                                   continuous=continuous, max_categories=MAX_CATEGORIES, where=source)
    variables = infer_variables(table, categorical=categorical, continuous=continuous, where=source,
                                skip=("image", id_name))
    lat = None if latents is None or truth is None else _check_latents(latents, len(table), truth, source)
    mods = _check_modalities(modalities, len(table), lambda name: f"{source}: modality '{name}'")
    return CrossModalDataset(table=table, variables=variables, u=_encode(table, variables, source),
                             image_size=arr.shape[-1], channels=arr.shape[1], image_array=arr,
                             ids=None if id_name is None else table[id_name].to_numpy(), id_column=id_name,
                             truth=truth, true_latents=lat, source=source, modalities=mods)


def load_dataset(
    path: str | Path,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
    missing: Literal["error", "drop"] = "error",
    na_values: Sequence[str] = (),
    max_pixels: int = MAX_PIXELS,
    image_column: str = "image",
    id_column: str | None = None,
    ignore: Sequence[str] = (),
    max_categories: int | None = MAX_CATEGORIES,
) -> CrossModalDataset:
    """Load and validate a dataset directory or ``.npz`` file.

    Column roles (see the module docstring): ``image_column`` names table.csv's column of image
    paths (the ``.npz`` form keeps its images in the ``images`` array, and a table column of that
    name is not a variable); ``id_column`` the column of row ids (default: ``id`` if there is one,
    else a text column of nearly all distinct values); ``ignore`` the columns dropped as the table
    is read; ``max_categories`` the most levels a categorical variable may have (None: no limit,
    and no column is taken as the id for being nearly all distinct).

    Missing cells are the empty and whitespace-only ones and those whose whole text (leading
    blanks removed) is one of ``na_values``; ``missing`` says whether they are an error or their
    rows are dropped. ``NA``, ``None``, ``null``, ``nan`` are values unless listed in ``na_values``.

    Image files must be PNG, JPEG or TIFF by content (whatever their extension) and have at most
    ``max_pixels`` pixels (width × height); both are checked from each file's header.

    Images are not decoded here for the directory form (only their headers are read, to check
    readability and channel counts); ``ds[i]`` decodes on access. ``image_size=None`` (the
    default, as on the command line) keeps the stored size up to :data:`MAX_AUTO_SIZE` (larger
    images are downscaled to it): the longer side of the most common image size.

    Raises
    ------
    DataError
        With a one-line message naming the file, row and/or column of the first problem.
    """
    path = Path(path)
    if image_size is not None and image_size < 4:
        raise DataError(f"--image-size {image_size}: must be at least 4")
    if channels not in (None, 1, 3):
        raise DataError(f"--channels {channels}: must be 1 (grayscale) or 3 (RGB)")
    if missing not in ("error", "drop"):
        raise DataError(f"--missing {missing}: must be 'error' or 'drop'")
    if isinstance(na_values, str) or not all(isinstance(v, str) for v in na_values):
        raise DataError(f"--na-values {na_values!r}: must be a list of texts")
    na_values = tuple(v.strip() for v in na_values if v.strip())
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise DataError(f"--max-pixels {max_pixels!r}: must be a positive integer")
    if not isinstance(image_column, str) or not image_column.strip():
        raise DataError(f"--image-column {image_column!r}: must be a column name")
    if id_column is not None and (not isinstance(id_column, str) or not id_column.strip()):
        raise DataError(f"--id-column {id_column!r}: must be a column name")
    if isinstance(ignore, str) or not all(isinstance(v, str) for v in ignore):
        raise DataError(f"--ignore {ignore!r}: must be a list of column names")
    if max_categories is not None and (isinstance(max_categories, bool) or not isinstance(max_categories, int)
                                       or max_categories < 2):
        raise DataError(f"--max-categories {max_categories!r}: must be an integer >= 2")
    roles = {"image_column": image_column.strip(), "id_column": None if id_column is None else id_column.strip(),
             "ignore": tuple(v.strip() for v in ignore if v.strip()), "max_categories": max_categories}
    if image_size is not None and image_size > MAX_IMAGE_SIZE:
        raise DataError(f"--image-size {image_size}: at most {MAX_IMAGE_SIZE} (images of at most "
                        f"{MAX_PIXELS:,} pixels)")
    shown = cut_middle(str(path), 120)
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError) as exc:  # e.g. a name too long for the filesystem
        raise DataError(f"{shown}: cannot be accessed ({getattr(exc, 'strerror', None) or _first_line(exc)})") from None
    if not exists:
        raise DataError(f"{shown}: no such file or directory")
    if is_dir:
        return _load_dir(path, image_size, channels, categorical, continuous, missing, na_values, max_pixels, roles)
    if path.suffix == ".npz":
        return _load_npz(path, image_size, channels, categorical, continuous, missing, na_values, roles)
    raise DataError(f"{path}: expected a dataset directory (with table.csv) or a .npz file")


MAX_AUTO_SIZE = 64
"""Largest image side kept when no --image-size is given (larger images are downscaled to it): a
step's cost grows with the pixels, and 64 px keeps a default fit of 1,000 images within minutes
on a laptop's CPU (docs/results.md, fit time). ``--image-size`` keeps more."""


def auto_image_size(stored_side: int) -> int:
    """The side images are used at without --image-size: the stored one, at most MAX_AUTO_SIZE."""
    return int(max(4, min(MAX_AUTO_SIZE, stored_side)))


def _drop_or_fail(table: pd.DataFrame, where: str, missing: str) -> tuple[pd.DataFrame, dict[int, str]]:
    """``table`` without its rows holding an empty, NaN or inf cell (``missing="drop"``), else
    checked to hold none, and why each dropped row was dropped (table row number -> e.g. "empty
    cell in column 'age'"). The kept rows keep their index labels (their positions in the table as
    read). When dropping would leave fewer than :data:`MIN_ROWS` rows the DataError names the
    columns to blame: those empty in every row (and suggests ``--ignore``), else the ones with the
    most such cells."""
    dropped: dict[int, str] = {}
    if missing == "drop":
        num = table.apply(lambda s: pd.to_numeric(s, errors="coerce"))
        blank = table.apply(lambda s: s.map(lambda v: isinstance(v, str) and v.strip() == ""))
        cells = pd.DataFrame(table.isna().to_numpy(dtype=bool) | blank.to_numpy(dtype=bool)
                             | np.isinf(num.to_numpy(dtype=float)), index=table.index, columns=table.columns)
        bad = cells.any(axis=1)
        kept = len(table) - int(bad.sum())
        if kept < MIN_ROWS and bad.any():
            _refuse_dropping(cells, kept, where)
        if bad.any():
            logger.warning("%s: dropping %d row(s) with empty, NaN or inf cells", where, int(bad.sum()))
            flags, infinite = cells.to_numpy(), np.isinf(num.to_numpy(dtype=float))
            for i in np.flatnonzero(bad.to_numpy()):
                j = int(np.flatnonzero(flags[i])[0])
                what = "inf or NaN" if infinite[i, j] else "empty cell"
                dropped[_row_label(table, int(i))] = f"{what} in column '{table.columns[j]}'"
        table = table.loc[~bad]
    _check_cells(table, where)
    return table, dropped


def _dropped_ids(table: pd.DataFrame, id_column: str | None, dropped: dict[int, str]) -> dict[str, int]:
    """id (as text) -> table row number of each dropped row that has an id; ``table`` is the table
    before dropping, indexed by row position."""
    if id_column is None or not dropped:
        return {}
    out = {}
    for row in dropped:
        v = table[id_column].iloc[row - 1]
        if not pd.isna(v) and str(v).strip():
            out[str(v).strip()] = row
    return out


def _refuse_dropping(cells: pd.DataFrame, kept: int, where: str) -> None:
    """The DataError of --missing drop leaving ``kept`` < MIN_ROWS rows; ``cells`` marks the
    missing cells (rows × columns)."""
    n = len(cells)
    counts = cells.sum(axis=0)
    empty = [str(c) for c in cells.columns if counts[c] == n]
    if empty:
        names = ", ".join(f"'{c}'" for c in empty)
        raise DataError(f"{where}: column{'s' if len(empty) > 1 else ''} {names} "
                        f"{'are' if len(empty) > 1 else 'is'} empty in every row, so --missing drop leaves "
                        f"{kept} row(s) (at least {MIN_ROWS} are needed); pass --ignore {','.join(empty)}")
    worst = counts[counts > 0].sort_values(ascending=False, kind="stable").head(3)
    named = ", ".join(f"'{c}' in {int(k)}" for c, k in worst.items())
    raise DataError(f"{where}: --missing drop leaves {kept} of {n} row(s) (at least {MIN_ROWS} are needed); "
                    f"missing cells: {named} row(s)")


_OTHER_SEPARATORS = ((";", "';'-separated"), ("\t", "tab-separated"), ("|", "'|'-separated"))
_HEADER_BYTES = 65536  # the header line is looked for in the file's first bytes


def _check_separator(csv: Path) -> None:
    """DataError when table.csv's header line holds more ``;`` (tab, ``|``) than commas: a table
    saved with another separator, which pandas reads as one column or fails on ("Expected 1 fields
    in line 2, saw 3" when a cell holds a decimal comma)."""
    try:
        with open(csv, "rb") as f:
            head = f.read(_HEADER_BYTES)
    except OSError as exc:
        raise DataError(f"{csv}: cannot be read ({exc.strerror or _first_line(exc)})") from None
    header = head.decode("utf-8", "replace").lstrip("\ufeff").lstrip("\r\n").splitlines()[:1]
    line = header[0] if header else ""
    for sep, what in _OTHER_SEPARATORS:
        if line.count(sep) > line.count(","):
            raise DataError(f"{csv}: looks {what}; save it comma-separated")


def _read_table_csv(csv: Path, na_values: Sequence[str] = ()) -> pd.DataFrame:
    """table.csv as strings with stripped header names; DataError on unparsable text, a data row
    with more fields than the header, or an empty or repeated header name.

    Empty cells and those whose text is one of ``na_values`` are NaN; nothing else is (pandas'
    default list of missing-value texts is not used, so ``NA`` or ``None`` stay text).

    Read with ``header=None`` so that the header fixes the number of fields (pandas would
    otherwise turn the first field of longer rows into an index, shifting every cell), and the
    header row is read once more without NA conversion (a column may be called ``NA``); pandas'
    renaming of repeated names (``x, x`` -> ``x, x.1``) and empty ones (``Unnamed: k``) is avoided.
    A table saved with another separator (``;``, tab, ``|``) is refused by name (see
    :func:`_check_separator`).
    """
    _check_separator(csv)
    try:
        rows = pd.read_csv(csv, header=None, dtype=str, keep_default_na=False, na_values=["", *na_values],
                           skipinitialspace=True)
        header = pd.read_csv(csv, header=None, nrows=1, dtype=str, keep_default_na=False,
                             skipinitialspace=True).iloc[0]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{csv}: cannot parse CSV ({_first_line(exc)})") from None
    names = [str(c).strip() for c in header]
    if len(names) != rows.shape[1]:  # not expected: both reads parse the same first line
        raise DataError(f"{csv}: cannot parse the header row")
    seen: set[str] = set()
    for k, name in enumerate(names):
        if not name:
            raise DataError(f"{csv}: column {k + 1} has an empty name in the header row")
        if name in seen:
            raise DataError(f"{csv}: column name '{name}' appears more than once in the header row")
        seen.add(name)
    table = rows.iloc[1:].reset_index(drop=True)
    table.columns = names
    return table


_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def _image_path(root: Path, rootr: Path, rel: str, where: str) -> Path:
    """The image file a table cell names: inside the dataset directory once symlinks are
    resolved, and an existing file; DataError naming ``where`` (file, row, column) otherwise.

    A path is relative to ``root``; an absolute one is taken when it names a place under
    ``root`` (as given or resolved) without ``..``, by its part below ``root``; nothing else
    absolute is looked at. Windows separators (``images\\0.png``, as a table saved on Windows
    holds) are read as ``/`` unless a file of that literal name exists."""
    shown = cut_middle(rel, 80)
    if "\\" in rel and not _WINDOWS_DRIVE.match(rel):
        literal = Path(rel)
        try:  # a literal name is looked up only below root
            keep = not literal.is_absolute() and ".." not in literal.parts and (root / literal).is_file()
        except (OSError, ValueError):
            keep = False
        if not keep:
            rel = rel.replace("\\", "/")
    relp = Path(rel)
    if relp.is_absolute() and ".." not in relp.parts:
        for base in (Path(os.path.abspath(root)), rootr):
            if relp.is_relative_to(base):
                relp = relp.relative_to(base)
                break
    if _WINDOWS_DRIVE.match(rel):
        raise DataError(f"{where}: path '{shown}' is a Windows absolute path; make it relative to the dataset "
                        "directory (e.g. images/0.png)")
    if relp.is_absolute() or ".." in relp.parts:
        raise DataError(f"{where}: path '{shown}' must be relative and inside the dataset directory")
    p = root / relp
    try:
        inside = p.resolve().is_relative_to(rootr)
        exists = p.is_file()
    except (OSError, RuntimeError, ValueError) as exc:  # name too long, a symlink loop, a NUL byte, ...
        raise DataError(f"{where}: path '{shown}' cannot be used ({_first_line(exc)})") from None
    if not inside:
        raise DataError(f"{where}: '{shown}' resolves outside the dataset directory (a symlink?)")
    if not exists:
        raise DataError(f"{where}: file '{shown}' not found")
    return p


def _load_dir(root, image_size, channels, categorical, continuous, missing, na_values,
              max_pixels, roles) -> CrossModalDataset:
    csv = root / "table.csv"
    if not csv.is_file():
        raise DataError(f"{csv}: not found (a dataset directory needs table.csv and images/)")
    _check_inside(root, csv)
    table = _read_table_csv(csv, na_values)
    image_column = roles["image_column"]
    if image_column not in table.columns:
        raise DataError(f"{csv}: no '{image_column}' column (columns: {', '.join(table.columns)}; "
                        "--image-column names the column of image paths)")
    table, id_name = _column_roles(table, categorical=categorical, continuous=continuous, where=str(csv), **roles)
    before_drop = table
    n_raw = len(table)
    table, dropped = _drop_or_fail(table, str(csv), missing)
    keep = table.index.to_numpy()  # positions of the kept rows among the n_raw data rows
    # the index keeps those positions until the dataset is built, so that errors name a row by its
    # number in table.csv also after --missing drop
    if len(table) < MIN_ROWS:
        raise DataError(f"{csv}: {len(table)} row(s); at least {MIN_ROWS} are needed")
    rootr = root.resolve()
    rels: list[str] = []
    found: set[int] = set()  # channel counts of the files
    sizes: dict[int, int] = {}
    for i, rel in enumerate(table[image_column].astype(str)):
        row = int(keep[i]) + 1
        where = f"{csv} row {row}, column '{image_column}'"
        p = _image_path(root, rootr, rel, where)
        try:
            with _open_image(p, max_pixels, f" (row {row})") as img:
                mode = img.mode
                side = max(img.size)
        except DataError:
            raise
        except _IMAGE_ERRORS as exc:
            raise DataError(f"{p}: not a readable PNG, JPEG or TIFF image (row {row}): {_first_line(exc)}") from None
        c = _MODE_CHANNELS.get(mode)
        if c is None:
            raise DataError(f"{p}: unsupported image mode '{mode}' (row {row})")
        sizes[side] = sizes.get(side, 0) + 1
        found.add(c)
        rels.append(str(p.relative_to(root)))
    variables = infer_variables(table, categorical=categorical, continuous=continuous, where=str(csv),
                                skip=(image_column, id_name), max_categories=roles["max_categories"])
    u = _encode(table, variables, str(csv))
    ids = None if id_name is None else table[id_name].to_numpy()
    table = table.reset_index(drop=True)
    truth, latents = _load_truth_dir(root, n_raw, keep)
    modalities = _load_modalities_dir(root, n_raw, keep)
    if image_size is None:
        image_size = auto_image_size(max(sizes, key=lambda k: (sizes[k], k)))
    if channels is None:
        # a folder mixing grayscale and colour files is read as colour: no file loses information
        channels = max(found)
        if len(found) > 1:
            logger.info("%s: images mix grayscale and RGB files; all are read as RGB (--channels 1 for grayscale)",
                        root)
    return CrossModalDataset(
        table=table, variables=variables, u=u, image_size=image_size,
        channels=channels, root=root, image_paths=ImagePaths(root, rels),
        ids=ids, id_column=id_name,
        truth=truth, true_latents=latents, source=str(root), modalities=modalities, max_pixels=max_pixels,
        stored_channels=tuple(sorted(found)), stored_sizes=tuple(sorted(sizes)), row_numbers=keep + 1,
        table_rows=n_raw, dropped_rows=dropped, dropped_ids=_dropped_ids(before_drop, id_name, dropped))


def _encode(table: pd.DataFrame, variables: list[Variable], where: str) -> np.ndarray:
    if not variables:
        return np.zeros((len(table), 0))
    return np.stack([v.encode(table[v.name], where=where) for v in variables], axis=1)


def _check_latents(latents: np.ndarray, n: int, truth: Graph, where: str) -> np.ndarray:
    """True latents as float64 (n, m), m = the truth's latent nodes; numeric and finite."""
    latents = np.asarray(latents)
    if latents.dtype.kind not in "biuf":
        raise DataError(f"{where}: true latents have dtype {latents.dtype}; expected numbers")
    if latents.ndim != 2 or latents.shape[0] != n or latents.shape[1] != len(truth.latent):
        raise DataError(f"{where}: true latents have shape {latents.shape}, expected ({n}, {len(truth.latent)})")
    with np.errstate(over="ignore", invalid="ignore"):
        latents = latents.astype(np.float64)
    if not np.isfinite(latents).all():
        i = int(np.flatnonzero(~np.isfinite(latents).all(axis=1))[0])
        raise DataError(f"{where} row {i + 1}: true latents contain NaN or inf")
    return latents


def memory_budget() -> int:
    """Bytes an array read from a ``.npy`` / ``.npz`` (with its float copy) may need: half this
    machine's physical memory (8 GiB where that cannot be read)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE")) // 2
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return 8 * 2**30


def _npy_header(f, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header of the ``.npy`` data in file object ``f`` (nothing else is
    read); DataError naming ``where`` when it is not a ``.npy`` header."""
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, tokenize.TokenError, zipfile.BadZipFile,
            zlib.error) as exc:  # numpy parses the header's text with tokenize: TokenError when unbalanced
        raise DataError(f"{where}: not a readable .npy array ({_first_line(exc)})") from None
    return tuple(int(k) for k in shape), np.dtype(dtype)


def _check_array_memory(shape: tuple[int, ...], dtype: np.dtype, where: str, *, copy_bytes: int) -> None:
    """DataError when an array of ``shape`` and ``dtype``, plus a copy of ``copy_bytes`` per element
    (a float conversion), would need more than :func:`memory_budget` bytes."""
    elements = 1
    for k in shape:
        elements *= k
    need, budget = elements * (dtype.itemsize + copy_bytes), memory_budget()
    if need > budget:
        raise DataError(f"{where}: array of shape {shape} and dtype {dtype} needs {need / 2**30:,.1f} GiB to load, "
                        f"more than the {budget / 2**30:,.1f} GiB allowed (half this machine's memory)")


def _load_npy(path: Path) -> np.ndarray:
    """One ``.npy`` file, refusing pickled (object) arrays and arrays larger than the memory budget
    (from the header, before anything is allocated); DataError naming the file otherwise."""
    try:
        with open(path, "rb") as f:
            shape, dtype = _npy_header(f, str(path))
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or _first_line(exc)})") from None
    _check_array_memory(shape, dtype, str(path), copy_bytes=8)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({_first_line(exc)})") from None
    if not isinstance(arr, np.ndarray):  # np.load returns an NpzFile for a zip archive
        arr.close()
        raise DataError(f"{path}: expected a .npy file, found an .npz archive")
    return arr


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type name)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` when ``rel`` is a relative path that stays inside ``root`` (symlinks
    resolved), else None."""
    relp = Path(rel)
    if not rel or relp.is_absolute() or ".." in relp.parts:
        return None
    p = root / relp
    try:
        inside = p.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an embedded NUL, ...
        return None
    return p if inside else None


def _check_inside(root: Path, p: Path) -> None:
    """DataError when ``p`` (a file of the dataset directory ``root``) resolves outside ``root``:
    a symlink to elsewhere is never followed."""
    try:
        inside = p.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, ...
        raise DataError(f"{p}: cannot be used ({_first_line(exc)})") from None
    if not inside:
        raise DataError(f"{p}: resolves outside the dataset directory (a symlink?)")


def _load_truth_dir(root: Path, n: int, keep: np.ndarray) -> tuple[Graph | None, np.ndarray | None]:
    """truth.json and its latents; ``n`` rows before dropping, ``keep`` = indices of kept rows."""
    tj = root / "truth.json"
    if not tj.is_file():
        return None, None
    _check_inside(root, tj)
    try:
        truth = Graph.from_dict(read_json(tj), where=str(tj))
    except ValueError as exc:
        raise DataError(_first_line(exc)) from None
    lat = truth.extra.get("latents")
    if lat is None or lat == "":
        return truth, None
    if not isinstance(lat, str):
        raise DataError(f"{tj}: 'latents' must be a file name relative to the dataset directory, got {lat!r}")
    lp = _inside(root, lat)
    if lp is None:
        raise DataError(f"{tj}: latents file '{lat}' must be a relative path inside the dataset directory")
    if not lp.is_file():
        raise DataError(f"{tj}: latents file '{lat}' not found")
    return truth, _check_latents(_load_npy(lp), n, truth, str(lp))[keep]


def _check_modality(arr: np.ndarray, n: int, where: str) -> np.ndarray:
    """Validate one modality array, (n, L) numeric, finite, L >= 2; returns it as float32."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{where}: dtype {arr.dtype} is not numeric (expected integer or float)")
    if arr.ndim != 2:
        raise DataError(f"{where}: expected a 2-D array (rows, length), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise DataError(f"{where}: {arr.shape[0]} row(s) but the table has {n} data row(s)")
    if arr.shape[1] < _MIN_MODALITY_LEN:
        raise DataError(f"{where}: length {arr.shape[1]} per row; at least {_MIN_MODALITY_LEN} are needed")
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where} row {i + 1}: NaN, inf or a value beyond float32 range "
                        f"({int(bad.sum())} such row(s))")
    return out


def _check_modality_name(name: str, where: str) -> None:
    if not _MODALITY_NAME.match(name):
        raise DataError(f"{where}: modality name '{name}' must match [A-Za-z0-9_-]+")


def _check_modalities(modalities: Mapping[str, np.ndarray] | None, n: int,
                      where: Callable[[str], str]) -> dict[str, np.ndarray]:
    """Validate in-memory modalities; ``where(name)`` gives the error prefix of each."""
    out: dict[str, np.ndarray] = {}
    for name, arr in (modalities or {}).items():
        _check_modality_name(str(name), where(name))
        out[str(name)] = _check_modality(arr, n, where(name))
    return out


def _load_modalities_dir(root: Path, n: int, keep: np.ndarray) -> dict[str, np.ndarray]:
    """``modalities/<name>.npy``, ``n`` rows before dropping, ``keep`` = indices of kept rows."""
    mdir = root / MODALITY_DIR
    if not mdir.exists():
        return {}
    if not mdir.is_dir():
        raise DataError(f"{mdir}: expected a directory of <name>.npy files")
    _check_inside(root, mdir)
    out: dict[str, np.ndarray] = {}
    for p in sorted(mdir.iterdir()):
        if p.name.startswith("."):
            continue
        if p.suffix != ".npy" or not p.is_file():
            raise DataError(f"{p}: {MODALITY_DIR}/ may hold only <name>.npy files")
        _check_modality_name(p.stem, str(p))
        _check_inside(root, p)
        out[p.stem] = _check_modality(_load_npy(p), n, str(p))[keep]
    return out


_NPZ_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _npz_array(z, key: str, path: Path) -> np.ndarray:
    """One array of an open ``.npz``; DataError for pickled (object) arrays or corrupt members."""
    try:
        return z[key]
    except _NPZ_READ_ERRORS as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: array '{key}' holds Python objects (pickled data is never loaded; "
                            "store numbers or strings)") from None
        raise DataError(f"{path}: array '{key}' cannot be read ({_first_line(exc)})") from None


def _check_npz_headers(z, path: Path) -> None:
    """Every member's shape and dtype from its ``.npy`` header, checked against the memory budget
    before any array is read (``images`` also needs a float32 copy, the others a float64 one)."""
    names = set(z.zip.namelist())
    for key in z.files:
        member = f"{key}.npy" if f"{key}.npy" in names else key
        where = f"{path}: array '{key}'"
        try:
            with z.zip.open(member) as f:
                shape, dtype = _npy_header(f, where)
        except DataError:
            raise
        except _NPZ_READ_ERRORS as exc:
            raise DataError(f"{where} cannot be read ({_first_line(exc)})") from None
        _check_array_memory(shape, dtype, where, copy_bytes=4 if key == "images" else 8)


def _load_npz(path, image_size, channels, categorical, continuous, missing, na_values, roles) -> CrossModalDataset:
    try:
        z = np.load(path, allow_pickle=False)
    except _NPZ_READ_ERRORS as exc:
        raise DataError(f"{path}: not a readable .npz file ({_first_line(exc)})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy saved under a .npz name
        raise DataError(f"{path}: not an .npz archive (a single .npy array)")
    with z:
        for key in ("images", "table", "columns"):
            if key not in z.files:
                raise DataError(f"{path}: missing array '{key}' (has: {', '.join(z.files)})")
        _check_npz_headers(z, path)
        arrays = {k: _npz_array(z, k, path) for k in z.files}
    images, tab, columns = arrays["images"], arrays["table"], arrays["columns"]
    ids, latents = arrays.get("ids"), arrays.get("latents")
    truth_a = arrays.get("truth")
    raw_mods = {k[len(_MODALITY_PREFIX):]: v for k, v in arrays.items() if k.startswith(_MODALITY_PREFIX)}
    if columns.ndim != 1:
        raise DataError(f"{path}: 'columns' must be a 1-D array of names, got shape {columns.shape}")
    cols = [(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c)).strip() for c in columns.tolist()]
    for j, c in enumerate(cols):
        if not c:
            raise DataError(f"{path}: 'columns' entry {j + 1} is an empty name")
        if c in cols[:j]:
            raise DataError(f"{path}: column name '{c}' appears more than once in 'columns'")
    if tab.dtype.kind == "S":
        tab = np.char.decode(tab, "utf-8", "replace")
    if tab.dtype.kind not in "biufU":
        raise DataError(f"{path}: 'table' dtype {tab.dtype} not supported (numbers or strings)")
    if tab.ndim == 1 and len(cols) == 1:
        tab = tab[:, None]
    if tab.ndim != 2 or tab.shape[1] != len(cols):
        raise DataError(f"{path}: 'table' has shape {tab.shape} but 'columns' names {len(cols)} column(s)")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataError(f"{path}: 'images' must be N×H×W or N×C×H×W, got shape {images.shape}")
    if images.shape[0] != tab.shape[0]:
        raise DataError(f"{path}: row-count mismatch: 'images' has {images.shape[0]} rows, 'table' has {tab.shape[0]}")
    if ids is not None and (ids.ndim != 1 or len(ids) != len(tab)):
        raise DataError(f"{path}: 'ids' has shape {ids.shape}, expected ({tab.shape[0]},) (one per table row)")
    if images.shape[1] not in (1, 3):
        raise DataError(f"{path}: 'images' has {images.shape[1]} channels; expected 1 or 3")
    if min(images.shape[2:]) < 1:
        raise DataError(f"{path}: 'images' are {images.shape[2]}×{images.shape[3]} pixels")
    if images.dtype != np.uint8 and images.dtype.kind != "f":
        raise DataError(f"{path}: 'images' dtype {images.dtype} not supported (uint8 or float in [0, 1])")
    if latents is not None and (latents.ndim < 1 or len(latents) != len(tab)):
        raise DataError(f"{path}: 'latents' has shape {latents.shape}, expected {tab.shape[0]} rows")
    truth_s = None
    if truth_a is not None:
        if truth_a.ndim != 0 or truth_a.dtype.kind not in "US":
            raise DataError(f"{path}: 'truth' must be one JSON string, got a {truth_a.dtype} array of shape "
                            f"{truth_a.shape}")
        truth_s = truth_a.item()
        truth_s = truth_s.decode("utf-8", "replace") if isinstance(truth_s, bytes) else str(truth_s)
    table = pd.DataFrame({c: tab[:, j] for j, c in enumerate(cols)}, index=pd.RangeIndex(len(tab)))
    if tab.dtype.kind in "US":
        # "nan": how numpy writes a float NaN into a text array
        table = table.replace({v: np.nan for v in ("", "nan", *na_values)})
    if ids is not None and roles["id_column"] not in (None, "id"):
        raise DataError(f"{path}: holds an 'ids' array and --id-column {roles['id_column']} names another id; "
                        "give one of them")
    if ids is not None and "id" not in table.columns:
        table.insert(0, "id", np.char.decode(ids, "utf-8", "replace") if ids.dtype.kind == "S" else ids.astype(str))
    image_column = roles["image_column"] if roles["image_column"] in table.columns else None
    table, id_name = _column_roles(table, categorical=categorical, continuous=continuous, where=str(path),
                                   **{**roles, "image_column": image_column})
    keep = np.ones(len(table), bool)
    n_raw, dropped, before = len(table), {}, table
    if missing == "drop":
        table, dropped = _drop_or_fail(table, str(path), missing)
        keep = before.index.isin(table.index)
    else:
        _check_cells(table, str(path))
    row_numbers = np.flatnonzero(keep) + 1  # the table keeps its index (errors name these rows) until built
    if len(table) < MIN_ROWS:
        raise DataError(f"{path}: {len(table)} row(s); at least {MIN_ROWS} are needed")
    modalities = {}
    for name, arr in raw_mods.items():
        where = f"{path}: array '{_MODALITY_PREFIX}{name}'"
        _check_modality_name(name, where)
        modalities[name] = _check_modality(arr, len(keep), where)[keep]
    images = images[keep]
    if images.dtype == np.uint8:
        arr = images.astype(np.float32) / 255.0
    elif images.dtype.kind == "f":
        arr = images.astype(np.float32)
        if not np.isfinite(arr).all():
            raise DataError(f"{path}: 'images' contains NaN or inf")
        if arr.min() < 0 or arr.max() > 1:
            raise DataError(f"{path}: float 'images' must lie in [0, 1] (found {arr.min():.3g}..{arr.max():.3g})")
    else:
        raise DataError(f"{path}: 'images' dtype {images.dtype} not supported (uint8 or float in [0, 1])")
    if channels is not None and channels != arr.shape[1]:
        arr = arr.mean(axis=1, keepdims=True) if channels == 1 else np.repeat(arr, 3, axis=1)
    stored_side = int(max(arr.shape[-2:]))
    if image_size is None:
        image_size = auto_image_size(stored_side)
    if arr.shape[-2:] != (image_size, image_size):
        _check_array_memory((arr.shape[0], arr.shape[1], image_size, image_size), np.dtype(np.float32),
                            f"{path}: 'images' resized to {image_size}×{image_size}", copy_bytes=0)
    arr = _resize_array(arr, image_size)
    ids = None if id_name is None else table[id_name].to_numpy()
    variables = infer_variables(table, categorical=categorical, continuous=continuous, where=str(path),
                                skip=(image_column, id_name), max_categories=roles["max_categories"])
    u = _encode(table, variables, str(path))
    table = table.reset_index(drop=True)
    truth = lat = None
    if truth_s:
        try:
            truth = Graph.from_dict(json.loads(truth_s), where=f"{path}:truth")
        except (json.JSONDecodeError, ValueError) as exc:
            raise DataError(f"{path}: 'truth' is not a valid graph JSON string ({_first_line(exc)})") from None
        if latents is not None:
            lat = _check_latents(latents[keep], len(table), truth, f"{path}:latents")
    return CrossModalDataset(
        table=table, variables=variables, u=u, image_size=image_size, channels=arr.shape[1],
        image_array=arr, ids=ids, id_column=id_name,
        truth=truth, true_latents=lat, source=str(path), modalities=modalities, stored_sizes=(stored_side,),
        row_numbers=row_numbers, table_rows=n_raw, dropped_rows=dropped, dropped_ids=_dropped_ids(before, id_name, dropped))


# --------------------------------------------------------------------------- writers
def _table_for_output(ds_table: pd.DataFrame) -> pd.DataFrame:
    return ds_table.drop(columns=[c for c in ("image",) if c in ds_table.columns])


def _write_truth(out: Path, truth: Graph | None, latents: np.ndarray | None) -> None:
    if truth is None:
        return
    t = Graph(nodes=truth.nodes, edges=truth.edges, method=truth.method or "truth", extra=dict(truth.extra))
    if latents is not None:
        np.save(out / "latents.npy", np.asarray(latents, dtype=np.float64))
        t.extra["latents"] = "latents.npy"
    else:
        t.extra.pop("latents", None)
    write_json(out / "truth.json", t.to_dict())


def save_dataset_dir(
    out: str | Path,
    images: np.ndarray,
    table: pd.DataFrame,
    *,
    truth: Graph | None = None,
    latents: np.ndarray | None = None,
    overwrite: bool = False,
    extra_files: dict[str, dict] | None = None,
    modalities: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write the directory form atomically.

    Parameters
    ----------
    images : (N, C, H, W) or (N, H, W), float in [0, 1] or uint8
    table : (N, d) DataFrame of variables (and optionally ``id``); an ``image`` column is replaced
    extra_files : optional ``{filename: json-able dict}`` written beside truth.json
    modalities : optional ``{name: (N, L) numeric array}``, written as ``modalities/<name>.npy``
        (float32); validated like on loading
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    if len(images) != len(table):
        raise DataError(f"row-count mismatch: {len(images)} images, {len(table)} table rows")
    mods = _check_modalities(modalities, len(table), lambda name: f"modality '{name}'")
    u8 = images if images.dtype == np.uint8 else np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    out = Path(out)
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        width = max(6, len(str(len(u8) - 1)))
        names = []
        for i, im in enumerate(u8):
            name = f"images/{i:0{width}d}.png"
            arr = im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0)
            Image.fromarray(arr, mode="L" if im.shape[0] == 1 else "RGB").save(tmp / name, optimize=False, compress_level=1)
            names.append(name)
        tab = _table_for_output(table).reset_index(drop=True).copy()
        tab.insert(0, "image", names)
        tab.to_csv(tmp / "table.csv", index=False)
        _write_truth(tmp, truth, latents)
        if mods:
            (tmp / MODALITY_DIR).mkdir()
            for name, arr in mods.items():
                np.save(tmp / MODALITY_DIR / f"{name}.npy", arr)
        for fname, obj in (extra_files or {}).items():
            write_json(tmp / fname, obj)
    return out


def save_dataset_npz(
    out: str | Path,
    images: np.ndarray,
    table: pd.DataFrame,
    *,
    truth: Graph | None = None,
    latents: np.ndarray | None = None,
    overwrite: bool = False,
    modalities: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write the npz form (images stored as uint8) atomically.

    ``modalities`` (optional ``{name: (N, L) numeric array}``) are stored as float32 arrays
    ``modality_<name>``, validated like on loading.
    """
    out = Path(out)
    if out.suffix != ".npz":
        raise DataError(f"{out}: npz output must end in .npz")
    check_output(out, overwrite=overwrite, kind="file")
    images = np.asarray(images)
    if len(images) != len(table):
        raise DataError(f"row-count mismatch: {len(images)} images, {len(table)} table rows")
    mods = _check_modalities(modalities, len(table), lambda name: f"modality '{name}'")
    u8 = images if images.dtype == np.uint8 else np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    tab = _table_for_output(table).reset_index(drop=True)
    ids = np.array([str(v) for v in tab.pop("id")], dtype=str) if "id" in tab.columns else None
    numeric = all(pd.to_numeric(tab[c], errors="coerce").notna().all() for c in tab.columns)
    arr = (tab.apply(pd.to_numeric).to_numpy(dtype=np.float64) if numeric
           else np.array([[str(v) for v in row] for row in tab.itertuples(index=False)], dtype=str))
    arrays = {"images": u8, "table": arr, "columns": np.asarray(list(tab.columns), dtype=str)}
    if ids is not None:
        arrays["ids"] = ids
    if truth is not None:
        t = Graph(nodes=truth.nodes, edges=truth.edges, method=truth.method or "truth",
                  extra={k: v for k, v in truth.extra.items() if k != "latents"})
        arrays["truth"] = np.asarray(t.to_json())
        if latents is not None:
            arrays["latents"] = np.asarray(latents, dtype=np.float64)
    arrays.update({f"{_MODALITY_PREFIX}{name}": arr for name, arr in mods.items()})
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        tmp.replace(out)
    except OSError as exc:
        raise DataError(f"{out}: cannot write ({exc.strerror or _first_line(exc)})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return out


def dataset_images_native(ds: CrossModalDataset) -> np.ndarray:
    """All images at their stored resolution when they share one size (for conversion)."""
    if ds.image_array is not None:
        return ds.image_array
    assert ds.image_paths is not None
    sizes = set()
    for p in ds.image_paths:
        with _decoding(p), _open_image(p, ds.max_pixels) as img:
            sizes.add(_upright_size(img))
    if len(sizes) != 1:
        raise DataError(f"{ds.source}: images have {len(sizes)} different sizes; pass --image-size to resize them")
    (w, h), = sizes
    if w != h:
        raise DataError(f"{ds.source}: images are {w}×{h}; pass --image-size to make them square")
    out = np.empty((len(ds.image_paths), ds.channels, w, w), dtype=np.float32)
    for i, p in enumerate(ds.image_paths):
        with _decoding(p), _open_image(p, ds.max_pixels) as img:
            out[i] = _to_chw(img, ds.channels, w)
    return out


def convert_dataset(src: str | Path, out: str | Path, *, image_size: int | None = None,
                    channels: int | None = None, overwrite: bool = False, **data_options) -> Path:
    """Directory -> npz or npz -> directory, decided by ``out``'s suffix.

    ``data_options`` are :func:`load_dataset`'s (column roles, missing, types, ...): the output
    holds what a fit would read — the variables, the ids as the standard ``id`` column, the rows
    kept — in the standard layout. Without ``image_size`` the images keep their stored size."""
    check_output(out, overwrite=overwrite, kind="file" if str(out).endswith(".npz") else "directory")
    ds = load_dataset(src, image_size=image_size or 32, channels=channels, **data_options)
    if image_size is None:
        images = dataset_images_native(ds) if ds.image_paths is not None else \
            _native_npz_images(src, channels)[np.asarray(ds.row_numbers) - 1]
    else:
        images = ds.images()
    names = [v.name for v in ds.variables]
    table = ds.table[names].copy()
    if ds.ids is not None:
        if "id" in names:
            raise DataError(f"{src}: a variable is called 'id', the name the converted ids would take; pass "
                            "--ignore for the id column or rename the variable")
        table.insert(0, "id", ds.ids)
    if str(out).endswith(".npz"):
        return save_dataset_npz(out, images, table, truth=ds.truth, latents=ds.true_latents, overwrite=overwrite,
                                modalities=ds.modalities)
    return save_dataset_dir(out, images, table, truth=ds.truth, latents=ds.true_latents, overwrite=overwrite,
                            modalities=ds.modalities)


def _native_npz_images(src: str | Path, channels: int | None) -> np.ndarray:
    with np.load(src, allow_pickle=False) as z:
        images = z["images"]
    if images.ndim == 3:
        images = images[:, None]
    if channels is not None and channels != images.shape[1]:
        f = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
        images = f.mean(axis=1, keepdims=True) if channels == 1 else np.repeat(f, 3, axis=1)
    return images
