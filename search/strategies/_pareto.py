"""Pareto fronts, inverse-density sampling and hypervolume for multi-objective searches (no torch).

Paper 002 §4.2 (Pareto-NASH): the population is the set of non-dominated networks over
``(validation error, cheap objectives)``; a kernel density estimate over the *cheap* objectives
of the front makes sparsely populated regions more likely to be sampled, for parents (eq. 9)
and for the accepted children (eq. 10), both ``p(N) ∝ 1 / p_KDE(f(N))``.

Every objective here is minimised. The KDE is scipy's `gaussian_kde` (bandwidth by Scott's or
Silverman's rule); non-domination and hypervolume come from `moocore`, a maintained C library
of multi-objective indicators, rather than from hand-written loops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

Bandwidth = Literal["scott", "silverman"]


def nondominated(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points (all objectives minimised), in input order.

    Of several identical points only the first is kept, so a front never holds duplicates.
    """
    import moocore

    if len(points) == 0:
        return []
    array = np.asarray(points, dtype=float)
    mask = moocore.is_nondominated(array, keep_weakly=False)
    return [int(i) for i in np.flatnonzero(mask)]


def kde_density(
    data: Sequence[Sequence[float]], query: Sequence[Sequence[float]], bandwidth: Bandwidth = "scott"
) -> np.ndarray:
    """Gaussian KDE fitted on ``data`` (n points × d cheap objectives), evaluated at ``query``.

    A KDE needs more points than dimensions and a non-singular spread; when the front is too
    small or degenerate (e.g. one network, or all of the same size) every density is 1, i.e.
    sampling falls back to uniform, which is what eq. 9 gives for a flat density anyway.
    """
    from scipy.stats import gaussian_kde

    fit = np.asarray(data, dtype=float)
    at = np.asarray(query, dtype=float)
    if at.size == 0:
        return np.zeros(0)
    n, d = fit.shape
    if n <= d or np.allclose(fit, fit[0]):
        return np.ones(len(at))
    try:
        kde = gaussian_kde(fit.T, bw_method=bandwidth)
        density = kde(at.T)
    except np.linalg.LinAlgError:  # collinear points in d > 1: the covariance is singular
        return np.ones(len(at))
    # a point far from the whole front has density ~0: clip so 1/density stays finite
    return np.maximum(density, np.finfo(float).tiny * 1e10)


def inverse_density_weights(density: np.ndarray) -> np.ndarray:
    """Sampling probabilities ``c / p_KDE`` (eqs. 9 and 10), normalised to sum to 1."""
    inverse = 1.0 / np.asarray(density, dtype=float)
    return inverse / inverse.sum()


def sample_indices(
    rng: np.random.Generator, weights: np.ndarray | None, n: int, k: int, replace: bool
) -> list[int]:
    """``k`` indices of ``range(n)`` drawn with probabilities ``weights`` (``None``: uniform)."""
    if n == 0 or k == 0:
        return []
    if not replace:
        k = min(k, n)
    return [int(i) for i in rng.choice(n, size=k, replace=replace, p=weights)]


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Hypervolume dominated by ``points`` and bounded by ``reference`` (all minimised).

    Points not strictly better than the reference in every objective add nothing.
    """
    import moocore

    ref = np.asarray(reference, dtype=float)
    inside = [p for p in points if np.all(np.asarray(p, dtype=float) < ref)]
    if not inside:
        return 0.0
    return float(moocore.hypervolume(np.asarray(inside, dtype=float), ref=ref))


#: cheap objective name (``--objectives``) -> the front objective it becomes
CHEAP_OBJECTIVES: dict[str, str] = {"params": "log_params", "macs": "log_macs", "latency": "latency_ms"}


def cheap_values(objectives: Sequence[str], params: int, macs: int, latency_ms: float | None) -> list[float]:
    """The cheap objective vector of one network: log(params), log(MACs), latency in ms."""
    out: list[float] = []
    for name in objectives:
        if name == "params":
            out.append(math.log(max(params, 1)))
        elif name == "macs":
            out.append(math.log(max(macs, 1)))
        elif name == "latency":
            out.append(float(latency_ms) if latency_ms is not None else math.nan)
        else:  # the config validator refuses other names
            raise ValueError(f"unknown cheap objective {name!r}")
    return out


def reference_point(values: Sequence[Sequence[float]], objectives: Sequence[str]) -> list[float]:
    """A fixed hypervolume reference point from the initial front: error 1 (the worst a
    classifier can do), and for each cheap objective a decade above the largest start network
    (log objectives: + ln 10; latency: × 10). Fixed once, so hypervolumes of different
    generations (and of runs with the same start) compare."""
    array = np.asarray(values, dtype=float)
    ref = [1.0]
    for j, name in enumerate(objectives, start=1):
        worst = float(np.nanmax(array[:, j]))
        ref.append(worst * 10.0 if name == "latency" else worst + math.log(10.0))
    return ref


__all__ = [
    "CHEAP_OBJECTIVES",
    "Bandwidth",
    "cheap_values",
    "hypervolume",
    "inverse_density_weights",
    "kde_density",
    "nondominated",
    "reference_point",
    "sample_indices",
]
