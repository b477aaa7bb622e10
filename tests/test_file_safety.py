"""File safety (issue 8, part 5): paths that leave the dataset directory, checkpoints that would
run code when unpickled, and checkpoints of another method or format version.

One tiny real CMCL run (simulate --graph first --n 60, fit --epochs 1) is shared by the module;
tests that damage it work on a copy.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import io
import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import xcausal.io
from xcausal.api import load_model
from xcausal.cli import main
from xcausal.data import dataset as dataset_module
from xcausal.data.dataset import load_dataset
from xcausal.io import DataError


def _run(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- image paths
def _dataset(root: Path, n: int = 12) -> Path:
    """A valid dataset directory with n 8×8 grayscale PNGs, and a PNG outside it (root.parent)."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / "images" / f"{i}.png")
    pd.DataFrame({"image": [f"images/{i}.png" for i in range(n)], "x": rng.normal(size=n)}).to_csv(
        root / "table.csv", index=False)
    outside = root.parent / "outside"
    outside.mkdir(exist_ok=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(outside / "secret.png")
    return root


def _set_cell(root: Path, row: int, value: str) -> None:
    t = pd.read_csv(root / "table.csv")
    t.loc[row, "image"] = value
    t.to_csv(root / "table.csv", index=False)


@pytest.fixture
def opened(monkeypatch) -> list[Path]:
    """Every path the dataset module hands to PIL.Image.open."""
    seen: list[Path] = []
    real = Image.open

    def spy(fp, *a, **kw):
        seen.append(Path(fp).resolve())
        return real(fp, *a, **kw)

    monkeypatch.setattr(dataset_module.Image, "open", spy)
    return seen


@pytest.mark.parametrize("cell, why", [
    ("{outside}/secret.png", "must be relative"),  # absolute
    ("../outside/secret.png", "must be relative"),
    ("images/../../outside/secret.png", "must be relative"),
    ("link.png", "resolves outside the dataset directory"),  # a symlink to a file outside
    ("linkdir/secret.png", "resolves outside the dataset directory"),  # through a symlinked directory
])
def test_image_path_escaping_the_directory_is_rejected(tmp_path, opened, cell, why):
    root = _dataset(tmp_path / "d")
    outside = tmp_path / "outside"
    (root / "link.png").symlink_to(outside / "secret.png")
    (root / "linkdir").symlink_to(outside)
    _set_cell(root, 4, cell.format(outside=outside))
    with pytest.raises(DataError, match=rf"table\.csv row 5, column 'image': .*{why}"):
        load_dataset(root)
    assert not any(p.is_relative_to(outside.resolve()) for p in opened), "a file outside was opened"
    code, err = _run(["info", str(root)])  # the CLI: status 2, one line naming row and column
    assert code == 2 and "row 5, column 'image'" in _one_error_line(err)


def test_absolute_or_backslash_paths_inside_the_directory_are_read(tmp_path, opened):
    """A table written with absolute paths to the folder's own images, or on Windows
    (``images\\3.png``), names files inside the directory: they are read, by their place in it."""
    root = _dataset(tmp_path / "d")
    _set_cell(root, 3, str(root / "images" / "3.png"))
    _set_cell(root, 4, str(root.resolve() / "images" / "4.png"))
    _set_cell(root, 5, "images\\5.png")
    _set_cell(root, 6, ".\\images\\6.png")
    ds = load_dataset(root, image_size=8)
    assert [os.fsdecode(r) for r in ds.image_paths.rel[3:7]] == [f"images/{i}.png" for i in range(3, 7)]
    assert all(p.is_relative_to(root.resolve()) for p in opened)
    (root / "images" / "a\\b.png").write_bytes((root / "images" / "7.png").read_bytes())  # a literal name
    _set_cell(root, 7, "images/a\\b.png")
    assert load_dataset(root, image_size=8).image_paths[7].name == "a\\b.png"
    for cell, why in ((f"{root}/../outside/secret.png", "must be relative"),
                      ("..\\outside\\secret.png", "must be relative"),
                      ("C:\\data\\images\\0.png", "a Windows absolute path")):
        _set_cell(root, 2, cell)
        with pytest.raises(DataError, match=rf"row 3, column 'image': .*{why}"):
            load_dataset(root)
    assert not any(p.is_relative_to((tmp_path / "outside").resolve()) for p in opened)


def test_symlink_inside_the_directory_is_fine(tmp_path):
    root = _dataset(tmp_path / "d")
    (root / "images" / "alias.png").symlink_to(root / "images" / "0.png")
    _set_cell(root, 3, "images/alias.png")
    ds = load_dataset(root, image_size=8)
    np.testing.assert_array_equal(ds.image(3), ds.image(0))


def test_symlink_loop_and_overlong_name_are_data_errors(tmp_path):
    root = _dataset(tmp_path / "d")
    (root / "loop.png").symlink_to(root / "loop.png")
    _set_cell(root, 2, "loop.png")
    with pytest.raises(DataError, match=r"row 3, column 'image'"):
        load_dataset(root)
    _set_cell(root, 2, "a" * 300 + ".png")  # ENAMETOOLONG was an OSError (found by fuzzing)
    with pytest.raises(DataError, match=r"row 3, column 'image': path 'a+…a+\.png' cannot be used"):
        load_dataset(root)


@pytest.mark.parametrize("name", ["table.csv", "truth.json", "modalities/curve.npy", "modalities"])
def test_dataset_files_that_are_symlinks_to_outside_are_refused(tmp_path, name):
    """table.csv, truth.json, modalities/ and modalities/*.npy were read through any symlink."""
    root = _dataset(tmp_path / "d")
    outside = tmp_path / "outside"
    (root / "modalities").mkdir()
    np.save(root / "modalities" / "curve.npy", np.zeros((12, 3)))
    (root / "truth.json").write_text(json.dumps({"nodes": [{"name": "x", "kind": "observed"}], "edges": []}))
    assert len(load_dataset(root).modalities["curve"]) == 12  # valid as written
    target = outside / name.replace("/", "_")
    shutil.move(str(root / name), str(target))
    (root / name).symlink_to(target)
    with pytest.raises(DataError) as exc:
        load_dataset(root)
    assert str(exc.value) == f"{root / name}: resolves outside the dataset directory (a symlink?)"
    code, err = _run(["info", str(root)])
    assert code == 2 and _one_error_line(err) == f"error: {root / name}: resolves outside the dataset directory (a symlink?)"


def test_dataset_files_that_are_symlinks_inside_are_fine(tmp_path):
    root = _dataset(tmp_path / "d")
    (root / "real.csv").write_text((root / "table.csv").read_text())
    (root / "table.csv").unlink()
    (root / "table.csv").symlink_to("real.csv")
    assert len(load_dataset(root)) == 12


@pytest.mark.parametrize("target", ["../outside/lat.npy", "{outside}/lat.npy", "linklat.npy"])
def test_truth_latents_path_escaping_the_directory_is_rejected(tmp_path, target):
    root = _dataset(tmp_path / "d")
    outside = tmp_path / "outside"
    np.save(outside / "lat.npy", np.zeros((12, 1)))
    (root / "linklat.npy").symlink_to(outside / "lat.npy")
    truth = {"nodes": [{"name": "x", "kind": "observed"}, {"name": "z1", "kind": "latent"}],
             "edges": [{"source": "x", "target": "z1"}], "latents": target.format(outside=outside)}
    (root / "truth.json").write_text(json.dumps(truth))
    with pytest.raises(DataError, match=r"truth\.json: latents file .* must be a relative path inside"):
        load_dataset(root)


# --------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def cmcl_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("safety")
    data, run = root / "d", root / "run"
    assert main(["simulate", "--graph", "first", "--n", "60", "--seed", "0", "--out", str(data)]) == 0
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["fit", str(data), "--out", str(run), "--epochs", "1", "--device", "cpu", "-q"]) == 0
    finally:
        torch.set_num_threads(before)
    return data, run


@pytest.fixture
def run_copy(cmcl_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(cmcl_run[1], run)
    return run


def _variable(cmcl_run) -> str:
    return next(c for c in pd.read_csv(cmcl_run[0] / "table.csv", nrows=1).columns if c not in ("image", "id"))


def _intervene(run: Path, var: str, out: Path) -> tuple[int, str]:
    return _run(["intervene", str(run), "--var", var, "--values", "0,1", "--samples", "2", "--out", str(out)])


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: harmless, but visible (the file appears)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def test_the_untouched_run_loads(cmcl_run, tmp_path):
    code, err = _intervene(cmcl_run[1], _variable(cmcl_run), tmp_path / "g.png")
    assert code == 0, err
    assert (tmp_path / "g.png").is_file()


def test_payload_is_live_without_weights_only(tmp_path):
    """The check below means something: torch.load(weights_only=False) would run the payload."""
    marker = tmp_path / "marker"
    torch.save({"x": torch.zeros(1), "p": _Payload(marker)}, tmp_path / "m.pt")
    torch.load(tmp_path / "m.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("wrap", ["inside_state_dict", "whole_object"])
def test_pickled_object_in_checkpoint_is_not_executed(cmcl_run, run_copy, tmp_path, wrap):
    marker = tmp_path / "marker"
    state = torch.load(run_copy / "model.pt", weights_only=True)
    evil = {**state, "net.evil": _Payload(marker)} if wrap == "inside_state_dict" else _Payload(marker)
    torch.save(evil, run_copy / "model.pt")
    with pytest.raises(DataError, match=r"model\.pt: refusing to load a checkpoint that holds Python objects"):
        load_model(run_copy)
    assert not marker.exists()
    code, err = _intervene(run_copy, _variable(cmcl_run), tmp_path / "g.png")
    assert code == 2 and "refusing to load" in _one_error_line(err)
    assert not marker.exists() and not (tmp_path / "g.png").exists()


def test_loader_itself_uses_weights_only(cmcl_run, run_copy, tmp_path, monkeypatch):
    """Without the static pre-check, the model's own torch.load(weights_only=True) still refuses."""
    marker = tmp_path / "marker"
    state = torch.load(run_copy / "model.pt", weights_only=True)
    torch.save({**state, "net.evil": _Payload(marker)}, run_copy / "model.pt")
    monkeypatch.setattr(xcausal.io, "check_checkpoint_file", lambda path: None)
    with pytest.raises(Exception, match="Weights only load failed"):
        load_model(run_copy)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "random_bytes", "empty"])
def test_corrupt_checkpoint_is_one_line_error(cmcl_run, run_copy, tmp_path, damage):
    ck = run_copy / "model.pt"
    data = ck.read_bytes()
    ck.write_bytes({"truncated": data[: len(data) // 2], "random_bytes": np.random.default_rng(0).bytes(500),
                    "empty": b""}[damage])
    code, err = _intervene(run_copy, _variable(cmcl_run), tmp_path / "g.png")
    assert code == 2 and "model.pt: not a readable checkpoint" in _one_error_line(err)


@pytest.mark.parametrize("edit, needle", [
    (lambda m: {**m, "method": "pima"}, "checkpoint is for method 'pima', not 'cmcl'"),
    (lambda m: {**m, "method": None}, "checkpoint is for method 'None', not 'cmcl'"),
    (lambda m: {**m, "format": 999}, "checkpoint in format 999"),
    (lambda m: {**m, "format": 1}, "this version reads format 2 only: fit the model again"),
    (lambda m: {k: v for k, v in m.items() if k != "format"}, "checkpoint in format None"),
    (lambda m: [m], "expected a JSON object"),
])
def test_checkpoint_of_another_method_or_format(cmcl_run, run_copy, tmp_path, edit, needle):
    mp = run_copy / "model.pt.json"
    mp.write_text(json.dumps(edit(json.loads(mp.read_text()))))
    with pytest.raises(DataError, match=needle):
        load_model(run_copy)
    code, err = _intervene(run_copy, _variable(cmcl_run), tmp_path / "g.png")
    assert code == 2 and needle in _one_error_line(err)


def test_run_relabelled_as_another_method(cmcl_run, run_copy, tmp_path):
    """config.json and graph.json say 'pima', the checkpoint is cmcl's: pima's loader refuses it."""
    for name in ("config.json", "graph.json"):
        d = json.loads((run_copy / name).read_text())
        d["method"] = "pima"
        (run_copy / name).write_text(json.dumps(d))
    code, err = _intervene(run_copy, _variable(cmcl_run), tmp_path / "g.png")
    assert code == 2 and "checkpoint is for method 'cmcl', not 'pima'" in _one_error_line(err)


@pytest.mark.parametrize("damage", ["missing", "not_json"])
def test_checkpoint_sidecar_missing_or_broken(cmcl_run, run_copy, tmp_path, damage):
    mp = run_copy / "model.pt.json"
    if damage == "missing":
        mp.unlink()
    else:
        mp.write_text("{not json")
    code, err = _intervene(run_copy, _variable(cmcl_run), tmp_path / "g.png")
    line = _one_error_line(err)
    assert code == 2 and ("not found" in line if damage == "missing" else
                          "model.pt.json: not a valid checkpoint config (line 1" in line), line


def test_truth_json_latents_must_stay_inside_its_directory(tmp_path):
    import json as _json

    from xcausal.evaluate import load_truth
    from xcausal.io import DataError as _DataError

    (tmp_path / "d").mkdir()
    outside = tmp_path / "secret.npy"
    np.save(outside, np.zeros((3, 1)))
    tj = tmp_path / "d" / "truth.json"
    tj.write_text(_json.dumps({"nodes": [{"name": "z1", "kind": "latent"}], "edges": [], "latents": "../secret.npy"}))
    with pytest.raises(_DataError, match="must be inside"):
        load_truth(tj)
    np.save(tmp_path / "d" / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    tj.write_text(_json.dumps({"nodes": [{"name": "z1", "kind": "latent"}], "edges": [], "latents": "obj.npy"}))
    with pytest.raises(_DataError, match="not a readable numeric"):
        load_truth(tj)


def _drop_key(key: str):
    return lambda m: {k: v for k, v in m.items() if k != key}


@pytest.mark.parametrize("edit, needle", [
    (_drop_key("n_latents"), "has no 'n_latents' entry"),
    (_drop_key("params"), "has no 'params' entry"),
    (lambda m: {**m, "params": {**m["params"], "no_such_option": 1}}, "does not match its config"),
    (lambda m: {**m, "n_latents": m["n_latents"] + 3}, "does not match its config"),  # tensors of another size
    (lambda m: {**m, "encoding": "garbled"}, "does not match its config"),
])
def test_incomplete_or_mismatched_checkpoint_config_is_one_line_error(cmcl_run, run_copy, tmp_path, edit, needle):
    """A model.pt.json with the right method and format but missing or wrong entries (hand-edited,
    another version) was a KeyError / RuntimeError traceback; now one DataError line naming model.pt."""
    mp = run_copy / "model.pt.json"
    mp.write_text(json.dumps(edit(json.loads(mp.read_text()))))
    with pytest.raises(DataError, match=needle):
        load_model(run_copy)
    code, err = _intervene(run_copy, _variable(cmcl_run), tmp_path / "g.png")
    line = _one_error_line(err)
    assert code == 2 and "model.pt" in line and needle in line, line


# --------------------------------------------------------------------------- outputs in the way
def _refuse_work(monkeypatch) -> None:
    """Every verb's first piece of work raises: an output refused after it would be an internal error."""
    import xcausal.api
    import xcausal.data.simulate
    import xcausal.viz.report

    def boom(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    for module, name in [(xcausal.api, "load_dataset"), (xcausal.api, "load_generative_model"),
                         (xcausal.api, "intervention_grid"), (xcausal.api, "explain_latent"),
                         (dataset_module, "load_dataset"), (xcausal.data.simulate, "simulate_appendix_e"),
                         (xcausal.viz.report, "write_report")]:
        monkeypatch.setattr(module, name, boom)


@pytest.mark.parametrize("verb, args, kind", [
    ("fit", ["fit", "{tmp}", "--out", "{out}", "--epochs", "1"], "directory"),
    ("counterfactual", ["counterfactual", "{tmp}", "--set", "x=1", "--out", "{out}"], "directory"),
    ("simulate", ["simulate", "--out", "{out}"], "directory"),
    ("convert", ["convert", "{tmp}", "--out", "{out}"], "directory"),
    ("convert-npz", ["convert", "{tmp}", "--out", "{out}.npz"], "file"),
    ("simulate-npz", ["simulate", "--out", "{out}.npz"], "file"),
    ("intervene", ["intervene", "{tmp}", "--var", "x", "--values", "1", "--out", "{out}.png"], "file"),
    ("explain", ["explain", "{tmp}", "--latent", "z1", "--out", "{out}.png"], "file"),
    ("report", ["report", "{tmp}", "--out", "{out}.html"], "file"),
])
def test_output_of_the_wrong_kind_is_refused_before_any_work(verb, args, kind, tmp_path, monkeypatch):
    """--overwrite replaces an output of the kind the verb writes; a file where a directory goes
    (or a directory where a file goes) was only found once the work was done."""
    _refuse_work(monkeypatch)
    out = tmp_path / "out"
    argv = [a.format(tmp=tmp_path, out=out) for a in args] + ["--overwrite"]
    target = Path(argv[argv.index("--out") + 1])
    if kind == "directory":
        target.write_text("a file")
    else:
        target.mkdir()
    code, err = _run(argv)
    line = _one_error_line(err)
    assert code == 2, line
    assert str(target) in line and ("is not a directory" if kind == "directory" else "is a directory") in line, line
    assert (target.read_text() == "a file") if kind == "directory" else target.is_dir()


def test_output_under_a_file_is_refused_before_any_work(tmp_path, monkeypatch):
    _refuse_work(monkeypatch)
    (tmp_path / "f").write_text("a file")
    code, err = _run(["fit", str(tmp_path), "--out", str(tmp_path / "f" / "run"), "--epochs", "1"])
    line = _one_error_line(err)
    assert code == 2 and f"{tmp_path / 'f'} is a file, not a directory" in line, line


# --------------------------------------------------------------------------- atomic output directories
@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_output_directory_gets_the_users_umask(mask, tmp_path):
    """tempfile.mkdtemp made every output directory 0700, whatever the umask."""
    with _umask(mask), xcausal.io.atomic_output_dir(tmp_path / "out") as tmp:
        (tmp / "sub").mkdir()
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / "out" / "sub").stat().st_mode) == 0o777 & ~mask


def _leftover(path: Path, age: float) -> Path:
    path.mkdir()
    (path / "graph.json").write_text("{}")
    t = time.time() - age
    os.utime(path / "graph.json", (t, t))
    os.utime(path, (t, t))
    return path


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    """A writer killed (kill -9) before its rename left .NAME.tmp-* beside NAME for good."""
    stale = _leftover(tmp_path / ".out.tmp-0badf00d", 600)
    stale_old = _leftover(tmp_path / ".out.old-0badf00d", 600)
    live = _leftover(tmp_path / ".out.tmp-11ve11ve", 600)  # an older writer still running: locked
    fresh = _leftover(tmp_path / ".out.tmp-f4e5f4e5", 0)  # a writer that may not hold its lock yet
    other = _leftover(tmp_path / ".outer.tmp-0badf00d", 600)  # another output's
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with xcausal.io.atomic_output_dir(tmp_path / "out") as tmp:
            (tmp / "graph.json").write_text("[]")
            assert stale.exists()  # removed only once the write succeeds
        assert live.exists()
    finally:
        os.close(fd)
    assert not stale.exists() and not stale_old.exists()
    assert fresh.exists() and other.exists()
    assert (tmp_path / "out" / "graph.json").read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".out.tmp-11ve11ve", ".out.tmp-f4e5f4e5", ".outer.tmp-0badf00d", "out"])


def test_a_failed_write_leaves_the_leftovers_and_the_output_alone(tmp_path):
    stale = _leftover(tmp_path / ".out.tmp-0badf00d", 600)
    with pytest.raises(RuntimeError), xcausal.io.atomic_output_dir(tmp_path / "out"):
        raise RuntimeError("the work failed")
    assert stale.exists() and not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == [".out.tmp-0badf00d"]


def test_the_temporary_directory_is_locked_while_written(tmp_path):
    with xcausal.io.atomic_output_dir(tmp_path / "out") as tmp:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- one fit per output
def test_a_second_fit_to_the_same_out_stops_at_once(tmp_path, monkeypatch):
    """Two fits to one --out: the second wrote over the first's OUT.partial/fit_config.json."""
    _refuse_work(monkeypatch)
    out = tmp_path / "run"
    partial = tmp_path / "run.partial"
    partial.mkdir()
    (partial / "fit_config.json").write_text('{"the": "first fit"}')
    lock = tmp_path / "run.partial.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)  # the first fit, still running
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, err = _run(["fit", str(tmp_path), "--out", str(out), "--epochs", "1"])
    finally:
        os.close(fd)
    line = _one_error_line(err)
    assert code == 2
    assert line == (f"error: {out}: another fit is writing this run (lock {lock} held); wait for it or choose "
                    "another --out"), line
    assert (partial / "fit_config.json").read_text() == '{"the": "first fit"}'
    assert lock.exists() and not out.exists()


def test_the_fit_lock_is_released_when_the_fit_fails(tmp_path, monkeypatch):
    import xcausal.api

    def bad_data(*args, **kwargs):
        raise DataError("bad data")

    monkeypatch.setattr(xcausal.api, "load_dataset", bad_data)
    lock = tmp_path / "run.partial.lock"
    for _ in range(2):  # the second fit gets the same error, not "another fit is writing"
        code, err = _run(["fit", str(tmp_path), "--out", str(tmp_path / "run"), "--epochs", "1"])
        assert code == 2 and _one_error_line(err) == "error: bad data", err
        assert not lock.exists()


def test_a_lock_file_left_by_a_killed_fit_does_not_block(tmp_path, monkeypatch):
    import xcausal.api

    lock = tmp_path / "run.partial.lock"
    lock.write_text("")  # kill -9 frees the flock but leaves the file
    held = []

    def loader(*args, **kwargs):
        fd = os.open(lock, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        held.append(True)
        raise DataError("stop here")

    monkeypatch.setattr(xcausal.api, "load_dataset", loader)
    code, err = _run(["fit", str(tmp_path), "--out", str(tmp_path / "run"), "--epochs", "1"])
    assert code == 2 and _one_error_line(err) == "error: stop here" and held == [True]
    assert not lock.exists()


def test_a_finished_fit_leaves_no_lock_file(cmcl_run):
    run = cmcl_run[1]
    assert run.is_dir() and not (run.parent / "run.partial.lock").exists()
    assert not list(run.parent.glob(".run.*"))


# --------------------------------------------------------------------------- messages that name the file
@pytest.mark.parametrize("out", ["o.npz", "o"])
def test_convert_names_a_truncated_image(out, tmp_path):
    """Converting at the stored size printed only 'error: OSError'."""
    data = _dataset(tmp_path / "d")
    png = data / "images" / "3.png"
    png.write_bytes(png.read_bytes()[:60])  # the header and part of the pixels
    code, err = _run(["convert", str(data), "--out", str(tmp_path / out)])
    line = _one_error_line(err)
    assert code == 2 and f"{png}: cannot decode image (image file is truncated" in line, line
    assert not (tmp_path / out).exists()


@pytest.mark.parametrize("text, needle", [
    ("", "latents.csv: empty file"),
    ("z1\n" + "0.5\n" * 5 + "abc\n", "latents.csv row 6, column 'z1': not a number ('abc')"),
])
def test_a_broken_latents_csv_is_named(cmcl_run, run_copy, text, needle):
    """An empty latents.csv gave pandas' 'No columns to parse from file', naming no file."""
    names = [n["name"] for n in json.loads((run_copy / "graph.json").read_text())["nodes"] if n["kind"] == "latent"]
    if text:
        text = text.replace("z1", ",".join(names), 1).replace("0.5", ",".join(["0.5"] * len(names)))
        text = text.replace("abc", ",".join(["abc"] + ["0.5"] * (len(names) - 1)))
    (run_copy / "latents.csv").write_text(text)
    code, err = _run(["evaluate", str(run_copy), "--truth", str(cmcl_run[0])])
    line = _one_error_line(err)
    assert code == 2 and f"{run_copy}/{needle}" in line, line


def test_an_overlong_integer_in_the_checkpoint_config_is_named(cmcl_run, run_copy, tmp_path):
    """A 5001-digit integer in model.pt.json gave Python's 'Exceeds the limit (4300 digits) ...
    use sys.set_int_max_str_digits()', naming no file."""
    mp = run_copy / "model.pt.json"
    meta = json.loads(mp.read_text())
    mp.write_text(mp.read_text().replace(f'"n_latents": {meta["n_latents"]}', '"n_latents": ' + "1" * 5001, 1))
    code, err = _intervene(run_copy, _variable(cmcl_run), tmp_path / "g.png")
    line = _one_error_line(err)
    assert code == 2 and line == (f"error: {mp}: not a valid checkpoint config (an integer of more than "
                                  f"{sys.get_int_max_str_digits()} digits)"), line


def test_an_overlong_integer_in_graph_json_is_named(cmcl_run, run_copy):
    gj = run_copy / "graph.json"
    gj.write_text(gj.read_text().replace("{", '{"big": ' + "7" * 5001 + ",", 1))
    code, err = _run(["evaluate", str(run_copy), "--truth", str(cmcl_run[0])])
    line = _one_error_line(err)
    assert code == 2 and f"{gj}: not valid JSON (an integer of more than" in line, line
