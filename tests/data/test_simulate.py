"""Appendix E simulator: determinism, graph shape, topological generation, images, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from scipy.stats import spearmanr
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from xcausal.data.simulate import (
    GRID_SIZE,
    PAPER_GRAPH_SPECS,
    RANDOM_N_EDGES,
    SimulatedData,
    _upsample_matrix,
    parse_graph_spec,
    simulate_appendix_e,
)

E_N_SPECS = [s for s in PAPER_GRAPH_SPECS if "/" in s]


def _values(d: SimulatedData) -> dict[str, np.ndarray]:
    """Every node's sample values by name."""
    out = {c: d.table[c].to_numpy() for c in d.table.columns}
    out.update({name: d.latents[:, j] for j, name in enumerate(d.truth.latent)})
    return out


def _eta2(x: np.ndarray, y: np.ndarray, bins: int = 20) -> float:
    """Correlation ratio of y on quantile bins of x: share of var(y) explained by E[y | x]."""
    edges = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    b = np.searchsorted(edges, x)
    means = np.bincount(b, y) / np.bincount(b)
    return float(np.var(means[b]) / np.var(y))


def _check_graph(d: SimulatedData, n_obs: int, n_lat: int, n_edges: int) -> None:
    g = d.truth
    assert g.method == "truth"
    assert g.observed == [f"u{i + 1}" for i in range(n_obs)]
    assert g.latent == [f"z{j + 1}" for j in range(n_lat)]
    assert g.node_names == g.observed + g.latent  # observed first, then latents
    assert len(g.edges) == n_edges
    assert all(e.weight == 1.0 for e in g.edges)
    obs, lat = set(g.observed), set(g.latent)
    for e in g.edges:  # bipartite
        assert {g.kind_of(e.source), g.kind_of(e.target)} == {"observed", "latent"}
    ends = [x for e in g.edges for x in (e.source, e.target)]
    assert len(ends) == len(set(ends))  # every node in at most one edge
    assert g.is_acyclic()
    assert len(obs & set(ends)) == n_edges
    assert len(lat & set(ends)) == n_edges


# --------------------------------------------------------------------- spec
@pytest.mark.parametrize(
    ("spec", "expected"),
    [("1/10", (1, 9, 1)), ("4/10", (4, 6, 4)), ("6/12", (6, 6, 6)), ("8/16", (8, 8, 8)),
     ("10/20", (10, 10, 10)), ("12/24", (12, 12, 12)), ("20/40", (20, 20, 20)),
     ("3/10", (3, 7, 3)), ("5/10", (5, 5, 5)), ("1/26", (1, 25, 1)), ("21/42", (21, 21, 21)),
     ("first", (5, 5, RANDOM_N_EDGES)), ("first-3", (5, 5, 3)), ("first-5", (5, 5, 5))],
)
def test_parse_graph_spec(spec: str, expected: tuple[int, int, int]) -> None:
    assert parse_graph_spec(spec) == expected


@pytest.mark.parametrize("spec", ["abc", "0/10", "30/40", "11/40", "", "1/27", "10/", "/10",
                                  "-1/10", "5/10/2", "first-4", "first-", "1.5/10"])
def test_bad_spec_raises_naming_it(spec: str) -> None:
    with pytest.raises(ValueError, match="unknown graph spec") as exc:
        parse_graph_spec(spec)
    assert repr(spec) in str(exc.value)
    with pytest.raises(ValueError, match="unknown graph spec"):
        simulate_appendix_e(spec, 20, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n": 9}, "n must be"), ({"image_size": 3}, "image_size must be"),
     ({"image_size": 4}, "image_size must be"), ({"seed": -1}, "seed must be"),
     ({"noise_std": -0.1}, "noise_std must be"), ({"noise_std": float("nan")}, "noise_std must be"),
     ({"gp_length_scale": 0.0}, "gp_length_scale must be"), ({"gp_amplitude": -1.0}, "gp_amplitude")],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    args = {"n": 20, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=match) as exc:
        simulate_appendix_e("4/10", **args)
    assert repr(next(iter(kwargs.values()))) in str(exc.value)


# --------------------------------------------------------------- determinism
def test_same_seed_identical_different_seed_differs() -> None:
    a = simulate_appendix_e("10/20", 100, seed=3)
    b = simulate_appendix_e("10/20", 100, seed=3)
    c = simulate_appendix_e("10/20", 100, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.latents, b.latents)
    assert a.table.equals(b.table)
    assert a.truth.to_dict() == b.truth.to_dict()
    assert a.info == b.info
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.latents, c.latents)
    assert not np.array_equal(a.table.to_numpy(), c.table.to_numpy())
    assert (a.truth.to_dict() != c.truth.to_dict()
            or a.info["cell_positions"] != c.info["cell_positions"])


def test_structure_does_not_depend_on_n() -> None:
    a = simulate_appendix_e("12/24", 50, seed=7)
    b = simulate_appendix_e("12/24", 500, seed=7)
    assert a.truth.to_dict() == b.truth.to_dict()
    assert a.info["cell_positions"] == b.info["cell_positions"]
    np.testing.assert_array_equal(a.table.to_numpy(), b.table.to_numpy()[:50])  # same noise stream


def test_no_global_random_state_used_or_changed() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = simulate_appendix_e("4/10", 30, seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.random.seed(999)
    b = simulate_appendix_e("4/10", 30, seed=1)
    np.testing.assert_array_equal(a.images, b.images)


# -------------------------------------------------------------------- graph
@pytest.mark.parametrize("spec", E_N_SPECS)
def test_graph_shape_every_paper_size(spec: str) -> None:
    n_obs, n_lat, n_edges = parse_graph_spec(spec)
    d = simulate_appendix_e(spec, 40, seed=0, image_size=16)
    _check_graph(d, n_obs, n_lat, n_edges)
    assert list(d.table.columns) == d.truth.observed
    assert d.table.shape == (40, n_obs)
    assert d.latents.shape == (40, n_lat)
    assert d.images.shape == (40, 1, 16, 16)
    # E/N: every structured variable has exactly one edge
    deg = {u: 0 for u in d.truth.observed}
    for e in d.truth.edges:
        deg[e.source if e.source in deg else e.target] += 1
    assert set(deg.values()) == {1}


def test_first_dataset_has_3_or_5_pairs() -> None:
    counts = set()
    for seed in range(12):
        d = simulate_appendix_e("first", 20, seed=seed)
        k = len(d.truth.edges)
        assert k in (3, 5)
        assert d.info["n_edges"] == k
        _check_graph(d, 5, 5, k)
        counts.add(k)
    assert counts == {3, 5}
    for k in (3, 5):
        for seed in range(3):
            _check_graph(simulate_appendix_e(f"first-{k}", 20, seed=seed), 5, 5, k)


def test_pairing_and_directions_are_random() -> None:
    d = simulate_appendix_e("20/40", 20, seed=0)
    directions = [p["direction"] for p in d.info["pairs"]]
    assert set(directions) == {"causal", "anti-causal"}
    partners = [p["z"] for p in d.info["pairs"]]
    assert partners != [f"z{i + 1}" for i in range(20)]  # not the identity pairing
    seen = set()
    for seed in range(10):
        e = simulate_appendix_e("1/10", 20, seed=seed).truth.edges[0]
        seen.add("causal" if e.source == "u1" else "anti-causal")
    assert seen == {"causal", "anti-causal"}
    # relation() of the contract agrees with the recorded direction
    for p in d.info["pairs"]:
        assert d.truth.relation(p["u"]).value == p["direction"]


# ----------------------------------------------------- topological generation
@pytest.mark.parametrize("seed", [0, 1])
def test_values_follow_the_graph(seed: int) -> None:
    d = simulate_appendix_e("20/40", 2000, seed=seed)
    v = _values(d)
    children = {e.target for e in d.truth.edges}
    for name, x in v.items():  # roots are pure N(0, 1) noise
        if name not in children:
            assert abs(x.std() - 1.0) < 0.1, name
            assert abs(x.mean()) < 0.15, name
    edge_eta, partners = [], {}
    for p, e in zip(d.info["pairs"], d.truth.edges):
        partners[p["u"]] = p["z"]
        eta = _eta2(v[e.source], v[e.target])
        expected = p["signal_var"] / (p["signal_var"] + 1.0)  # child = f(parent) + N(0, 1)
        assert abs(eta - expected) < 0.08, (e, eta, expected)
        assert abs(v[e.target].var() - (p["signal_var"] + 1.0)) < 0.2 * (p["signal_var"] + 1.0)
        edge_eta.append(eta)
    unpaired = [
        max(_eta2(v[u], v[z]), _eta2(v[z], v[u]))
        for u in d.truth.observed for z in d.truth.latent[:5] if partners[u] != z
    ]
    assert max(unpaired) < 0.04  # ~ (bins - 1) / n by chance
    assert np.median(edge_eta) > 0.5
    assert np.mean(np.array(edge_eta) > 0.04) >= 0.85  # a few NOTEARS MLPs are nearly flat


def test_table_and_latents_are_not_standardised() -> None:
    d = simulate_appendix_e("20/40", 500, seed=0)
    stds = np.array(list(d.info["std"].values()))
    assert stds.max() > 2.0
    np.testing.assert_allclose(d.latents.std(0), [d.info["std"][z] for z in d.truth.latent])
    assert d.table.dtypes.map(lambda t: t == np.float64).all()


# --------------------------------------------------------------------- images
@pytest.mark.parametrize("size", [5, 7, 28, 32, 33, 64])
def test_image_shape_dtype_range(size: int) -> None:
    d = simulate_appendix_e("8/16", 30, seed=2, image_size=size)
    assert d.images.shape == (30, 1, size, size)
    assert d.images.dtype == np.float32
    assert d.images.min() >= 0.0 and d.images.max() <= 1.0
    assert d.images.std() > 0.05


@pytest.mark.parametrize("size", [5, 6, 28, 32, 33, 64])
def test_upsample_matrix_equals_bicubic_zoom(size: int) -> None:
    a = np.random.default_rng(0).normal(size=(GRID_SIZE, GRID_SIZE))
    m = _upsample_matrix(size)
    expected = ndimage.zoom(a, size / GRID_SIZE, order=3, mode="nearest", grid_mode=True)
    np.testing.assert_allclose(m @ a @ m.T, expected, atol=1e-12)


def test_cells_are_distinct_and_empty_cells_are_background() -> None:
    d = simulate_appendix_e("1/10", 200, seed=5, image_size=25, noise_std=0.0)
    cells = [tuple(rc) for rc in d.info["cell_positions"].values()]
    assert len(cells) == 9 == len(set(cells))
    assert all(0 <= r < GRID_SIZE and 0 <= c < GRID_SIZE for r, c in cells)
    if (0, 0) not in cells and (0, 1) not in cells and (1, 0) not in cells and (1, 1) not in cells:
        np.testing.assert_allclose(d.images[:, 0, :2, :2], 0.5, atol=1e-6)
    # a filled cell's centre varies, an empty cell's centre only through neighbour bleed
    empty = [(r, c) for r in range(5) for c in range(5) if (r, c) not in cells]
    var_full = np.mean([d.images[:, 0, 5 * r + 2, 5 * c + 2].var() for r, c in cells])
    var_empty = np.mean([d.images[:, 0, 5 * r + 2, 5 * c + 2].var() for r, c in empty])
    assert var_full > 5 * var_empty


@pytest.mark.parametrize(("spec", "size"), [("20/40", 32), ("5/10", 28)])
def test_every_latent_is_recoverable_from_the_image(spec: str, size: int) -> None:
    d = simulate_appendix_e(spec, 1000, seed=0, image_size=size)
    x = d.images.reshape(len(d.images), -1).astype(np.float64)
    train, test = slice(0, 700), slice(700, None)
    model = Ridge(alpha=1e-3).fit(x[train], d.latents[train])  # one multi-output solve
    r2 = r2_score(d.latents[test], model.predict(x[test]), multioutput="raw_values")
    for j, name in enumerate(d.truth.latent):
        z = d.latents[:, j]
        # the pixel at the latent's cell centre is a monotone function of it (injective g)
        r, c = d.info["cell_positions"][name]
        centre = d.images[:, 0, int((r + 0.5) * size / 5), int((c + 0.5) * size / 5)]
        assert abs(spearmanr(centre, z)[0]) > 0.93, name
    # measured: held-out R2 >= 0.86 on seeds 0-3 of 20/40, >= 0.90 on 5/10
    assert min(r2) > 0.7, r2


def test_info_is_json_serialisable_and_complete() -> None:
    d = simulate_appendix_e("first", 30, seed=1)
    back = json.loads(json.dumps(d.info))
    assert back == d.info
    for key in ("graph", "seed", "n", "pairs", "cell_positions", "std", "image_function"):
        assert key in back
    assert back["graph"] == "first" and back["seed"] == 1
    assert set(back["std"]) == set(d.truth.node_names)
    assert back["image_function"]["noise_std"] == 0.05
