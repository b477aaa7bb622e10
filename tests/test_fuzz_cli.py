"""Property tests (hypothesis) of the command line on random option values and random files.

The property: ``xcausal.cli.main([...])`` returns 0, or returns 2 with exactly one line
``error: ...`` on stderr; never a traceback, an ``internal error`` or another status. Only tiny
valid runs are allowed to do work (``simulate`` with n <= 20 and small images); huge values are
only combined with an invalid option, so that they exercise the validation path alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st

from xcausal.cli import ERROR_LINE_MAX, main
from xcausal.data.dataset import load_dataset

EXAMPLES = int(os.environ.get("XCAUSAL_FUZZ_EXAMPLES", "40"))  # raise it for a longer hunt
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def _event(label: str) -> None:
    if currently_in_test_context():  # statistics for --hypothesis-show-statistics
        event(label)


def _check_clean(code: int, err: str) -> None:
    """Exit 0, or 2 with one ``error:`` line; nothing that looks like a crash."""
    assert "Traceback" not in err and "internal error" not in err, err
    assert code in (0, 2), f"exit {code}: {err}"
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > len("error: "), err
        assert len(lines[0]) <= ERROR_LINE_MAX, f"{len(lines[0])} characters: {lines[0][:200]}"
        _event(re.sub(r"'[^']*'|-?\d+|/\S*", "_", lines[0])[:60])
    else:
        _event("exit 0")


# --------------------------------------------------------------------------- simulate
VALID_SPECS = ["first", "first-3", "first-5", "1/2", "2/5", "5/10", " 5/10 ", "FIRST"]
INVALID_SPECS = ["x/y", "-1/3", "first-99", "first-", "0/10", "6/10", "5/3", "5/100", "5//10", "5/10/20", "",
                 "1e3/2e3", "５/10", "first-3-5", "99999999999999999999/1", "1/99999999999999999999"]
KINDS = ["appendix-e", "mnist-rotate", "mnist-shift", "circles", "xray-phantom"]
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10)


@st.composite
def simulate_args(draw) -> list[str]:
    """Random ``simulate`` options; heavy work only for tiny n and small images."""
    tiny = draw(st.booleans())
    if tiny:  # may run: keep every size small
        n = draw(st.integers(10, 20))
        kind = draw(st.sampled_from(KINDS) | text)
        graph = draw(st.sampled_from(VALID_SPECS + INVALID_SPECS) | text)
        size = draw(st.none() | st.sampled_from([-1, 0, 3, 4, 5, 8, 15, 16, 28, 32]))
    else:  # validation path only: an invalid n (<= 0 fails before any work), anything else huge
        n = draw(st.sampled_from([0, -1, -5, 9]) | st.integers(max_value=0))
        kind = draw(st.sampled_from(KINDS) | text)
        graph = draw(st.sampled_from(VALID_SPECS + INVALID_SPECS) | text)
        size = draw(st.none() | st.integers(-10**6, 10**12))
    if kind == "xray-phantom" and tiny and (size is None or size > 32):
        size = 32  # the 128-px default is fine but slower; 32 is the smallest valid size
    args = ["simulate", "--kind", kind, "--graph", graph, "--n", str(n)]
    if size is not None:
        args += ["--image-size", str(size)]
    if draw(st.booleans()):
        args += ["--seed", str(draw(st.sampled_from([0, 1, -1, 2**63, 10**30])))]
    if draw(st.booleans()):
        args += ["--digits", draw(st.sampled_from(["2", "10", "all", "1", "0", "-3", "x", "²", "999999"]) | text)]
    if draw(st.booleans()):
        args += ["--circles-dag", draw(st.sampled_from(["v-structure", "chain", "independent", "cycle"]) | text)]
    return args


OUT_NAMES = ["d", "d.npz", "sub/dir/d", "sub/d.npz", "a" * 300, "a" * 300 + ".npz", "file.txt/d", "file.txt/d.npz",
             "existing", "existing.npz"]


@FUZZ
@given(args=simulate_args(), name=st.sampled_from(OUT_NAMES), overwrite=st.booleans())
def test_fuzz_simulate(args, name, overwrite):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "file.txt").write_text("a file, not a directory")
        (Path(tmp) / "existing").mkdir()
        (Path(tmp) / "existing.npz").write_bytes(b"old")
        before = sorted(p.name for p in Path(tmp).iterdir())
        out = Path(tmp) / name
        code, _, err = _run([*args, "--out", str(out)] + (["--overwrite"] if overwrite else []))
        _check_clean(code, err)
        if code == 0:
            ds = load_dataset(out, image_size=8)
            assert len(ds) == int(args[args.index("--n") + 1]) and ds.truth is not None
        else:  # nothing written, nothing left behind (the existing outputs untouched)
            assert sorted(p.name for p in Path(tmp).iterdir()) == before or name.startswith("sub/"), \
                "a failed simulate left files behind"
            assert (Path(tmp) / "existing.npz").read_bytes() == b"old"


# --------------------------------------------------------------------------- info
@st.composite
def info_paths(draw, root: Path) -> str:
    """A random path: nonexistent, odd names, existing non-datasets, or a real small dataset."""
    choice = draw(st.sampled_from(["text", "missing", "file", "dir", "empty_npz", "bad_npz", "long", "dataset"]))
    if choice == "text":
        return draw(st.sampled_from(["[/]", "[red]x[/red]", "-x", "--", "--help", "-0", "a\nb"]) | text) or "."
    if choice == "missing":
        return str(root / "nope" / draw(st.sampled_from(["a", "a.npz", "table.csv"])))
    if choice == "file":
        p = root / draw(st.sampled_from(["f.txt", "f.csv", "f.png", "f.json"]))
        p.write_bytes(draw(st.binary(max_size=50)))
        return str(p)
    if choice == "dir":
        d = root / "emptydir"
        d.mkdir(exist_ok=True)
        return str(d)
    if choice == "empty_npz":
        p = root / "e.npz"
        np.savez(p)
        return str(p)
    if choice == "bad_npz":
        p = root / "b.npz"
        p.write_bytes(b"PK\x03\x04" + draw(st.binary(max_size=60)))
        return str(p)
    if choice == "long":
        return "a" * draw(st.integers(200, 5000))
    return str(SIM)


SIM: Path  # a small simulated dataset, set by the module fixture below


@pytest.fixture(scope="module", autouse=True)
def small_dataset(tmp_path_factory):
    global SIM
    SIM = tmp_path_factory.mktemp("fuzzcli") / "d"
    code, _, err = _run(["simulate", "--graph", "first", "--n", "20", "--seed", "0", "--out", str(SIM)])
    assert code == 0, err
    return SIM


@FUZZ
@given(data=st.data(), image_size=st.none() | st.integers(-5, 40),
       categorical=st.none() | st.sampled_from(["u1", "nope", "u1,u2", ",", "image", "id"]) | text,
       continuous=st.none() | st.sampled_from(["u1", "u2", "u1,u1"]) | text)
def test_fuzz_info(data, image_size, categorical, continuous):
    with tempfile.TemporaryDirectory() as tmp:
        path = data.draw(info_paths(Path(tmp)))
        args = ["info", path]
        if image_size is not None:
            args += ["--image-size", str(image_size)]
        if categorical is not None:
            args += ["--categorical", categorical]
        if continuous is not None:
            args += ["--continuous", continuous]
        code, out, err = _run(args)
        _check_clean(code, err)
        if code == 0:
            assert "rows" in out


# --------------------------------------------------------------------------- evaluate
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**20) | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=10)
NAMES = ["u1", "u2", "u3", "u4", "u5", "z1", "z2", "z3", "z4", "z5", "z6", "q", ""]


@st.composite
def graph_json(draw) -> object:
    """graph.json content: any JSON, or graph-shaped with defects (missing keys, wrong types,
    unknown or duplicate nodes, self-loops, cycles)."""
    if draw(st.integers(0, 4)) == 0:
        return draw(json_values)
    n_lat = draw(st.integers(0, 6))
    nodes = [{"name": f"u{i}", "kind": "observed"} for i in range(1, 6)] + \
            [{"name": f"z{i}", "kind": "latent"} for i in range(1, n_lat + 1)]
    if draw(st.booleans()):  # drop / add / break some nodes
        nodes = draw(st.lists(st.sampled_from(nodes) | st.fixed_dictionaries(
            {"name": st.sampled_from(NAMES) | json_values},
            optional={"kind": st.sampled_from(["observed", "latent", "other"]) | json_values}) | json_values,
            max_size=12))
    names = [n["name"] for n in nodes if isinstance(n, dict) and isinstance(n.get("name"), str)] or ["u1"]
    edge = st.fixed_dictionaries({"source": st.sampled_from(names), "target": st.sampled_from(names)},
                                 optional={"weight": st.floats() | json_values, "support": json_values})
    edges = draw(st.lists(edge | json_values if draw(st.booleans()) else edge, max_size=8))
    if draw(st.booleans()) and len(names) >= 3:  # a cycle
        a, b, c = names[:3]
        edges += [{"source": a, "target": b}, {"source": b, "target": c}, {"source": c, "target": a}]
    d: dict = {"method": draw(st.sampled_from(["cmcl", "pima", "causal-pima", "ivae+notears", None]) | json_values),
               "nodes": nodes, "edges": edges}
    for key in draw(st.sets(st.sampled_from(["method", "nodes", "edges"]), max_size=1)):
        del d[key]
    return d


@FUZZ
@given(graph=graph_json(), as_dir=st.booleans(), latents=st.sampled_from([None, "ok", "short", "junk"]),
       as_json=st.booleans(), raw=st.none() | st.binary(max_size=30))
def test_fuzz_evaluate(graph, as_dir, latents, as_json, raw):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        gj = run / "graph.json"
        if raw is not None and not isinstance(graph, dict):
            gj.write_bytes(raw)  # not even JSON (maybe not UTF-8)
        else:
            gj.write_text(json.dumps(graph, allow_nan=True))
        if as_dir and latents is not None and isinstance(graph, dict):
            lat = [n.get("name") for n in graph.get("nodes", []) if isinstance(n, dict) and n.get("kind") == "latent"]
            rows = {"ok": 20, "short": 7, "junk": 20}[latents]
            if latents == "junk":
                (run / "latents.csv").write_text("a,b\n1,x\n\"\n")
            else:
                cols = [str(c) for c in lat]
                body = "\n".join(",".join(str(v) for v in np.random.default_rng(i).normal(size=len(cols)))
                                 for i in range(rows))
                (run / "latents.csv").write_text(",".join(cols) + "\n" + body + "\n")
        args = ["evaluate", str(run if as_dir else gj), "--truth", str(SIM)] + (["--json"] if as_json else [])
        code, out, err = _run(args)
        _check_clean(code, err)
        if code == 0 and as_json:
            assert "shd" in json.loads(out)


# --------------------------------------------------------------------------- any argv
VERBS = ["info", "evaluate", "convert", "intervene", "counterfactual", "explain", "report", "simulate"]
TOKENS = ["--out", "--truth", "--json", "--var", "--values", "--rows", "--ids", "--samples", "--set", "--latent", "--data", "--overwrite",
          "--image-size", "--channels", "--n", "--kind", "--graph", "--help", "--debug", "--version", "-v", "-o",
          "--bogus", "-", "--", "=", "[/]", "nope", "nope.npz", "x=1", "0", "-1", "1e9"]


@FUZZ
@given(verb=st.sampled_from(VERBS) | text, rest=st.lists(st.sampled_from(TOKENS) | text, max_size=6))
def test_fuzz_argv(verb, rest):
    """Random argument lists: usage errors are one ``error:`` line too. No token names an existing
    file, and simulate only gets an invalid --n, so nothing heavy runs and nothing is written."""
    if verb == "simulate" or "simulate" in rest:
        rest = [*rest, "--n", "0"]
    rest = [t for t in rest if t != "--debug"]  # --debug re-raises on purpose (it shows the traceback)
    if verb == "--debug":
        verb = "info"
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            code, _, err = _run([verb, *rest])
        finally:
            os.chdir(cwd)
        _check_clean(code, err)
        assert list(Path(tmp).iterdir()) == [], "a failed command wrote files"


# --------------------------------------------------------------------------- regressions
# Found by the properties above: each gave "internal error" (exit 1) or a traceback before.
@pytest.mark.parametrize("args, needle", [
    (["info"], "Missing argument 'data'"),
    (["info", "-0"], "No such option: -0"),
    (["simulate", "--bogus"], "No such option: --bogus"),
    (["simulate", "--out", "x", "--n", "abc"], "Invalid value for '--n'"),
    (["nosuchverb"], "No such command 'nosuchverb'"),
])
def test_usage_errors_are_one_error_line(args, needle):
    """typer vendors its own click, so ``isinstance(exc, click.ClickException)`` missed its usage
    errors: every unknown option or missing argument was an "internal error" with status 1."""
    code, _, err = _run(args)
    _check_clean(code, err)
    assert code == 2 and needle in err


@pytest.mark.parametrize("path", ["[/]", "[red]x[/red]", "a" * 3000])
def test_info_on_odd_paths(path):
    """A file name holding rich markup crashed the error printer (MarkupError) or lost its
    brackets; an over-long name was an OSError (File name too long)."""
    code, _, err = _run(["info", path])
    _check_clean(code, err)
    assert code == 2 and (path[:50] in err)


def test_simulate_to_an_overlong_output_name(tmp_path):  # OSError: File name too long
    code, _, err = _run(["simulate", "--graph", "first", "--n", "10", "--out", str(tmp_path / ("a" * 300))])
    _check_clean(code, err)
    assert code == 2 and "cannot be used as an output" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"[" * 100_000, b"\xff\xfe{}", b'{"nodes": [{"name": "u1"}], "edges": [1]}',
                                     b'{"nodes": {"u1": "observed"}}', b'{"nodes": [], "edges": [], "method": []}'])
def test_evaluate_on_broken_graph_json(tmp_path, content):
    """Before: RecursionError (deep nesting), AttributeError (a node that is not an object),
    TypeError (a list as the method), a message without the file name (not UTF-8)."""
    gj = tmp_path / "graph.json"
    gj.write_bytes(content)
    code, _, err = _run(["evaluate", str(gj), "--truth", str(SIM)])
    _check_clean(code, err)
    assert code == 2 and "graph.json" in err


def test_os_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """A permission problem is the user's to fix: one `error:` line naming the file, exit 2."""
    import xcausal.data.dataset as dataset_mod
    from xcausal.cli import main as cli_main

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/data/table.csv")

    monkeypatch.setattr(dataset_mod, "load_dataset", denied)
    code = cli_main(["info", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "internal error" not in err
    assert "/data/table.csv: Permission denied" in err
    monkeypatch.undo()
    assert cli_main(["simulate", "--kind", "mnist-rotate", "--digits", "²", "--n", "10", "--out",
                     str(tmp_path / "m")]) == 2
    assert "--digits" in capsys.readouterr().err


# --------------------------------------------------------------------------- numeric options of info
@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    p = tmp_path_factory.mktemp("fuzznpz") / "d.npz"
    code, _, err = _run(["convert", str(SIM), "--out", str(p)])
    assert code == 0, err
    return p


@FUZZ
@given(size=st.none() | st.integers(-10, 48) | st.integers(8001, 10**30), npz=st.booleans(),
       na_values=st.none() | text, missing=st.sampled_from(["error", "drop", "drop", "bogus"]))
def test_fuzz_info_numeric_options(small_npz, size, npz, na_values, missing):
    """--image-size 10**9 was an internal error (torch's size overflow) and 10**5 asked for terabytes;
    only sizes that cannot allocate much (<= 48, or refused before any work) are drawn."""
    args = ["info", str(small_npz if npz else SIM), "--missing", missing]
    if size is not None:
        args += ["--image-size", str(size)]
    if na_values is not None:
        args += ["--na-values", na_values]
    code, _, err = _run(args)
    _check_clean(code, err)


# --------------------------------------------------------------------------- fit options
_NUMERIC_FIT = sorted(o.name for o in __import__("xcausal.options", fromlist=["FIT_OPTIONS"]).FIT_OPTIONS.values()
                      if o.type in (int, float) or str(o.type) in ("typing.Optional[int]", "typing.Optional[float]"))
_NUMBER_TEXT = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                         st.sampled_from(["nan", "inf", "-inf", "1e308", "-0", "0", "1", "2", "1e-320", "4.5", "x", "",
                                          "none", "９", "1_000"]))


@pytest.fixture(scope="module")
def fit_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("fitfuzz") / "d"
    assert main(["simulate", "--graph", "first", "--n", "20", "--out", str(d)]) == 0
    return d


@FUZZ
@given(name=st.sampled_from(_NUMERIC_FIT), value=_NUMBER_TEXT, method=st.sampled_from(["cmcl", "ivae+notears"]))
def test_fuzz_fit_numeric_options(fit_data, name, value, method):
    """Every numeric fit option, any text, through --set: checked before any work (the dataset is
    never loaded: a stub stops there), exit 0 or one error line."""
    import xcausal.api

    reached = []

    def stop(*args, **kwargs):
        reached.append(True)
        raise xcausal.io.DataError("stub: the checks passed")

    out = Path(tempfile.mkdtemp()) / "run"
    orig = xcausal.api.load_dataset
    xcausal.api.load_dataset = stop
    try:
        code, _, err = _run(["fit", str(fit_data), "--out", str(out), "--method", method, "--set", f"{name}={value}"])
    finally:
        xcausal.api.load_dataset = orig
    _check_clean(code, err)
    assert code == 2  # the stub or a refusal
    assert not out.exists() and not out.with_name("run.partial").exists()
    if reached and name in ("lr", "w_threshold", "latent_dim", "epochs", "batch_size"):  # every method's ranges
        assert np.isfinite(float(value)), (name, value)  # only a finite number gets past the checks
