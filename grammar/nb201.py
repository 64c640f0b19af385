"""NAS-Bench-201 interchange: arch strings <-> ``TinyNetwork`` IR.

An arch string lists, node by node, the edges into nodes 1, 2, 3 of a cell (node 0 is the
cell input, the last node its output)::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|

:func:`nb201_to_graph` builds xautodl's ``models/cell_infers/tiny_network.py`` ``TinyNetwork(C,
N, genotype, classes)`` exactly: a 3x3 stem conv (no bias) + BN; three stages of ``N``
inferred cells (``InferCell``: each node sums its edges, the output is the last node) at
``C``, ``2C`` and ``4C`` channels, joined by ``ResNetBasicblock(stride=2)`` (ReLU-conv3x3/2-BN,
ReLU-conv3x3-BN, plus a shortcut of 2x2 average pooling and a 1x1 conv); then BN, ReLU,
global average pooling and a linear classifier (``TinyNetwork.forward`` also returns the
pooled features; the genome's output is the logits).

Edge ops (``OPS`` with ``affine=True``): ``none`` zeros, ``skip_connect`` identity,
``nor_conv_KxK`` ReLU-conv(no bias)-BN, ``avg_pool_3x3`` 3x3 average pooling (padding 1, not
counting it). Value names: ``stem``, cells ``c{i}`` (``i`` = index in ``TinyNetwork.cells``,
the residual blocks between stages are ``res{N}`` and ``res{2N+1}``), cell nodes ``c{i}_n{k}`` with the last
node named ``c{i}``, and ``logits``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NoReturn

from genomorph.ir import GenomeError, GenomeSemanticError, GenomeSyntaxError, Graph, NodeId, OpBase, verify
from genomorph.ir.ops import (
    Add,
    AvgPool,
    BatchNorm,
    Conv,
    GlobalAvgPool,
    Identity,
    Input,
    Linear,
    Relu,
    Zero,
)
from pydantic import BaseModel, ConfigDict

from ._cells import chain, check_image_shape, check_positive, find_cells, strip_identity, text_span

__all__ = ["NB201_OPS", "Nb201Arch", "graph_to_nb201", "nb201_to_graph", "parse_nb201"]

_SOURCE = "<nb201>"
_DIGITS = re.compile(r"[0-9]+")
_FORM = "|op~input|+|op~input|op~input|+|...|, e.g. |nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|"


def _relu_conv_bn(kernel: int, c: int) -> tuple[OpBase, ...]:
    return (Relu(), Conv(channels=c, kernel=kernel, bias=False), BatchNorm())


#: NAS-Bench-201's five operations (xautodl ``NAS_BENCH_201``)
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def edge_ops(name: str, c: int) -> tuple[OpBase, ...]:
    """The op chain of NB201 operation ``name`` on ``c`` channels at stride 1."""
    if name == "none":
        return (Zero(),)
    if name == "skip_connect":
        return (Identity(),)
    if name == "avg_pool_3x3":
        return (AvgPool(kernel=3, stride=1, padding=1, count_include_pad=False),)
    return _relu_conv_bn(int(name[-1]), c)  # nor_conv_1x1 / nor_conv_3x3


Edge = tuple[str, int]


class Nb201Arch(BaseModel):
    """A NAS-Bench-201 cell: ``nodes[k-1]`` lists the edges ``(op, input)`` into node ``k``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: tuple[tuple[Edge, ...], ...]

    def text(self) -> str:
        return "+".join("|" + "|".join(f"{op}~{j}" for op, j in edges) + "|" for edges in self.nodes)


def parse_nb201(text: str, source_name: str = _SOURCE) -> Nb201Arch:
    """Read an arch string; raise GenomeSyntaxError / GenomeSemanticError at the bad column."""
    if not isinstance(text, str):
        raise GenomeSyntaxError(f"expected an arch string, got {type(text).__name__}", hint=_FORM)
    line = text.strip()
    if "\n" in line:
        raise GenomeSyntaxError("an arch string is one line", hint=_FORM)
    ops_hint = f"the operations are {', '.join(NB201_OPS)}"

    def fail(cls: type[GenomeError], message: str, start: int, width: int = 1, hint: str = _FORM) -> NoReturn:
        raise cls(message, span=text_span(line, start + 1, max(width, 1), file=source_name), hint=hint)

    if not line:
        fail(GenomeSyntaxError, "the arch string is empty", 0)
    nodes: list[tuple[Edge, ...]] = []
    start = 0  # column of the current node's text in ``line``
    for k, part in enumerate(line.split("+"), start=1):
        if not part:
            fail(GenomeSyntaxError, f"node {k} is missing: nothing between two '+' or after the last", start)
        if not (len(part) >= 2 and part.startswith("|") and part.endswith("|")):
            where = start + len(part) if part.startswith("|") else start
            fail(GenomeSyntaxError, f"node {k} must be written between bars, as |op~input|...|", where)
        edges: list[Edge] = []
        pos = start + 1
        for item in part[1:-1].split("|"):
            op, tilde, index = item.partition("~")
            at_index = pos + len(op) + 1
            if not item:
                fail(GenomeSyntaxError, f"node {k} has an empty edge between two bars", pos)
            if not tilde:
                fail(
                    GenomeSyntaxError,
                    f"edge {item!r} of node {k} needs '~input', as in {item}~0",
                    pos,
                    len(item),
                )
            if op not in NB201_OPS:
                fail(GenomeSemanticError, f"unknown NAS-Bench-201 operation {op!r}", pos, len(op), ops_hint)
            if not _DIGITS.fullmatch(index):
                fail(
                    GenomeSyntaxError,
                    f"the input of edge {item!r} must be a node number",
                    at_index,
                    len(index),
                )
            if int(index) >= k:
                fail(
                    GenomeSemanticError,
                    f"node {k} can only read nodes 0..{k - 1}, not node {index}",
                    at_index,
                    len(index),
                    "node 0 is the cell input; node k reads earlier nodes only",
                )
            edges.append((op, int(index)))
            pos += len(item) + 1
        nodes.append(tuple(edges))
        start += len(part) + 1
    return Nb201Arch(nodes=tuple(nodes))


def _infer_cell(graph: Graph, i: int, x: NodeId, arch: Nb201Arch, c: int) -> NodeId:
    states = [x]
    last = len(arch.nodes)
    dead = _unread_nodes(arch)
    for k, edges in enumerate(arch.nodes, start=1):
        name = f"c{i}" if k == last else f"c{i}_n{k}"
        ends = [chain(graph, states[j], edge_ops(op, c)) for op, j in edges]
        if k == last:
            # InferCell computes nodes no later node reads and drops them; their weights still
            # count. A genome has one output, so each joins the output sum multiplied by zero:
            # the function and the parameter count are the reference's.
            ends += [graph.add(Zero(), [states[d]], name=f"c{i}_{_DEAD}{d}") for d in dead]
        if len(ends) == 1:  # the sum of one edge is that edge
            graph.set_name(ends[0], name)
            states.append(ends[0])
            continue
        states.append(graph.add(Add(), ends, name=name))
    return states[-1]


#: name part of the zero-weighted values that keep unread cell nodes (``c3_unread2``)
_DEAD = "unread"
_DEAD_NAME = re.compile(rf"^c\d+_{_DEAD}\d+$")


def _unread_nodes(arch: Nb201Arch) -> list[int]:
    """Cell nodes (not the output) that no later node reads."""
    used = {j for edges in arch.nodes for _, j in edges}
    return [k for k in range(1, len(arch.nodes)) if k not in used]


def _residual_block(graph: Graph, i: int, x: NodeId, c: int) -> NodeId:
    """``ResNetBasicblock(C_prev, C, stride=2)``: the reduction between stages."""
    # built in the reference's registration order (conv_a, conv_b, downsample); summed residual first
    body = chain(
        graph,
        x,
        (
            Relu(),
            Conv(channels=c, kernel=3, stride=2, bias=False),
            BatchNorm(),
            Relu(),
            Conv(channels=c, kernel=3, bias=False),
            BatchNorm(),
        ),
    )
    shortcut = chain(graph, x, (AvgPool(kernel=2), Conv(channels=c, kernel=1, bias=False)))
    return graph.add(Add(), [shortcut, body], name=f"res{i}")


def nb201_to_graph(
    arch: str | Nb201Arch,
    channels: int = 16,
    cells: int = 5,
    classes: int = 10,
    input_shape: Sequence[int] = (3, 32, 32),
) -> Graph:
    """xautodl ``TinyNetwork(channels, cells, arch, classes)`` (``cells`` = N per stage)."""
    parsed = arch if isinstance(arch, Nb201Arch) else parse_nb201(arch)
    check_positive(channels=channels, cells=cells, classes=classes)
    shape = check_image_shape(input_shape, 4)
    graph = Graph()
    graph.source_name = _SOURCE
    x = graph.add(Input(shape=shape))
    x = chain(graph, x, (Conv(channels=channels, kernel=3, bias=False), BatchNorm()), name="stem")
    c = channels
    for i in range(3 * cells + 2):
        if i in (cells, 2 * cells + 1):
            c *= 2
            x = _residual_block(graph, i, x, c)
        else:
            x = _infer_cell(graph, i, x, parsed, c)
    chain(graph, x, (BatchNorm(), Relu(), GlobalAvgPool(), Linear(features=classes)), name="logits")
    return verify(graph)


def graph_to_nb201(graph: Graph) -> str:
    """The arch string of a network built by :func:`nb201_to_graph` (all cells must agree)."""
    hint = (
        "graph_to_nb201 reads networks built by nb201_to_graph, whose cell values are named c<i>_n<k>, c<i>"
    )
    cells = find_cells(graph, inputs=())
    found: dict[Nb201Arch, int] = {}
    for cell in cells.values():
        if cell.output is None:
            raise GenomeSemanticError(f"cell {cell.index} has nodes but no output c{cell.index}", hint=hint)
        arch = _read_cell(graph, cell.index, cell.states, cell.output, hint)
        found.setdefault(arch, cell.index)
    if len(found) != 1:
        what = "no NAS-Bench-201 cells" if not found else f"cells that differ: {sorted(found.values())}"
        raise GenomeSemanticError(f"the graph has {what}", hint=hint)
    return next(iter(found)).text()


def _read_cell(graph: Graph, i: int, inner: dict[int, NodeId], output: NodeId, hint: str) -> Nb201Arch:
    last = len(inner) + 1
    if sorted(inner) != list(range(1, last)):
        raise GenomeSemanticError(
            f"cell {i} has nodes {sorted(inner)}, expected c{i}_n1, c{i}_n2, ...", hint=hint
        )
    states = [*(inner[k] for k in range(1, last)), output]
    index = {nid: k for k, nid in enumerate(states, start=1)}
    shapes = graph.shapes()
    sources: set[NodeId] = set()
    nodes = []
    for k, node in enumerate(states, start=1):
        edges = []
        ends = graph.inputs(node) if graph.kind(node) == "add" else [node]
        for end in ends:
            if _DEAD_NAME.match(graph.node(end).name or ""):
                continue  # an unread node kept for its weights, not an edge of the arch string
            source, ops = _walk_edge(graph, end, node, index)
            j = index.get(source, 0)
            name = next((n for n in NB201_OPS if strip_identity(edge_ops(n, shapes[node][0])) == ops), None)
            if name is None or j >= k:
                raise GenomeSemanticError(
                    f"the edge into {graph.node(node).describe()} is not a NAS-Bench-201 operation",
                    span=graph.node(end).span,
                    hint=hint,
                )
            if j == 0:
                sources.add(source)
            edges.append((name, j))
        nodes.append(tuple(edges))
    if len(sources) > 1:
        raise GenomeSemanticError(f"the edges from node 0 of cell {i} start at different values", hint=hint)
    return Nb201Arch(nodes=tuple(nodes))


def _walk_edge(
    graph: Graph, end: NodeId, node: NodeId, index: dict[NodeId, int]
) -> tuple[NodeId, tuple[OpBase, ...]]:
    """Walk back from an edge's last op to a cell node or to the (named) cell input.

    ``end`` is ``node`` itself when the node has a single edge (the sum of one edge is that edge).
    """
    ops: list[OpBase] = []
    current = end
    while current == node or (current not in index and graph.node(current).name is None):
        inputs = graph.inputs(current)
        if len(inputs) != 1:
            raise GenomeSemanticError(
                f"{graph.node(end).describe()} is not a chain of single-input ops from a cell node",
                span=graph.node(current).span,
            )
        ops.append(graph.op(current))
        current = inputs[0]
    return current, strip_identity(reversed(ops))
