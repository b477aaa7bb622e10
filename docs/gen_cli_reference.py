"""Regenerate the option tables of docs/cli.md from the real `xcausal VERB --help` output.

    PYTHONPATH=src COLUMNS=100 python docs/gen_cli_reference.py > /tmp/cli_options.md

Prints one section per verb (usage line, help text, a table per panel: Arguments, Options); paste
it over the "Every verb" part of docs/cli.md. It parses the boxed help that typer/rich prints, so
it reads exactly what a user sees.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

VERBS = ["simulate", "info", "convert", "fit", "options", "evaluate", "intervene", "counterfactual", "explain",
         "report", "bench"]


def help_text(verb: str) -> str:
    env = dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb")
    out = subprocess.run([sys.executable, "-m", "xcausal.cli", verb, "--help"], capture_output=True, text=True,
                         env=env, check=True)
    return out.stdout


def parse(text: str) -> tuple[str, list[str], list[tuple[str, list[dict]]]]:
    lines = text.splitlines()
    usage, prose, panels = "", [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("Usage:"):
            usage = line.strip()
        elif line.lstrip().startswith("╭─"):
            title = line.strip("╭─╮ ").split("─")[0].strip()
            body = []
            i += 1
            while not lines[i].lstrip().startswith("╰"):
                body.append(lines[i].strip()[1:-1])
                i += 1
            panels.append((title, rows(body)))
        elif line.strip() and not usage == "" and not panels:
            prose.append(line.strip())
        i += 1
    return usage, prose, panels


def rows(body: list[str]) -> list[dict]:
    # the type column starts at the first '<' of a row; the description one after the widest type
    type_col = min(b.index(" <") + 1 for b in body if " <" in b)
    type_end = max(type_col + len(b[type_col:].split(" ")[0]) for b in body if b[type_col:type_col + 1] == "<")
    desc_col = type_end + 1
    out: list[dict] = []
    for b in body:
        names = b[:type_col].replace("*", " ").strip()
        typ = b[type_col:desc_col].strip()
        desc = b[desc_col:].strip()
        if names:
            out.append({"names": names, "required": "*" in b[:type_col], "type": typ, "desc": [desc]})
        elif out:
            out[-1]["desc"].append(desc)
    for r in out:
        text = " ".join(d for d in r["desc"] if d)
        m = re.search(r"\[default: ([^\]]*)\]", text)
        r["default"] = m.group(1) if m else ""
        text = re.sub(r"\s*\[default: [^\]]*\]", "", text)
        r["required"] = r["required"] or "[required]" in text
        r["text"] = text.replace("[required]", "").strip()
    return out


def cell(s: str) -> str:
    return s.replace("|", "\\|")


def render_fit() -> str:
    """``fit``'s options straight from their one declaration (xcausal.options.FIT_OPTIONS): the
    panels ``fit --help`` shows, then the expert options it leaves to ``--set``."""
    from xcausal.options import FIT_OPTIONS, PANELS

    usage, prose, _ = parse(help_text("fit"))
    out = ["### `xcausal fit`", "", f"`{usage.removeprefix('Usage: ')}`", "", " ".join(prose), "",
           "Every option has one name: the flag `--name` (underscores as dashes), the YAML key `name:` in "
           "`--config`, `--set name=value`, and the key in the run's config.json (`fit_config`). "
           "`--set` takes any option; the expert options also keep their flags, hidden from `--help`. "
           "`xcausal options` prints this table.", ""]
    for panel in [*PANELS[:-1], None]:
        opts = [o for o in FIT_OPTIONS.values() if o.panel == panel and o.name not in ("command",)]
        if not opts:
            continue
        out += [f"**{panel or 'Expert options (`--set name=value`, YAML, or the hidden flag)'}**", "",
                "| option | flag | default | applies to | description |", "|---|---|---|---|---|"]
        for o in opts:
            default = ",".join(map(str, o.default)) if isinstance(o.default, (list, tuple)) else o.default
            flag = "data (argument)" if o.name == "data" else " / ".join(f"`{f}`" for f in o.cli_flags())
            methods = "all" if o.methods == "all" else ", ".join(o.methods)
            out.append(f"| `{o.name}` | {flag} | {cell('' if default in (None, '') else f'`{default}`')} | "
                       f"{methods} | {cell(o.help)} |")
        out.append("")
    out += ["`--config FILE` reads a YAML file of options; `--set NAME=VALUE` (repeatable) sets any option. "
            "The command line wins over the file; an option given both as its flag and by `--set` is an error.", ""]
    return "\n".join(out)


def render(verb: str) -> str:
    if verb == "fit":
        return render_fit()
    usage, prose, panels = parse(help_text(verb))
    out = [f"### `xcausal {verb}`", "", f"`{usage.removeprefix('Usage: ')}`", ""]
    if prose:
        out += [" ".join(prose), ""]
    for title, rs in panels:
        out += [f"| {title.lower()[:-1] if title.endswith('s') else title} | type | default | description |",
                "|---|---|---|---|"]
        for r in rs:
            names = " / ".join(f"`{n}`" for n in re.split(r"\s{2,}", r["names"]) if n)
            req = " (required)" if r["required"] else ""
            default = f"`{r['default']}`" if r["default"] else ""
            typ = f"`{r['type']}`" if r["type"] else ""
            out.append(f"| {names}{req} | {typ} | {cell(default)} | {cell(r['text'])} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print("\n".join(render(v) for v in VERBS))
