"""Structural verification of a graph: the invariants every pass and rewrite relies on."""

from __future__ import annotations

from .errors import VerifyError
from .graph import Graph
from .stats import arch_param_shapes


def verify(graph: Graph) -> Graph:
    """Check acyclicity, one input, one main output, arity, ports and shapes; return the graph.

    Raises VerifyError / ShapeError naming the offending node and its span.
    """
    if len(graph) == 0:
        raise VerifyError("the genome is empty", hint="start with an input, e.g. `input 3x32x32`")
    graph.order()  # raises on a cycle
    graph.input_node()
    for node in graph.nodes():
        ports = graph.in_ports(node.id)
        if ports != list(range(len(ports))):
            raise VerifyError(
                f"{node.describe()} has input ports {ports}, expected 0..{len(ports) - 1}", span=node.span
            )
        if node.kind == "aux" and graph.users(node.id):
            raise VerifyError(
                f"{node.describe()} marks an auxiliary output but is used by other nodes",
                span=node.span,
                hint="put `aux` at the very end of a branch",
            )
    seen: dict[str, int] = {}
    for node in graph.nodes():
        if node.name is None:
            continue
        if node.name in seen:
            raise VerifyError(
                f"{node.describe()} reuses the name '{node.name}' of n{seen[node.name]}",
                span=node.span,
                hint="value names must be unique; a rewrite that copies a node must drop or rename its name",
            )
        seen[node.name] = node.id
    graph.output_node()
    graph.shapes()
    arch_param_shapes(graph)  # mixed ops of a group must use rows 0..k-1 with equal candidate counts
    return graph
