"""MIC: validation on known relations, invariances, and the dynamic program against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import xlogy

from xcausal.metrics import mic
from xcausal.metrics.representation import _Axis, _best_mi_by_columns, _rows

N = 1000


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1.0, 1.0, N)


@pytest.mark.parametrize(
    "name, f",
    [
        ("linear", lambda x: 2.0 * x + 1.0),
        ("parabola", lambda x: x**2),
        ("sine_2_periods", lambda x: np.sin(2 * np.pi * x)),
        ("sine_4_periods", lambda x: np.sin(4 * np.pi * x)),
        ("exponential", lambda x: np.exp(3.0 * x)),
        ("cubic_decreasing", lambda x: -(x**3)),
    ],
)
def test_noiseless_functions_score_one(x: np.ndarray, name: str, f) -> None:
    # the implementation reaches exactly 1.0 on all of these at n=1000
    assert mic(x, f(x)) >= 0.99, name


@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_independent_variables_score_low(dist: str) -> None:
    # measured: about 0.12-0.15 at n=1000 (the finite-sample bias of MIC)
    rng = np.random.default_rng(1)
    draw = rng.uniform if dist == "uniform" else rng.normal
    for _ in range(3):
        assert mic(draw(size=N), draw(size=N)) <= 0.2


def test_decreases_with_noise(x: np.ndarray) -> None:
    # measured: 1.0, 0.985, 0.73-0.77, 0.26, 0.13
    rng = np.random.default_rng(2)
    e = rng.normal(size=N)
    vals = [mic(x, x + s * e) for s in (0.0, 0.1, 0.3, 1.0, 3.0)]
    assert vals[0] == pytest.approx(1.0)
    assert all(b <= a + 1e-9 for a, b in zip(vals, vals[1:])), vals
    assert vals[-1] < 0.3


def test_symmetric(x: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    y = np.sin(3 * x) + 0.5 * rng.normal(size=N)
    assert mic(x, y) == pytest.approx(mic(y, x), abs=1e-12)


def test_invariant_to_monotone_transforms(x: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    y = x**2 + 0.2 * rng.normal(size=N)
    base = mic(x, y)
    assert 0.3 < base < 0.95
    # strictly increasing: identical ranks, identical value
    assert mic(np.exp(2 * x), y) == pytest.approx(base, abs=1e-12)
    assert mic(x**3, np.arctan(y)) == pytest.approx(base, abs=1e-12)
    # decreasing: mirrored ranks, equal-mass bins may shift by one point
    assert mic(-np.exp(x), y) == pytest.approx(base, abs=0.02)


def test_range_and_type(x: np.ndarray) -> None:
    v = mic(x, np.cos(x))
    assert isinstance(v, float) and 0.0 <= v <= 1.0
    assert mic(x, np.cos(x), alpha=np.float32(0.6), c=np.int64(15)) == pytest.approx(v)


def test_step_function_scores_normalised_entropy() -> None:
    # y = 1[x > 0.3] takes two values, so every grid has at most 2 non-empty rows and the best
    # one separates them: MIC = I/log(2) = H(Y)/log(2), below 1 when the classes are unbalanced
    # (MIC -> 1 only for functions not constant on an interval).
    rng = np.random.default_rng(5)
    xv = rng.normal(size=400)
    yv = (xv > 0.3).astype(float)
    p = yv.mean()
    h = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert mic(xv, yv) == pytest.approx(h / np.log(2), abs=1e-12)
    # balanced split: 1
    assert mic(xv, (xv > np.median(xv)).astype(float)) == pytest.approx(1.0)
    # an independent coin scores like independent continuous data at n=400 (measured ~0.15-0.19)
    assert mic(xv, rng.integers(0, 2, 400).astype(float)) < 0.25


def test_constant_input_returns_zero() -> None:
    xv = np.arange(10.0)
    assert mic(xv, np.full(10, 3.0)) == 0.0
    assert mic(np.ones(10), xv) == 0.0


@pytest.mark.parametrize(
    "xv, yv, kw, match",
    [
        (np.arange(5.0), np.arange(6.0), {}, r"differ in length: 5 != 6"),
        (np.arange(3.0), np.arange(3.0), {}, r"at least 4 samples, got n=3"),
        (np.array([0, 1, np.nan, 3.0]), np.arange(4.0), {}, r"x contains NaN"),
        (np.arange(4.0), np.array([0, 1, np.inf, 3.0]), {}, r"y contains NaN or infinite"),
        (np.ones((4, 2)), np.ones((4, 2)), {}, r"one-dimensional, got shape \(4, 2\)"),
        (np.arange(8.0), np.arange(8.0), {"alpha": 0.0}, r"alpha must be in \(0, 1\], got 0.0"),
        (np.arange(8.0), np.arange(8.0), {"c": 0}, r"c must be a positive integer, got 0"),
    ],
)
def test_bad_input_raises(xv, yv, kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        mic(xv, yv, **kw)


# --------------------------------------------------------------- dynamic program vs brute force
def _brute_best_mi(xv: np.ndarray, q: np.ndarray, max_cols: int) -> np.ndarray:
    """Exhaustive best I(P; Q) over column partitions of sorted x (cuts between distinct x)."""
    n = len(xv)
    order = np.argsort(xv, kind="stable")
    xs, qs = xv[order], q[order]
    gaps = [i for i in range(1, n) if xs[i] != xs[i - 1]]
    rows = np.unique(q)
    p_q = np.array([(q == r).mean() for r in rows])
    h_q = -xlogy(p_q, p_q).sum()
    best = np.full(max_cols + 1, -np.inf)
    for cols in range(2, max_cols + 1):
        for cuts in itertools.combinations(gaps, cols - 1):
            b = (0, *cuts, n)
            h_q_p = 0.0
            for a, e in zip(b[:-1], b[1:]):
                cnt = np.array([(qs[a:e] == r).sum() for r in rows], dtype=float)
                h_q_p -= (xlogy(cnt, cnt).sum() - xlogy(cnt.sum(), cnt.sum())) / n
            best[cols] = max(best[cols], h_q - h_q_p)
    best[2:] = np.maximum.accumulate(best[2:])  # at most ``cols`` columns
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_rows", [2, 3])
def test_dynamic_program_is_exact_without_superclumps(seed: int, n_rows: int) -> None:
    rng = np.random.default_rng(seed)
    n, max_cols = 11, 4
    xv = rng.normal(size=n)
    if seed % 2:  # ties in x, including ties across rows
        xv = np.round(xv * 2) / 2
    yv = xv + rng.normal(size=n)
    q = _rows(_Axis(yv), n_rows, n)
    xlogx = xlogy(np.arange(n + 1.0), np.arange(n + 1.0))
    got = _best_mi_by_columns(q, n_rows, _Axis(xv), max_cols, 1000, xlogx)
    want = _brute_best_mi(xv, q, max_cols)
    np.testing.assert_allclose(got[2:], want[2:], atol=1e-12)
