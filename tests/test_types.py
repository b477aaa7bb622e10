"""The Graph contract: a variable's relation to the latents."""

from __future__ import annotations

import pytest

from xcausal.evaluate import evaluate_graph
from xcausal.types import Edge, Graph, Node, Relation


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


def test_mixed_verdict_counts_as_wrong() -> None:
    """A variable with edges both ways is not scored as the true direction (it used to be: causal won)."""
    truth = _graph([("a", "z1"), ("z2", "b")])
    found = _graph([("a", "z1"), ("z2", "a"), ("z2", "b")])
    res = evaluate_graph(found, truth)
    assert res["variables"]["a"]["found"] == "mixed"
    assert not res["variables"]["a"]["agree"]
    assert res["variables"]["b"]["agree"]
    assert res["n_agree"] == 1
