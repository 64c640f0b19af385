"""add-neurons: add P units to a hidden layer, random incoming, zero outgoing weights.

Paper 000's growth phase: new neurons — a linear layer's units or a conv's channels — are
added with random incoming weights (torch's default initialisation) and zero outgoing
weights, so the function is unchanged and the new units learn from the next gradient step.
Unlike widen it adds a count, not a factor. The propagation is widen's (``_channels``).
"""

from __future__ import annotations

from dataclasses import dataclass

from genomorph.ir.graph import Graph, NodeId

from ._base import Outcome, Rewrite, Work, describe, require, require_node
from ._channels import output_width, plan, realise, role, widened


@dataclass(frozen=True)
class Move:
    node: NodeId
    """A layer whose units are read by another layer (a hidden layer)."""
    units: int | None = None
    """P, the units to add; None: a quarter of the layer's width, at least one."""


def default_units(width: int) -> int:
    return max(1, width // 4)


def _moves(graph: Graph, node: NodeId, context: None = None) -> list[Move]:
    require_node(graph, node)
    require(
        role(graph, node) == "layer",
        f"add-neurons grows a hidden layer (linear, conv without groups, sep_conv); {describe(graph, node)} is not one",
    )
    plan(graph, node, widened(output_width(graph, node), 1))
    return [Move(node)]


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    _moves(g, move.node)
    width = output_width(g, move.node)
    units = move.units if move.units is not None else default_units(width)
    require(units >= 1, f"add-neurons needs at least one unit to add, not {units}")
    change = plan(g, move.node, widened(width, units))
    realise(work, change)
    others = sorted(change.layers - {move.node})
    along = f" (and to {', '.join(f'n{n}' for n in others)}, which share its units)" if others else ""
    return Outcome(
        Move(move.node, units),
        f"added {units} unit(s) to {describe(g, move.node)}{along}: {width} -> {width + units}, "
        "zero outgoing weights",
    )


REWRITE = Rewrite("add-neurons", True, Move, _moves, edit)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at
