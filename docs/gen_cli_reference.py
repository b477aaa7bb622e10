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

VERBS = ["simulate", "info", "convert", "fit", "evaluate", "intervene", "counterfactual", "explain", "report",
         "bench"]


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


def render(verb: str) -> str:
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
