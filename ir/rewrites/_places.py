"""Where rewrites may act: sign analysis, block ends, blocks, reachability and dead code.

Paper 001 §3.2.1 inserts blocks only between blocks, after max-pooling or after a merge; a
new block ends in ReLU, which is the identity only on non-negative inputs (morphism type
III), so every insertion point must be provably non-negative. ``nonnegative`` is that proof,
read off each op's ``traits.sign``. Which ops end or start a block are op traits as well
(``ends_block``, ``ends_vector_block``, ``starts_block``, ``activation``: ``ir/traits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.weights import Weights


def _mixes_in_unit_interval(graph: Graph, nid: NodeId, weights: Weights | None) -> bool:
    """Does a convex / weighted sum keep non-negative inputs non-negative (coefficient in [0, 1])?"""
    op = graph.op(nid)
    if graph.kind(nid) == "weighted_sum":
        coefficient = op.alpha  # type: ignore[attr-defined]
    elif weights is not None and nid in weights and "lam" in weights[nid]:
        coefficient = float(weights[nid]["lam"])
    else:
        coefficient = op.init  # type: ignore[attr-defined]
    return 0.0 <= coefficient <= 1.0


def nonnegative(graph: Graph, weights: Weights | None = None) -> set[NodeId]:
    """Nodes whose output is provably >= 0 elementwise."""
    found: set[NodeId] = set()
    for nid in graph.order():
        sign = graph.op(nid).traits.sign
        inputs_ok = all(i in found for i in graph.inputs(nid))
        if (
            sign == "nonnegative"
            or (sign == "keeps" and inputs_ok)
            or (sign == "unit_mix" and inputs_ok and _mixes_in_unit_interval(graph, nid, weights))
        ):
            found.add(nid)
    return found


def ends_block(graph: Graph, nid: NodeId) -> bool:
    """Is ``nid`` the end of a block or a merge (``ends_vector_block`` for vector values)?"""
    traits = graph.op(nid).traits
    return traits.ends_block if len(graph.shape(nid)) == 3 else traits.ends_vector_block


def is_output(graph: Graph, nid: NodeId) -> bool:
    """The main output or an auxiliary one: values the outside world sees."""
    return (
        nid == graph.output_node()
        or graph.kind(nid) == "aux"
        or any(graph.kind(u) == "aux" for u in graph.user_ids(nid))
    )


class Reach:
    """Every node's ancestors as a bit mask, so "does a come before b" costs O(1).

    Pair rewrites (skips, merges) ask it for every pair of places; walking the graph per pair
    would make their candidate lists quadratic in time on top of quadratic in size.
    """

    def __init__(self, graph: Graph) -> None:
        order = graph.order()
        self.index = {n: i for i, n in enumerate(order)}
        self.bits: dict[NodeId, int] = {}
        for n in order:
            mask = 0
            for i in graph.inputs(n):
                mask |= self.bits[i] | (1 << self.index[i])
            self.bits[n] = mask

    def before(self, a: NodeId, b: NodeId) -> bool:
        """Is ``a`` an ancestor of ``b``?"""
        return bool(self.bits[b] >> self.index[a] & 1)


def only_user(graph: Graph, nid: NodeId) -> NodeId | None:
    """The single consumer of ``nid`` when it has exactly one use, else None."""
    uses = graph.users(nid)
    return uses[0][0] if len(uses) == 1 else None


@dataclass(frozen=True)
class Block:
    """A chain ``layer [bn] activation`` whose inner values are used by nothing else."""

    layer: NodeId
    bn: NodeId | None
    act: NodeId

    @property
    def nodes(self) -> tuple[NodeId, ...]:
        return (self.layer, self.act) if self.bn is None else (self.layer, self.bn, self.act)


def block_at(graph: Graph, layer: NodeId, *, homogeneous: bool = False) -> Block | None:
    """The block starting at ``layer`` (a conv, sep_conv or linear), or None.

    With ``homogeneous`` the activation must be positively homogeneous (relu), as split needs.
    """
    if not graph.op(layer).traits.starts_block:
        return None
    nxt = only_user(graph, layer)
    if nxt is None or is_output(graph, layer):
        return None
    bn = None
    if graph.kind(nxt) == "bn":
        bn, nxt = nxt, only_user(graph, nxt)
        if nxt is None or is_output(graph, bn):
            return None
    act = graph.op(nxt).traits
    if not act.activation or (homogeneous and not act.homogeneous):
        return None
    return Block(layer, bn, nxt)


def remove_dead(graph: Graph, output: NodeId) -> list[NodeId]:
    """Delete nodes that no longer reach any output (after an edge was cut); return their ids."""
    removed: list[NodeId] = []
    changed = True
    while changed:
        changed = False
        for nid in reversed(graph.order()):
            if nid == output or graph.kind(nid) in ("aux", "input") or graph.users(nid):
                continue
            graph.remove(nid)
            removed.append(nid)
            changed = True
    return removed


def parameterised(graph: Graph, nid: NodeId) -> bool:
    return bool(graph.op(nid).param_shapes([graph.shape(i) for i in graph.inputs(nid)]))


def layer_neighbours(graph: Graph, nodes: set[NodeId]) -> set[NodeId]:
    """The nearest parameterised nodes before and after ``nodes`` (paper 002 §3.2's affected layers).

    Batch norms are looked through (a conv's batch norm is repaired with it).
    """
    found: set[NodeId] = set()

    def walk(start: list[NodeId], step: str) -> None:
        stack, seen = list(start), set()
        while stack:
            n = stack.pop()
            if n in seen or n in nodes:
                continue
            seen.add(n)
            if parameterised(graph, n):
                found.add(n)
                if graph.kind(n) != "bn":
                    continue
            stack.extend(graph.inputs(n) if step == "up" else graph.user_ids(n))

    for nid in nodes:
        if nid in graph:
            walk(graph.inputs(nid), "up")
            walk(graph.user_ids(nid), "down")
    return found
