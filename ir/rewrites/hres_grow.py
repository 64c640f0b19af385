"""hres-grow: turn a linear connection into a Hierarchical ResNet layer (paper 000 §2).

``W(x)`` becomes ``f(x) = W(x) + Re(x)`` with ``Re(x) = W2(sigma(W1(x)))``: ``W1`` gets
random incoming weights and ``W2`` starts at zero, so the residual adds nothing until it has
learned something. Applied to a linear layer inside a residual (``W1`` or ``W2`` of an
existing layer), it grows the next level of the hierarchy: ``Re = f2(sigma(f1(x)))`` with
``f1``/``f2`` themselves H-ResNet layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import ACTIVATIONS, OP_CLASSES, Add, Linear

from ._base import Outcome, Rewrite, Work, describe, require, require_node
from ._hres import growth_threshold
from ._init import FLOAT, init_node


@dataclass(frozen=True)
class Move:
    node: NodeId
    """The linear layer W that becomes the linear connection of the new layer."""
    hidden: int | None = None
    """Hidden units of the residual; None: paper 000's M = (I * O^2)^(1/3), rounded."""
    activation: str = "relu"


def default_hidden(features_in: int, features_out: int) -> int:
    return max(1, int(round(growth_threshold(features_in, features_out))))


def _moves(graph: Graph, node: NodeId, context: None = None) -> list[Move]:
    require_node(graph, node)
    require(
        graph.kind(node) == "linear",
        f"hres-grow adds a residual to a linear connection; {describe(graph, node)} is not a linear layer",
    )
    return [Move(node)]


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    _moves(g, move.node)
    require(
        move.activation in ACTIVATIONS,
        f"the residual's activation must be one of {sorted(ACTIVATIONS)}, not {move.activation!r}",
    )
    source = g.inputs(move.node)[0]
    features_in = g.shape(source)[0]
    features_out = g.shape(move.node)[0]
    hidden = move.hidden if move.hidden is not None else default_hidden(features_in, features_out)
    require(hidden >= 1, f"a residual needs at least one hidden unit, not {hidden}")
    first = g.add(Linear(features=hidden), [source])
    act = g.add(OP_CLASSES[move.activation](), [first])
    second = g.add(Linear(features=features_out, bias=False), [act])
    merge = g.add(Add(), [move.node, second])
    g.replace_uses(move.node, merge, keep=[merge])
    work.put(first, init_node(g, first, work.rng))
    work.put(second, {"weight": np.zeros((features_out, hidden), dtype=FLOAT)})
    return Outcome(
        Move(move.node, hidden, move.activation),
        f"grew an H-ResNet layer on {describe(g, move.node)}: n{merge} = n{move.node} + "
        f"linear({hidden}) {move.activation} linear({features_out}, bias=false) (n{first}, n{act}, n{second}), "
        "residual starting at zero",
    )


REWRITE = Rewrite("hres-grow", True, Move, _moves, edit)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at
