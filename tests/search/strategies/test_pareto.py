"""Front maintenance, KDE inverse-density sampling and hypervolume (torch-free helpers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from genomorph.search.strategies._pareto import (
    cheap_values,
    hypervolume,
    inverse_density_weights,
    kde_density,
    nondominated,
    reference_point,
    sample_indices,
)

SEED = 20261201


def brute_front(points: list[tuple[float, ...]]) -> list[int]:
    def dominates(a, b):  # type: ignore[no-untyped-def]
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    keep = []
    for i, p in enumerate(points):
        if any(dominates(q, p) for q in points) or p in points[:i]:
            continue
        keep.append(i)
    return keep


def test_nondominated_matches_the_definition_on_random_points() -> None:
    rng = np.random.default_rng(SEED)
    for trial in range(20):
        pts = [tuple(float(v) for v in rng.integers(0, 6, size=2 + trial % 2)) for _ in range(30)]
        assert nondominated(pts) == brute_front(pts), f"trial {trial}, seed {SEED}"
    assert nondominated([]) == []


def test_hypervolume_of_a_staircase() -> None:
    # two points (1, 2), (2, 1) under reference (3, 3): 2 + 2 - 1 = 3
    assert hypervolume([(1, 2), (2, 1)], (3, 3)) == pytest.approx(3.0)
    # a point outside the reference box adds nothing; a dominated one adds nothing
    assert hypervolume([(1, 2), (2, 1), (4, 0), (2.5, 2.5)], (3, 3)) == pytest.approx(3.0)
    assert hypervolume([], (1, 1)) == 0.0
    # three objectives: a unit cube corner
    assert hypervolume([(0, 0, 0)], (1, 2, 3)) == pytest.approx(6.0)


def test_hypervolume_never_falls_when_points_are_added() -> None:
    rng = np.random.default_rng(SEED)
    ref = (1.0, 1.0)
    points: list[tuple[float, float]] = []
    last = 0.0
    for _ in range(40):
        points.append(tuple(rng.random(2)))  # type: ignore[arg-type]
        hv = hypervolume(points, ref)
        assert hv >= last - 1e-12
        last = hv


def test_kde_density_is_higher_in_crowded_regions_and_inverse_weights_favour_isolated_points() -> None:
    front = [[1.0], [1.1], [1.2], [1.15], [5.0]]
    density = kde_density(front, front, "scott")
    assert density[-1] < min(density[:-1])
    weights = inverse_density_weights(density)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[-1] == weights.max()
    silverman = kde_density(front, front, "silverman")
    assert silverman.shape == (5,) and np.all(silverman > 0)


def test_kde_falls_back_to_uniform_for_a_degenerate_front() -> None:
    assert list(kde_density([[2.0]], [[2.0], [3.0]])) == [1.0, 1.0]  # one point
    assert list(kde_density([[2.0], [2.0], [2.0]], [[2.0]])) == [1.0]  # no spread
    collinear = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    assert list(kde_density(collinear, collinear)) == [1.0] * 4  # singular covariance


def test_inverse_density_sampling_draws_isolated_parents_more_often() -> None:
    rng = np.random.default_rng(SEED)
    front = [[1.0], [1.05], [1.1], [1.15], [4.0]]
    weights = inverse_density_weights(kde_density(front, front))
    draws = sample_indices(rng, weights, len(front), 5000, replace=True)
    counts = np.bincount(draws, minlength=5)
    assert counts[4] > 2 * counts[:4].max(), counts
    uniform = np.bincount(sample_indices(rng, None, 5, 5000, replace=True), minlength=5)
    assert uniform.min() > 800
    picked = sample_indices(rng, weights, 5, 3, replace=False)
    assert len(set(picked)) == 3
    assert sample_indices(rng, None, 2, 5, replace=False) in ([0, 1], [1, 0])


def test_cheap_values_and_reference_point() -> None:
    assert cheap_values(("params", "macs"), 1000, 10, None) == [math.log(1000), math.log(10)]
    assert math.isnan(cheap_values(("latency",), 1, 1, None)[0])
    ref = reference_point([(0.2, math.log(1e4)), (0.1, math.log(4e5))], ("params",))
    assert ref == pytest.approx([1.0, math.log(4e6)])
    ref = reference_point([(0.2, 3.0), (0.1, 5.0)], ("latency",))
    assert ref == pytest.approx([1.0, 50.0])
