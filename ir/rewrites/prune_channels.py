"""prune-channels: remove 1/2 or 1/4 of a conv's filters, least important first (approximate).

Paper 002 §3.2 / §5.2: a randomly chosen convolution loses a fraction of its filters. The
filters with the smallest L1 norm go (a standard, data-free importance); an explicit list
may be given instead. Everything reading or merged with those channels follows
(``_channels``), and the changed layers are listed for repair training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId

from ._base import Outcome, Rewrite, Work, describe, memo_refusal, require, require_node
from ._channels import kept, layout_of, output_width, plan, realise, role

FRACTIONS = (0.5, 0.25)


@dataclass(frozen=True)
class Move:
    node: NodeId
    """A conv or sep_conv layer."""
    fraction: float = 0.5
    remove: tuple[int, ...] | None = None
    """Exactly these filters (overrides ``fraction`` and the L1 ranking)."""


def to_remove(width: int, fraction: float) -> int:
    return int(round(width * fraction))


def filter_norms(graph: Graph, arrays: dict[str, np.ndarray], nid: NodeId) -> np.ndarray:
    """L1 norm of each output unit's incoming weights (its filter, or its row)."""
    for name, places in layout_of(graph, nid).items():
        if ("out", 0, "init") in places and name in arrays and arrays[name].ndim > 1:
            array = arrays[name]
            return np.abs(array.reshape(array.shape[0], -1)).sum(axis=1)
    raise AssertionError(f"n{nid} has no incoming weights to rank")


def check_prunable(graph: Graph, node: NodeId, image: bool | None) -> int:
    """The width of layer ``node`` if units can be pruned from it (``image``: must be a conv / a vector).

    Memoised per graph: a search asks it of every node of the same network many times."""
    return memo_refusal(graph, ("prunable", node, image), lambda: _check_prunable(graph, node, image))


def _check_prunable(graph: Graph, node: NodeId, image: bool | None) -> int:
    require_node(graph, node)
    what = {True: "conv or sep_conv", False: "linear", None: "conv, sep_conv or linear"}[image]
    require(
        role(graph, node) == "layer" and (image is None or (len(graph.shape(node)) == 3) == image),
        f"{describe(graph, node)} is not a {what} layer",
    )
    width = output_width(graph, node)
    require(width >= 2, f"{describe(graph, node)} has a single unit; nothing can be pruned")
    plan(graph, node, kept(width, [0]))
    return width


def _moves(graph: Graph, node: NodeId, context: None = None) -> list[Move]:
    width = check_prunable(graph, node, image=True)
    return [Move(node, f) for f in FRACTIONS if 1 <= to_remove(width, f) < width]


def prune(work: Work, node: NodeId, remove: list[int]) -> tuple[int, set[NodeId]]:
    """Remove output units ``remove`` of ``node``; return the old width and the affected nodes."""
    g = work.graph
    width = output_width(g, node)
    require(
        all(0 <= u < width for u in remove) and len(set(remove)) == len(remove),
        f"units to remove must be distinct and in 0..{width - 1}",
    )
    require(len(remove) < width, f"pruning all {width} units of {describe(g, node)} would leave none")
    change = plan(g, node, kept(width, remove))
    realise(work, change)
    return width, change.affected()


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    width = check_prunable(g, move.node, image=True)
    how = "as listed"
    if move.remove is not None:
        remove = sorted(move.remove)
    else:
        how = "smallest L1 norm first"
        count = to_remove(width, move.fraction)
        require(1 <= count < width, f"a fraction of {move.fraction} of {width} filters removes none or all")
        norms = filter_norms(g, work.arrays(move.node), move.node)
        remove = sorted(np.argsort(norms, kind="stable")[:count].tolist())
    _, affected = prune(work, move.node, remove)
    return Outcome(
        Move(move.node, move.fraction, tuple(remove)),
        f"pruned {len(remove)} of {width} filters of {describe(g, move.node)} ({how}): {remove}",
        repair=tuple(sorted(affected)),
    )


REWRITE = Rewrite("prune-channels", False, Move, _moves, edit)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at
