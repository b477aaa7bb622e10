"""The CMCL front class: options in, ``fit(dataset)``, then latents, graph, interventions, save/load.

The parts it drives live next to it: networks (``nets``), loss terms (``losses``), the epoch loop
(``trainer``), the linear anchor (``anchor``), pairwise orientation (``orientation``), the final
DAG refit (``refit``), training checkpoints (``checkpoint``) and multi-process training
(``distributed``). ``config`` holds the data-dependent defaults and the rules every option obeys.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from xcausal import __version__
from xcausal._runtime import check_distributed, load_net_state, make_fabric
from xcausal._runtime import resolve_device as _resolve_device
from xcausal.data.dataset import CrossModalDataset
from xcausal.models.cmcl import checkpoint as ckpt_mod
from xcausal.metrics.structure import UNDIRECTED_KEY, UNDIRECTED_WEIGHT
from xcausal.models.cmcl.config import (GROUPS, IMAGE, KNOWLEDGE_OPTIONS, MIN_EFFECT, OPTIONS, default_epochs,
                                        default_latent_dim, parse_edges, validate)
from xcausal.models.cmcl.losses import counterfactual_z
from xcausal.models.cmcl.nets import Encoding, build_net, init_decoder_bias
from xcausal.nn.blocks import PoseDecoder
from xcausal.structure import knowledge_mask, threshold_to_dag
from xcausal.types import Graph, Node, VarType

logger = logging.getLogger("xcausal.models.cmcl")

FORMAT_VERSION = 2  # 2: every parameter and fitted attribute recorded; no defaults filled in
MAX_LATENT_SCALE = 1e6
"""Largest |posterior mean| a finished fit may show: the prior keeps latents near unit scale."""


@contextlib.contextmanager
def _numeric_warnings_to_log():
    """numpy's overflow / invalid-value RuntimeWarnings of a fit go to the log as one line with their
    count (the error that usually follows names the cause); other warnings pass through."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            numeric = [w for w in caught if issubclass(w.category, RuntimeWarning)]
            if numeric:
                logger.info("%d numeric warning(s) during the fit (first: %s)", len(numeric), numeric[0].message)
    for w in caught:
        if not issubclass(w.category, RuntimeWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class Knowledge(NamedTuple):
    """Background knowledge as node indices: exogenous nodes, forbidden and required edges (i, j)."""

    exogenous: list[int]
    forbidden: list[tuple[int, int]]
    required: list[tuple[int, int]]


class CMCL:
    """Cross-modal causal representation and structure learning (Mao et al. 2022).

    Every option is keyword-only, stored as given and checked in :meth:`fit` (by
    :func:`xcausal.models.cmcl.config.validate`). The options are declared once, in
    :data:`xcausal.models.cmcl.config.OPTIONS` (name, default, type, group, help), which also
    builds the command line's ``fit`` options; they are listed by group below. Why each departure
    from the paper, with the measurement behind it: docs/methods/cmcl.md.
    """

    method_name = "cmcl"

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(OPTIONS))
        if unknown:
            raise TypeError(f"CMCL() got an unexpected keyword argument {unknown[0]!r}")
        for name, opt in OPTIONS.items():
            setattr(self, name, params.get(name, opt.default))

    def _raw_params(self) -> dict[str, Any]:
        """The parameters as given."""
        return {k: getattr(self, k) for k in OPTIONS}

    def get_params(self) -> dict[str, Any]:
        """The parameters, JSON-ready (sequences as lists)."""
        out = self._raw_params()
        out["dag_hidden"] = list(out["dag_hidden"])
        for name in KNOWLEDGE_OPTIONS:
            out[name] = list(out[name])
        if not isinstance(out["channel_plan"], str):
            out["channel_plan"] = list(out["channel_plan"])
        return out

    # ------------------------------------------------------------------ fit
    def fit(self, ds: CrossModalDataset, *, checkpoint_dir: str | Path | None = None, checkpoint_every: int = 10,
            resume: bool = False, stop: Any = None) -> CMCL:
        """Train on ``ds``; returns self. Learned state: ``net_``, ``adjacency_``, ``graph_``, ``history_``.

        ``checkpoint_dir``: write a resumable training checkpoint there every ``checkpoint_every``
        epochs, when training ends (before the refit) and when ``stop`` is set; ``resume`` continues
        from it (bit-identical on CPU; only ``lr``, ``progress``, the runtime options and
        ``min_effect`` may differ). ``stop`` (a threading.Event) is polled after every step: when
        set, training checkpoints and raises :class:`FitInterrupted`; the library installs no handler.

        Raises FloatingPointError (a loss term, the gradient or h(W) not finite: the message names the
        term, epoch and step), FitInterrupted, or ValueError (bad parameters, no variables, or an
        incompatible checkpoint).
        """
        from xcausal.models.cmcl.refit import refit_dag
        from xcausal.models.cmcl.trainer import train

        validate(self._raw_params())
        check_distributed(self.devices, self.strategy, self.precision)
        if len(ds.variables) == 0:
            raise ValueError(f"{ds.source}: the table has no structured variables; CMCL needs at least one")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise ValueError(f"checkpoint_every={checkpoint_every!r}: must be an integer >= 1")
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs the checkpoint_dir to resume from")
        self._resolve(ds)
        ckpt = None
        if checkpoint_dir is not None:
            ckpt = ckpt_mod.Checkpointing(Path(checkpoint_dir), checkpoint_every)
            if resume:
                ckpt.loaded = ckpt_mod.read_training_checkpoint(ckpt.directory)
                ckpt_mod.check_resumable(self, ckpt.loaded[0], ds)
        dev = self.device_
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), _numeric_warnings_to_log():
            torch.manual_seed(self.seed)
            self.net_ = build_net(self).to(dev)
            init_decoder_bias(self, ds)
            if self.devices > 1:
                from xcausal.models.cmcl.distributed import train_distributed

                train_distributed(self, ds, self.epochs_, dev, ckpt, stop)
            else:
                # one process in float32 needs nothing from Fabric (and importing it costs seconds)
                fabric = None if str(self.precision) == "32" else make_fabric(dev, 1, self.strategy, self.precision)
                train(self, ds, self.epochs_, dev, ckpt, stop, fabric=fabric)
            ckpt_mod.stop_point(self, stop, ckpt, "after training")
            self._check_trained(ds)
            if self.dag_refit:
                refit_dag(self, ds)
            ckpt_mod.stop_point(self, stop, ckpt, "after the DAG refit")
        self._finalise()
        return self

    def _resolve(self, ds: CrossModalDataset) -> None:
        """The sizes, encoding and device this fit uses, and the learned state reset."""
        m = self.latent_dim or default_latent_dim(len(ds.variables))
        k0 = self.embed_dim or max(2 * m, 16)
        if not self.use_cm:
            k0 = m  # without CM the embedding z0 is the causal representation
        cont = np.array([v.type is VarType.CONTINUOUS for v in ds.variables])
        mean = np.where(cont, ds.u.mean(0), 0.0)
        std = np.where(cont, ds.u.std(0) + 1e-8, 1.0)
        self.encoding_ = Encoding(list(ds.variables), mean, std)
        self.unexplained_dependences_: list[tuple[str, str, float]] | None = None  # checked by the refit
        self.n_latents_, self.embed_dim_ = m, k0
        self._knowledge()  # unknown names fail here, before training
        self.epochs_ = self.epochs or default_epochs(len(ds), ds.image_size)
        self.image_size_, self.channels_ = ds.image_size, ds.channels
        self.device_ = _resolve_device(self.device)
        self._anm_pairs: set[tuple[int, int]] = set()  # variable-latent pairs oriented during training
        self.anchor_: dict[str, Any] | None = None  # set when an anchor is built (or restored)
        self.pruned_edges_: list[tuple[str, str, float]] = []  # set by the final refit
        self.effect_ratios_: dict[tuple[int, int], float] = {}
        #: (variable, latent, margin, sd, resamples, undetermined) per edge the refit's score oriented
        self.orient_margins_: list[tuple[str, str, float, float, int, bool]] = []
        if not self.dag_refit and self.min_effect != MIN_EFFECT:
            logger.warning("min_effect=%g has no effect: it acts in the final DAG refit, and dag_refit=False",
                           self.min_effect)

    def _check_trained(self, ds: CrossModalDataset) -> None:
        """FloatingPointError when the last step left a parameter, or the latents of (up to 256 of)
        the rows, not finite or beyond :data:`MAX_LATENT_SCALE` (training diverged: the steps before
        were checked, the last one's update was not)."""
        hint = "training diverged in its last step; try a smaller learning rate (--lr)"
        for name, p in self.net_.named_parameters():
            if not bool(torch.isfinite(p).all()):
                raise FloatingPointError(f"parameter {name} is NaN/inf after epoch {self.epochs_}: {hint}")
        was_training = self.net_.training
        self.net_.eval()  # read-only: no batch statistics move, no random draw
        with torch.no_grad():
            x, u = self._tensors(ds, np.arange(min(len(ds), 256)))
            z = self.net_.encode(x, self.encoding_.net_columns(u), sample=False)["muq"]
        self.net_.train(was_training)
        top = float(z.abs().max()) if z.numel() else 0.0
        if not math.isfinite(top) or top > MAX_LATENT_SCALE:
            raise FloatingPointError(f"latents reach {top:.3g} after epoch {self.epochs_} (the prior keeps them near "
                                     f"1; above {MAX_LATENT_SCALE:g} means divergence): {hint}")

    # ------------------------------------------------------------------ helpers of the parts
    @property
    def _dag_prior(self) -> bool:
        """The DAG is the latent prior (latents enter it in model scale, no standardisation)."""
        return self.use_cm and self.prior == "dag"

    def _exogenous_idx(self) -> list[int]:
        """Node indices of the ``exogenous`` variables (checked against the fitted variables)."""
        names = [v.name for v in self.encoding_.variables]
        unknown = [v for v in self.exogenous if v not in names]
        if unknown:
            raise ValueError(f"exogenous: no variable named {unknown[0]!r} in the table "
                             f"(variables: {', '.join(names)})")
        return sorted({names.index(v) for v in self.exogenous})

    def _knowledge(self) -> Knowledge:
        """The background knowledge as node indices (names checked against the fitted variables):
        ``measured_from_image`` and ``image`` ends become edges to or from every latent."""
        names = [v.name for v in self.encoding_.variables]
        d, m = len(names), self.n_latents_
        latents = list(range(d, d + m))

        def index(option: str, text: str, name: str) -> list[int]:
            if name == IMAGE and option == "forbid":
                return latents
            if name not in names:
                raise ValueError(f"{option}={text!r}: no variable named {name!r} in the table "
                                 f"(variables: {', '.join(names)})")
            return [names.index(name)]

        forbidden: list[tuple[int, int]] = []
        for name in self.measured_from_image:
            forbidden += [(i, j) for i in index("measured_from_image", name, name) for j in latents]
        for a, b in parse_edges("forbid", self.forbid):
            forbidden += [(i, j) for i in index("forbid", f"{a}->{b}", a) for j in index("forbid", f"{a}->{b}", b)]
        required = [(index("require", f"{a}->{b}", a)[0], index("require", f"{a}->{b}", b)[0])
                    for a, b in parse_edges("require", self.require)]
        return Knowledge(self._exogenous_idx(), sorted(set(forbidden)), sorted(set(required)))

    def _knowledge_mask(self, allowed: torch.Tensor | None, n_nodes: int) -> torch.Tensor | None:
        """``allowed`` with the background knowledge applied (:func:`xcausal.structure.knowledge_mask`)."""
        k = self._knowledge()
        return knowledge_mask(allowed, n_nodes, exogenous=k.exogenous, forbidden=k.forbidden, required=k.required)

    def _node_name(self, k: int) -> str:
        d = len(self.encoding_.variables)
        return self.encoding_.variables[k].name if k < d else f"z{k - d + 1}"

    def _tensors(self, ds: CrossModalDataset, idx=None) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.arange(len(ds)) if idx is None else np.asarray(idx, dtype=int)
        x = torch.from_numpy(ds.images(idx)).to(self.device_)
        u = torch.from_numpy(ds.u[idx].astype(np.float32)).to(self.device_)
        return x, u

    def _finalise(self) -> None:
        """The reported graph: the DAG's weights thresholded at ``w_threshold``, cycles broken.

        ``require``d edges are reported whatever their weight: thresholding and the cycle breaking
        never drop them (they are acyclic by validation, so every cycle has another edge to lose);
        one below the threshold is logged. Only an edge with weight exactly 0 cannot be drawn. An
        edge of a pair the refit left undetermined (``orient_margins_``) is written undirected, with
        weight ``UNDIRECTED_WEIGHT`` and ``UNDIRECTED_KEY`` in the graph's extra, as a pipeline writes
        a CPDAG's undirected edge (the DAG keeps its direction for interventions)."""
        net = self.net_
        net.eval()
        w = net.dag.adjacency().detach().cpu().numpy().astype(float)
        d = len(self.encoding_.variables)
        names = [v.name for v in self.encoding_.variables] + [f"z{j + 1}" for j in range(self.n_latents_)]
        required = self._knowledge().required
        for i, j in required:
            if w[i, j] == 0:
                logger.warning("required edge %s -> %s has weight 0 in the DAG and cannot be reported", names[i],
                               names[j])
            elif abs(w[i, j]) <= self.w_threshold:
                logger.info("required edge %s -> %s kept though |W| = %.3f is not above w_threshold %g (--require)",
                            names[i], names[j], abs(w[i, j]), self.w_threshold)
        w_dag, dropped = threshold_to_dag(w, self.w_threshold, keep=required)
        for (i, j, wt) in dropped:
            logger.warning("dropped edge %s -> %s (|W| = %.3f) to break a cycle", names[i], names[j], wt)
        self.w_raw_ = w
        self.dropped_edges_ = [(names[i], names[j], float(wt)) for i, j, wt in dropped]
        self.adjacency_ = pd.DataFrame(w_dag, index=names, columns=names)
        nodes = [Node(n, "observed" if k < d else "latent") for k, n in enumerate(names)]
        w_graph = w_dag.copy()
        pos = {n: k for k, n in enumerate(names)}
        for a, b, *_, undetermined in getattr(self, "orient_margins_", []):
            if undetermined and a in pos and b in pos:
                i, j = pos[a], pos[b]
                w_graph[i, j] = UNDIRECTED_WEIGHT if w_dag[i, j] != 0 else 0.0
                w_graph[j, i] = UNDIRECTED_WEIGHT if w_dag[j, i] != 0 else 0.0
        marked = bool((w_graph == UNDIRECTED_WEIGHT).any())
        extra = {UNDIRECTED_KEY: "weight -1.0: the pairwise score could not decide the direction (its margin is "
                                 "within its resampling noise); written in the direction the DAG was fitted"} if marked else {}
        self.graph_obj_ = Graph.from_adjacency(w_graph, nodes, method=self.method_name)
        self.graph_obj_.extra.update(extra)
        self.graph_ = self.graph_obj_.to_networkx()
        pose = net.use_cm and isinstance(net.dec, PoseDecoder)
        self.pose_frame_ = ("image" if bool(net.dec.image_frame) else "object") if pose else None

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError("this CMCL instance is not fitted yet; call fit(dataset) first")

    def _check_compatible(self, ds: CrossModalDataset) -> None:
        names = [v.name for v in self.encoding_.variables]
        if ds.variable_names != names:
            raise ValueError(f"{ds.source}: variables {ds.variable_names} differ from the fitted ones {names}")
        if (ds.channels, ds.image_size) != (self.channels_, self.image_size_):
            raise ValueError(f"{ds.source}: images are {ds.channels}×{ds.image_size}² but the model was fitted on "
                             f"{self.channels_}×{self.image_size_}²")

    @torch.no_grad()
    def transform(self, ds: CrossModalDataset, *, batch_size: int = 256) -> np.ndarray:
        """Posterior means of the causal latents, (N, m), in table order."""
        self._check_fitted()
        self._check_compatible(ds)
        self.net_.eval()
        out = []
        for s in range(0, len(ds), batch_size):
            x, u = self._tensors(ds, range(s, min(len(ds), s + batch_size)))
            out.append(self.net_.encode(x, self.encoding_.net_columns(u), sample=False)["muq"].cpu())
        return torch.cat(out).numpy().astype(np.float64)

    def _encode_value(self, var, val: Any) -> float:
        if var.type is VarType.CONTINUOUS:
            try:
                out = float(val)
            except (TypeError, ValueError):
                raise ValueError(f"variable '{var.name}': value '{val}' is not a number") from None
            if not math.isfinite(out):
                raise ValueError(f"variable '{var.name}': value '{val}' is not finite")
            if abs(out) > float(np.finfo(np.float32).max):  # the networks compute in float32
                raise ValueError(f"variable '{var.name}': value '{val}' is beyond the float32 range the model "
                                 "computes in")
            return out
        key = str(val)
        try:
            key = str(int(float(val))) if float(val).is_integer() else repr(float(val))
        except (TypeError, ValueError):
            pass
        if key not in var.categories:
            raise ValueError(f"variable '{var.name}': value '{val}' is not one of {', '.join(var.categories)}")
        return float(var.categories.index(key))

    def _encode_values(self, values: Mapping[str, Any], n_rows: int | None = None) -> dict[int, float | np.ndarray]:
        """Column index -> encoded value: a scalar, or one value per row (a sequence of ``n_rows``)."""
        names = [v.name for v in self.encoding_.variables]
        out: dict[int, float | np.ndarray] = {}
        for name, val in values.items():
            if name not in names:
                raise ValueError(f"unknown variable '{name}' (variables: {', '.join(names)})")
            var = self.encoding_.variables[names.index(name)]
            if isinstance(val, (list, tuple, np.ndarray, pd.Series)):
                vals = list(val)
                if n_rows is not None and len(vals) != n_rows:
                    raise ValueError(f"variable '{name}': {len(vals)} values for {n_rows} rows")
                out[names.index(name)] = np.array([self._encode_value(var, v) for v in vals], dtype=np.float64)
            else:
                out[names.index(name)] = self._encode_value(var, val)
        return out

    @torch.no_grad()
    def counterfactual(self, ds: CrossModalDataset, values: Mapping[str, Any], *, rows: Sequence[int] | None = None,
                       batch_size: int = 256) -> dict[str, np.ndarray]:
        """Each sample's image had the variables taken ``values`` (Appendix B).

        Returns ``{"original": x, "reconstruction": g(z), "counterfactual": g(z')}``, each
        (N, C, H, W) in [0, 1]. Only latents that are descendants of an intervened variable change
        (eq. 15); intervening on a variable without latent descendants (anti-causal, eq. 16)
        leaves the generated image equal to the reconstruction. A value may be one per row (a
        sequence as long as ``rows``) instead of one for all.
        """
        self._check_fitted()
        self._check_compatible(ds)
        rows = list(range(len(ds))) if rows is None else list(rows)
        codes = self._encode_values(values, n_rows=len(rows))
        self.net_.eval()
        res: dict[str, list] = {"original": [], "reconstruction": [], "counterfactual": []}
        for s in range(0, len(rows), batch_size):
            x, u = self._tensors(ds, rows[s:s + batch_size])
            e = self.net_.encode(x, self.encoding_.net_columns(u), sample=False)
            u_cf = u.clone()
            for i, val in codes.items():
                u_cf[:, i] = (torch.as_tensor(val[s:s + batch_size], dtype=u.dtype, device=u.device)
                              if isinstance(val, np.ndarray) else val)
            z_cf = counterfactual_z(self, u, e["muq"], u_cf)
            res["original"].append(x.cpu())
            res["reconstruction"].append(torch.sigmoid(self.net_.decode(e["muq"])).cpu())
            res["counterfactual"].append(torch.sigmoid(self.net_.decode(z_cf)).cpu())
        return {k: torch.cat(v).numpy() for k, v in res.items()}

    def intervene(self, values: Mapping[str, Any], ds: CrossModalDataset, *, rows: Sequence[int] | None = None) -> np.ndarray:
        """Images under do(values) for the given rows (N, C, H, W) in [0, 1]; see :meth:`counterfactual`."""
        return self.counterfactual(ds, values, rows=rows)["counterfactual"]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write ``path`` (tensors only, loadable with weights_only=True) and ``path.json`` (config)."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)  # like the CLI's run directory
        state = {f"net.{k}": v.detach().cpu() for k, v in self.net_.state_dict().items()}
        torch.save(state, path)
        meta = {"format": FORMAT_VERSION, "method": self.method_name, "xcausal_version": __version__,
                "params": self.get_params(), "encoding": self.encoding_.to_dict(), "n_latents": self.n_latents_,
                "embed_dim": self.embed_dim_, "epochs": self.epochs_, "image_size": self.image_size_,
                "channels": self.channels_, "alm": self.alm_.state_dict() if hasattr(self, "alm_") else None,
                "anchor": self.anchor_, "pruned_edges": getattr(self, "pruned_edges_", []),
                "effect_ratios": [[i, j, r] for (i, j), r in sorted(getattr(self, "effect_ratios_", {}).items())],
                "orient_margins": [[a, b, m, s if math.isfinite(s) else None, k, u]  # None: sd not estimated
                                   for a, b, m, s, k, u in getattr(self, "orient_margins_", [])],
                "unexplained_dependences": (None if getattr(self, "unexplained_dependences_", None) is None
                                            else [list(t) for t in self.unexplained_dependences_])}
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> "CMCL":
        from xcausal.io import checkpoint_errors, read_checkpoint_meta

        path = Path(path)
        meta = read_checkpoint_meta(path, cls.method_name, FORMAT_VERSION)
        with checkpoint_errors(path):
            params = dict(meta["params"])
            for name in KNOWLEDGE_OPTIONS:  # a copy: not the shared default; older runs lack the newer lists
                params[name] = list(params.get(name, ()))
            params["device"] = device
            params["dag_hidden"] = tuple(params["dag_hidden"])
            if isinstance(params["channel_plan"], list):
                params["channel_plan"] = tuple(params["channel_plan"])
            obj = cls(**params)
            obj.encoding_ = Encoding.from_dict(meta["encoding"])
            obj.n_latents_ = meta["n_latents"]
            obj.embed_dim_ = meta["embed_dim"]
            obj.epochs_ = meta["epochs"]
            obj.image_size_ = meta["image_size"]
            obj.channels_ = meta["channels"]
            obj.anchor_ = meta["anchor"]
            obj.pruned_edges_ = [tuple(e) for e in meta["pruned_edges"]]
            obj.effect_ratios_ = {(int(i), int(j)): float(r) for i, j, r in meta["effect_ratios"]}
            obj.orient_margins_ = [(str(a), str(b), float(m), math.inf if s is None else float(s), int(k), bool(u))
                                   for a, b, m, s, k, u in meta.get("orient_margins", [])]
            found = meta["unexplained_dependences"]  # None: no refit checked them
            obj.unexplained_dependences_ = None if found is None else [(str(a), str(b), float(p)) for a, b, p in found]
            obj.device_ = _resolve_device(device)
            obj.net_ = load_net_state(build_net(obj), path, obj.device_)
            obj._finalise()
            return obj

    # ------------------------------------------------------------------ run directory
    def run_result(self, ds: CrossModalDataset, *, extra_config: Mapping[str, Any] | None = None):
        """The :class:`xcausal.run.RunResult` for this fit on ``ds`` (write it with write_run)."""
        from xcausal.run import RunResult

        config = {"method": self.method_name, "params": self.get_params(),
                  "resolved": {"latent_dim": self.n_latents_, "embed_dim": self.embed_dim_, "epochs": self.epochs_,
                               "device": str(self.device_)},
                  "data": ds.summary(), "time_share": getattr(self, "time_share_", None),
                  "dropped_edges": self.dropped_edges_, "anchor": self.anchor_,
                  "pruned_edges": getattr(self, "pruned_edges_", []),
                  "orient_margins": [{"variable": a, "latent": b, "margin": m, "sd": s if math.isfinite(s) else None,
                                      "resamples": k,
                                      "undetermined": u} for a, b, m, s, k, u in getattr(self, "orient_margins_", [])],
                  "pose_frame": getattr(self, "pose_frame_", None),
                  "unexplained_dependences": (None if getattr(self, "unexplained_dependences_", None) is None
                                              else [list(t) for t in self.unexplained_dependences_]),
                  **(extra_config or {})}
        return RunResult(graph=self.graph_obj_, latents=self.transform(ds), config=config,
                         history=self.history_, save_checkpoint=self.save)


def _signature() -> inspect.Signature:
    """``__init__``'s signature as declared in OPTIONS (for help(), IDEs and introspection)."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=o.type)
               for o in OPTIONS.values()]
    return inspect.Signature(params, return_annotation=None)


def _options_doc() -> str:
    lines = []
    for group in GROUPS:
        lines += ["", f"    {group.capitalize()} options", "    " + "-" * (len(group) + 8)]
        lines += [f"    {o.name} = {o.default!r}\n        {o.help}" for o in OPTIONS.values() if o.group == group]
    return "\n".join(lines) + "\n"


CMCL.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
CMCL.__doc__ = (CMCL.__doc__ or "") + _options_doc()
