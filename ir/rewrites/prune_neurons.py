"""prune-neurons: remove the least important units of a hidden layer (approximate, paper 000).

Units are a linear layer's outputs or a convolution's channels (paper 000 grows and prunes
both; its CIFAR experiments change the width of ResNet blocks).

Paper 000 scores each unit by ``I = A * (1 - B**33)``, where ``A = sum |sigma * d sigma|`` over
the data and ``B`` is the fraction of inputs on which the unit fires (``search.importance``
measures both). Scores are given in the move; without them the incoming-weight L1 norm ranks
the units. ``select`` does paper 000's *global* pruning: the M least important units over all
layers, keeping at least one unit per layer. ``fade`` scales the outgoing weights of units
about to go, for the "decay before removal" schedule, so the final cut changes little.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.weights import Weights

from ._base import Outcome, Rewrite, Work, describe, require
from ._channels import identity_map, output_width, plan, scale_outgoing
from ._init import fill_missing
from .prune_channels import check_prunable, filter_norms, prune

SPARSITY_POWER = 33
"""The exponent of B in paper 000's score: always-firing units count as nearly linear."""


@dataclass(frozen=True)
class Move:
    node: NodeId
    """A hidden layer: its units are a linear layer's outputs or a conv's channels."""
    count: int | None = None
    """How many units to remove; None: a quarter of the layer, at least one."""
    scores: tuple[float, ...] | None = None
    """Per-unit importance (lowest go first); None ranks by incoming-weight L1 norm."""
    remove: tuple[int, ...] | None = None
    """Exactly these units (overrides ``count`` and ``scores``)."""


def importance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Paper 000's I = A * (1 - B^33) from per-unit A (saliency) and B (firing fraction)."""
    return np.asarray(a, dtype=np.float64) * (1.0 - np.asarray(b, dtype=np.float64) ** SPARSITY_POWER)


def default_count(width: int) -> int:
    return min(width - 1, max(1, width // 4))


def _moves(graph: Graph, node: NodeId, context: None = None) -> list[Move]:
    check_prunable(graph, node, image=None)
    return [Move(node)]


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    width = check_prunable(g, move.node, image=None)
    if move.remove is not None:
        remove, how = sorted(move.remove), "as listed"
    else:
        count = move.count if move.count is not None else default_count(width)
        require(1 <= count < width, f"cannot remove {count} of the {width} units of {describe(g, move.node)}")
        if move.scores is not None:
            require(
                len(move.scores) == width,
                f"{len(move.scores)} scores given for the {width} units of {describe(g, move.node)}",
            )
            ranking, how = np.asarray(move.scores, dtype=np.float64), "lowest importance first"
        else:
            ranking, how = filter_norms(g, work.arrays(move.node), move.node), "smallest L1 norm first"
        remove = sorted(np.argsort(ranking, kind="stable")[:count].tolist())
    _, affected = prune(work, move.node, remove)
    return Outcome(
        Move(move.node, len(remove), None, tuple(remove)),
        f"pruned {len(remove)} of {width} units of {describe(g, move.node)} ({how}): {remove}",
        repair=tuple(sorted(affected)),
    )


def select(
    graph: Graph,
    stats: Mapping[NodeId, tuple[np.ndarray, np.ndarray]],
    total: int,
    *,
    keep: int = 1,
) -> list[Move]:
    """Paper 000's global pruning: the ``total`` least important units over all scored layers.

    ``stats[layer] = (A, B)`` per unit. Each layer keeps at least ``keep`` units, so a layer
    that falls to one unit is left for hres-shrink to remove as a whole. Layers whose units
    are tied to an earlier scored layer (they feed the same add) are pruned through it.
    """
    ranked: list[tuple[float, NodeId, int]] = []
    scores: dict[NodeId, np.ndarray] = {}
    shared: set[NodeId] = set()
    for nid, (a, b) in sorted(stats.items()):
        width = output_width(graph, nid)
        score = importance(a, b)
        require(score.shape == (width,), f"statistics for n{nid} have {score.shape[0]} units, it has {width}")
        check_prunable(graph, nid, image=None)
        if nid in shared:  # its units are those of an earlier layer (both feed one add): pruned with it
            continue
        shared |= plan(graph, nid, identity_map(width)).layers
        scores[nid] = score
        ranked.extend((float(s), nid, u) for u, s in enumerate(score))
    chosen: dict[NodeId, list[int]] = {}
    for _, nid, unit in sorted(ranked):
        if sum(len(v) for v in chosen.values()) >= total:
            break
        if output_width(graph, nid) - len(chosen.get(nid, [])) > keep:
            chosen.setdefault(nid, []).append(unit)
    return [
        Move(nid, len(units), tuple(float(s) for s in scores[nid]), tuple(sorted(units)))
        for nid, units in sorted(chosen.items())
    ]


def fade(
    graph: Graph,
    weights: Weights | None,
    node: NodeId,
    units: Iterable[int],
    factor: float,
    rng: np.random.Generator | None = None,
) -> Weights:
    """New weights in which the outgoing weights of ``units`` of ``node`` are multiplied by ``factor``.

    Paper 000 decays the outgoing connections of the units it will prune while the rest of
    the network fine-tunes, so their removal is gradual. Pure: ``weights`` is not modified.
    """
    check_prunable(graph, node, image=None)
    generator = rng if rng is not None else np.random.default_rng(0)
    work = Work(graph, fill_missing(graph, weights, generator), generator)
    change = plan(graph, node, identity_map(output_width(graph, node)))
    scale_outgoing(work, change, units, factor)
    return work.weights


REWRITE = Rewrite("prune-neurons", False, Move, _moves, edit)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at
