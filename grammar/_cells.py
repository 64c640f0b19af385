"""Helpers shared by the interchange builders (DARTS, NAS-Bench-201).

Both formats describe networks made of cells whose edges are short *chains* of ops (ReLU,
conv, BN, ...) from one state to a sum. The builders emit every edge as its own chain and name
the cell states (``c3_s0``, ``c3_n2``, ``c3``), so the inverse converters can find the states
by name and read each edge back by comparing its op chain with the chains the op tables
would build: the tables are the single source of truth both ways.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from genomorph.ir import GenomeSemanticError, Graph, NodeId, OpBase, Span
from genomorph.ir.ops import Identity
from genomorph.ir.stats import param_count

log = logging.getLogger(__name__)

#: a cell state's name: ``c3`` (cell output), ``c3_s0`` / ``c3_s1`` (inputs), ``c3_n2`` (node)
_STATE_NAME = re.compile(r"^c(\d+)(?:_(s0|s1|n\d+))?$")


def chain(graph: Graph, source: NodeId, ops: Sequence[OpBase], name: str | None = None) -> NodeId:
    """Append ``ops`` one after another from ``source``; the last node gets ``name``."""
    if not ops:
        # an empty chain still needs a node to carry the name and keep edges distinct
        ops = (Identity(),)
    node = source
    for i, op in enumerate(ops):
        node = graph.add(op, [node], name=name if i == len(ops) - 1 else None)
    return node


def prune_dead(graph: Graph, keep: Iterable[NodeId]) -> list[NodeId]:
    """Remove every node no path leads from to one of ``keep``; return the removed ids.

    The reference implementations compute such values (e.g. an unused cell input's
    preprocessing) and throw them away; a genome has exactly one main output, so they go.
    """
    dead = graph.unreachable(keep)
    if dead:
        described = ", ".join(graph.node(nid).describe() for nid in dead[:6])
        left_out = sum(param_count(graph, nid) for nid in dead)
        gone = set(dead)
        kept = sum(param_count(graph, nid) for nid in graph.order() if nid not in gone)
        # the parameter counts differ here, so say by how much, for this conversion
        log.warning(
            "left out %d node(s) whose values never reach an output, holding %s parameters: %s%s. "
            "The reference network computes and discards them, so it counts %s parameters, the genome %s.",
            len(dead), f"{left_out:,}", described, ", ..." if len(dead) > 6 else "",
            f"{kept + left_out:,}", f"{kept:,}",
        )  # fmt: skip
    for nid in reversed(dead):
        graph.remove(nid)
    return dead


@dataclass(frozen=True)
class CellNodes:
    """The named values of one cell: ``states[k]`` is DARTS/NB201 state ``k``."""

    index: int
    states: dict[int, NodeId]
    output: NodeId | None


def find_cells(graph: Graph, *, inputs: tuple[str, ...] = ("s0", "s1")) -> dict[int, CellNodes]:
    """Group the named cell values of ``graph`` by cell index.

    ``inputs`` maps the input suffixes to state indices 0, 1, ...; ``n<k>`` is state ``k``.
    """
    found: dict[int, dict[int, NodeId]] = {}
    outputs: dict[int, NodeId] = {}
    for node in graph.nodes():
        match = _STATE_NAME.match(node.name or "")
        if not match:
            continue
        cell, suffix = int(match.group(1)), match.group(2)
        states = found.setdefault(cell, {})
        if suffix is None:
            outputs[cell] = node.id
        elif suffix in inputs:
            states[inputs.index(suffix)] = node.id
        elif suffix.startswith("n") and int(suffix[1:]) >= len(inputs):  # n<k> never names an input
            states[int(suffix[1:])] = node.id
    return {i: CellNodes(i, found.get(i, {}), outputs.get(i)) for i in sorted(set(found) | set(outputs))}


def edge_chain(graph: Graph, end: NodeId, states: dict[NodeId, int]) -> tuple[int, tuple[OpBase, ...]]:
    """Walk back from ``end`` to the nearest cell state; return its index and the ops on the way.

    Identity ops are dropped: they carry names and keep edges apart but compute nothing.
    """
    ops: list[OpBase] = []
    node = end
    while node not in states:
        inputs = graph.inputs(node)
        if len(inputs) != 1 or graph.kind(node) == "input":
            raise GenomeSemanticError(
                f"{graph.node(end).describe()} is not a chain of single-input ops from a cell state: "
                f"{graph.node(node).describe()} has {len(inputs)} inputs",
                span=graph.node(node).span,
                hint="only networks built by the DARTS / NAS-Bench-201 converters (or keeping their cell "
                "value names) can be converted back",
            )
        if graph.kind(node) != "identity":
            ops.append(graph.op(node))
        node = inputs[0]
    return states[node], tuple(reversed(ops))


def strip_identity(ops: Iterable[OpBase]) -> tuple[OpBase, ...]:
    return tuple(op for op in ops if op.kind != "identity")  # type: ignore[attr-defined]


def text_span(text: str, column: int, width: int = 1, *, line: int = 1, file: str) -> Span:
    """A span on one line of ``text`` (1-based ``line`` and ``column``)."""
    lines = text.splitlines() or [""]
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    return Span(line, column, line, column + width, file=file, source_line=source)


def check_positive(**values: int) -> None:
    """Raise a semantic error for any non-positive size argument."""
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise GenomeSemanticError(f"{name} must be a positive integer, got {value!r}")


def check_image_shape(shape: Sequence[int], divisor: int) -> tuple[int, int, int]:
    """The input shape as ``(C, H, W)``; H and W must survive ``divisor``-fold downsampling."""
    dims = tuple(shape)
    if len(dims) != 3 or any(not isinstance(d, int) or d < 1 for d in dims):
        raise GenomeSemanticError(
            f"the input shape must be C x H x W with positive sizes, got {dims}",
            hint="for CIFAR-10 use (3, 32, 32)",
        )
    if dims[1] % divisor or dims[2] % divisor:
        raise GenomeSemanticError(
            f"input {dims[1]}x{dims[2]} cannot be halved by every reduction: height and width must be "
            f"multiples of {divisor}",
            hint="use 32x32 inputs as in the reference networks",
        )
    return dims  # type: ignore[return-value]
