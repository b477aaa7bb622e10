"""align_graph / latent_name_mapping: learned latents renamed after the true ones."""

from __future__ import annotations

import numpy as np
import pytest

from xcausal.metrics import align_graph, graph_accuracy, latent_name_mapping
from xcausal.types import Edge, Graph, Node

N = 400


def _graph(nodes: list[tuple[str, str]], edges: list[tuple[str, str]],
           method: str | None = None) -> Graph:
    return Graph(nodes=[Node(n, k) for n, k in nodes], edges=[Edge(a, b) for a, b in edges],
                 method=method)


# truth: u0 -> z0 (causal), z1 -> u1 (anti-causal), z0 -> z1
TRUE = _graph([("u0", "observed"), ("u1", "observed"), ("z0", "latent"), ("z1", "latent")],
              [("u0", "z0"), ("z1", "u1"), ("z0", "z1")], method="truth")


@pytest.fixture(scope="module")
def z_true() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, 2))


def test_permuted_latents_are_renamed(z_true: np.ndarray) -> None:
    # learned h0 ~ z1 (monotone transform), h1 ~ z0 (rescaled): h0 -> z1, h1 -> z0
    z_est = np.column_stack([np.exp(z_true[:, 1]), -3 * z_true[:, 0]])
    est = _graph([("h0", "latent"), ("u1", "observed"), ("h1", "latent"), ("u0", "observed")],
                 [("u0", "h1"), ("h0", "u1"), ("h1", "h0")], method="cmcl")
    assert latent_name_mapping(est, z_true, z_est, TRUE) == {"h0": "z1", "h1": "z0"}
    aligned = align_graph(est, z_true, z_est, TRUE)
    assert aligned.node_names == ["u0", "u1", "z0", "z1"]
    assert aligned.latent == ["z0", "z1"]
    assert {(e.source, e.target) for e in aligned.edges} == {("u0", "z0"), ("z1", "u1"),
                                                             ("z0", "z1")}
    assert aligned.method == "cmcl"
    acc = graph_accuracy(TRUE, aligned)
    assert acc == {"fdr": 0.0, "tpr": 1.0, "fpr": 0.0, "shd": 0, "nnz": 3}


def test_same_names_swapped(z_true: np.ndarray) -> None:
    # learned latents already called z0, z1 but in the other order: the swap must be applied
    z_est = z_true[:, ::-1].copy()
    est = _graph([("u0", "observed"), ("u1", "observed"), ("z0", "latent"), ("z1", "latent")],
                 [("u0", "z1"), ("z0", "u1"), ("z1", "z0")])
    aligned = align_graph(est, z_true, z_est, TRUE, score="pearson")
    assert graph_accuracy(TRUE, aligned)["shd"] == 0


def test_extra_learned_latent_is_kept_and_penalised(z_true: np.ndarray) -> None:
    # k=3 > m=2: h2 is noise and unmatched -> "extra_h2"; its edge h2 -> u0 is a false positive.
    noise = np.random.default_rng(1).normal(size=N)
    z_est = np.column_stack([z_true[:, 0], noise, z_true[:, 1]])
    est = _graph([("u0", "observed"), ("u1", "observed"), ("h0", "latent"), ("h2", "latent"),
                  ("h1", "latent")],
                 [("u0", "h0"), ("h1", "u1"), ("h0", "h1"), ("h2", "u0")])
    aligned = align_graph(est, z_true, z_est, TRUE)
    assert aligned.node_names == ["u0", "u1", "z0", "z1", "extra_h2"]
    assert aligned.kind_of("extra_h2") == "latent"
    # d=5 after padding the truth, |cond|=3, neg=10-3=7; TP=3, FP=1, P=4:
    # fdr=1/4, tpr=1, fpr=1/7, shd=1 (extra pair {extra_h2, u0})
    acc = graph_accuracy(TRUE, aligned)
    assert acc["fdr"] == pytest.approx(0.25)
    assert acc["tpr"] == 1.0
    assert acc["fpr"] == pytest.approx(1 / 7)
    assert (acc["shd"], acc["nnz"]) == (1, 4)


def test_extra_name_never_clashes(z_true: np.ndarray) -> None:
    true = _graph([("u0", "observed"), ("extra_h", "latent")], [])
    est = _graph([("u0", "observed"), ("a", "latent"), ("h", "latent"), ("extra_h_1", "latent")],
                 [])
    z_est = np.column_stack([z_true[:, 1], z_true[:, 0], z_true[:, 1] ** 3])
    mapping = latent_name_mapping(est, z_true[:, :1], z_est, true)
    assert mapping["h"] == "extra_h"  # matched to the true latent called "extra_h"
    assert mapping["a"] == "extra_a"
    assert mapping["extra_h_1"] == "extra_extra_h_1"
    assert len(set(mapping.values())) == 3


def test_missing_learned_latent_added_isolated(z_true: np.ndarray) -> None:
    # k=1 < m=2: h ~ z1; z0 has no match and is added as an isolated node
    est = _graph([("u0", "observed"), ("u1", "observed"), ("h", "latent")], [("h", "u1")])
    aligned = align_graph(est, z_true, z_true[:, 1], TRUE)
    assert aligned.node_names == ["u0", "u1", "z0", "z1"]
    # TP=1 (z1->u1), missing u0->z0 and z0->z1: fdr=0, tpr=1/3, shd=2
    acc = graph_accuracy(TRUE, aligned)
    assert (acc["fdr"], acc["tpr"], acc["shd"], acc["nnz"]) == (0.0, pytest.approx(1 / 3), 2, 1)


def test_no_learned_latents(z_true: np.ndarray) -> None:
    est = _graph([("u0", "observed"), ("u1", "observed")], [("u0", "u1")])
    aligned = align_graph(est, z_true, np.zeros((N, 0)), TRUE)
    assert aligned.latent == ["z0", "z1"]
    assert graph_accuracy(TRUE, aligned)["shd"] == 4  # 3 missing + 1 extra


def test_column_count_mismatch(z_true: np.ndarray) -> None:
    est = _graph([("u0", "observed"), ("u1", "observed"), ("h", "latent")], [])
    with pytest.raises(ValueError, match=r"z_est has shape \(400, 2\) but est has 1 latent"):
        align_graph(est, z_true, z_true, TRUE)
    with pytest.raises(ValueError, match=r"z_true has shape \(400, 1\) but true has 2 latent"):
        align_graph(est, z_true[:, :1], z_true[:, :1], TRUE)
