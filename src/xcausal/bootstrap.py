"""Edge confidence by bootstrap: refit on resamples, align the latents, count each pair's verdicts.

A refit on a bootstrap resample learns its own latents, in its own order and sign: each refit's
latents (posterior means on the *full* data) are matched to the main fit's by the Hungarian
algorithm on absolute Pearson correlation, and its graph renamed before counting. For every
variable–latent pair the refits vote u → z, z → u or no edge; for every variable they vote on its
verdict as a whole (causal, anti-causal, mixed or none), which does not depend on the matching.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from xcausal.types import Edge, Graph, Relation

__all__ = ["bootstrap_edges", "bootstrap_refits", "bootstrap_seeds", "edge_table", "verdict_table", "with_support"]

logger = logging.getLogger(__name__)


def bootstrap_seeds(seed: int, b: int) -> list[int]:
    """``b`` independent seeds derived from the main seed (numpy SeedSequence.spawn)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(b)]


def _one_refit(factory: Callable[[int], Any], ds: Any, seed: int, threads: int | None) -> tuple[Graph, np.ndarray]:
    if threads is not None:  # only in a worker process of its own, never in the caller's
        from xcausal._runtime import limit_process_threads

        limit_process_threads(threads)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.integers(0, len(ds), len(ds)))
    model = factory(seed).fit(ds.subset(idx))
    return model.graph_obj_, model.transform(ds)


def _align(graph: Graph, z_ref: np.ndarray, z_est: np.ndarray) -> Graph:
    from xcausal.metrics.representation import match_latents

    matched, _ = match_latents(z_ref, z_est, score="pearson")
    lat = graph.latent
    mapping = {lat[j]: f"z{k + 1}" for k, j in enumerate(matched)}
    extra = [z for z in lat if z not in mapping]  # more learned latents than reference ones
    mapping.update({z: f"_unmatched_{z}" for z in extra})
    return graph.renamed(mapping)


def edge_table(reference: Graph, refits: list[Graph]) -> pd.DataFrame:
    """Per variable–latent pair of ``reference``: frequencies of u → z, z → u, an undirected edge
    (``p_undirected``: a refit that left the direction undetermined votes for neither direction),
    none, and the median |weight| over the refits with a directed edge."""
    rows = []
    b = len(refits)
    for u in reference.observed:
        for z in reference.latent:
            fwd = rev = und = 0
            weights = []
            for g in refits:
                e = {(x.source, x.target): x for x in g.edges}
                x = e.get((u, z)) or e.get((z, u))
                if x is None:
                    continue
                if g.is_undirected(x):
                    und += 1
                    continue
                weights.append(abs(x.weight))
                if x.source == u:
                    fwd += 1
                else:
                    rev += 1
            rows.append({"variable": u, "latent": z, "p_u_to_z": fwd / b, "p_z_to_u": rev / b,
                         "p_undirected": und / b, "p_none": (b - fwd - rev - und) / b,
                         "median_weight": float(np.median(weights)) if weights else 0.0})
    return pd.DataFrame(rows)


def verdict_table(reference: Graph, refits: list[Graph]) -> pd.DataFrame:
    """Per variable of ``reference``: the share of ``refits`` in which its relation to the latents
    (:meth:`xcausal.types.Graph.relation`) is causal, anti-causal, mixed, none or undetermined.
    Unlike the per-pair table this needs no matching of latents: a variable whose effect lands on different
    latents in different refits still gets the same verdict in each."""
    b = len(refits)
    if b == 0:
        raise ValueError("verdict_table: no refits")
    rows = []
    for u in reference.observed:
        votes = [g.relation(u).value for g in refits]
        rows.append({"variable": u, **{f"p_{r.value.replace('-', '_')}": votes.count(r.value) / b for r in Relation}})
    return pd.DataFrame(rows)


def with_support(graph: Graph, table: pd.DataFrame) -> Graph:
    """``graph`` whose variable–latent edges carry their bootstrap frequency as ``support``."""
    freq = {}
    for r in table.itertuples(index=False):
        freq[(r.variable, r.latent)] = r.p_u_to_z
        freq[(r.latent, r.variable)] = r.p_z_to_u
    edges = [Edge(e.source, e.target, e.weight, freq.get((e.source, e.target), e.support)) for e in graph.edges]
    return dataclasses.replace(graph, edges=edges)


def bootstrap_edges(factory: Callable[[int], Any], ds: Any, reference: Graph, reference_latents: np.ndarray, *,
                    b: int, seed: int, n_jobs: int = 1, progress: bool = False) -> pd.DataFrame:
    """:func:`edge_table` of :func:`bootstrap_refits` (same parameters)."""
    return edge_table(reference, bootstrap_refits(factory, ds, reference, reference_latents, b=b, seed=seed,
                                                  n_jobs=n_jobs, progress=progress))


def bootstrap_refits(factory: Callable[[int], Any], ds: Any, reference: Graph, reference_latents: np.ndarray, *,
                     b: int, seed: int, n_jobs: int = 1, progress: bool = False,
                     threads: int | None = None) -> list[Graph]:
    """Refit ``factory(seed_k)`` on ``b`` bootstrap resamples of ``ds``; their graphs, latents renamed
    to the main fit's.

    Parameters
    ----------
    factory : seed -> unfitted model (same hyperparameters as the main fit, its own seed)
    ds : the dataset (resampled with replacement, rows drawn from each refit's seed)
    reference : the main fit's graph; reference_latents : its posterior means on ``ds`` (N, m)
    b : number of resamples; seed : the main seed (refit seeds are derived from it)
    n_jobs : parallel refits through joblib (loky processes)
    threads : torch and BLAS threads of each parallel refit (default: the cores divided among the
        ``n_jobs`` processes, :func:`xcausal._runtime.threads_per_process`)

    Returns
    -------
    list of Graph, one per resample (tabulate with :func:`edge_table` and :func:`verdict_table`).
    """
    if b < 1:
        raise ValueError(f"bootstrap: B = {b}, need at least 1 resample")
    from joblib import Parallel, delayed

    seeds = bootstrap_seeds(seed, b)
    from xcausal._runtime import threads_per_process

    from xcausal._runtime import fit_progress

    threads = threads_per_process(n_jobs, threads) if n_jobs != 1 else None
    logger.info("bootstrap: %d refits on %d job(s)", b, n_jobs)
    bar = fit_progress(progress, b, "bootstrap", lambda row: f"({row['edges']} edges)", unit="refit")
    results = []
    try:
        # a generator: each refit's result is counted as it arrives (in order)
        for g, z in Parallel(n_jobs=n_jobs, backend="loky" if n_jobs != 1 else "sequential", return_as="generator")(
                delayed(_one_refit)(factory, ds, s, threads) for s in seeds):
            results.append((g, z))
            if bar is not None:
                bar.update({"edges": len(g.edges)})
    finally:
        if bar is not None:
            bar.close()
    return [_align(g, reference_latents, z) for g, z in results]
