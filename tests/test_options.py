"""Each fit option is declared once (xcausal.options / cmcl.config) and reaches FitConfig, the
command line (flag and --set), YAML and the model under that one name."""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
import typing

import pytest

from xcausal.api import FitConfig
from xcausal.cli import main
from xcausal.models.cmcl import CMCL
from xcausal.models.cmcl.config import CHOICES, OPTIONS
from xcausal.options import FIT_OPTIONS, TEXT_TYPED, expert_options, parse_text


def test_fitconfig_fields_are_the_declared_options():
    assert [f.name for f in dataclasses.fields(FitConfig)][:2] == ["data", "out"]
    assert {f.name for f in dataclasses.fields(FitConfig)} == set(FIT_OPTIONS)
    cfg = FitConfig(data="d", out="o")
    for name, o in FIT_OPTIONS.items():
        if name not in ("data", "out"):
            assert getattr(cfg, name) == o.default, name


def test_every_cmcl_option_is_a_fit_option_with_the_same_default():
    sig = inspect.signature(CMCL)
    assert list(sig.parameters) == list(OPTIONS)
    for name, o in OPTIONS.items():
        assert sig.parameters[name].default == o.default
        if name == "progress":  # fit's --quiet sets it
            assert name not in FIT_OPTIONS
            continue
        fo = FIT_OPTIONS[name]
        want = list(o.default) if fo.is_list else o.default  # a list option's empty default: () / []
        assert fo.default == want, name
    assert set(CHOICES) <= set(OPTIONS)


def test_fit_help_fits_one_screen_and_shows_only_the_common_options():
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "xcausal.cli", "fit", "--help"], capture_output=True, text=True,
                         env=env, check=True).stdout
    lines = out.rstrip("\n").splitlines()
    assert len(lines) <= 60, len(lines)
    assert all(len(line) <= 100 for line in lines)
    for o in FIT_OPTIONS.values():
        if o.panel is not None:
            assert o.cli_flags()[0].split("/")[0] in out, o.name
    for o in expert_options():
        assert o.cli_flags()[0].split("/")[0] + " " not in out, o.name
    assert "--set" in out and "--config" in out


def _other_value(o):
    """A text for ``--set`` that is not the option's default, and the value it must arrive as."""
    if o.type is bool:
        return ("false", False) if o.default else ("true", True)
    if typing.get_origin(o.type) is typing.Literal:
        other = next(c for c in typing.get_args(o.type) if c != o.default)
        return other, other
    if o.name == "cr_vars":
        return "all", "all"
    if o.name in ("dag_hidden", "channel_plan"):
        return "3,3", (3, 3)
    if o.is_list:
        return "a,b", ["a", "b"]
    if o.type in (int, typing.Optional[int]):
        return "7", 7
    if o.type in (float, typing.Optional[float]):
        return "0.5", 0.5
    return "x", "x"


@pytest.mark.parametrize("o", expert_options(), ids=lambda o: o.name)
def test_every_expert_option_reaches_fitconfig_by_set_and_by_its_flag(o, monkeypatch, tmp_path):
    import xcausal.api

    seen = []

    def capture(cfg):
        seen.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(xcausal.api, "fit", capture)
    monkeypatch.setattr(xcausal.api, "_check_options", lambda cfg: None)
    text, want = _other_value(o)
    with pytest.raises(SystemExit):
        main(["fit", str(tmp_path), "--out", str(tmp_path / "r"), "--set", f"{o.name}={text}"])
    got = getattr(seen[-1], o.name)
    if o.type in TEXT_TYPED and isinstance(got, str):
        got = parse_text(o, got)
    assert got == want, (o.name, got)
    flag = o.cli_flags()[0]
    args = [flag.split("/")[1] if (o.type is bool and o.default) else flag] if o.type is bool else [flag, text]
    with pytest.raises(SystemExit):
        main(["fit", str(tmp_path), "--out", str(tmp_path / "r"), *args])
    got = getattr(seen[-1], o.name)
    if o.type in TEXT_TYPED and isinstance(got, str):
        got = parse_text(o, got)
    assert got == want, (o.name, got)


def test_docs_cli_lists_every_fit_option():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    missing = [name for name in FIT_OPTIONS if name != "command" and f"| `{name}` |" not in text]
    assert not missing, f"docs/cli.md lacks {missing}: rerun docs/gen_cli_reference.py"
