"""Image decoding of the directory form: 16-bit, alpha, EXIF orientation, palettes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xcausal.data.dataset import _to_chw, convert_dataset, load_dataset
from xcausal.io import DataError

N = 10  # the contract's minimum number of rows


def _dataset(tmp_path: Path, images: list[Image.Image], suffix: str = ".png", **save_kw) -> Path:
    """A dataset directory with the given images (cycled to N rows) and one binary variable."""
    d = tmp_path / "ds"
    (d / "images").mkdir(parents=True)
    names = []
    for i in range(N):
        name = f"images/{i}{suffix}"
        images[i % len(images)].save(d / name, **save_kw)
        names.append(name)
    pd.DataFrame({"image": names, "b": [0, 1] * (N // 2)}).to_csv(d / "table.csv", index=False)
    return d


# ---------------------------------------------------------------- 16-bit grayscale
def _gradient16(w: int = 64, h: int = 16) -> np.ndarray:
    return np.tile(np.linspace(0, 65535, w).round().astype(np.uint16), (h, 1))


def test_16bit_png_spans_its_full_range(tmp_path):
    raw = _gradient16(64, 64)
    img = Image.fromarray(raw)
    assert img.mode == "I;16"
    ds = load_dataset(_dataset(tmp_path, [img]), image_size=64)
    assert ds.channels == 1
    x = ds.images([0])[0, 0]
    assert x.min() < 0.01 and x.max() > 0.99  # scaled by 65535, not clipped at 255
    np.testing.assert_allclose(x, raw / 65535.0, atol=1e-6)  # no 8-bit rounding
    assert np.all(np.diff(x, axis=1) > 0)
    small = load_dataset(ds.root, image_size=16).images([0])[0, 0]
    assert small.min() < 0.05 and small.max() > 0.95 and np.all(np.diff(small, axis=1) > 0)
    rgb = load_dataset(ds.root, image_size=64, channels=3).images([0])[0]
    assert rgb.shape == (3, 64, 64) and np.array_equal(rgb[0], rgb[2])


def test_dark_16bit_png_is_not_stretched(tmp_path):
    raw = np.tile(np.arange(0, 256, 4, dtype=np.uint16), (64, 1))  # 16-bit values that fit 8 bits
    ds = load_dataset(_dataset(tmp_path, [Image.fromarray(raw)]), image_size=64)
    x = ds.images([0])[0, 0]
    assert x.max() < 0.005  # a dark 16-bit image stays dark (it is not read as 8-bit)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I"])
def test_every_16bit_mode_is_scaled_by_65535(mode):
    raw = _gradient16(32, 8)
    if mode == "I":
        img = Image.fromarray(raw.astype(np.int32))
    else:
        dtype = ">u2" if mode == "I;16B" else "<u2"
        img = Image.frombytes(mode, (32, 8), raw.astype(dtype).tobytes())
    assert img.mode == mode
    x = _to_chw(img, 1, 32)
    assert x.shape == (1, 32, 32) and x.dtype == np.float32
    assert x.min() < 0.01 and x.max() > 0.99
    np.testing.assert_allclose(x[0, 0], raw[0] / 65535.0, atol=0.02)  # rows stretched 8 -> 32


def test_16bit_tiff_loads_through_the_header_check(tmp_path):
    img = Image.fromarray(_gradient16(32, 32).astype(np.int32))  # mode I, 32-bit TIFF
    ds = load_dataset(_dataset(tmp_path, [img], suffix=".tif"), image_size=32)
    x = ds.images([0])[0, 0]
    assert ds.channels == 1 and x.min() < 0.01 and x.max() > 0.99


# ---------------------------------------------------------------- alpha
def test_rgba_is_composited_on_black(tmp_path):
    arr = np.zeros((8, 8, 4), dtype=np.uint8)
    arr[..., 0] = 255  # red everywhere
    arr[:, :4, 3] = 255  # left half opaque
    arr[:, 4:, 3] = 0  # right half transparent
    arr[0, 0, 3] = 128  # one half-transparent pixel
    img = Image.fromarray(arr)
    assert img.mode == "RGBA"
    ds = load_dataset(_dataset(tmp_path, [img]), image_size=8)
    assert ds.channels == 3
    x = ds.images([0])[0]
    np.testing.assert_allclose(x[:, 1:, :4].reshape(3, -1).mean(axis=1), [1.0, 0.0, 0.0], atol=1e-6)
    assert x[:, :, 4:].max() == 0.0  # transparent -> black
    assert abs(x[0, 0, 0] - 128 / 255) < 0.01
    gray = load_dataset(ds.root, image_size=8, channels=1).images([0])[0, 0]
    assert gray[:, 4:].max() == 0.0 and abs(gray[1, 0] - 0.299) < 0.01  # luma of red


def test_la_counts_as_one_channel(tmp_path):
    arr = np.full((8, 8, 2), 200, dtype=np.uint8)
    arr[:, :4, 1] = 255  # opaque left half
    arr[:, 4:, 1] = 0  # transparent right half
    img = Image.merge("LA", [Image.fromarray(arr[..., 0]), Image.fromarray(arr[..., 1])])
    ds = load_dataset(_dataset(tmp_path, [img]), image_size=8)
    assert ds.channels == 1
    x = ds.images([0])[0, 0]
    assert np.allclose(x[:, :4], 200 / 255) and x[:, 4:].max() == 0.0


# ---------------------------------------------------------------- palette
def test_palette_image_is_rgb(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * (3 * 254))
    for i in range(8):
        for j in range(4, 8):
            img.putpixel((j, i), 1)
    assert img.mode == "P"
    ds = load_dataset(_dataset(tmp_path, [img]), image_size=8)
    assert ds.channels == 3
    x = ds.images([0])[0]
    np.testing.assert_allclose(x[:, :, :4].reshape(3, -1).mean(axis=1), [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(x[:, :, 4:].reshape(3, -1).mean(axis=1), [0, 0, 1], atol=1e-6)


def test_palette_transparency_is_composited_on_black(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 255, 255, 0, 255, 0] + [0] * (3 * 254))
    img.paste(1, (0, 0, 4, 8))
    img.info["transparency"] = 0  # index 0 (white, the right half) is transparent
    ds = load_dataset(_dataset(tmp_path, [img]), image_size=8)
    x = ds.images([0])[0]
    assert ds.channels == 3 and x[:, :, 4:].max() == 0.0
    np.testing.assert_allclose(x[:, :, :4].reshape(3, -1).mean(axis=1), [0, 1, 0], atol=1e-6)


# ---------------------------------------------------------------- EXIF orientation
def _upright() -> np.ndarray:
    """32x32 gray, bright block in the top-left quadrant and a dimmer one top-right."""
    a = np.zeros((32, 32), dtype=np.uint8)
    a[:16, :16] = 240
    a[:16, 16:] = 120
    return a


def test_jpeg_exif_orientation_is_applied(tmp_path):
    upright = _upright()
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # orientation 6: display = stored turned 90 deg clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    d = _dataset(tmp_path, [Image.fromarray(stored)], suffix=".jpg", exif=exif, quality=95)
    with Image.open(d / "images" / "0.jpg") as img:
        assert img.getexif().get(0x0112) == 6 and img.size == (32, 32)
    x = load_dataset(d, image_size=32).images([0])[0, 0]
    quads = [x[:16, :16].mean(), x[:16, 16:].mean(), x[16:, :16].mean(), x[16:, 16:].mean()]
    np.testing.assert_allclose(quads, [240 / 255, 120 / 255, 0, 0], atol=0.05)
    # resizing happens after the rotation, too
    y = load_dataset(d, image_size=8).images([0])[0, 0]
    assert y[:4, :4].mean() > 0.8 and y[4:, :].mean() < 0.1


def test_exif_orientation_swaps_the_native_size(tmp_path):
    upright = np.zeros((16, 32), dtype=np.uint8)  # 32 wide, 16 tall as displayed
    upright[:, :16] = 240
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # stored 16 wide, 32 tall
    exif = Image.Exif()
    exif[0x0112] = 6
    d = _dataset(tmp_path, [Image.fromarray(stored)], suffix=".jpg", exif=exif, quality=95)
    with pytest.raises(DataError, match="images are 32×16"):  # width x height as displayed
        convert_dataset(d, tmp_path / "out.npz")


# ---------------------------------------------------------------- formats and size (by content)
def _png_header_only(w: int, h: int) -> bytes:
    """A PNG signature + IHDR claiming ``w`` × ``h``, no pixel data."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + end


def _other_format(fmt: str) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 100, np.uint8)).convert("RGB" if fmt == "WEBP" else "L").save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, name", [("EPS", "PostScript"), ("GIF", "GIF"), ("BMP", "BMP"), ("WEBP", "WebP"),
                                       ("PPM", None), ("ICO", "ICO")])
def test_other_formats_saved_as_png_are_refused(tmp_path, fmt, name):
    """PIL decodes whatever it recognises, whatever the extension (PostScript through Ghostscript)."""
    d = _dataset(tmp_path, [Image.fromarray(np.zeros((8, 8), np.uint8))])
    (d / "images" / "3.png").write_bytes(_other_format(fmt))
    with pytest.raises(DataError) as exc:
        load_dataset(d)
    msg = str(exc.value)
    expected = (f"a {name} file; images must be PNG, JPEG or TIFF" if name
                else "not a readable PNG, JPEG or TIFF image")
    assert msg == f"{d / 'images' / '3.png'}: {expected} (row 4)"


def test_a_file_swapped_after_loading_is_refused_when_decoded(tmp_path):
    d = _dataset(tmp_path, [Image.fromarray(np.zeros((8, 8), np.uint8))])
    ds = load_dataset(d, image_size=8)
    (d / "images" / "2.png").write_bytes(_other_format("GIF"))
    assert ds.images([1]).shape == (1, 1, 8, 8)
    with pytest.raises(DataError, match=r"2\.png: a GIF file; images must be PNG, JPEG or TIFF"):
        ds.images([2])


@pytest.mark.parametrize("w, h", [(9000, 9000), (10_000, 10_000), (70_000, 70_000)])
def test_images_over_the_pixel_limit_are_refused_without_a_pil_warning(tmp_path, w, h):
    """64 megapixels by default; PIL itself only warns from ~89 and refuses from ~179 megapixels."""
    import warnings

    d = _dataset(tmp_path, [Image.fromarray(np.zeros((8, 8), np.uint8))])
    (d / "images" / "5.png").write_bytes(_png_header_only(w, h))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError) as exc:
            load_dataset(d)
    assert [str(c.message) for c in caught if issubclass(c.category, Image.DecompressionBombWarning)] == []
    msg = str(exc.value)
    assert msg.startswith(f"{d / 'images' / '5.png'}: image ") and "(row 6)" in msg and "\n" not in msg
    if w * h < 2 * Image.MAX_IMAGE_PIXELS:
        assert msg.endswith(f"of {w}×{h} = {w * h:,} pixels; at most 64,000,000 are allowed (row 6) (--max-pixels)")


def test_max_pixels(tmp_path):
    d = _dataset(tmp_path, [Image.fromarray(np.zeros((20, 10), np.uint8))])
    assert len(load_dataset(d, max_pixels=200)) == N
    with pytest.raises(DataError, match=r"0\.png: image of 10×20 = 200 pixels; at most 199 are allowed \(row 1\)"):
        load_dataset(d, max_pixels=199)
    with pytest.raises(DataError, match="--max-pixels 0: must be a positive integer"):
        load_dataset(d, max_pixels=0)


def test_cli_refuses_a_postscript_png_in_one_line(tmp_path, capsys):
    from xcausal.cli import main

    d = _dataset(tmp_path, [Image.fromarray(np.zeros((8, 8), np.uint8))])
    (d / "images" / "0.png").write_bytes(_other_format("EPS"))
    assert main(["info", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: {d / 'images' / '0.png'}: a PostScript file; images must be PNG, JPEG or "
                                "TIFF (row 1)"]
