"""fit's progress when stderr is a file (a log, a batch job): one plain line per epoch, no bar."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from xcausal._runtime import FitProgress


def test_fit_writes_one_line_per_epoch_to_a_redirected_stderr(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    data = tmp_path / "d"
    subprocess.run([sys.executable, "-m", "xcausal.cli", "simulate", "--graph", "first", "--n", "64", "--out",
                    str(data)], check=True, env=env, capture_output=True)
    log = tmp_path / "fit.log"
    with open(log, "w") as err:
        done = subprocess.run([sys.executable, "-m", "xcausal.cli", "fit", str(data), "--out", str(tmp_path / "r"),
                               "--epochs", "3", "--device", "cpu", "--bootstrap", "2"], stderr=err,
                              stdout=subprocess.DEVNULL, env=env)
    text = log.read_text()
    assert done.returncode == 0, text
    lines = [ln for ln in text.splitlines() if ln.startswith("fit epoch ")]
    assert [re.match(r"fit epoch (\d+)/3 ", ln).group(1) for ln in lines] == ["1", "2", "3"], text
    assert all(re.search(r"h=\S+ edges=\d+ \[\d+:\d\d elapsed, ~\d+:\d\d left\]$", ln) for ln in lines), lines
    assert "\x1b[" not in text and "━" not in text  # no terminal control codes, no bar
    # before: what the fit will do and an estimate; after the epochs: the final refit's stages, then each refit
    assert re.search(r"^fit: 64 images at 32 px, 3 epochs of 1 steps; estimated time about \d+ (s|min)$", text, re.M)
    stages = [ln for ln in text.splitlines() if ln.startswith("final refit: ")]
    assert stages[0].startswith("final refit: encoding the rows") and stages[-1].startswith("final refit: done")
    assert any(ln.startswith("final refit: solving the DAG over ") for ln in stages), stages
    refits = [re.match(r"bootstrap refit (\d)/2 \(\d+ edges\) \[", ln) for ln in text.splitlines()
              if ln.startswith("bootstrap refit ")]
    assert [m.group(1) for m in refits] == ["1", "2"], text
    order = [text.index(s) for s in ("fit: 64 images", "fit epoch 3/3", "final refit: done", "bootstrap refit 2/2")]
    assert order == sorted(order)


def test_log_lines_are_throttled_but_the_last_epoch_is_always_written():
    out = io.StringIO()
    bar = FitProgress(5, "fit", lambda row: f"loss={row['loss']}", stream=out, log_every=3600.0)
    for k in range(5):
        bar.update({"loss": k})
    bar.close()
    assert out.getvalue().splitlines()[0].startswith("fit epoch 5/5 loss=4 [")
    assert len(out.getvalue().splitlines()) == 1
