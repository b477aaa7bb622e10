"""The HTML report in a real headless browser (Debian's chromium): it loads, logs nothing to the
console, every image decodes, and the first screen is not blank.

Chromium is driven from the command line only (no Selenium / Playwright):

* ``--screenshot`` of the first screen (1280 × 2000), checked to be a non-blank PNG; saved under
  the test's tmp dir and copied to ``$XCAUSAL_SCREENSHOT_DIR`` when that is set;
* ``--enable-logging=stderr --v=0``: chromium writes every console message of the page (uncaught
  errors, Content-Security-Policy violations, ...) to stderr as ``...:CONSOLE...`` lines. The
  report has no JavaScript, so *any* console line about it is a failure. A control page (an
  inline script under the report's CSP) proves the detector sees such messages;
* ``--dump-dom``: the report as parsed by the browser holds every ``<img>``;
* image decoding: the report itself has (and must have) no script, so a separate harness page
  embeds the report's exact HTML in an ``<iframe srcdoc>`` and, on load, records each image's
  ``complete`` / ``naturalWidth`` into its own DOM, read back with ``--dump-dom``. A copy with one
  corrupted image proves the check catches a broken image.

When chromium is not installed the tests install it with ``apt-get install -y chromium`` (root
and apt-get needed, else they are skipped with the reason) and are then marked ``slow``; when it is
installed they run in the default suite.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _report_runs import set_edges, simulate, tiny_cmcl_run
from xcausal.viz import write_report


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


CHROMIUM = _find_chromium()
pytestmark = [pytest.mark.usefixtures("one_torch_thread")] + ([] if CHROMIUM else [pytest.mark.slow])

WINDOW = (1280, 2000)
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _find_chromium()
    if path:
        return path
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if res.returncode != 0:
            pytest.skip(f"chromium could not be installed ({' '.join(cmd)}: {res.stderr.strip()[-300:]})")
    path = _find_chromium()
    if not path:
        pytest.skip("apt-get installed chromium but no chromium executable was found")
    return path


def run_chromium(chromium: str, tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [chromium, "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *args, url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, f"chromium exited with {res.returncode}: {res.stderr[-2000:]}"
    return res


def console_lines(stderr: str, page: Path) -> list[str]:
    """Console messages chromium logged for ``page`` (any level: the report runs no script)."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln and (page.name in ln or "source:" not in ln)]


def harness(report_html: str, path: Path) -> Path:
    """A page that loads ``report_html`` in an iframe and writes each image's decode state into its DOM."""
    path.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f'<iframe id="f" style="width:{WINDOW[0]}px;height:{WINDOW[1]}px" srcdoc="{html.escape(report_html, quote=True)}">'
        '</iframe><pre id="result">pending</pre><script>'
        'window.addEventListener("load", () => {'
        ' const doc = document.getElementById("f").contentDocument;'
        ' const imgs = Array.from(doc.images).map(im => [im.complete, im.naturalWidth, im.naturalHeight]);'
        ' document.getElementById("result").textContent = "RESULT" + JSON.stringify({title: doc.title, imgs: imgs});'
        '});</script></body></html>', encoding="utf-8")
    return path


def harness_result(dom: str) -> dict:
    m = re.search(r'<pre id="result">RESULT(.*?)</pre>', dom, re.S)
    assert m, "the harness did not record a result: " + dom[-500:]
    return json.loads(html.unescape(m.group(1)))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report_browser")
    run = tiny_cmcl_run(simulate(root), root / "run")
    set_edges(run, [{"source": "u1", "target": "z1", "weight": 0.8, "support": 0.9},
                    {"source": "z2", "target": "u2", "weight": 0.5}])
    return write_report(run)


def test_first_screen_screenshot_is_not_blank_and_console_is_clean(chromium, report, tmp_path):
    shot = tmp_path / "report_first_screen.png"
    res = run_chromium(chromium, tmp_path, report.as_uri(), f"--screenshot={shot}",
                       f"--window-size={WINDOW[0]},{WINDOW[1]}")
    assert console_lines(res.stderr, report) == []
    assert shot.is_file()
    im = Image.open(shot)
    assert im.size == WINDOW
    grey = np.asarray(im.convert("L"), dtype=np.float64)
    assert grey.std() > 10  # text, tables, the graph: not one flat colour
    assert (grey < 200).mean() > 0.01  # enough dark ink on the page
    assert (grey > 240).mean() > 0.3  # a white page, not an error screen
    target = os.environ.get("XCAUSAL_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, Path(target) / shot.name)


def test_dom_holds_every_image_and_every_section(chromium, report, tmp_path):
    res = run_chromium(chromium, tmp_path, report.as_uri(), "--dump-dom")
    assert console_lines(res.stderr, report) == []
    dom = res.stdout
    n_file = report.read_text().count("<img ")
    srcs = re.findall(r'<img [^>]*src="([^"]*)"', dom)
    assert n_file >= 5 and len(srcs) == n_file
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    for sid in ("summary", "data", "graph", "interventions", "traversals", "gradcam", "training", "provenance"):
        assert f'id="{sid}"' in dom
    assert "<script" not in dom


def test_every_image_decodes_in_the_browser(chromium, report, tmp_path):
    text = report.read_text()
    page = harness(text, tmp_path / "harness.html")
    res = run_chromium(chromium, tmp_path, page.as_uri(), "--dump-dom")
    out = harness_result(res.stdout)
    assert out["title"].startswith("xcausal report")
    assert len(out["imgs"]) == text.count("<img ")
    assert all(done and w > 10 and h > 10 for done, w, h in out["imgs"]), out["imgs"]
    # control: the same check on a copy with one corrupted image must see it
    bad = text.replace("src=\"data:image/png;base64,", "src=\"data:image/png;base64,AAAA", 1)
    res = run_chromium(chromium, tmp_path, harness(bad, tmp_path / "bad.html").as_uri(), "--dump-dom")
    sizes = [w for _, w, _ in harness_result(res.stdout)["imgs"]]
    assert sizes[0] == 0 and all(w > 10 for w in sizes[1:])


def test_console_detector_control(chromium, tmp_path):
    """A script under the report's CSP is refused, and the refusal shows up as a console line."""
    page = tmp_path / "control.html"
    page.write_text(f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{CSP}">'
                    '</head><body><p>x</p><script>throw new Error("boom")</script></body></html>')
    res = run_chromium(chromium, tmp_path, page.as_uri(), "--dump-dom")
    lines = console_lines(res.stderr, page)
    assert lines and any("Content Security Policy" in ln for ln in lines), res.stderr[-2000:]
    page2 = tmp_path / "control2.html"
    page2.write_text('<!DOCTYPE html><html><body><script>throw new Error("boom")</script></body></html>')
    res = run_chromium(chromium, tmp_path, page2.as_uri(), "--dump-dom")
    assert any("Uncaught Error: boom" in ln for ln in console_lines(res.stderr, page2))
