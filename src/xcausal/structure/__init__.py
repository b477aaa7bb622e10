"""DAG learners and their parts.

NOTEARS-MLP for mixed continuous / binary / categorical nodes (:class:`NotearsMLP`), the
acyclicity functions (:func:`h_expm`, :func:`h_logdet`), the augmented Lagrangian
(:class:`AugmentedLagrangian`), post-processing (:func:`threshold_to_dag`), edge masks
(:func:`bipartite_mask`, :func:`exogenous_mask`, :func:`knowledge_mask`), the check of the independences
the graph implies between variables (:func:`unexplained_dependences`) and a standalone full-batch
learner (:func:`fit_notears`); GES with the
generalized score (:func:`fit_gs_ges`, :class:`GeneralizedScore`) and causal-learn's endpoint
matrices converted to our CPDAG convention (:func:`endpoints_to_adjacency`, :func:`pdag_to_dag`);
the graph-gradient DAG over binary nodes of causalPIMA (:class:`GraphGradientDAG`).
"""

from xcausal.structure._acyclicity import h_expm, h_logdet
from xcausal.structure._graph import bipartite_mask, dependence_pvalue, editable_mask, exogenous_mask, knowledge_mask, threshold_to_dag, unexplained_dependences
from xcausal.structure._lagrangian import AugmentedLagrangian
from xcausal.structure.ges import GeneralizedScore, GSScore, endpoints_to_adjacency, fit_gs_ges, pdag_to_dag
from xcausal.structure.graph_gradient import GraphGradientDAG, binary_outcomes, sample_outcomes
from xcausal.structure.anm import anm_direction, anm_score, entropy_1d
from xcausal.structure.notears import (
    HFunc,
    InnerOptimizer,
    NotearsMLP,
    NotearsResult,
    NotearsTrainer,
    Score,
    fit_notears,
    notears_objective,
    prox_l1_first_layer_,
)

__all__ = [
    "GraphGradientDAG",
    "binary_outcomes",
    "sample_outcomes",
    "anm_direction",
    "anm_score",
    "entropy_1d",
    "h_expm",
    "h_logdet",
    "bipartite_mask",
    "editable_mask",
    "exogenous_mask",
    "knowledge_mask",
    "dependence_pvalue",
    "unexplained_dependences",
    "threshold_to_dag",
    "AugmentedLagrangian",
    "NotearsMLP",
    "NotearsResult",
    "NotearsTrainer",
    "notears_objective",
    "prox_l1_first_layer_",
    "fit_notears",
    "Score",
    "HFunc",
    "InnerOptimizer",
    "fit_gs_ges",
    "endpoints_to_adjacency",
    "pdag_to_dag",
    "GeneralizedScore",
    "GSScore",
]
