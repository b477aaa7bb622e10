"""Binary–continuous orientation by the two-node likelihood (xcausal.structure.pairwise)."""

from __future__ import annotations

import numpy as np
import pytest

from xcausal.structure.pairwise import DECISIVE_LOG_RATIO, binary_pair_direction

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 1000


def _b_causes_z(seed: int, shift: float):
    r = np.random.default_rng(seed)
    b = (r.random(N) < 0.4).astype(float)
    return b, shift * b + r.normal(size=N)


def _z_causes_b(seed: int, slope: float):
    r = np.random.default_rng(seed)
    z = r.normal(size=N)
    return (r.random(N) < 1 / (1 + np.exp(-slope * z))).astype(float), z


@pytest.mark.parametrize("seed", [0, 1])
def test_strong_binary_cause_is_oriented_b_to_z(seed):
    b, z = _b_causes_z(seed, 4.0)
    direction, uz, zu = binary_pair_direction(b, z)
    assert direction == 1 and zu - uz > 0.05, (uz, zu)


@pytest.mark.parametrize("seed", [0, 1])
def test_strong_binary_effect_is_oriented_z_to_b(seed):
    b, z = _z_causes_b(seed, 6.0)
    direction, uz, zu = binary_pair_direction(b, z)
    assert direction == -1 and uz - zu > 0.02, (uz, zu)


def test_weak_dependence_is_left_undecided():
    b, z = _b_causes_z(0, 0.1)
    direction, uz, zu = binary_pair_direction(b, z)
    assert direction == 0 and abs(uz - zu) < DECISIVE_LOG_RATIO / N


def test_scale_of_z_does_not_matter():
    b, z = _b_causes_z(0, 4.0)
    assert binary_pair_direction(b, z)[0] == binary_pair_direction(b, 1000.0 * z + 7.0)[0] == 1


@pytest.mark.parametrize("b, z, message", [
    (np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]), "0/1"),
    (np.zeros(5), np.arange(5.0), "both values"),
    (np.array([0.0, 1.0, 0.0]), np.ones(3), "constant"),
    (np.array([0.0, 1.0]), np.ones(3), "different lengths"),
])
def test_bad_input(b, z, message):
    with pytest.raises(ValueError, match=message):
        binary_pair_direction(b, z)
