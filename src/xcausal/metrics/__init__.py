"""Evaluation metrics: structure recovery (NOTEARS ``count_accuracy``) and latent recovery
(MIC, matched MCC / mean MIC) plus the latent matching used to align learned graphs, and
counterfactual-image measurements by registration (rotation, vertical shift, L1 in 0-255), and
pixel measurements of the circles images (hue, radius, centre), and the scoring of discovered
binary features (matching with flips, clustering accuracy, skeleton / CPDAG SHD)."""

from xcausal.metrics.circles import circle_features, measure_circles
from xcausal.metrics.counterfactual import estimate_rotation, estimate_shift, l1_255
from xcausal.metrics.features import FeatureMatch, clustering_accuracy, cpdag_shd, dag_to_cpdag, match_features, skeleton_shd
from xcausal.metrics.matching import align_graph, latent_name_mapping
from xcausal.metrics.representation import matched_mean, mcc, match_latents, mean_mic, mic, score_matrix
from xcausal.metrics.structure import count_accuracy, graph_accuracy

__all__ = [
    "count_accuracy",
    "graph_accuracy",
    "mic",
    "mcc",
    "mean_mic",
    "match_latents",
    "matched_mean",
    "score_matrix",
    "latent_name_mapping",
    "align_graph",
    "estimate_rotation",
    "estimate_shift",
    "l1_255",
    "measure_circles",
    "circle_features",
    "FeatureMatch",
    "match_features",
    "clustering_accuracy",
    "dag_to_cpdag",
    "skeleton_shd",
    "cpdag_shd",
]
