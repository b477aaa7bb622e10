"""`xcausal fit --checkpoint-every / --resume`: a fit killed by SIGTERM and resumed ends with the
same run directory as an uninterrupted one; NaN and signals give one-line errors; RUN only appears
complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xcausal.cli import main
from xcausal.models.cmcl import losses, trainer
from xcausal.models.cmcl import read_training_checkpoint_meta

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIT = ["--epochs", "8", "--checkpoint-every", "2", "--device", "cpu"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
# The interrupted fit runs the real CLI with each gradient step slowed by a sleep (no change to the
# arithmetic), so that the SIGTERM reliably lands while training still runs, whatever the load.
SLOW_CLI = ("import sys, time\n"
            "import xcausal.models.cmcl.trainer as m\n"
            "step = m.step_losses\n"
            "def slow(self, *a, **k):\n"
            "    time.sleep(0.25)\n"
            "    return step(self, *a, **k)\n"
            "m.step_losses = slow\n"
            "from xcausal.cli import main\n"
            "sys.exit(main())\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("resume") / "first"
    assert main(["simulate", "--graph", "first", "--n", "100", "--out", str(d)]) == 0
    return d


def checkpoint_epoch(work: Path) -> int:
    try:
        meta = read_training_checkpoint_meta(work)
    except ValueError:  # (cannot happen: checkpoint.json is replaced atomically)
        return -1
    return -1 if meta is None else int(meta["epoch"])


def test_sigterm_then_resume_matches_an_uninterrupted_fit(data, tmp_path):
    run, ref = tmp_path / "run", tmp_path / "ref"
    work = tmp_path / "run.partial"
    killed = subprocess.Popen([sys.executable, "-c", SLOW_CLI, "fit", str(data), "--out", str(run), *FIT],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reference = subprocess.Popen([sys.executable, "-m", "xcausal.cli", "fit", str(data), "--out", str(ref), *FIT,
                                  "-q"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while checkpoint_epoch(work) < 2:
            assert killed.poll() is None, f"the fit ended before its epoch-2 checkpoint: {killed.communicate()}"
            assert time.monotonic() < deadline, "no epoch-2 checkpoint within 120 s"
            time.sleep(0.02)
        killed.send_signal(signal.SIGTERM)
        out, err = killed.communicate(timeout=120)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert killed.returncode == 128 + signal.SIGTERM
    progress = [ln for ln in err.splitlines() if ln.startswith("fit epoch ")]  # stderr is a pipe: log lines
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("fit epoch ", "fit: "))]
    assert len(progress) >= 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("interrupted by SIGTERM: training stopped after epoch") and "--resume" in lines[0]
    assert not run.exists() and not list(tmp_path.glob(".run.tmp-*"))
    meta = read_training_checkpoint_meta(work)
    assert meta["reason"] == "stop" and meta["epoch"] >= 2 and not meta["finished"]
    assert meta["epoch"] < 8, "the signal came after training: nothing was resumed"

    res = subprocess.run([sys.executable, "-m", "xcausal.cli", "fit", str(data), "--out", str(run), *FIT, "--resume",
                          "-q"], env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert reference.wait(timeout=300) == 0, reference.communicate()[1]
    assert not work.exists()
    for name in ("graph.json", "latents.csv", "history.csv", "adjacency.csv"):
        assert (run / name).read_bytes() == (ref / name).read_bytes(), name
    conf = json.loads((run / "config.json").read_text())
    assert conf["resumed_from"]["epoch"] == meta["epoch"] and conf["resumed_from"]["step"] == meta["step"]


def nan_from_call(monkeypatch, n: int) -> None:
    """kl_std returns NaN from its n-th call on (100 rows at batch 64: 2 steps per epoch)."""
    orig = losses.kl_std
    calls = [0]

    def kl_std(mu, lv):
        calls[0] += 1
        return orig(mu, lv) * float("nan") if calls[0] >= n else orig(mu, lv)

    monkeypatch.setattr(losses, "kl_std", kl_std)


def test_nan_is_one_line_exit_2_and_keeps_the_last_good_checkpoint(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    args = ["fit", str(data), "--out", str(run), "--epochs", "4", "--checkpoint-every", "2", "--device", "cpu", "-q"]
    nan_from_call(monkeypatch, 6)  # epoch 3, step 2
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "loss term kl0=nan" in err and "epoch 3, step 2 of 2" in err and "last good checkpoint (epoch 2)" in err
    assert not run.exists() and not list(tmp_path.glob(".run.tmp-*"))
    meta = read_training_checkpoint_meta(tmp_path / "run.partial")
    assert (meta["epoch"], meta["step"]) == (2, 0)

    monkeypatch.undo()
    # a new fit refuses to overwrite the checkpoint silently; --resume may lower the learning rate
    assert main(args) == 2
    assert "pass --resume to continue it" in capsys.readouterr().err
    assert main([*args, "--resume", "--lr", "5e-4"]) == 0
    assert (run / "graph.json").is_file() and not (tmp_path / "run.partial").exists()
    conf = json.loads((run / "config.json").read_text())
    assert conf["resumed_from"]["lr"] == 1e-3 and conf["params"]["lr"] == 5e-4


def stop_by_sigint_at_step(monkeypatch, n: int, seen: list | None = None) -> None:
    """Send this process SIGINT during the n-th gradient step (recording the handler then in ``seen``)."""
    orig = trainer.step_losses
    calls = [0]

    def step(self, *a, **k):
        calls[0] += 1
        if calls[0] == n:
            if seen is not None:
                seen.append(signal.getsignal(signal.SIGINT))
            os.kill(os.getpid(), signal.SIGINT)
        return orig(self, *a, **k)

    monkeypatch.setattr(trainer, "step_losses", step)


def test_resume_errors_are_one_line(data, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    base = ["fit", str(data), "--out", str(run), "--epochs", "2", "--device", "cpu", "-q"]
    assert main([*base, "--resume"]) == 2
    assert "run.partial holds no training checkpoint" in capsys.readouterr().err
    assert main([*base, "--resume", "--method", "pima"]) == 2
    assert "writes no training checkpoints" in capsys.readouterr().err
    assert main([*base, "--resume", "--checkpoint-every", "0"]) == 2
    capsys.readouterr()
    # leave a checkpoint behind: a fit stopped by SIGINT in its third step (epoch 2, step 1)
    work = tmp_path / "run.partial"
    stop_by_sigint_at_step(monkeypatch, 3)
    assert main(base) == 130
    monkeypatch.undo()
    assert checkpoint_epoch(work) == 1
    assert main([*base, "--resume", "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "options differ" in err and "seed = 3 (checkpoint: 0)" in err
    assert main([*base, "--resume", "--image-size", "16"]) == 2
    assert "image_size" in capsys.readouterr().err
    assert main([*base, "--overwrite"]) == 0  # starts over: the stale checkpoint is removed
    assert run.is_dir() and not work.exists()


def test_sigint_in_process_stops_cleanly_and_restores_handlers(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    seen: list = []
    stop_by_sigint_at_step(monkeypatch, 3, seen)
    args = ["fit", str(data), "--out", str(run), "--epochs", "4", "--device", "cpu", "-q"]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted by SIGINT: training stopped after epoch 2, step 1 of 4") and err.count("\n") == 1
    assert seen and seen[0] is not before[signal.SIGINT]
    assert {s: signal.getsignal(s) for s in before} == before
    assert not run.exists() and checkpoint_epoch(tmp_path / "run.partial") == 1
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0 and run.is_dir()
    assert {s: signal.getsignal(s) for s in before} == before


def test_checkpoint_every_0_writes_no_work_directory(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    orig = trainer.step_losses
    seen = []

    def step(self, *a, **k):
        seen.append(signal.getsignal(signal.SIGTERM))
        return orig(self, *a, **k)

    monkeypatch.setattr(trainer, "step_losses", step)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["fit", str(data), "--out", str(run), "--epochs", "2", "--device", "cpu", "-q",
                 "--checkpoint-every", "0"]) == 0
    assert run.is_dir() and not (tmp_path / "run.partial").exists()
    assert all(h is before for h in seen)  # no handler without checkpoints


def test_failure_before_the_first_checkpoint_leaves_nothing(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(run), "--h-func", "nope", "--device", "cpu", "-q"]) == 2
    assert "h_func='nope'" in capsys.readouterr().err
    nan_from_call(monkeypatch, 1)
    assert main(["fit", str(data), "--out", str(run), "--epochs", "2", "--device", "cpu", "-q"]) == 2
    err = capsys.readouterr().err
    assert "at epoch 1, step 1 of 2; try a smaller learning rate" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
