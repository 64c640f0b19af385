"""The registry of rewrites, uniform sampling of (rewrite, place), chains and replay.

Each rewrite module registers one ``Rewrite`` (``_base.py``) as its ``REWRITE``; ``REWRITES``
lists them by name. What may change (each rewrite's ``candidates``) is kept apart from who
decides (the sampler here, or a search strategy with its own rng).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from genomorph.ir.errors import NotApplicable
from genomorph.ir.graph import Graph
from genomorph.ir.weights import Weights

from . import (
    add_neurons,
    deepen,
    hres_grow,
    hres_shrink,
    merge_concat,
    merge_convex,
    prune_channels,
    prune_neurons,
    remove_block,
    sepconv,
    skip_add,
    skip_concat,
    split,
    substitute_sepconv,
    widen,
)
from ._base import Record, Rewrite, RewriteResult, draw_seed

_MODULES = (
    deepen, widen, skip_add, skip_concat, merge_convex, merge_concat, split, sepconv, add_neurons, hres_grow,
    remove_block, prune_channels, prune_neurons, substitute_sepconv, hres_shrink,
)  # fmt: skip

RETRIES = 10
"""Draws per chain step before a chain gives up."""

REWRITES: dict[str, Rewrite] = {m.REWRITE.name: m.REWRITE for m in _MODULES}
EXACT: tuple[str, ...] = tuple(name for name, r in REWRITES.items() if r.exact)
APPROXIMATE: tuple[str, ...] = tuple(name for name, r in REWRITES.items() if not r.exact)


def get(name: str) -> Rewrite:
    try:
        return REWRITES[name]
    except KeyError:
        raise NotApplicable(
            f"there is no rewrite called {name!r}", hint=f"rewrites are: {', '.join(REWRITES)}"
        ) from None


def sample(
    graph: Graph,
    rng: np.random.Generator,
    names: Iterable[str] = EXACT,
    weights: Weights | None = None,
    by: Literal["rewrite", "place"] = "rewrite",
) -> tuple[str, Any]:
    """Draw a (rewrite, move) pair.

    ``by="rewrite"`` picks a rewrite uniformly among those that apply somewhere, then a place
    uniformly among its candidates (NASH's operator-then-position sampling); ``by="place"`` is
    uniform over all (rewrite, place) pairs, so rewrites with many places come up more often.
    """
    options = {name: get(name).candidates(graph, weights) for name in names}
    options = {name: moves for name, moves in options.items() if moves}
    if not options:
        raise NotApplicable(f"none of the rewrites {', '.join(names)} applies anywhere in this genome")
    if by == "place":
        pairs = [(name, move) for name, moves in options.items() for move in moves]
        return pairs[int(rng.integers(len(pairs)))]
    name = sorted(options)[int(rng.integers(len(options)))]
    moves = options[name]
    return name, moves[int(rng.integers(len(moves)))]


def random_chain(
    graph: Graph,
    weights: Weights | None,
    steps: int,
    rng: np.random.Generator,
    names: Sequence[str] = EXACT,
    by: Literal["rewrite", "place"] = "rewrite",
) -> list[RewriteResult]:
    """Apply ``steps`` randomly sampled rewrites in a row; one result per step.

    A drawn move that turns out not to apply with these weights (a candidate list is built
    from the graph alone) is redrawn, up to ``RETRIES`` times per step.
    """
    results: list[RewriteResult] = []
    for _ in range(steps):
        for attempt in range(RETRIES):
            name, move = sample(graph, rng, names, weights, by)
            try:
                result = get(name).apply(graph, weights, move, rng)
                break
            except NotApplicable:
                if attempt == RETRIES - 1:
                    raise
        results.append(result)
        graph, weights = result.graph, result.weights
    return results


def replay(
    graph: Graph,
    weights: Weights | None,
    records: Iterable[Record | dict[str, Any]],
    rng: np.random.Generator | None = None,
) -> RewriteResult | None:
    """Re-apply a history of records; returns the last result (None for an empty history).

    Each record carries its resolved move and its seed, so the replay reproduces the graph
    and the weights exactly, whatever happened to the rng that drew the moves. ``rng`` is
    only used for records without a seed.
    """
    result: RewriteResult | None = None
    for item in records:
        record = item if isinstance(item, Record) else Record.model_validate(item)
        rewrite = get(record.rewrite)
        move = rewrite.move(record.move)
        seed = record.seed if record.seed is not None else draw_seed(rng or np.random.default_rng())
        result = rewrite.apply_seeded(graph, weights, move, seed)
        graph, weights = result.graph, result.weights
    return result
