"""CMCL's parts on their own: the option rules, the DAG's edge editing, the one orientation loop."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xcausal.data.dataset import Variable
from xcausal.models.cmcl import CMCL, config, orientation
from xcausal.structure import NotearsMLP, bipartite_mask
from xcausal.types import VarType


def params(**over):
    return {**CMCL().get_params(), "exogenous": (), **over}


def test_config_validates_choices_ranges_and_rules_with_one_message_each():
    config.validate(params())  # the defaults obey every rule
    cases = [(dict(h_func="x"), "h_func='x': must be 'logdet' or 'expm'"),
             (dict(init="pca"), "init='pca': must be 'auto', 'varimax', 'ica' or 'none'"),
             (dict(batch_size=1), "batch_size=1: must be 2 to 65536"),
             (dict(lr=0.0), "lr=0.0: must be a finite number > 0"),
             (dict(dag_hidden=()), r"dag_hidden=\(\): must be one or more integers"),
             (dict(dag_warmup=1.0), r"dag_warmup=1.0: must be in \[0, 1\)"),
             (dict(cr_vars=0), "cr_vars=0: must be 'all' or an integer >= 1"),
             (dict(num_workers=-1), "num_workers=-1: must be an integer >= 0"),
             (dict(exogenous="age"), "exogenous='age': must be a list of variable names"),
             (dict(decoder="pose", use_cm=False), "needs the causal module"),
             (dict(decoder="pose", latent_dim=2), "latent_dim=2: decoder='pose' needs more than 3")]
    for over, message in cases:
        with pytest.raises(ValueError, match=message):
            config.validate(params(**over))
    for name, values in config.CHOICES.items():  # every choice named in the table is accepted
        for v in values:
            if name == "decoder" and v == "pose":
                continue  # pose has its own rules with the default init
            config.validate(params(**{name: v}))


def test_config_imports_without_torch():
    code = "import sys, xcausal.models.cmcl.config as c; assert c.CHOICES; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_cmcl_parameter_is_reported_by_get_params():
    import inspect

    names = [p for p in inspect.signature(CMCL.__init__).parameters if p != "self"]
    got = CMCL(latent_dim=7, exogenous=("a",), dag_hidden=(5, 5)).get_params()
    assert list(got) == names
    assert got["latent_dim"] == 7 and got["exogenous"] == ["a"] and got["dag_hidden"] == [5, 5]


def test_notears_allow_and_forbid_edge_keep_mask_weights_and_adjacency_consistent():
    torch.manual_seed(0)
    dag = NotearsMLP(node_types=["continuous", "categorical", "continuous"], n_categories=[1, 3, 1],
                     hidden=(4,), allowed=bipartite_mask(["observed", "observed", "latent"]))
    w = dag.adjacency().detach()
    assert float(w[1, 2]) > 0 and float(w[2, 1]) > 0
    dag.forbid_edge(1, 2)  # a categorical source: all three one-hot columns
    assert not bool(dag.allowed[1, 2]) and float(dag.adjacency().detach()[1, 2]) == 0.0
    assert torch.equal(dag.input_mask[:, :, 0].bool(), dag.allowed[dag._src])
    dag.allow_edge(1, 2)
    assert bool(dag.allowed[1, 2]) and torch.equal(dag.input_mask[:, :, 0].bool(), dag.allowed[dag._src])
    V = torch.randn(32, 3)
    V[:, 1] = torch.randint(0, 3, (32,)).float()
    dag.node_nll(V).sum().backward()
    rows = dag._src == 1
    assert dag.fc1_weight.grad[rows, 2].abs().sum() > 0  # the edge learns again
    saved = dag.input_mask.clone()
    dag.forbid_edge(0, 2)
    dag.set_input_mask(saved)
    assert torch.equal(dag.input_mask, saved)


def _pair_model(**over):
    """What the orientation reads of a fitted CMCL: the variables and the orientation options."""
    opts = dict(anm_method="pnl", anm_entropy="auto", anm_decontaminate=False, anm_latent_scale="auto",
                decoder="conv")
    variables = [Variable("a", VarType.CONTINUOUS), Variable("b", VarType.BINARY, ("0", "1"))]
    return SimpleNamespace(encoding_=SimpleNamespace(variables=variables), **{**opts, **over})


def test_orient_pairs_is_the_loop_behind_the_refits_mask():
    rng = np.random.default_rng(1)
    n = 1500
    a = rng.uniform(-2, 2, n)
    b = rng.integers(0, 2, n).astype(float)
    z_child = np.tanh(a) + 0.3 * rng.uniform(-1, 1, n)  # a -> z1
    z_parent = rng.uniform(-2, 2, n)
    u = np.column_stack([np.sin(z_parent) + 0.3 * rng.uniform(-1, 1, n), b])  # z2 -> a' (another table)
    model = _pair_model()
    V = np.column_stack([a, b, z_child, rng.normal(size=n)])
    verdicts = orientation.orient_pairs(model, V[:, :2], V[:, 2:], [(0, 2)])
    assert [(v.variable, v.latent, v.direction) for v in verdicts] == [(0, 2, 1)]
    V2 = np.column_stack([u, rng.normal(size=n), z_parent])
    verdicts = orientation.orient_pairs(model, V2[:, :2], V2[:, 2:], [(0, 3)])
    assert [(v.variable, v.latent, v.direction) for v in verdicts] == [(0, 3, -1)]
    # the refit's mask applies exactly these verdicts, to continuous pairs open both ways only
    mask = orientation.orientation_mask(model, V, bipartite_mask(["observed"] * 2 + ["latent"] * 2))
    scored = {(v.variable, v.latent): v.direction
              for v in orientation.orient_pairs(model, V[:, :2], V[:, 2:], [(0, 2), (0, 3)])}
    for (i, j), direction in scored.items():
        assert bool(mask[i, j]) == (direction == 1) and bool(mask[j, i]) == (direction != 1)
    assert mask[1, 2] and mask[2, 1] and mask[1, 3] and mask[3, 1]  # the binary b: left to the DAG


def test_orient_pairs_skips_a_constant_latent():
    rng = np.random.default_rng(0)
    u = np.column_stack([rng.normal(size=200), rng.integers(0, 2, 200)])
    Z = np.column_stack([np.zeros(200), rng.normal(size=200)])
    got = orientation.orient_pairs(_pair_model(), u, Z, [(0, 2), (0, 3)])
    assert [v.latent for v in got] == [3]


def test_a_last_step_that_diverges_is_an_error_not_a_fit():
    """One step per epoch: the loss of every step is checked before its update, so only the
    finished fit's check can see what the last update did (latents around 1e24 here)."""
    from tests.models.test_cmcl import tiny

    with pytest.raises(FloatingPointError, match=r"latents reach .* after epoch 1 .*smaller learning rate"):
        CMCL(latent_dim=2, epochs=1, batch_size=64, device="cpu", lr=1e3).fit(tiny(30))
    model = CMCL(latent_dim=2, epochs=1, batch_size=64, device="cpu").fit(tiny(30))  # the default lr: fine
    assert np.isfinite(model.transform(tiny(30))).all()


def test_numeric_warnings_of_a_fit_go_to_the_log(monkeypatch, caplog, recwarn):
    import logging
    import warnings

    from tests.models.test_cmcl import tiny
    from xcausal.models.cmcl import trainer

    orig = trainer.kl_weight

    def noisy(*args):
        warnings.warn("overflow encountered in exp", RuntimeWarning)  # what numpy says on a diverging step
        warnings.warn("a user-facing note", UserWarning)
        return orig(*args)

    monkeypatch.setattr(trainer, "kl_weight", noisy)
    with caplog.at_level(logging.INFO, logger="xcausal"):
        CMCL(latent_dim=2, epochs=2, batch_size=16, device="cpu").fit(tiny())
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert [w for w in recwarn if issubclass(w.category, UserWarning) and "user-facing" in str(w.message)]
    assert any("numeric warning(s) during the fit (first: overflow encountered in exp)" in r.message
               for r in caplog.records)
