"""fit options: one-line errors before any work, one name across flags, --set and config keys."""

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
    (["--devices", "99"], "devices=99: this machine has"),
    (["--lr", "0"], "lr=0.0: must be a finite number > 0"),
    (["--lr", "inf"], "lr=inf: must be a finite number > 0"),
    (["--w-threshold", "nan"], "w_threshold=nan: must be a finite number >= 0"),
    (["--latent-dim", "100000"], "latent_dim=100000: must be 1 to 256"),
    (["--set", "batch_size=100000000"], "batch_size=100000000: must be 2 to 65536"),
    (["--strategy", "fsdp"], "strategy='fsdp'"),
    (["--precision", "16"], "precision='16'"),
    (["--data-loading", "disk"], "data_loading='disk': must be 'auto', 'memory', 'stream' or 'cache'"),
    (["--num-workers", "-1"], "num_workers=-1: must be an integer >= 0"),
    (["--method", "ivae+notears", "--devices", "2"], "devices=2: implemented for cmcl only"),
    (["--method", "causal-pima", "--precision", "bf16-mixed"], "precision='bf16-mixed': implemented for cmcl only"),
    (["--anm-method", "anm"], "anm_method='anm': must be 'entropy', 'pnl' or 'hsic'"),
    (["--method", "ivae+notears", "--anm-method", "entropy"], "anm_method='entropy': implemented for cmcl only"),
    (["--init", "pca"], "init='pca': must be 'auto', 'varimax', 'ica' or 'none'"),
    (["--method", "ivae+notears", "--init", "ica"], "init='ica': implemented for cmcl only"),
    (["--cr-vars", "some"], "cr_vars='some': must be 'all' or an integer >= 1"),
    (["--cr-vars", "0"], "cr_vars=0: must be 'all' or an integer >= 1"),
    (["--method", "ivae+notears", "--cr-vars", "all"], "cr_vars='all': implemented for cmcl only"),
    (["--cr-vars", "²"], "cr_vars='²': must be 'all' or an integer >= 1"),
    (["--method", "ivae+notears", "--no-anm-decontaminate"], "anm_decontaminate=False: implemented for cmcl only"),
    (["--anm-latent-scale", "rank"], "anm_latent_scale='rank': must be 'auto', 'normal' or 'raw'"),
    (["--method", "ivae+notears", "--anm-latent-scale", "raw"], "anm_latent_scale='raw': implemented for cmcl only"),
    (["--anm-entropy", "knn"], "anm_entropy='knn': must be 'auto', 'gmm' or 'vasicek'"),
    (["--method", "ivae+notears", "--anm-entropy", "gmm"], "anm_entropy='gmm': implemented for cmcl only"),
    (["--set", "anm_entropy=knn"], "anm_entropy='knn': must be 'auto', 'gmm' or 'vasicek'"),
    (["--set", "anm_entropy=gmm", "--anm-entropy", "gmm"], "anm_entropy is also given as a flag"),
    (["--set", "lr=fast"], "--set lr=fast: must be a number"),
    (["--set", "nope=1"], "--set nope=1: expected NAME=VALUE with an option name"),
    (["--set", "dag_hidden=5,x"], "dag_hidden='5,x': must be integers separated by commas"),
    (["--decoder", "affine"], "decoder='affine': must be 'conv' or 'pose'"),
    (["--method", "ivae+notears", "--decoder", "pose"], "decoder='pose': implemented for cmcl only"),
    (["--decoder", "pose", "--no-cm"], "decoder='pose' needs the causal module"),
    (["--decoder", "pose", "--init", "varimax"], "decoder='pose' with init='varimax'"),
    (["--decoder", "pose", "--latent-dim", "3"], "latent_dim=3: decoder='pose' needs more than 3 latents"),
    (["--min-effect", "-1"], "min_effect=-1.0: must be a finite number >= 0"),
    (["--min-effect", "nan"], "min_effect=nan: must be a finite number >= 0"),
    (["--method", "ivae+notears", "--min-effect", "2"], "min_effect=2.0: implemented for cmcl only"),
    (["--method", "ivae+notears", "--exogenous", "u1"], "exogenous='u1': implemented for cmcl only"),
    (["--exogenous", "u1,age"], "has no variable column 'age' (variables: u1, u2, u3"),
    (["--forbid", "u1->age"], "--forbid u1->age: "),
    (["--measured-from-image", "ink"], "--measured-from-image ink: "),
    (["--forbid", "u1-u2"], "forbid='u1-u2': expected one edge SOURCE->TARGET"),
    (["--forbid", "u1->u1"], "forbid='u1->u1': a self-loop"),
    (["--require", "u1->u2"], "require='u1->u2': an edge between two variables needs allow_all_edges=True"),
    (["--allow-all-edges", "--require", "u1->u2,u2->u1"], "the required edges form a cycle (u1 -> u2 -> u1)"),
    (["--allow-all-edges", "--require", "u1->u2", "--forbid", "u1->u2"], "require='u1->u2': the same edge is forb"),
    (["--exogenous", "u1", "--measured-from-image", "u1"], "measured_from_image='u1': also listed as exogenous"),
    (["--method", "ivae+notears", "--forbid", "image->u1"], "forbid='image->u1': implemented for cmcl only"),
])
def test_bad_options_are_one_line_errors(data, tmp_path, capsys, args, message):
    run = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(run), "--epochs", "1", "--device", "cpu", "-q", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not run.exists() and not (tmp_path / "run.partial").exists()  # refused before any work


def test_options_from_config_reach_the_model(data, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("epochs: 5\nprecision: 32\ndata-loading: stream\nnum-workers: 0\ndevice: cpu\nquiet: true\n"
                   "anm-method: entropy\ninit: ica\ncr-vars: 2\nanm-decontaminate: false\n"
                   "anm-latent-scale: raw\nanm-entropy: vasicek\n")
    run = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(run), "--config", str(cfg)]) == 0
    params = json.loads((run / "config.json").read_text())
    flat = json.dumps(params)
    assert '"data_loading": "stream"' in flat and '"num_workers": 0' in flat and '"precision": "32"' in flat
    assert '"anm_method": "entropy"' in flat and '"init": "ica"' in flat and '"cr_vars": 2' in flat
    assert '"anm_decontaminate": false' in flat and '"anm_latent_scale": "raw"' in flat
    assert '"anm_entropy": "vasicek"' in flat
    assert '"anchor": {"method": "ica"' in flat  # the anchor actually used


def test_decoder_and_min_effect_from_config_reach_the_model(data, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("epochs: 2\ndevice: cpu\nquiet: true\ndecoder: pose\nmin-effect: 0.5\n")
    run = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(run), "--config", str(cfg)]) == 0
    flat = json.dumps(json.loads((run / "config.json").read_text()))
    assert '"decoder": "pose"' in flat and '"min_effect": 0.5' in flat and '"anchor": null' in flat
    assert json.loads((run / "config.json").read_text())["pruned_edges"] == []  # recorded (none on 2 epochs)


def test_cache_mode_builds_once_and_fits_like_streaming(data, tmp_path):
    """--data-loading cache decodes the images once into DATA/.xcausal-cache/ and streams from it;
    8-bit images at their stored size are cached exactly, so the fit equals a streaming one."""
    common = ["--epochs", "2", "--device", "cpu", "--num-workers", "0", "-q"]
    assert main(["fit", str(data), "--out", str(tmp_path / "s"), "--data-loading", "stream", *common]) == 0
    assert not (data / ".xcausal-cache").exists()
    assert main(["fit", str(data), "--out", str(tmp_path / "c"), "--data-loading", "cache", *common]) == 0
    caches = sorted((data / ".xcausal-cache").glob("*.npy"))
    assert len(caches) == 1, caches
    built = caches[0].stat().st_mtime_ns
    assert (tmp_path / "c" / "graph.json").read_text() == (tmp_path / "s" / "graph.json").read_text()
    assert (tmp_path / "c" / "latents.csv").read_text() == (tmp_path / "s" / "latents.csv").read_text()
    assert main(["fit", str(data), "--out", str(tmp_path / "c2"), "--data-loading", "cache", *common]) == 0
    assert caches[0].stat().st_mtime_ns == built  # reused, not rebuilt
    params = json.loads((tmp_path / "c" / "config.json").read_text())
    assert '"data_loading": "cache"' in json.dumps(params)


def test_exogenous_from_the_command_line_and_the_config_reach_the_model(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(run), "--epochs", "2", "--device", "cpu", "-q",
                 "--exogenous", "u1,u2"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["params"]["exogenous"] == ["u1", "u2"] and config["unexplained_dependences"] is not None
    adjacency = (run / "adjacency.csv").read_text().splitlines()
    header = adjacency[0].split(",")
    for row in adjacency[1:]:  # nothing points into u1 or u2
        cells = row.split(",")
        assert float(cells[header.index("u1")]) == 0 and float(cells[header.index("u2")]) == 0
    cfg = tmp_path / "run.yaml"
    cfg.write_text("epochs: 2\ndevice: cpu\nquiet: true\nexogenous: [u3]\nmeasured_from_image: [u1]\n"
                   "forbid: ['image->u2']\n")
    run2 = tmp_path / "run2"
    capsys.readouterr()
    assert main(["fit", str(data), "--out", str(run2), "--config", str(cfg)]) == 0
    params = json.loads((run2 / "config.json").read_text())["params"]
    assert params["exogenous"] == ["u3"] and params["measured_from_image"] == ["u1"]
    assert params["forbid"] == ["image->u2"] and params["require"] == []
    assert ("Background knowledge used: u3 exogenous; u1 measured from the image; forbidden: image->u2"
            in capsys.readouterr().err)
    adjacency = (run2 / "adjacency.csv").read_text().splitlines()
    header = adjacency[0].split(",")
    for row in adjacency[1:]:
        cells = row.split(",")
        if cells[0] == "u1":  # nothing from u1 into a latent
            assert all(float(cells[k]) == 0 for k, h in enumerate(header) if h.startswith("z"))
        if cells[0].startswith("z"):  # nothing from a latent into u2
            assert float(cells[header.index("u2")]) == 0
