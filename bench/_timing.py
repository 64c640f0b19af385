"""Interleaved timing shared by the benchmarks: alternate the contenders, report medians.

Timing A then B in separate blocks lets a noisy machine (other processes, CPU frequency,
allocator warm-up) favour one of them; alternating A B / B A each round spreads that noise
over both, and the median of the per-round ratios ignores the odd stalled round.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    """Per-round seconds of two contenders and the median of their ratios."""

    name_a: str
    name_b: str
    times_a: list[float]
    times_b: list[float]

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.times_a, self.times_b, strict=True)]

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def median_a(self) -> float:
        return statistics.median(self.times_a)

    @property
    def median_b(self) -> float:
        return statistics.median(self.times_b)


def seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def interleaved(
    name_a: str,
    call_a: Callable[[], object],
    name_b: str,
    call_b: Callable[[], object],
    *,
    repeats: int,
    warmup: int = 1,
) -> Comparison:
    """Time ``call_a`` and ``call_b`` ``repeats`` times each, alternating which goes first."""
    for _ in range(warmup):
        call_a()
        call_b()
    times_a: list[float] = []
    times_b: list[float] = []
    for round_ in range(repeats):
        if round_ % 2 == 0:
            times_a.append(seconds(call_a))
            times_b.append(seconds(call_b))
        else:
            times_b.append(seconds(call_b))
            times_a.append(seconds(call_a))
    return Comparison(name_a, name_b, times_a, times_b)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain fixed-width text table (the benchmarks print; they need no rich)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(cell).rjust(width) for cell, width in zip(cells, widths, strict=True))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])
