"""skip-add: an additive skip connection from an earlier value onto a later one.

Morphism type IV of paper 002: the value ``b`` (``node``) is replaced, for all its readers,
by a merge with an earlier value ``a`` (``source``) that contributes nothing yet:

- ``mode="convex"``: ``lam * b + (1 - lam) * a`` with a learnable ``lam = 1`` (shapes equal);
- ``mode="branch"``: ``b + P(a)`` where ``P`` is a zero-initialised projection (a 1x1 conv,
  strided when ``a`` is 2 or 4 times larger, or a linear layer for vectors), so shapes may
  differ and the skip is learned from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Add, Conv, Convex, Linear, Shape
from genomorph.ir.weights import Weights

from ._base import Outcome, Rewrite, Work, describe, op_text, require, require_node
from ._init import FLOAT
from ._places import Reach, ends_block, is_output

FACTORS = (1, 2, 4)


@dataclass(frozen=True)
class Move:
    node: NodeId
    """b: the value the skip lands on (its readers get the merge)."""
    source: NodeId
    """a: an earlier value the skip starts from."""
    mode: Literal["convex", "branch"] = "convex"


def stride_between(big: Shape, small: Shape) -> int | None:
    """The factor f in {1, 2, 4} with big = f * small spatially (images), 1 for vectors, else None."""
    if len(big) != len(small):
        return None
    if len(big) == 1:
        return 1
    for f in FACTORS:
        if big[1:] == (small[1] * f, small[2] * f):
            return f
    return None


def end_points(graph: Graph, nid: NodeId) -> bool:
    """Values a skip may start from or land on: block ends (vector ends for MLPs), not outputs."""
    return not is_output(graph, nid) and ends_block(graph, nid)


def starts(graph: Graph) -> list[NodeId]:
    """Values a skip may start from: the input and every block end, in topological order."""
    return [a for a in graph.order() if graph.kind(a) == "input" or end_points(graph, a)]


def sources(graph: Graph, node: NodeId, reach: Reach, begins: list[NodeId]) -> list[NodeId]:
    """Earlier values (of ``begins``) a skip onto ``node`` may start from, not its direct inputs."""
    direct = set(graph.inputs(node))
    return [a for a in begins if reach.before(a, node) and a not in direct]


def skip_context(graph: Graph, weights: Weights | None = None) -> tuple[Reach, list[NodeId]]:
    """What every place of a skip rewrite needs: reachability and the values a skip may start from."""
    return Reach(graph), starts(graph)


def landing_sources(graph: Graph, node: NodeId, context: tuple[Reach, list[NodeId]]) -> list[NodeId]:
    """The values a skip onto ``node`` may start from, after checking that one may land there."""
    require_node(graph, node)
    require(
        end_points(graph, node),
        f"a skip lands after a block, pooling or merge that is not an output; {describe(graph, node)} is not one",
    )
    return sources(graph, node, *context)


def _moves(graph: Graph, node: NodeId, context: tuple[Reach, list[NodeId]]) -> list[Move]:
    target = graph.shape(node)
    moves = []
    for a in landing_sources(graph, node, context):
        shape = graph.shape(a)
        if shape == target:
            moves.append(Move(node, a, "convex"))
        elif stride_between(shape, target) is not None:
            moves.append(Move(node, a, "branch"))
    require(bool(moves), f"no earlier value fits a skip onto {describe(graph, node)}")
    return moves


def projection(graph: Graph, source: NodeId, target: Shape) -> tuple[Conv | Linear, dict[str, np.ndarray]]:
    """A zero-initialised layer mapping ``source``'s shape onto ``target``'s."""
    shape = graph.shape(source)
    stride = stride_between(shape, target)
    require(stride is not None, f"{describe(graph, source)} cannot be projected onto shape {target}")
    if len(target) == 1:
        op: Conv | Linear = Linear(features=target[0], bias=False)
        return op, {"weight": np.zeros((target[0], shape[0]), dtype=FLOAT)}
    op = Conv(channels=target[0], kernel=1, stride=stride or 1, bias=False)
    return op, {"weight": np.zeros((target[0], shape[0], 1, 1), dtype=FLOAT)}


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    require_node(g, move.source)
    allowed = _moves(g, move.node, skip_context(g))
    require(
        any(m.source == move.source for m in allowed),
        f"no skip from {describe(g, move.source)} onto {describe(g, move.node)}",
        hint="the source must be an earlier block end that is not already a direct input",
    )
    target = g.shape(move.node)
    if move.mode == "convex":
        require(
            g.shape(move.source) == target,
            "a convex skip needs equal shapes; use mode=branch for a projected skip",
        )
        merge = g.add(Convex(init=1.0), [move.node, move.source])
        work.put(merge, {"lam": np.asarray(1.0, dtype=FLOAT)})
        what = "convex(lam=1)"
    else:
        require(move.mode == "branch", f"skip-add mode must be 'convex' or 'branch', not {move.mode!r}")
        op, arrays = projection(g, move.source, target)
        proj = g.add(op, [move.source])
        work.put(proj, arrays)
        merge = g.add(Add(), [move.node, proj])
        what = f"add with zero-initialised {op_text(op)}"
    g.replace_uses(move.node, merge, keep=[merge])
    return Outcome(move, f"skip from {describe(g, move.source)} onto {describe(g, move.node)} by {what}")


REWRITE = Rewrite("skip-add", True, Move, _moves, edit, context=skip_context)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at
