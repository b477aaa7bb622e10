"""fit --devices / --strategy / --precision / --data-loading / --workers: one-line errors, config keys."""

from __future__ import annotations

import json

import pytest

from xcausal.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("fab") / "d"
    assert main(["simulate", "--graph", "first", "--n", "64", "--seed", "0", "--out", str(d)]) == 0
    return d


@pytest.mark.parametrize("args, message", [
    (["--devices", "0"], "devices=0: must be an integer >= 1"),
    (["--strategy", "fsdp"], "strategy='fsdp'"),
    (["--precision", "16"], "precision='16'"),
    (["--data-loading", "disk"], "--data-loading disk: must be auto, memory or stream"),
    (["--workers", "-1"], "--workers -1"),
    (["--method", "ivae+notears", "--devices", "2"], "--devices 2: implemented for cmcl only"),
    (["--method", "causal-pima", "--precision", "bf16-mixed"], "--precision bf16-mixed: implemented for cmcl only"),
])
def test_bad_options_are_one_line_errors(data, tmp_path, capsys, args, message):
    run = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(run), "--epochs", "1", "--device", "cpu", "-q", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not run.exists()


def test_options_from_config_reach_the_model(data, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("epochs: 1\nprecision: 32\ndata-loading: stream\nworkers: 0\ndevice: cpu\nquiet: true\n")
    run = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(run), "--config", str(cfg)]) == 0
    params = json.loads((run / "config.json").read_text())
    flat = json.dumps(params)
    assert '"data_loading": "stream"' in flat and '"num_workers": 0' in flat and '"precision": "32"' in flat
