"""CMCL's background knowledge: measured_from_image, forbid and require next to exogenous.

One tiny fit (a few rows, two epochs) carries every tier; the rules that need no data are checked
on the option values alone.
"""

from __future__ import annotations

import copy
import logging
from types import SimpleNamespace

import pytest

from xcausal.models.cmcl import CMCL, nets, orientation
from xcausal.models.cmcl.config import check_knowledge, knowledge_summary, parse_edges

from tests.models.test_cmcl import FAST, tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# tiny(): variables a (continuous, node 0), b (binary, 1), c (categorical, 2); latents z1, z2 (nodes 3, 4)
KNOWN = dict(allow_all_edges=True, measured_from_image=["a"], forbid=["image->b", "c->a"], require=["a->c"])


@pytest.fixture(scope="module")
def known_fit():
    ds = tiny()
    return ds, CMCL(**FAST, seed=0, **KNOWN).fit(ds)


@pytest.mark.parametrize("params, message", [
    (dict(exogenous=["a"], measured_from_image=["a"]), "measured_from_image='a': also listed as exogenous"),
    (dict(forbid=["a-b"]), "forbid='a-b': expected one edge SOURCE->TARGET"),
    (dict(forbid=["a->b->c"]), "forbid='a->b->c': expected one edge"),
    (dict(require=["a -> a"], allow_all_edges=True), "require='a -> a': a self-loop"),
    (dict(forbid=["a->b"], require=["a->b"], allow_all_edges=True), "require='a->b': the same edge is forbidden"),
    (dict(require=["a->b", "b->c", "c->a"], allow_all_edges=True),
     "require='a->b,b->c,c->a': the required edges form a cycle (a -> b -> c -> a)"),
    (dict(require=["a->b", "b->a"], allow_all_edges=True), "form a cycle (a -> b -> a)"),
    (dict(require=["a->b"]), "require='a->b': an edge between two variables needs allow_all_edges=True"),
    (dict(require=["image->b"], allow_all_edges=True), "require='image->b': 'image' (every latent) can only be"),
    (dict(require=["a->b"], exogenous=["b"], allow_all_edges=True), "require='a->b': b is exogenous"),
])
def test_contradictory_knowledge_is_one_line_error_naming_the_option(params, message):
    with pytest.raises(ValueError) as info:
        check_knowledge(params)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_edges_parse_in_one_place_and_the_summary_names_each_tier():
    assert parse_edges("forbid", [" a -> b", "image->c"]) == [("a", "b"), ("image", "c")]
    assert knowledge_summary({}) == "Background knowledge used: none"
    assert knowledge_summary({"exogenous": ["age"], "measured_from_image": ["score", "ink"], "forbid": ["a->b"],
                              "require": ["c -> d"]}) == (
        "Background knowledge used: age exogenous; score, ink measured from the image; forbidden: a->b; "
        "required: c->d")


def test_unknown_names_are_refused_before_training():
    for params, message in ((dict(forbid=["a->age"]), "forbid='a->age': no variable named 'age' in the table"),
                            (dict(measured_from_image=["ink"]), "measured_from_image='ink': no variable named 'ink'"),
                            (dict(require=["a->q"], allow_all_edges=True), "require='a->q': no variable named 'q'")):
        with pytest.raises(ValueError, match=message):
            CMCL(**FAST, **params).fit(tiny())


def test_each_tier_holds_in_the_training_mask_the_refit_and_the_graph(known_fit):
    ds, model = known_fit
    for allowed in (nets.build_net(model).dag.allowed, model.net_.dag.allowed):  # training's mask, the refit's
        assert not allowed[0, 3:].any() and allowed[3:, 0].all()  # a measured from the image: z -> a only
        assert not allowed[3:, 1].any() and allowed[1, 3:].all()  # image -> b forbidden, b -> z allowed
        assert not allowed[2, 0]  # c -> a forbidden
        assert allowed[0, 2] and not allowed[2, 0]  # a -> c required: its reverse is closed
    adj = model.adjacency_
    assert (adj.loc["a", ["z1", "z2"]] == 0).all() and (adj.loc[["z1", "z2"], "b"] == 0).all()
    assert adj.loc["a", "c"] != 0
    assert model.get_params()["forbid"] == ["image->b", "c->a"] and model.get_params()["require"] == ["a->c"]


def test_a_required_edge_is_reported_whatever_its_weight(known_fit, caplog):
    _, fitted = known_fit
    model = copy.deepcopy(fitted)
    model.w_threshold = 1e6  # every learned weight is below this
    with caplog.at_level(logging.INFO, logger="xcausal"):
        model._finalise()
    assert [(e.source, e.target) for e in model.graph_obj_.edges] == [("a", "c")]
    assert "required edge a -> c kept though |W| = " in caplog.text


def test_training_orientation_never_reopens_a_forbidden_direction(known_fit):
    """Even with a forbidden pair recorded as oriented (as a checkpoint could hold), the pass
    leaves it closed."""
    ds, fitted = known_fit
    model = copy.deepcopy(fitted)
    model._anm_pairs = {(0, 3), (0, 4)}  # a–z1, a–z2: a is measured from the image
    before = model.net_.dag.allowed.clone()
    orientation.orient_during_training(model, ds, None, None, log=False)
    assert not model.net_.dag.allowed[0, 3:].any()
    assert bool((model.net_.dag.allowed[:3, :3] == before[:3, :3]).all())  # a -> c, c -/-> a untouched


def test_refit_repair_does_not_reopen_an_edge_into_a_forbidden_variable(known_fit, monkeypatch):
    """The exogenous repair opens latent -> root; the knowledge is applied again after it (the
    solves are stubbed: only the masks they are given matter here)."""
    import torch

    from xcausal.models.cmcl import refit

    ds, fitted = known_fit
    model = copy.deepcopy(fitted)
    masks = []

    def solve(model_, refit_, allowed, V, *rest):
        masks.append(allowed.clone())
        dag = SimpleNamespace(adjacency=lambda: torch.zeros(V.shape[1], V.shape[1]))
        return refit.RefitSolution(model=dag, effect_ratios={}, pruned=[], seconds=0.0, n_outer=0)

    monkeypatch.setattr(refit, "_solve_with_min_effect", solve)
    monkeypatch.setattr(refit, "_forced_children", lambda *a, **k: [1])  # b would become a child of the latents
    monkeypatch.setattr(refit, "_log_forced", lambda *a, **k: None)
    refit.refit_solution(model, ds)
    assert len(masks) == 2  # the first solve and the repair's
    for allowed in masks:
        assert not allowed[3:, 1].any() and not allowed[0, 3:].any() and not allowed[2, 0]
        assert allowed[0, 2] and allowed[3:, 0].all()


def test_a_checkpoint_older_than_an_option_counts_it_at_its_default():
    from xcausal.io import DataError
    from xcausal.models.cmcl.checkpoint import check_resumable

    older = {k: v for k, v in CMCL().get_params().items() if k not in ("measured_from_image", "forbid", "require")}
    with pytest.raises(DataError) as info:
        check_resumable(CMCL(seed=1), {"method": "cmcl", "params": older, "tensors": "t"}, tiny())
    assert "parameters differ from the checkpoint's: seed=1 (checkpoint: 0)" in str(info.value)
    assert "forbid" not in str(info.value) and "require" not in str(info.value)
    with pytest.raises(DataError, match=r"forbid=\['a->b'\] \(checkpoint: \[\]\)"):
        check_resumable(CMCL(forbid=["a->b"]), {"method": "cmcl", "params": older, "tensors": "t"}, tiny())


def test_the_knowledge_survives_save_and_load(known_fit, tmp_path):
    _, model = known_fit
    model.save(tmp_path / "m.pt")
    back = CMCL.load(tmp_path / "m.pt")
    assert {k: back.get_params()[k] for k in KNOWN} == KNOWN
    assert bool((back.net_.dag.allowed == model.net_.dag.allowed).all())
    assert back.adjacency_.equals(model.adjacency_)
