"""Evaluation metrics: structure recovery (NOTEARS ``count_accuracy``) and latent recovery
(MIC, matched MCC / mean MIC) plus the latent matching used to align learned graphs."""

from xcausal.metrics.matching import align_graph, latent_name_mapping
from xcausal.metrics.representation import mcc, match_latents, mean_mic, mic, score_matrix
from xcausal.metrics.structure import count_accuracy, graph_accuracy

__all__ = [
    "count_accuracy",
    "graph_accuracy",
    "mic",
    "mcc",
    "mean_mic",
    "match_latents",
    "score_matrix",
    "latent_name_mapping",
    "align_graph",
]
