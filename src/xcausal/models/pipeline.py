"""Two-stage baselines: a representation learner on the images, then a DAG learner on [u, latents].

``<representation>+<structure>`` pipelines (``ivae+notears``, ``factorvae+ges``, ...) are what a user
would do without CMCL: learn (disentangled) image features, then run a structure learner over the
structured variables and those features. The representation learners live in
:data:`xcausal.models.representation.REPRESENTATIONS`; the structure learners are
:data:`STRUCTURE_LEARNERS` here:

* ``"notears"`` -- NOTEARS-MLP, the torch module CMCL uses (:func:`xcausal.structure.fit_notears`,
  log-det acyclicity, Gaussian NLL with learned per-node variances), run standalone on the fixed
  features, thresholded at ``w_threshold``; returns a weighted DAG.
* ``"ges"`` -- GES with the generalized marginal-likelihood score (GS-GES,
  :func:`xcausal.structure.fit_gs_ges`, at most 500 rows); returns a CPDAG.

Undirected CPDAG edges
----------------------
graph.json must be a DAG, so an undirected edge of a GES CPDAG is written in the direction of a
consistent DAG extension (:func:`xcausal.structure.pdag_to_dag`) **with weight -1.0**: learned edge
weights are otherwise positive (NOTEARS' ``W`` is a norm; GES directed edges have weight 1.0), so a
negative weight marks "undirected in the learned equivalence class". :func:`estimate_matrix` turns
such a graph back into the ``{-1, 0, 1}`` matrix :func:`xcausal.metrics.count_accuracy` scores
favourably; the estimator also keeps the CPDAG itself in ``cpdag_``. The marker survives renaming
and latent alignment (:func:`xcausal.metrics.align_graph` keeps weights).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from xcausal import __version__
from xcausal.data.dataset import CrossModalDataset
from xcausal.metrics.structure import UNDIRECTED_KEY, UNDIRECTED_WEIGHT
from xcausal._runtime import resolve_device as _resolve_device
from xcausal.structure import bipartite_mask, fit_gs_ges, fit_notears, pdag_to_dag
from xcausal.types import Edge, Graph, Node, VarType

__all__ = ["Pipeline", "STRUCTURE_LEARNERS", "StructureLearner", "make_pipeline_factory", "pipeline_names",
           "estimate_matrix", "learn_notears", "learn_ges"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


# =============================================================================== structure learners
class StructureLearner(Protocol):
    """``(V, node_types, allowed, seed, *, w_threshold, device) -> adjacency`` (d, d).

    ``V`` (N, d): continuous columns, binary 0/1 and categorical integer codes, as floats.
    ``allowed`` (d, d) bool or None: ``allowed[i, j]`` True if i -> j may exist. The result is a
    weighted DAG (entries >= 0, ``A[i, j] != 0`` for i -> j) or a CPDAG (1 for i -> j, -1 at
    ``[i, j]`` and ``[j, i]`` for i -- j).
    """

    def __call__(self, V: np.ndarray, node_types: Sequence[VarType], allowed: np.ndarray | None, seed: int, *,
                 w_threshold: float = 0.3, device: str | torch.device = "cpu") -> np.ndarray: ...


def _standardise_continuous(V: np.ndarray, node_types: Sequence[VarType]) -> np.ndarray:
    V = np.array(V, dtype=np.float64, copy=True)
    for j, t in enumerate(node_types):
        if VarType(t) is VarType.CONTINUOUS:
            sd = V[:, j].std()
            V[:, j] = (V[:, j] - V[:, j].mean()) / (sd if sd > 1e-12 else 1.0)
    return V


def learn_notears(V: np.ndarray, node_types: Sequence[VarType], allowed: np.ndarray | None, seed: int, *,
                  w_threshold: float = 0.3, device: str | torch.device = "cpu") -> np.ndarray:
    """NOTEARS-MLP on ``V`` with continuous columns standardised; thresholded, acyclic ``W`` (d, d).

    Categorical nodes get ``max code + 1`` levels. Uses :func:`xcausal.structure.fit_notears`'s
    defaults (one hidden layer of 10, ``h_func="logdet"``, Gaussian NLL score, L-BFGS-B), with a
    private generator seeded by ``seed``.
    """
    types = [VarType(t) for t in node_types]
    Vs = _standardise_continuous(V, types)
    ncat = [max(2, int(Vs[:, j].max()) + 1) if t is VarType.CATEGORICAL else 1 for j, t in enumerate(types)]
    res = fit_notears(Vs, types, n_categories=ncat, allowed=allowed, h_func="logdet", w_threshold=w_threshold,
                      seed=seed, device=device)
    return np.asarray(res.adjacency, dtype=float)


def learn_ges(V: np.ndarray, node_types: Sequence[VarType], allowed: np.ndarray | None, seed: int, *,
              w_threshold: float = 0.3, device: str | torch.device = "cpu") -> np.ndarray:
    """GS-GES (marginal-likelihood generalized score) on ``V``; a CPDAG (d, d) in {-1, 0, 1}.

    ``w_threshold`` and ``device`` are not used (GES has no weights; it runs on the CPU).
    Columns are standardised inside :func:`xcausal.structure.fit_gs_ges`; discrete codes enter the
    Gaussian kernel as numbers. ``allowed`` restricts the adjacencies searched (see there).
    """
    return fit_gs_ges(V, score="marginal", allowed=allowed, seed=seed).astype(float)


#: structure-learner name -> learner
STRUCTURE_LEARNERS: dict[str, StructureLearner] = {"notears": learn_notears, "ges": learn_ges}


# =============================================================================== names
def _representations(representations: Mapping[str, type] | None) -> Mapping[str, type]:
    if representations is not None:
        return representations
    from xcausal.models.representation import REPRESENTATIONS

    return REPRESENTATIONS


def pipeline_names(*, representations: Mapping[str, type] | None = None) -> list[str]:
    """Every ``<representation>+<structure>`` name (default representations: the package registry)."""
    return [f"{r}+{s}" for r in _representations(representations) for s in STRUCTURE_LEARNERS]


def _split_name(name: str, representations: Mapping[str, type]) -> tuple[str, str]:
    rep, sep, struct = str(name).partition("+")
    if not sep or rep not in representations or struct not in STRUCTURE_LEARNERS:
        valid = [f"{r}+{s}" for r in representations for s in STRUCTURE_LEARNERS]
        raise ValueError(f"unknown pipeline {name!r} (valid: {', '.join(valid)})")
    return rep, struct


def make_pipeline_factory(name: str, *, representations: Mapping[str, type] | None = None
                          ) -> Callable[[Any], "Pipeline"]:
    """A factory ``cfg -> Pipeline`` for the pipeline ``name`` (e.g. ``"ivae+notears"``).

    ``cfg`` is read by attribute (an :class:`xcausal.api.FitConfig`): ``latent_dim``, ``epochs``,
    ``batch_size``, ``lr``, ``w_threshold``, ``allow_all_edges``, ``seed``, ``device``, ``quiet``.

    Raises
    ------
    ValueError
        If ``name`` is not ``<representation>+<structure>`` with known parts; lists the valid names.
    """
    reps = _representations(representations)
    rep, struct = _split_name(name, reps)

    def factory(cfg: Any) -> Pipeline:
        return Pipeline(representation=rep, structure=struct, latent_dim=cfg.latent_dim, epochs=cfg.epochs,
                        batch_size=cfg.batch_size, lr=cfg.lr, w_threshold=cfg.w_threshold,
                        allow_all_edges=cfg.allow_all_edges, seed=cfg.seed, device=cfg.device,
                        progress=not cfg.quiet, representations=representations)

    factory.__name__ = f"pipeline_factory[{name}]"
    return factory


def estimate_matrix(graph: Graph) -> np.ndarray:
    """The ``{-1, 0, 1}`` matrix of ``graph`` for :func:`xcausal.metrics.count_accuracy`.

    Edges with a negative weight (:data:`UNDIRECTED_WEIGHT`, undirected in a learned CPDAG) become
    -1 at both ``[i, j]`` and ``[j, i]``; other edges 1 at ``[i, j]``. Node order:
    ``graph.node_names``.
    """
    w = graph.adjacency(weighted=True)
    out = (graph.adjacency() != 0).astype(int)
    und = (w < 0) | (w.T < 0)
    out[und] = -1
    return out


# =============================================================================== estimator
class Pipeline:
    """Representation learner, then a structure learner over ``V = [u, latents]``.

    Parameters (keyword-only; stored as given, resolved in :meth:`fit`)
    ----------
    representation : str
        Name in the representation registry (``betavae``, ``factorvae``, ``tcvae``, ``ivae``, ...).
    structure : str
        Name in :data:`STRUCTURE_LEARNERS` (``notears`` or ``ges``).
    latent_dim, epochs, batch_size, lr, seed, device, progress
        Passed to the representation learner (``latent_dim``/``epochs`` None: its own defaults).
    w_threshold : float, default 0.3
        NOTEARS threshold on ``|W|`` (unused by GES).
    allow_all_edges : bool, default False
        False: only edges between a variable and a latent (CMCL's Assumption 2, via
        :func:`xcausal.structure.bipartite_mask`); True: any DAG / CPDAG over ``V``.
    rep_params : dict, optional
        Further keyword arguments of the representation learner (must be JSON-serialisable: they
        are saved with the checkpoint).
    representations : mapping of str to class, optional
        Representation registry to look ``representation`` up in. Default (None):
        :data:`xcausal.models.representation.REPRESENTATIONS`, read at fit time. Not saved; pass
        the same mapping to :meth:`load`.

    Attributes
    ----------
    rep_ : the fitted representation learner
    n_latents_ : int
    encoding_ : dict with the variables and the standardisation of continuous ones
    adjacency_ : pandas.DataFrame, (d + m, d + m)
        What the structure learner returned, over names ``[u..., z1..zm]``: NOTEARS' thresholded
        weights, or GES' CPDAG (1 for i -> j, -1 on both sides of an undirected edge).
    cpdag_ : pandas.DataFrame of int, (d + m, d + m)
        The estimate in :func:`xcausal.metrics.count_accuracy` form (a NOTEARS DAG as 0/1).
    graph_obj_ : xcausal.types.Graph
        Acyclic: undirected CPDAG edges oriented by :func:`xcausal.structure.pdag_to_dag`, with
        weight -1.0 (see the module docstring).
    graph_ : networkx.DiGraph
    history_ : pandas.DataFrame
        The representation learner's training history.
    timing_ : dict
        Seconds spent in the representation and the structure stage.
    """

    def __init__(self, *, representation: str, structure: str, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 64, lr: float = 1e-3, w_threshold: float = 0.3,
                 allow_all_edges: bool = False, seed: int = 0, device: str = "auto", progress: bool = False,
                 rep_params: dict[str, Any] | None = None,
                 representations: Mapping[str, type] | None = None) -> None:
        self.representation = representation
        self.structure = structure
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.w_threshold = w_threshold
        self.allow_all_edges = allow_all_edges
        self.seed = seed
        self.device = device
        self.progress = progress
        self.rep_params = rep_params
        self.representations = representations

    @property
    def method_name(self) -> str:
        return f"{self.representation}+{self.structure}"

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as JSON-serialisable values (without ``representations``)."""
        keys = ["representation", "structure", "latent_dim", "epochs", "batch_size", "lr", "w_threshold",
                "allow_all_edges", "seed", "device", "progress"]
        out = {k: getattr(self, k) for k in keys}
        out["rep_params"] = dict(self.rep_params or {})
        return out

    def _rep_class(self) -> type:
        reps = _representations(self.representations)
        _split_name(self.method_name, reps)
        return reps[self.representation]

    def _validate(self) -> None:
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ValueError(f"latent_dim={self.latent_dim}: must be at least 1")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs={self.epochs}: must be at least 1")
        if not (self.w_threshold >= 0):
            raise ValueError(f"w_threshold={self.w_threshold}: must be non-negative")
        if self.rep_params is not None and not isinstance(self.rep_params, Mapping):
            raise ValueError(f"rep_params must be a dict, got {type(self.rep_params).__name__}")

    # ------------------------------------------------------------------ fit
    def fit(self, ds: CrossModalDataset, *, fitted_representation: Any = None) -> "Pipeline":
        """Fit the representation on ``ds``, then the structure over ``[u, latents]``; returns self.

        ``fitted_representation``: a representation learner of class ``representation`` already
        fitted on ``ds`` (e.g. shared by ``betavae+notears`` and ``betavae+ges`` in a benchmark);
        it is used as is and its fit time is not counted again.
        """
        self._validate()
        rep_cls = self._rep_class()
        if len(ds.variables) == 0:
            raise ValueError(f"{ds.source}: the table has no structured variables; a pipeline needs at least one")
        dev = _resolve_device(self.device)
        t0 = time.perf_counter()
        if fitted_representation is not None:
            if not isinstance(fitted_representation, rep_cls) or not hasattr(fitted_representation, "n_latents_"):
                raise ValueError(f"fitted_representation must be a fitted {rep_cls.__name__}, "
                                 f"got {type(fitted_representation).__name__}")
            rep = fitted_representation
        else:
            rep = rep_cls(latent_dim=self.latent_dim, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                          seed=self.seed, device=self.device, progress=self.progress, **dict(self.rep_params or {}))
            rep.fit(ds)
        t1 = time.perf_counter()
        z = np.asarray(rep.transform(ds), dtype=np.float64)
        cont = np.array([v.type is VarType.CONTINUOUS for v in ds.variables])
        u = np.asarray(ds.u, dtype=np.float64)
        mean = np.where(cont, u.mean(0), 0.0)
        std = np.where(cont, u.std(0) + 1e-8, 1.0)
        self.rep_ = rep
        self.n_latents_ = int(z.shape[1])
        self.device_ = dev
        self.encoding_ = {"variables": [v.to_dict() for v in ds.variables], "mean": mean.tolist(),
                          "std": std.tolist()}
        V = np.concatenate([(u - mean) / std, z], axis=1)
        d, m = len(ds.variables), self.n_latents_
        types = [v.type for v in ds.variables] + [VarType.CONTINUOUS] * m
        allowed = None if self.allow_all_edges else bipartite_mask(["observed"] * d + ["latent"] * m).numpy()
        learner = STRUCTURE_LEARNERS[self.structure]
        raw = learner(V, types, allowed, int(self.seed), w_threshold=float(self.w_threshold), device=dev)
        t2 = time.perf_counter()
        self.timing_ = {"representation_seconds": t1 - t0, "structure_seconds": t2 - t1}
        logger.info("%s: representation %.1f s, structure %.1f s", self.method_name, t1 - t0, t2 - t1)
        self._finalise(np.asarray(raw, dtype=float))
        return self

    def _names(self) -> list[str]:
        return [v["name"] for v in self.encoding_["variables"]] + [f"z{j + 1}" for j in range(self.n_latents_)]

    def _finalise(self, raw: np.ndarray) -> None:
        names = self._names()
        d = len(self.encoding_["variables"])
        und = (raw < 0) | (raw.T < 0)
        est = np.where(und, -1, (raw != 0).astype(int))
        np.fill_diagonal(est, 0)
        if und.any():
            dag = pdag_to_dag(est)
            weights = np.where(und, UNDIRECTED_WEIGHT, raw) * dag
        else:
            weights = raw.copy()
        self.raw_adjacency_ = raw
        self.adjacency_ = pd.DataFrame(raw, index=names, columns=names)
        self.cpdag_ = pd.DataFrame(est, index=names, columns=names)
        nodes = [Node(n, "observed" if k < d else "latent") for k, n in enumerate(names)]
        edges = [Edge(names[i], names[j], float(weights[i, j]))
                 for i in range(len(names)) for j in range(len(names)) if weights[i, j] != 0]
        extra = ({UNDIRECTED_KEY: "weight -1.0: undirected in the learned CPDAG, written in the direction of "
                                      "a consistent DAG extension"} if und.any() else {})
        self.graph_obj_ = Graph(nodes=nodes, edges=edges, method=self.method_name, extra=extra)
        if not self.graph_obj_.is_acyclic():  # threshold_to_dag / pdag_to_dag guarantee this
            raise RuntimeError(f"{self.method_name}: the learned graph is cyclic")
        self.graph_ = self.graph_obj_.to_networkx()
        hist = getattr(self.rep_, "history_", None)
        self.history_ = hist.copy() if isinstance(hist, pd.DataFrame) else pd.DataFrame()

    # ------------------------------------------------------------------ use
    def _check_fitted(self) -> None:
        if not hasattr(self, "rep_"):
            raise ValueError(f"this {self.method_name} pipeline is not fitted yet; call fit(dataset) first")

    def transform(self, ds: CrossModalDataset) -> np.ndarray:
        """The representation's latents for ``ds``, (N, m) float64, columns z1..zm of the graph."""
        self._check_fitted()
        names = [v["name"] for v in self.encoding_["variables"]]
        if ds.variable_names != names:
            raise ValueError(f"{ds.source}: variables {ds.variable_names} differ from the fitted ones {names}")
        return np.asarray(self.rep_.transform(ds), dtype=np.float64)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write ``path`` (the representation's tensors, prefixed ``rep.``) and ``path.json``.

        The JSON holds the parameters, the representation's own checkpoint config and the structure
        result; loadable with ``torch.load(path, weights_only=True)``.
        """
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)  # like the CLI's run directory
        with tempfile.TemporaryDirectory() as tmp:
            rp = Path(tmp) / "rep.pt"
            self.rep_.save(rp)
            rep_state = torch.load(rp, map_location="cpu", weights_only=True)
            rep_meta_path = rp.with_suffix(".pt.json")
            rep_meta = json.loads(rep_meta_path.read_text()) if rep_meta_path.is_file() else None
        if not isinstance(rep_state, dict) or not all(isinstance(v, torch.Tensor) for v in rep_state.values()):
            raise ValueError(f"representation '{self.representation}' did not save a flat dict of tensors")
        torch.save({f"rep.{k}": v for k, v in rep_state.items()}, path)
        meta = {"format": FORMAT_VERSION, "method": self.method_name, "xcausal_version": __version__,
                "params": self.get_params(), "representation_checkpoint": rep_meta,
                "n_latents": self.n_latents_, "encoding": self.encoding_,
                "structure": {"names": self._names(), "adjacency": self.raw_adjacency_.tolist()},
                "timing": self.timing_}
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu",
             representations: Mapping[str, type] | None = None) -> "Pipeline":
        """Load a checkpoint written by :meth:`save` (any ``<representation>+<structure>`` pipeline)."""
        from xcausal.io import check_checkpoint_file, read_json

        path = Path(path)
        mp = path.with_suffix(path.suffix + ".json")
        if not path.is_file() or not mp.is_file():
            raise ValueError(f"{path}: checkpoint or its {mp.name} not found")
        check_checkpoint_file(path)  # refuse pickled objects before anything is loaded
        meta = read_json(mp, what="a valid checkpoint config")
        if not isinstance(meta, dict):
            raise ValueError(f"{mp}: expected a JSON object")
        method = meta.get("method")
        params = meta.get("params") or {}
        if (not isinstance(method, str) or "+" not in method or "representation" not in params
                or method != f"{params.get('representation')}+{params.get('structure')}"):
            raise ValueError(f"{path}: checkpoint is for method '{method}', not a <representation>+<structure> "
                             "pipeline")
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: checkpoint format {meta.get('format')} (xcausal {meta.get('xcausal_version')}) "
                             f"is not readable by this version (format {FORMAT_VERSION})")
        params = dict(params)
        params["device"] = device
        obj = cls(**params, representations=representations)
        rep_cls = obj._rep_class()
        state = torch.load(path, map_location="cpu", weights_only=True)
        rep_state = {k[4:]: v for k, v in state.items() if k.startswith("rep.")}
        with tempfile.TemporaryDirectory() as tmp:
            rp = Path(tmp) / "rep.pt"
            torch.save(rep_state, rp)
            if meta.get("representation_checkpoint") is not None:
                rp.with_suffix(".pt.json").write_text(json.dumps(meta["representation_checkpoint"]))
            obj.rep_ = rep_cls.load(rp, device=device)
        obj.n_latents_ = int(meta["n_latents"])
        obj.encoding_ = meta["encoding"]
        obj.device_ = _resolve_device(device)
        obj.timing_ = meta.get("timing", {})
        if meta["structure"]["names"] != obj._names():
            raise ValueError(f"{path}: structure nodes {meta['structure']['names']} do not match the encoding")
        obj._finalise(np.asarray(meta["structure"]["adjacency"], dtype=float))
        return obj

    # ------------------------------------------------------------------ run directory
    def run_result(self, ds: CrossModalDataset, *, extra_config: Mapping[str, Any] | None = None):
        """The :class:`xcausal.run.RunResult` for this fit on ``ds`` (write it with write_run)."""
        from xcausal.run import RunResult

        self._check_fitted()
        config = {"method": self.method_name, "params": self.get_params(),
                  "resolved": {"latent_dim": self.n_latents_, "device": str(self.device_)},
                  "data": ds.summary(), "timing": self.timing_,
                  "cpdag": self.cpdag_.to_numpy().tolist(), **(extra_config or {})}
        return RunResult(graph=self.graph_obj_, latents=self.transform(ds), config=config,
                         history=self.history_, save_checkpoint=self.save)
