"""Public functions behind the CLI verbs: config dataclass in, run directory out."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from xcausal.data.dataset import CrossModalDataset, load_dataset
from xcausal.io import DataError
from xcausal.run import CHECKPOINT_NAME, read_run, write_run

__all__ = ["FitConfig", "fit", "load_model", "load_run_dataset", "intervention_grid", "METHODS", "method_names",
           "method_entry"]

logger = logging.getLogger(__name__)


def _cmcl_factory(cfg: "FitConfig"):
    from xcausal.models.cmcl import CMCL

    return CMCL(latent_dim=cfg.latent_dim, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                use_cm=not cfg.no_cm, use_cr=not cfg.no_cr, allow_all_edges=cfg.allow_all_edges,
                h_func=cfg.h_func, w_threshold=cfg.w_threshold, seed=cfg.seed, device=cfg.device,
                channel_plan=cfg.channel_plan, progress=cfg.progress)


def _cmcl_loader():
    from xcausal.models.cmcl import CMCL

    return CMCL


def _pipeline_loader():
    from xcausal.models.pipeline import Pipeline

    return Pipeline


#: method name -> (factory from FitConfig, class with .load); pipelines are resolved by :func:`method_entry`
METHODS: dict[str, tuple[Any, Any]] = {"cmcl": (_cmcl_factory, _cmcl_loader)}


def method_names() -> list[str]:
    """Every method ``xcausal fit --method`` takes: cmcl and each ``<representation>+<structure>``."""
    from xcausal.models.pipeline import pipeline_names

    return list(METHODS) + pipeline_names()


def method_entry(name: str) -> tuple[Any, Any]:
    """(factory from FitConfig, loader of the class) for ``name``; DataError listing the valid names."""
    if name in METHODS:
        return METHODS[name]
    if "+" in name:
        from xcausal.models.pipeline import make_pipeline_factory

        try:
            return make_pipeline_factory(name), _pipeline_loader
        except ValueError:
            pass
    raise DataError(f"unknown method '{name}' (available: {', '.join(method_names())})")


@dataclass
class FitConfig:
    """Everything ``xcausal fit`` takes; saved in the run's config.json."""

    data: str
    out: str
    method: str = "cmcl"
    latent_dim: int | None = None
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    image_size: int = 32
    channels: int | None = None
    categorical: list[str] = field(default_factory=list)
    continuous: list[str] = field(default_factory=list)
    missing: Literal["error", "drop"] = "error"
    no_cm: bool = False
    no_cr: bool = False
    allow_all_edges: bool = False
    h_func: Literal["logdet", "expm"] = "logdet"
    w_threshold: float = 0.3
    channel_plan: str = "synthetic"
    overwrite: bool = False
    progress: bool = False

    def data_options(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "channels": self.channels, "categorical": list(self.categorical),
                "continuous": list(self.continuous), "missing": self.missing}


def fit(cfg: FitConfig) -> Path:
    """Load the data, fit the method, write the run directory; returns its path."""
    factory = method_entry(cfg.method)[0]
    out = Path(cfg.out)
    if out.exists() and not cfg.overwrite:
        raise DataError(f"{out}: output already exists (pass --overwrite to replace it)")
    ds = load_dataset(cfg.data, **cfg.data_options())
    model = factory(cfg)
    model.fit(ds)
    conf = asdict(cfg)
    conf["data"] = str(Path(cfg.data).resolve())
    result = model.run_result(ds, extra_config={"fit_config": conf})
    return write_run(out, result, overwrite=cfg.overwrite)


def load_model(run: str | Path, *, device: str = "cpu"):
    """The fitted model stored in a run directory."""
    rd = read_run(run)
    method = rd.config.get("method") or rd.graph.method
    try:
        cls = method_entry(str(method))[1]()
    except DataError:
        raise DataError(f"{run}: method '{method}' has no loadable model") from None
    return cls.load(Path(run) / CHECKPOINT_NAME, device=device)


def load_run_dataset(run: str | Path, data: str | Path | None = None) -> CrossModalDataset:
    """The dataset a run was fitted on (or ``data``), loaded with the run's data options."""
    rd = read_run(run)
    fc = rd.config.get("fit_config", {})
    src = data or fc.get("data")
    if not src:
        raise DataError(f"{run}: config.json does not record the data; pass --data")
    opts = {k: fc[k] for k in ("image_size", "channels", "categorical", "continuous", "missing") if k in fc}
    return load_dataset(src, **opts)


def intervention_grid(run: str | Path, var: str, values: list[Any], out: str | Path, *, rows: int = 10,
                      data: str | Path | None = None, device: str = "cpu") -> Path:
    """Figure 4/6 layout: rows = samples, columns = do(var = value); first column the original."""
    from xcausal.viz.grid import image_grid

    model = load_model(run, device=device)
    if not hasattr(model, "intervene"):
        raise DataError(f"{run}: method '{model.method_name}' cannot regenerate images under interventions "
                        "(a two-stage pipeline has no model from the variables to the image); use cmcl")
    ds = load_run_dataset(run, data)
    rng_rows = list(np.linspace(0, len(ds) - 1, num=min(rows, len(ds))).round().astype(int))
    cols = [ds.images(rng_rows)]
    titles = ["original"]
    for v in values:
        cols.append(model.intervene({var: v}, ds, rows=rng_rows))
        titles.append(f"do({var}={v})")
    rel = model.graph_obj_.relation(var).value
    image_grid(cols, titles, out, row_titles=[f"row {r}" for r in rng_rows],
               title=f"interventions on {var} ({rel} in the learned graph)")
    return Path(out)
