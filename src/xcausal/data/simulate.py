"""Synthetic cross-modal data: the Appendix E generator of CMCL (Mao et al. 2022).

The generator has three steps (paper, Appendix E.1):

1. **Graph.** ``E`` structured variables ``u1..uE`` and ``m`` latents ``z1..zm``. Each ``u_i`` is
   paired with its own, randomly chosen latent; every pair is joined by one edge whose direction
   is a fair coin (``u -> z`` "causal" or ``z -> u`` "anti-causal"). The graph is bipartite and
   every node has at most one edge (Appendix E.2).
2. **Values.** In topological order ``v = f_v(Pa(v)) + eps``, ``eps ~ N(0, 1)``; a node without
   parents is just ``eps``. ``f_v`` is the random MLP of the NOTEARS simulator
   (``simulate_nonlinear_sem``, type ``"mlp"``): ``f(x) = sigmoid(x W1) W2`` with 100 hidden
   units, no biases, all weights ``U[0.5, 2]`` with a random sign.
3. **Images.** Each latent goes through a random smooth injective function drawn from a Gaussian
   process, plus a little noise, and is written into its own cell of a 5x5 grid (cells chosen
   at random, fixed per dataset; empty cells are 0). The grid is upsampled by a cubic spline to
   ``image_size x image_size`` and squashed into ``[0, 1]`` with a sigmoid.

Choices the paper leaves open (documented in :func:`simulate_appendix_e` and in ``info``):

* ``g_j`` is *monotone*: ``g_j(s) = sign_j * integral_0^s exp(h_j(t)) dt`` with ``h_j`` a GP
  sample (RBF kernel). The derivative ``exp(h_j) > 0`` makes ``g_j`` strictly monotone, hence
  injective as Assumption 1 requires, while still smooth and non-linear. A "GP plus linear
  trend" is only injective when the trend happens to dominate, which cannot be guaranteed.
* All structural randomness (pairing, directions, MLP weights, GP draws, signs, cell positions)
  comes from one child stream of the seed and the sample noise from another, so the same seed
  gives the same graph and functions for every ``n``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from xcausal.types import Edge, Graph, Node

__all__ = [
    "SimulatedData",
    "parse_graph_spec",
    "simulate_appendix_e",
    "PAPER_GRAPH_SPECS",
    "RANDOM_N_EDGES",
    "GRID_SIZE",
    "MIN_SAMPLES",
]

logger = logging.getLogger(__name__)

GRID_SIZE = 5
"""Side of the cell grid the latents are written into (paper: a 5x5 matrix)."""
MIN_SAMPLES = 10
"""Smallest ``n`` accepted (the dataset contract's minimum number of rows)."""
RANDOM_N_EDGES = -1
"""``n_edges`` returned by :func:`parse_graph_spec` for ``"first"``: 3 or 5, drawn from the seed."""
PAPER_GRAPH_SPECS: tuple[str, ...] = (
    "first", "1/10", "4/10", "6/12", "8/16", "10/20", "12/24", "20/40", "3/10", "5/10",
)
"""Every graph the paper's Appendix E.2 names."""

_HIDDEN = 100  # hidden units of the NOTEARS "mlp" causal function
_W_LOW, _W_HIGH = 0.5, 2.0  # |weight| range of the NOTEARS "mlp" causal function
_GP_GRID = 50  # points the GP is sampled on (then linearly interpolated)
_GP_JITTER = 1e-6  # relative diagonal jitter for the Cholesky factor of the RBF kernel
_FIRST_N = 5  # the first dataset: 5 structured variables and 5 latents
_FIRST_PAIRS = (3, 5)  # ... with 3 or 5 pairs
_SPEC_RE = re.compile(r"^(\d+)/(\d+)$")
_FIRST_RE = re.compile(r"^first(?:-(\d+))?$")
_SPEC_HELP = (
    "expected 'E/N' with E structured variables and N-E latents, 1 <= E <= N-E <= "
    f"{GRID_SIZE * GRID_SIZE} (each variable needs its own latent; latents fill a "
    f"{GRID_SIZE}x{GRID_SIZE} grid), or 'first', 'first-3', 'first-5'"
)


@dataclass
class SimulatedData:
    """A simulated cross-modal dataset with its ground truth.

    Attributes
    ----------
    images : ndarray, shape (N, C, H, W), float32
        Images in ``[0, 1]`` (``C = 1`` here; 3 for the circles simulator).
    table : DataFrame, shape (N, E)
        Structured variables, columns ``u1..uE``, float64, not standardised.
    latents : ndarray, shape (N, m), float64
        True latent values, columns in the order of ``truth.latent`` (``z1..zm``), not standardised.
    truth : Graph
        Nodes ``u1..uE`` (kind ``"observed"``) then ``z1..zm`` (kind ``"latent"``); one edge of
        weight 1.0 per pair; ``method="truth"``.
    info : dict
        JSON-serialisable description of how the data were generated (spec, seed, pairs, cell
        positions, empirical standard deviations, image-function parameters, ...).
    modalities : dict of str to ndarray, shape (N, L) each
        Further modalities, rows in table order (empty here; ``"curve"`` for the circles
        simulator); written as ``modalities/<name>.npy`` by ``save_dataset_dir``.
    """

    images: np.ndarray
    table: pd.DataFrame
    latents: np.ndarray
    truth: Graph
    info: dict[str, Any] = field(default_factory=dict)
    modalities: dict[str, np.ndarray] = field(default_factory=dict)


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum``; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def parse_graph_spec(spec: str) -> tuple[int, int, int]:
    """Parse a graph spec of Appendix E.2.

    Parameters
    ----------
    spec : str
        ``"E/N"``: ``E`` structured variables, ``N - E`` latents and ``E`` edges (the paper's
        ``n/m`` notation, "n edges and m nodes"), with ``1 <= E <= N - E <= 25``.
        ``"first"``: the paper's first dataset, 5 structured variables and 5 latents with 3 or 5
        pairs chosen at random; ``"first-3"`` / ``"first-5"`` fix the number of pairs.

    Returns
    -------
    n_observed, n_latent, n_edges : int
        ``n_edges`` is :data:`RANDOM_N_EDGES` (-1) for ``"first"``, where it is drawn from the seed.

    Raises
    ------
    ValueError
        If ``spec`` is not one of the forms above or violates the constraints.
    """
    if not isinstance(spec, str):
        raise ValueError(f"unknown graph spec {spec!r}: {_SPEC_HELP}")
    s = spec.strip().lower()
    m_first = _FIRST_RE.match(s)
    if m_first is not None:
        if m_first.group(1) is None:
            return _FIRST_N, _FIRST_N, RANDOM_N_EDGES
        k = int(m_first.group(1))
        if k not in _FIRST_PAIRS:
            raise ValueError(
                f"unknown graph spec {spec!r}: the first dataset has "
                f"{' or '.join(map(str, _FIRST_PAIRS))} pairs; {_SPEC_HELP}"
            )
        return _FIRST_N, _FIRST_N, k
    m = _SPEC_RE.match(s)
    if m is None:
        raise ValueError(f"unknown graph spec {spec!r}: {_SPEC_HELP}")
    n_obs, n_nodes = int(m.group(1)), int(m.group(2))
    n_lat = n_nodes - n_obs
    if n_obs < 1:
        raise ValueError(
            f"unknown graph spec {spec!r}: needs at least one structured variable; {_SPEC_HELP}"
        )
    if n_obs > n_lat:
        raise ValueError(
            f"unknown graph spec {spec!r}: {n_obs} structured variables need {n_obs} latents, "
            f"only {max(n_lat, 0)} left; {_SPEC_HELP}"
        )
    if n_lat > GRID_SIZE * GRID_SIZE:
        raise ValueError(
            f"unknown graph spec {spec!r}: {n_lat} latents do not fit the "
            f"{GRID_SIZE}x{GRID_SIZE} grid; {_SPEC_HELP}"
        )
    return n_obs, n_lat, n_obs


def simulate_appendix_e(
    graph: str,
    n: int,
    *,
    seed: int,
    image_size: int = 32,
    noise_std: float = 0.05,
    gp_length_scale: float = 1.0,
    gp_amplitude: float = 0.5,
) -> SimulatedData:
    """Simulate one dataset with the CMCL Appendix E pipeline.

    Parameters
    ----------
    graph : str
        Graph spec, see :func:`parse_graph_spec` (``"20/40"``, ``"first"``, ...).
    n : int
        Number of samples, ``>= 10``.
    seed : int
        Non-negative seed; everything random is drawn from ``np.random.default_rng(seed)``.
        Graph, causal functions, image functions and cell positions come from a child stream
        that does not depend on ``n``; the rows of ``table`` and ``latents`` for sample ``l``
        are the same for every ``n > l`` (images are not: ``g_j`` uses the sample's mean/std).
    image_size : int, optional
        Side ``H = W`` of the output images, ``>= 5``.
    noise_std : float, optional
        Standard deviation of the Gaussian noise added to each latent's cell value. Cell values
        are scaled to unit standard deviation first, so this is relative to the signal.
    gp_length_scale : float, optional
        Length-scale of the RBF kernel of the GP ``h_j``, in units of standardised ``z_j``.
    gp_amplitude : float, optional
        Standard deviation of ``h_j``; the slope of ``g_j`` is ``exp(h_j)``, so it varies by a
        factor of about ``exp(4 * gp_amplitude)`` over the data (0 gives linear ``g_j``).

    Returns
    -------
    SimulatedData
        ``images`` (N, 1, H, W) float32 in [0, 1]; ``table`` (N, E) columns ``u1..uE``;
        ``latents`` (N, m) columns ``z1..zm``; ``truth``; ``info``.

    Raises
    ------
    ValueError
        On an unknown graph spec, ``n < 10``, ``image_size < 5``, a negative seed or noise level,
        or a non-positive length-scale.

    Notes
    -----
    Image of sample ``l``: with ``s_j = (z_j - mean(z_j)) / std(z_j)`` (empirical),

    * ``g_j(s) = sign_j * integral exp(h_j)``, ``h_j ~ GP(0, a^2 exp(-(t - t')^2 / (2 l^2)))``
      sampled on 50 points spanning the observed range of ``s_j`` and linearly interpolated;
      strictly monotone, hence injective (Assumption 1); ``sign_j`` is a fair coin;
    * ``c_j = (g_j(s_j) - mean) / std + noise_std * N(0, 1)`` goes into cell ``cells[j]`` of a
      5x5 grid, all other cells are 0;
    * the grid is upsampled by a cubic spline (``scipy.ndimage.zoom``, ``order=3``,
      ``grid_mode=True``, ``mode="nearest"``; applied as its exact separable matrix form, one
      batched product), so each cell covers an ``H/5 x W/5`` block;
    * ``x = sigmoid(upsampled)``: background cells map to 0.5, and the unit-scale cell values
      stay in the sigmoid's near-linear range, so images suit Bernoulli/BCE decoders.

    The causal MLPs of the NOTEARS simulator have outputs of standard deviation of a few units
    against the unit noise (the paper's setting); ``info["std"]`` records the empirical standard
    deviation of every variable and ``info["pairs"][k]["signal_var"]`` the empirical variance of
    ``f`` on each edge (noise variance is 1). Those MLPs are nearly linear with a random-sign
    slope, so a few per cent of edges get ``signal_var < 0.1`` and are barely detectable.
    Nothing in ``table``/``latents`` is standardised.
    """
    n_obs, n_lat, n_edges = parse_graph_spec(graph)
    n, image_size, seed = check_int("n", n, MIN_SAMPLES), check_int("image_size", image_size, GRID_SIZE), check_int(
        "seed", seed, 0)
    if not np.isfinite(noise_std) or noise_std < 0:
        raise ValueError(f"noise_std must be finite and >= 0, got {noise_std!r}")
    if not np.isfinite(gp_length_scale) or gp_length_scale <= 0:
        raise ValueError(f"gp_length_scale must be finite and > 0, got {gp_length_scale!r}")
    if not np.isfinite(gp_amplitude) or gp_amplitude < 0:
        raise ValueError(f"gp_amplitude must be finite and >= 0, got {gp_amplitude!r}")
    n, image_size, seed = int(n), int(image_size), int(seed)

    rng = np.random.default_rng(seed)
    # Independent streams: structure (independent of n), then per-sample noise of u, of z and of
    # the image cells, so the first rows of table/latents are the same for any n.
    struct_rng, u_rng, z_rng, cell_rng = rng.spawn(4)

    # ---------------------------------------------------------------- 1. graph
    if n_edges == RANDOM_N_EDGES:
        n_edges = int(struct_rng.choice(_FIRST_PAIRS))
    paired_u = np.sort(struct_rng.choice(n_obs, size=n_edges, replace=False))
    paired_z = struct_rng.choice(n_lat, size=n_edges, replace=False)
    causal = struct_rng.random(n_edges) < 0.5  # True: u -> z
    u_names = [f"u{i + 1}" for i in range(n_obs)]
    z_names = [f"z{j + 1}" for j in range(n_lat)]
    edges = [
        Edge(u_names[i], z_names[j], 1.0) if c else Edge(z_names[j], u_names[i], 1.0)
        for i, j, c in zip(paired_u, paired_z, causal)
    ]
    truth = Graph(
        nodes=[Node(s, "observed") for s in u_names] + [Node(s, "latent") for s in z_names],
        edges=edges,
        method="truth",
    )

    # ----------------------------------------------------- 2. values (NOTEARS mlp)
    w1 = struct_rng.uniform(_W_LOW, _W_HIGH, size=(n_edges, _HIDDEN))
    w1 *= np.where(struct_rng.random((n_edges, _HIDDEN)) < 0.5, -1.0, 1.0)
    w2 = struct_rng.uniform(_W_LOW, _W_HIGH, size=(n_edges, _HIDDEN))
    w2 *= np.where(struct_rng.random((n_edges, _HIDDEN)) < 0.5, -1.0, 1.0)

    u = u_rng.standard_normal((n, n_obs))
    z = z_rng.standard_normal((n, n_lat))
    # Each node has at most one edge, so one layer of roots then one of children is a
    # topological order; every child has exactly one parent.
    parent = np.where(causal[None, :], u[:, paired_u], z[:, paired_z])  # (n, n_edges)
    f = np.einsum("nek,ek->ne", _sigmoid(parent[:, :, None] * w1[None, :, :]), w2)
    u[:, paired_u[~causal]] += f[:, ~causal]
    z[:, paired_z[causal]] += f[:, causal]

    # ----------------------------------------------------------------- 3. images
    cells = struct_rng.choice(GRID_SIZE * GRID_SIZE, size=n_lat, replace=False)
    signs = np.where(struct_rng.random(n_lat) < 0.5, -1.0, 1.0)
    gp_eps = struct_rng.standard_normal((n_lat, _GP_GRID))

    z_mean, z_std = z.mean(axis=0), z.std(axis=0)
    z_std = np.where(z_std > 0, z_std, 1.0)
    s = (z - z_mean) / z_std
    vals = np.empty_like(s)
    for j in range(n_lat):
        grid = np.linspace(s[:, j].min(), s[:, j].max(), _GP_GRID)
        vals[:, j] = signs[j] * _monotone_gp(grid, gp_eps[j], gp_length_scale, gp_amplitude, s[:, j])
    v_std = vals.std(axis=0)
    vals = (vals - vals.mean(axis=0)) / np.where(v_std > 0, v_std, 1.0)
    vals += noise_std * cell_rng.standard_normal(vals.shape)

    grid5 = np.zeros((n, GRID_SIZE * GRID_SIZE))
    grid5[:, cells] = vals
    up = _upsample_matrix(image_size)  # (H, 5)
    x = np.einsum("hr,nrc,wc->nhw", up, grid5.reshape(n, GRID_SIZE, GRID_SIZE), up, optimize=True)
    images = _sigmoid(x).astype(np.float32)[:, None, :, :]

    table = pd.DataFrame(u, columns=u_names)
    std = {name: float(v) for name, v in zip(u_names + z_names, np.concatenate([u.std(0), z.std(0)]))}
    # Var f(parent) against the unit noise: the NOTEARS MLP is close to a random-sign linear
    # function, so a few per cent of edges come out with var_f << 1 (nearly undetectable).
    signal_var = f.var(axis=0)
    pairs = [
        {"u": u_names[i], "z": z_names[j], "direction": "causal" if c else "anti-causal",
         "source": e.source, "target": e.target, "signal_var": float(sv)}
        for i, j, c, e, sv in zip(paired_u, paired_z, causal, edges, signal_var)
    ]
    info: dict[str, Any] = {
        "generator": "appendix_e",
        "graph": graph,
        "seed": seed,
        "n": n,
        "n_observed": n_obs,
        "n_latent": n_lat,
        "n_edges": n_edges,
        "pairs": pairs,
        "causal_function": {"type": "mlp", "hidden": _HIDDEN, "activation": "sigmoid",
                            "weight_abs_range": [_W_LOW, _W_HIGH], "bias": False,
                            "noise": "N(0, 1)"},
        "std": std,
        "image_size": image_size,
        "grid_size": GRID_SIZE,
        "cell_positions": {
            name: [int(c // GRID_SIZE), int(c % GRID_SIZE)] for name, c in zip(z_names, cells)
        },
        "image_function": {
            "g": "sign * integral exp(h), h ~ GP(0, RBF) on standardised z; strictly monotone",
            "gp_length_scale": float(gp_length_scale),
            "gp_amplitude": float(gp_amplitude),
            "gp_grid_points": _GP_GRID,
            "signs": {name: int(sg) for name, sg in zip(z_names, signs)},
            "z_mean": {name: float(v) for name, v in zip(z_names, z_mean)},
            "z_std": {name: float(v) for name, v in zip(z_names, z_std)},
            "cell_scale": "g standardised to mean 0, std 1",
            "noise_std": float(noise_std),
            "background": 0.0,
            "upsample": "scipy.ndimage.zoom order=3 grid_mode=True mode=nearest",
            "squash": "sigmoid",
        },
    }
    logger.debug("simulated %s with n=%d, seed=%d: %d edges", graph, n, seed, n_edges)
    return SimulatedData(images=images, table=table, latents=z, truth=truth, info=info)


# ------------------------------------------------------------------ helpers
def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, elementwise, any shape."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _monotone_gp(
    grid: np.ndarray, eps: np.ndarray, length_scale: float, amplitude: float, at: np.ndarray
) -> np.ndarray:
    """Evaluate ``g(t) = integral_{grid[0]}^t exp(h)``, ``h = L eps`` a GP sample on ``grid``.

    Parameters
    ----------
    grid : ndarray, shape (G,)
        Increasing points spanning ``at``.
    eps : ndarray, shape (G,)
        Standard normal draws that fix the GP sample.
    length_scale, amplitude : float
        RBF kernel parameters.
    at : ndarray, shape (n,)
        Points to evaluate ``g`` at (linear interpolation between grid points).

    Returns
    -------
    ndarray, shape (n,)
        Strictly increasing in ``at`` whenever the grid has positive span.
    """
    if grid[-1] <= grid[0]:  # constant latent: nothing to recover
        return np.zeros_like(at)
    d = grid[:, None] - grid[None, :]
    k = amplitude**2 * np.exp(-0.5 * (d / length_scale) ** 2)
    k[np.diag_indices_from(k)] += _GP_JITTER * max(amplitude**2, 1.0)
    h = np.linalg.cholesky(k) @ eps
    slope = np.exp(h)
    g = np.concatenate([[0.0], np.cumsum(0.5 * (slope[1:] + slope[:-1]) * np.diff(grid))])
    return np.interp(at, grid, g)


def _upsample_matrix(size: int) -> np.ndarray:
    """Matrix ``M``, shape (size, 5), with ``M @ A @ M.T == ndimage.zoom(A, size / 5, ...)``.

    Cubic-spline zoom is separable, so zooming the unit vectors along one axis gives the exact
    linear operator; the batched product is then one einsum instead of N zoom calls.
    """
    eye = np.eye(GRID_SIZE)
    m = np.stack(
        [ndimage.zoom(e, size / GRID_SIZE, order=3, mode="nearest", grid_mode=True) for e in eye],
        axis=1,
    )
    if m.shape != (size, GRID_SIZE):  # pragma: no cover - guards scipy's output-size rounding
        raise RuntimeError(f"upsampling to {size} gave shape {m.shape}")
    return m
