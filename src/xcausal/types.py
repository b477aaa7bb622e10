"""Shared value types: variable types, node kinds and the causal graph contract.

The :class:`Graph` is what every method writes as ``graph.json`` and what ``truth.json`` holds
(plus the path of the true latents). Node order is meaningful: adjacency matrices are indexed in
``Graph.node_names`` order, rows = source, columns = target.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import numpy as np

__all__ = ["VarType", "NodeKind", "Node", "Edge", "Graph", "Relation"]


class VarType(str, Enum):
    """Type of a structured variable; decides the link function of its DAG node."""

    CONTINUOUS = "continuous"
    BINARY = "binary"
    CATEGORICAL = "categorical"


NodeKind = Literal["observed", "latent"]


class Relation(str, Enum):
    """Relation of a structured variable to the image latents."""

    CAUSAL = "causal"  # u -> z
    ANTICAUSAL = "anti-causal"  # z -> u
    MIXED = "mixed"  # u -> z_i and z_j -> u: edges to some latents and from others
    NONE = "none"
    UNDETERMINED = "undetermined"  # u - z: edges to latents, none of them directed (see UNDIRECTED_KEY)


#: key of ``Graph.extra`` (graph.json) saying that edges with weight ``UNDIRECTED_WEIGHT`` are
#: undirected: an edge of a learned CPDAG (written in the direction of a consistent DAG extension; see
#: xcausal.models.pipeline) or a pair whose direction CMCL's pairwise score could not decide
#: (xcausal.models.cmcl.orientation)
UNDIRECTED_KEY = "undirected_edges"
#: weight such an undirected edge has in graph.json (learned weights are otherwise positive)
UNDIRECTED_WEIGHT = -1.0


@dataclass(frozen=True)
class Node:
    name: str
    kind: NodeKind


@dataclass(frozen=True)
class Edge:
    """A directed edge; ``support`` is its bootstrap frequency (0..1) when the fit was bootstrapped."""

    source: str
    target: str
    weight: float = 1.0
    support: float | None = None


@dataclass
class Graph:
    """A directed graph over observed and latent nodes.

    Parameters
    ----------
    nodes : list of Node
        In a fixed order; adjacency matrices follow it.
    edges : list of Edge
    method : str, optional
        Name of the method that produced the graph (``"truth"`` for ground truth).
    extra : dict
        Further JSON-serialisable fields kept on round trips (e.g. ``"latents"`` in truth.json).
    """

    nodes: list[Node]
    edges: list[Edge]
    method: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate node names in graph: {names}")
        known = set(names)
        for e in self.edges:
            for end in (e.source, e.target):
                if end not in known:
                    raise ValueError(f"edge {e.source}->{e.target} names unknown node '{end}'")
            if e.source == e.target:
                raise ValueError(f"self-loop on node '{e.source}'")

    # ------------------------------------------------------------------ views
    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def observed(self) -> list[str]:
        return [n.name for n in self.nodes if n.kind == "observed"]

    @property
    def latent(self) -> list[str]:
        return [n.name for n in self.nodes if n.kind == "latent"]

    def kind_of(self, name: str) -> NodeKind:
        for n in self.nodes:
            if n.name == name:
                return n.kind
        raise KeyError(name)

    def adjacency(self, weighted: bool = False) -> np.ndarray:
        """Adjacency matrix, shape (d, d), ``A[i, j] != 0`` iff edge node_i -> node_j."""
        idx = {n: i for i, n in enumerate(self.node_names)}
        a = np.zeros((len(self.nodes), len(self.nodes)))
        for e in self.edges:
            a[idx[e.source], idx[e.target]] = e.weight if weighted else 1.0
        return a

    def to_networkx(self) -> nx.DiGraph:
        g = nx.DiGraph()
        for n in self.nodes:
            g.add_node(n.name, kind=n.kind)
        for e in self.edges:
            g.add_edge(e.source, e.target, weight=e.weight)
        return g

    def is_acyclic(self) -> bool:
        return nx.is_directed_acyclic_graph(self.to_networkx())

    def is_undirected(self, edge: Edge) -> bool:
        """Whether ``edge`` is undirected here (``UNDIRECTED_KEY`` in :attr:`extra` and the edge's
        weight ``UNDIRECTED_WEIGHT``): its written direction is not a claim."""
        return bool(self.extra.get(UNDIRECTED_KEY)) and edge.weight == UNDIRECTED_WEIGHT

    def relation(self, variable: str) -> Relation:
        """Relation of an observed variable to the latents, from its directed edges with them:
        MIXED when it has edges into some latents and from others (neither verdict alone would be
        true); UNDETERMINED when all its edges with latents are undirected (the data did not decide
        the direction)."""
        lat = set(self.latent)
        links = [e for e in self.edges
                 if (e.source == variable and e.target in lat) or (e.target == variable and e.source in lat)]
        directed = [e for e in links if not self.is_undirected(e)]
        out = any(e.source == variable for e in directed)
        into = any(e.target == variable for e in directed)
        if out and into:
            return Relation.MIXED
        if out:
            return Relation.CAUSAL
        if into:
            return Relation.ANTICAUSAL
        return Relation.UNDETERMINED if links else Relation.NONE

    def renamed(self, mapping: dict[str, str]) -> "Graph":
        """A copy with nodes renamed by ``mapping`` (names not in it are kept)."""
        m = lambda s: mapping.get(s, s)  # noqa: E731
        return Graph(
            nodes=[Node(m(n.name), n.kind) for n in self.nodes],
            edges=[Edge(m(e.source), m(e.target), e.weight, e.support) for e in self.edges],
            method=self.method,
            extra=dict(self.extra),
        )

    @classmethod
    def from_adjacency(
        cls,
        w: np.ndarray,
        nodes: list[Node],
        *,
        method: str | None = None,
        threshold: float = 0.0,
    ) -> "Graph":
        """Edges where ``|w[i, j]| > threshold`` (weights kept)."""
        w = np.asarray(w, dtype=float)
        if w.shape != (len(nodes), len(nodes)):
            raise ValueError(f"adjacency shape {w.shape} does not match {len(nodes)} nodes")
        edges = [
            Edge(nodes[i].name, nodes[j].name, float(w[i, j]))
            for i in range(len(nodes))
            for j in range(len(nodes))
            if i != j and abs(w[i, j]) > threshold
        ]
        return cls(nodes=list(nodes), edges=edges, method=method)

    # ------------------------------------------------------------------ json
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.method is not None:
            d["method"] = self.method
        d["nodes"] = [{"name": n.name, "kind": n.kind} for n in self.nodes]
        d["edges"] = [
            {"source": e.source, "target": e.target, "weight": round(float(e.weight), 6)}
            | ({} if e.support is None else {"support": round(float(e.support), 6)})
            for e in self.edges
        ]
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "graph") -> "Graph":
        """The graph in ``d`` (parsed graph.json / truth.json); ValueError naming ``where`` and
        the bad node or edge when ``d`` is not of that shape (any parsed JSON may be passed)."""

        def bad(what: str) -> ValueError:
            return ValueError(f"{where}: malformed graph ({what})")

        if not isinstance(d, dict):
            raise bad(f"expected a JSON object with 'nodes' and 'edges', got {type(d).__name__}")
        if not isinstance(d.get("nodes"), list):
            raise bad("'nodes' must be a list of {\"name\", \"kind\"} objects")
        if not isinstance(d.get("edges", []), list):
            raise bad("'edges' must be a list of {\"source\", \"target\"} objects")
        method = d.get("method")
        if method is not None and not isinstance(method, str):
            raise bad(f"'method' must be a string, got {type(method).__name__}")
        nodes = []
        for k, n in enumerate(d["nodes"]):
            if not isinstance(n, dict) or not isinstance(n.get("name"), (str, int)) or isinstance(n.get("name"), bool):
                raise bad(f"node {k + 1} must be an object with a string 'name'")
            kind = n.get("kind", "observed")
            if kind not in ("observed", "latent"):
                raise ValueError(f"{where}: node '{n['name']}' has unknown kind '{kind}'")
            nodes.append(Node(str(n["name"]), kind))
        edges = []
        for k, e in enumerate(d.get("edges", [])):
            if not isinstance(e, dict) or any(not isinstance(e.get(end), (str, int)) or isinstance(e.get(end), bool)
                                              for end in ("source", "target")):
                raise bad(f"edge {k + 1} must be an object with string 'source' and 'target'")
            nums = []
            for key, default in (("weight", 1.0), ("support", None)):
                v = e.get(key, default)
                if v is None and default is None:
                    nums.append(None)
                    continue
                try:
                    f = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
                except OverflowError:  # an integer beyond float range
                    f = math.inf
                if not math.isfinite(f):
                    raise bad(f"edge {e['source']}->{e['target']}: '{key}' must be a finite number, got {v!r:.80}")
                nums.append(f)
            edges.append(Edge(str(e["source"]), str(e["target"]), nums[0], nums[1]))
        extra = {k: v for k, v in d.items() if k not in ("method", "nodes", "edges")}
        try:
            return cls(nodes=nodes, edges=edges, method=method, extra=extra)
        except ValueError as exc:  # duplicate nodes, unknown edge ends, self-loops
            raise ValueError(f"{where}: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: str | Path) -> "Graph":
        path = Path(path)
        from xcausal.io import read_json

        d = read_json(path)
        return cls.from_dict(d, where=str(path))
