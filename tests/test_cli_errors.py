"""The command line's last-resort error handling: every failure is one line on stderr.

An unexpected exception inside a verb is one ``internal error: <Type>: <message> (rerun with
--debug for the traceback)`` line with exit status 1; running out of memory is one ``error:`` line
naming what asked for the memory, exit status 2; Ctrl-C is ``interrupted``, exit status 130.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

import xcausal.cli
import xcausal.data.dataset
import xcausal.data.simulate
from xcausal.cli import main


def _run(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


def _verb_calls(tmp_path: Path) -> dict[str, tuple[str, str, list[str]]]:
    """verb -> (module, function the verb calls, arguments that reach that call)."""
    return {
        "info": ("xcausal.data.dataset", "load_dataset", ["info", str(tmp_path)]),
        "convert": ("xcausal.data.dataset", "convert_dataset", ["convert", str(tmp_path), "--out", str(tmp_path / "o.npz")]),
        "simulate": ("xcausal.data.simulate", "simulate_appendix_e", ["simulate", "--out", str(tmp_path / "sim")]),
        "evaluate": ("xcausal.evaluate", "evaluate_run", ["evaluate", str(tmp_path / "g.json"), "--truth", str(tmp_path)]),
        "intervene": ("xcausal.api", "intervention_grid",
                      ["intervene", str(tmp_path), "--var", "u1", "--values", "1e308", "--out", str(tmp_path / "g.png")]),
    }


VERBS = ["info", "convert", "simulate", "evaluate", "intervene"]


def _raise(exc: BaseException):
    def boom(*args, **kwargs):
        raise exc
    return boom


def _patch(monkeypatch, tmp_path: Path, verb: str, exc: BaseException) -> list[str]:
    import importlib

    module, func, args = _verb_calls(tmp_path)[verb]
    monkeypatch.setattr(importlib.import_module(module), func, _raise(exc))
    return args


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("exc, shown", [
    (RuntimeError("value cannot be converted to type float without overflow"),
     "RuntimeError: value cannot be converted to type float without overflow"),
    (KeyError("age"), "KeyError: 'age'"),
    (RuntimeError("first line\nsecond line\nthird"), "RuntimeError: first line"),
    (AttributeError(), "AttributeError"),
])
def test_unexpected_exception_is_one_internal_error_line(verb, exc, shown, tmp_path, monkeypatch):
    code, err = _run(_patch(monkeypatch, tmp_path, verb, exc))
    lines = err.splitlines()
    assert code == 1, err
    assert lines == [f"internal error: {shown} (rerun with --debug for the traceback)"], err
    assert "Traceback" not in err


@pytest.mark.parametrize("verb", VERBS)
def test_memory_error_is_one_error_line_exit_2(verb, tmp_path, monkeypatch):
    msg = "Unable to allocate 50.3 GiB for an array with shape (60, 1, 30000, 30000) and data type uint8"
    code, err = _run(_patch(monkeypatch, tmp_path, verb, MemoryError(msg)))
    assert code == 2, err
    assert err.splitlines() == [f"error: out of memory: {msg}"], err


def test_memory_error_names_the_function_that_asked(tmp_path, monkeypatch):
    """The innermost xcausal function on the way (here the dataset directory reader) is named."""
    (tmp_path / "table.csv").write_text("image,x\n")
    monkeypatch.setattr(xcausal.data.dataset, "_read_table_csv",
                        _raise(MemoryError("Unable to allocate 8.00 GiB for an array with shape (1073741824,)")))
    code, err = _run(["info", str(tmp_path)])
    assert code == 2, err
    assert err.splitlines() == ["error: out of memory in xcausal.data.dataset._load_dir: Unable to allocate 8.00 GiB "
                                "for an array with shape (1073741824,)"], err


def test_memory_error_without_a_message(tmp_path, monkeypatch):
    code, err = _run(_patch(monkeypatch, tmp_path, "simulate", MemoryError()))
    assert code == 2 and err.splitlines() == ["error: out of memory"], err


def test_torch_cpu_allocation_failure_counts_as_out_of_memory(tmp_path, monkeypatch):
    msg = "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 8 bytes."
    code, err = _run(_patch(monkeypatch, tmp_path, "intervene", RuntimeError(msg)))
    assert code == 2 and err.splitlines() == [f"error: out of memory: {msg}"], err


def test_debug_raises_the_original_exception(tmp_path, monkeypatch):
    args = _patch(monkeypatch, tmp_path, "info", KeyError("age"))
    with pytest.raises(KeyError, match="age"):
        _run(["--debug", *args])
    args = _patch(monkeypatch, tmp_path, "info", MemoryError("big"))
    with pytest.raises(MemoryError, match="big"):
        _run(["--debug", *args])


@pytest.mark.parametrize("verb", ["info", "intervene"])
def test_ctrl_c_outside_a_fit_is_interrupted_exit_130(verb, tmp_path, monkeypatch):
    """typer turns KeyboardInterrupt into an exit status it returns (not raises): it was exit 0."""
    code, err = _run(_patch(monkeypatch, tmp_path, verb, KeyboardInterrupt()))
    assert code == 130 and err.splitlines() == ["interrupted"], err


def test_cli_uses_only_typers_public_types():
    """typer 0.29 vendors click as typer._click, whose exceptions module has no Abort: code naming
    click's (or typer's private) exception types crashed with AttributeError inside the handler."""
    src = Path(xcausal.cli.__file__).read_text(encoding="utf-8")
    assert "click_exceptions." not in src
    assert "typer._" not in src
    assert "import click" not in src and "from click" not in src


# --------------------------------------------------------------------------- long messages
def _one_capped_line(err: str, prefix: str = "error: ") -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), err[:500]
    assert len(lines[0]) <= xcausal.cli.ERROR_LINE_MAX, (len(lines[0]), lines[0])
    assert "…" in lines[0]
    return lines[0]


def _images_dir(root: Path, n: int = 12) -> list[str]:
    import numpy as np
    from PIL import Image

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / "images" / f"{i}.png")
    return [f"images/{i}.png" for i in range(n)]


def test_a_20mb_csv_cell_gives_a_short_error_line(tmp_path):
    paths = _images_dir(tmp_path)
    rows = ["image,x"] + [f"{p},{i}" for i, p in enumerate(paths)]
    rows[3] = f"{paths[2]},{'b' * 20_000_000}"
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    code, err = _run(["info", str(tmp_path), "--continuous", "x"])
    line = _one_capped_line(err)
    assert code == 2
    assert line.startswith(f"error: {tmp_path / 'table.csv'} row 3, column 'x': 'bbbb")
    assert line.endswith("bbbb' is not a number (column forced continuous)")


def test_a_long_path_keeps_its_file_name(tmp_path):
    missing = tmp_path / ("a" * 250) / ("b" * 200) / "table.csv"
    code, err = _run(["info", str(missing)])
    line = _one_capped_line(err)
    assert code == 2 and line.startswith(f"error: {tmp_path}") and line.endswith("bbb/table.csv: no such file or directory")


def test_a_long_image_cell_keeps_its_file_name(tmp_path):
    paths = _images_dir(tmp_path)
    paths[4] = "images/" + "x" * 200 + "/" + "x" * 200 + "/missing-7.png"
    rows = ["image,x"] + [f"{p},{i}" for i, p in enumerate(paths)]
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    code, err = _run(["info", str(tmp_path)])
    line = _one_capped_line(err)
    assert code == 2 and "row 5, column 'image'" in line and line.endswith("xxx/missing-7.png' not found")


@pytest.mark.parametrize("msg", ["/data/t.csv: " + "word " * 5000, "/data/t.csv: " + "w" * 5000 + " then the end"])
def test_a_long_message_loses_its_middle(msg, tmp_path, monkeypatch):
    from xcausal.io import DataError

    code, err = _run(_patch(monkeypatch, tmp_path, "info", DataError(msg)))
    line = _one_capped_line(err)
    assert code == 2 and line.startswith("error: /data/t.csv: w")


def test_a_long_internal_error_is_capped_and_keeps_the_hint(tmp_path, monkeypatch):
    code, err = _run(_patch(monkeypatch, tmp_path, "intervene", RuntimeError("start " + "y" * 100_000 + " end")))
    line = _one_capped_line(err, "internal error: RuntimeError: start yyy")
    assert code == 1 and line.endswith("yyy end (rerun with --debug for the traceback)")


def test_cut_middle():
    from xcausal.io import cut_middle

    assert cut_middle("abc", 3) == "abc"
    assert cut_middle("abcdefghij", 7) == "abcd…ij"
    assert len(cut_middle("x" * 1000, 300)) == 300


# --------------------------------------------------------------------------- --na-values
def _na_dataset(root: Path, n: int = 24) -> Path:
    paths = _images_dir(root, n)
    import numpy as np

    rng = np.random.default_rng(0)
    site = ["north", "NA", "south", "None"]
    rows = ["image,x,site"] + [f"{p},{'-999' if i == 6 else f'{rng.normal():.3f}'},{site[i % 4]}"
                               for i, p in enumerate(paths)]
    (root / "table.csv").write_text("\n".join(rows) + "\n")
    return root


def test_info_na_values(tmp_path, capsys):
    d = _na_dataset(tmp_path / "d")
    assert main(["info", str(d)]) == 0
    out = capsys.readouterr().out
    assert "24 rows" in out and "NA, None, north, south" in out
    code, err = _run(["info", str(d), "--na-values", "NA,-999"])
    assert code == 2 and err.splitlines() == [f"error: {d / 'table.csv'} row 7, column 'x': empty cell "
                                              "(1 such row(s) in this column)"], err
    assert main(["info", str(d), "--na-values", "NA, -999", "--missing", "drop"]) == 0
    out = capsys.readouterr().out
    assert "17 rows" in out and "None, north, south" in out and "NA," not in out


def test_fit_records_na_values_and_later_verbs_use_them(tmp_path, capsys):
    import json

    from xcausal.api import load_run_dataset

    d, run = _na_dataset(tmp_path / "d"), tmp_path / "run"
    code = main(["fit", str(d), "--method", "ica+ges", "--latent-dim", "2", "--out", str(run), "--quiet",
                 "--na-values", "NA,-999", "--missing", "drop"])
    assert code == 0, capsys.readouterr().err
    fc = json.loads((run / "config.json").read_text())["fit_config"]
    assert fc["na_values"] == ["NA", "-999"] and fc["missing"] == "drop"
    ds = load_run_dataset(run)
    assert len(ds) == 17 and ds.variables[1].categories == ("None", "north", "south")
