"""widen: multiply the channels of a conv (or the units of a linear layer) by a factor.

Paper 001 §3.2.2 / morphism type II of paper 002: new channels get fresh incoming weights
and *zero* outgoing weights, so readers ignore them. Everything that must follow the new
width follows (batch norms, pooling, adds and the other layers feeding them, concats,
flatten): see ``_channels``. The Net2Net variant (``mode="net2net"``) instead copies
randomly chosen existing channels and divides their outgoing weights by the number of
copies; ``noise`` (off by default) breaks the copies' symmetry and the exactness with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from genomorph.ir.graph import Graph, NodeId

from ._base import Outcome, Rewrite, Work, describe, require, require_node
from ._channels import output_width, plan, realise, role, widened

MAX_WIDTH = 1024
"""Paper 001 caps the channels of a layer; this is the cap."""


@dataclass(frozen=True)
class Move:
    node: NodeId
    """The conv, sep_conv or linear layer to widen."""
    factor: float = 1.5
    """New width = round(width * factor) (paper 002 §5.1 uses 1.5)."""
    mode: Literal["zero", "net2net"] = "zero"
    noise: float = 0.0
    """Net2Net only: std of the noise added to copied incoming weights, relative to the tensor's."""
    width: int | None = None
    """Exact new width; overrides ``factor``."""


def new_width(width: int, factor: float) -> int:
    return max(width + 1, int(round(width * factor)))


def _moves(graph: Graph, node: NodeId, context: None = None) -> list[Move]:
    require_node(graph, node)
    require(
        role(graph, node) == "layer",
        f"widen resizes a conv (without groups), sep_conv or linear layer; {describe(graph, node)} is not one",
    )
    width = output_width(graph, node)
    require(
        width < MAX_WIDTH, f"{describe(graph, node)} already has {width} channels (the cap is {MAX_WIDTH})"
    )
    plan(graph, node, widened(width, 1))
    return [Move(node)]


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    _moves(g, move.node)
    require(move.mode in ("zero", "net2net"), f"widen mode must be 'zero' or 'net2net', not {move.mode!r}")
    require(
        move.noise >= 0 and (move.noise == 0 or move.mode == "net2net"), "noise applies to net2net mode only"
    )
    width = output_width(g, move.node)
    target = move.width if move.width is not None else new_width(width, move.factor)
    require(
        target > width, f"widen must add channels: {describe(g, move.node)} has {width}, asked for {target}"
    )
    require(target <= MAX_WIDTH, f"widen would exceed the cap of {MAX_WIDTH} channels")
    extra = target - width
    if move.mode == "zero":
        src = widened(width, extra)
    else:
        src = np.concatenate([np.arange(width), work.rng.integers(0, width, size=extra)])
    change = plan(g, move.node, src)
    realise(work, change, noise=move.noise)
    others = sorted(change.layers - {move.node})
    along = f"; also resized {', '.join(f'n{n}' for n in others)}" if others else ""
    how = "zero outgoing weights" if move.mode == "zero" else "Net2Net copies"
    text = f"widened {describe(g, move.node)} from {width} to {target} ({how}){along}"
    resolved = Move(move.node, move.factor, move.mode, move.noise, target)
    return Outcome(resolved, text, exact=move.noise == 0)


REWRITE = Rewrite("widen", True, Move, _moves, edit)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at
