"""Datasets: the on-disk contract (directory or npz), validation, lazy loading, simulators."""

from xcausal.data.circles import simulate_circles, strain_hardening_curve
from xcausal.data.dataset import (
    CrossModalDataset,
    Variable,
    convert_dataset,
    dataset_from_arrays,
    infer_variables,
    load_dataset,
    save_dataset_dir,
    save_dataset_npz,
)
from xcausal.data.tabular import simulate_er_dag, simulate_mlp_sem
from xcausal.data.simulate import SimulatedData, parse_graph_spec, simulate_appendix_e
from xcausal.data.xray import simulate_xray_phantom

__all__ = [
    "CrossModalDataset",
    "Variable",
    "convert_dataset",
    "dataset_from_arrays",
    "infer_variables",
    "load_dataset",
    "save_dataset_dir",
    "save_dataset_npz",
    "SimulatedData",
    "parse_graph_spec",
    "simulate_appendix_e",
    "simulate_circles",
    "strain_hardening_curve",
    "simulate_er_dag",
    "simulate_mlp_sem",
    "simulate_xray_phantom",
]
