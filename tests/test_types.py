"""The Graph contract: a variable's relation to the latents."""

from __future__ import annotations

import pytest

from xcausal.evaluate import evaluate_graph
from xcausal.types import UNDIRECTED_KEY, UNDIRECTED_WEIGHT, Edge, Graph, Node, Relation


def _graph(edges: list[tuple[str, str]]) -> Graph:
    nodes = [Node("a", "observed"), Node("b", "observed"), Node("z1", "latent"), Node("z2", "latent")]
    return Graph(nodes=nodes, edges=[Edge(s, t, 1.0) for s, t in edges])


@pytest.mark.parametrize("edges, expected", [
    ([("a", "z1")], Relation.CAUSAL),
    ([("a", "z1"), ("a", "z2")], Relation.CAUSAL),
    ([("z1", "a")], Relation.ANTICAUSAL),
    ([("a", "z1"), ("z2", "a")], Relation.MIXED),
    ([("b", "z1")], Relation.NONE),
    ([("a", "b")], Relation.NONE),  # an edge between two variables is not a relation to the image
])
def test_relation(edges, expected) -> None:
    assert _graph(edges).relation("a") is expected


@pytest.mark.parametrize("edges, expected", [
    ([("a", "z1", UNDIRECTED_WEIGHT)], Relation.UNDETERMINED),
    ([("a", "z1", UNDIRECTED_WEIGHT), ("z2", "a", 0.7)], Relation.ANTICAUSAL),  # the directed edge decides
    ([("a", "b", UNDIRECTED_WEIGHT)], Relation.NONE),
])
def test_relation_with_undirected_edges(edges, expected) -> None:
    nodes = _graph([]).nodes
    g = Graph(nodes=nodes, edges=[Edge(s, t, w) for s, t, w in edges], extra={UNDIRECTED_KEY: "undirected"})
    assert g.relation("a") is expected
    # without the key a negative weight is an ordinary directed edge
    assert Graph(nodes=nodes, edges=[Edge("a", "z1", UNDIRECTED_WEIGHT)]).relation("a") is Relation.CAUSAL
    res = evaluate_graph(g, _graph([("a", "z1")]))
    assert res["variables"]["a"]["agree"] is (expected is Relation.CAUSAL)
    assert res["n_undetermined"] == int(expected is Relation.UNDETERMINED)


def test_mixed_verdict_counts_as_wrong() -> None:
    """A variable with edges both ways is not scored as the true direction (it used to be: causal won)."""
    truth = _graph([("a", "z1"), ("z2", "b")])
    found = _graph([("a", "z1"), ("z2", "a"), ("z2", "b")])
    res = evaluate_graph(found, truth)
    assert res["variables"]["a"]["found"] == "mixed"
    assert not res["variables"]["a"]["agree"]
    assert res["variables"]["b"]["agree"]
    assert res["n_agree"] == 1
