"""remove-block: remove a Conv-BN-ReLU block or a skip connection (approximate, paper 002 §3.2).

- A block ``layer [bn] activation`` (``node`` = its layer) is bypassed: its readers read the
  block's input instead. When the block changed the channel count, the readers' input columns
  are cut or zero-padded to the input's width (``_channels``); spatial size must not change.
- A skip connection (``node`` = a merge, ``port`` = the input to cut): the merge loses that
  input (a two-input merge disappears) and whatever only fed it is removed with it.

The function changes; the nodes next to the cut (paper 002: "the layer to be removed as well
as its immediate predecessor and successor layers") are listed for repair training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.errors import NotApplicable
from genomorph.ir.graph import Graph, NodeId

from ._base import Outcome, Rewrite, Work, describe, require, require_node
from ._channels import Plan, plan, realise
from ._places import Block, block_at, layer_neighbours, remove_dead


@dataclass(frozen=True)
class Move:
    node: NodeId
    """The layer starting a block, or a merge whose input ``port`` is a skip to cut."""
    port: int | None = None


def _bypass_plan(graph: Graph, layer: NodeId) -> tuple[NodeId, Block, Plan]:
    block = block_at(graph, layer)
    require(
        block is not None,
        f"remove-block needs a layer [bn] activation block starting at {describe(graph, layer)} "
        "whose inner values nothing else reads",
    )
    assert block is not None
    shapes = graph.shapes()
    source = graph.inputs(layer)[0]
    require(
        shapes[source][1:] == shapes[block.act][1:],
        f"the block at {describe(graph, layer)} changes the spatial size "
        f"({shapes[source]} -> {shapes[block.act]}); removing it would change every later shape",
    )
    src = np.arange(shapes[source][0])
    src[src >= shapes[block.act][0]] = -1
    return source, block, plan(graph, block.act, src, virtual=True)


def _cut_plan(graph: Graph, merge: NodeId, port: int) -> Plan | None:
    inputs = graph.inputs(merge)
    require(0 <= port < len(inputs), f"{describe(graph, merge)} has no input port {port}")
    shapes = graph.shapes()
    kept = [i for p, i in enumerate(inputs) if p != port]
    if len(shapes[merge]) == 3:
        size = min(shapes[i][1:] for i in kept)
        require(
            size == shapes[merge][1:],
            f"cutting input {port} of {describe(graph, merge)} would change its spatial size",
        )
    if graph.kind(merge) != "concat":
        return None
    offsets = np.cumsum([0] + [shapes[i][0] for i in inputs])
    src = np.concatenate([np.arange(offsets[p], offsets[p + 1]) for p in range(len(inputs)) if p != port])
    return plan(graph, merge, src, virtual=True)


def _moves(graph: Graph, node: NodeId, context: None = None) -> list[Move]:
    require_node(graph, node)
    traits = graph.op(node).traits
    if traits.starts_block:
        _bypass_plan(graph, node)
        return [Move(node)]
    require(
        traits.joins_branches,
        f"remove-block removes a block (give its conv/linear layer) or a skip (give its merge); "
        f"{describe(graph, node)} is neither",
    )
    moves = []
    for port in range(len(graph.inputs(node))):
        try:
            _cut_plan(graph, node, port)
        except NotApplicable:
            continue
        moves.append(Move(node, port))
    require(bool(moves), f"no input of {describe(graph, node)} can be cut without changing its shape")
    return moves


def _remove_block(work: Work, move: Move) -> Outcome:
    g = work.graph
    source, block, change = _bypass_plan(g, move.node)
    near = layer_neighbours(g, set(block.nodes))
    before, after = g.shape(block.act)[0], g.shape(source)[0]
    g.replace_uses(block.act, source)
    for nid in reversed(block.nodes):
        g.remove(nid)
    realise(work, change)
    widths = f"; its readers' inputs went from {before} to {after} channels" if before != after else ""
    return Outcome(
        move,
        f"removed the block {', '.join(f'n{n}' for n in block.nodes)}; its readers now read "
        f"{describe(g, source)}{widths}",
        repair=tuple(sorted(near | change.affected())),
    )


def _cut_skip(work: Work, move: Move) -> Outcome:
    g = work.graph
    assert move.port is not None
    change = _cut_plan(g, move.node, move.port)
    inputs = g.inputs(move.node)
    cut = inputs[move.port]
    kept = [i for p, i in enumerate(inputs) if p != move.port]
    near = layer_neighbours(g, {move.node})
    output = g.output_node()
    what = describe(g, move.node)
    if len(kept) == 1 or g.op(move.node).arity[1] == 2:  # a two-input merge disappears
        g.replace_uses(move.node, kept[0])
        g.remove(move.node)
        output = kept[0] if output == move.node else output
    else:
        g.set_inputs(move.node, kept)
    dropped = remove_dead(g, output)
    if change is not None:
        realise(work, change)
    gone = f" and the {len(dropped)} node(s) that only fed it" if dropped else ""
    return Outcome(
        move,
        f"cut the skip n{cut} -> {what} (input {move.port}){gone}",
        repair=tuple(sorted(near | (change.affected() if change else set()))),
    )


def edit(work: Work, move: Move) -> Outcome:
    allowed = _moves(work.graph, move.node)
    require(move in allowed, f"remove-block cannot act as asked at {describe(work.graph, move.node)}")
    return _remove_block(work, move) if move.port is None else _cut_skip(work, move)


REWRITE = Rewrite("remove-block", False, Move, _moves, edit)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at
