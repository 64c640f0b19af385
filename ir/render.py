"""Pictures of a graph as text: Graphviz DOT, Mermaid flowcharts and JSON node-link data.

Everything here is pure text built from the IR (no Graphviz, no torch), so it works on any
machine; turning DOT into SVG/PNG is the CLI's job. Every node shows its id, its op with the
arguments that differ from the defaults (the genome's own call syntax) and its output shape.
How a node is drawn depends only on its role, looked up in one table:

- ``input`` / ``aux`` outputs: rounded ends; the main output gets a double border;
- merges (add, concat, convex, weighted_sum): hexagons, with the input port on each edge
  where argument order matters;
- mixed ops (DARTS supernet edges): their own colour, each incoming edge labelled with the
  candidate op it carries;
- layers with parameters vs parameter-free functions (activations, pooling): two fills.

The JSON form is networkx's node-link layout (``nodes`` + ``links``, multigraph, ids as
ints) with each node's full op model, so :func:`graph_from_node_link` rebuilds the graph.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

import networkx as nx
from pydantic import ValidationError

from .errors import GenomeSemanticError, VerifyError
from .graph import Graph, NodeId
from .ops import Mixed, OpBase, Shape, op_from_dict

Role = Literal["input", "output", "aux", "merge", "mixed", "layer", "function"]
Direction = Literal["TB", "LR"]

#: fill colour and DOT / Mermaid node shape per role
_STYLE: dict[str, tuple[str, str, str]] = {
    "input": ("#d5e8d4", "ellipse", "stadium"),
    "output": ("#d5e8d4", "box", "rect"),
    "aux": ("#ffe6cc", "ellipse", "stadium"),
    "merge": ("#fff2cc", "hexagon", "hexagon"),
    "mixed": ("#e1d5e7", "hexagon", "hexagon"),
    "layer": ("#dae8fc", "box", "rect"),
    "function": ("#f5f5f5", "box", "rect"),
}
#: Mermaid bracket pairs per shape name
_MERMAID_BRACKETS: dict[str, tuple[str, str]] = {
    "rect": ("[", "]"),
    "stadium": ("([", "])"),
    "hexagon": ("{{", "}}"),
}
#: node count above which DOT asks Graphviz for a cheaper layout
_LARGE = 500
_BARE_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------- labels
def format_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def _format_value(value: object) -> str:
    """A value as the genome language writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if _BARE_WORD.match(value) else json.dumps(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return str(value)


def op_label(op: OpBase) -> str:
    """``conv(64, 3, stride=2)``: the op as a genome call, default arguments left out.

    Mixed ops show their architecture group and row but not their candidate labels (those are
    drawn on the incoming edges); the input shows its shape as genomes write it (``input 3x32x32``).
    """
    kind: str = op.kind  # type: ignore[attr-defined]
    args = op.arguments()
    if kind == "input":
        return f"input {format_shape(args['shape'])}"  # type: ignore[arg-type]
    if isinstance(op, Mixed):
        # group and row say which architecture weights it shares, so show them even at defaults
        return f"mixed(group={_format_value(op.group)}, row={op.row})"
    parts = [
        _format_value(value) if name in op.positional else f"{name}={_format_value(value)}"
        for name, value in args.items()
    ]
    return f"{kind}({', '.join(parts)})" if parts else kind


def node_roles(graph: Graph) -> dict[NodeId, Role]:
    """How each node is drawn; one pass, so rendering stays linear in the graph's size."""
    shapes = graph.shapes()
    output = graph.output_node()
    roles: dict[NodeId, Role] = {}
    for nid in graph.order():
        op = graph.op(nid)
        kind = graph.kind(nid)
        if kind in ("input", "aux"):
            roles[nid] = kind  # type: ignore[assignment]
        elif nid == output:
            roles[nid] = "output"
        elif isinstance(op, Mixed):
            roles[nid] = "mixed"
        elif op.is_merge:
            roles[nid] = "merge"
        else:
            has_params = op.param_shapes([shapes[i] for i in graph.inputs(nid)])
            roles[nid] = "layer" if has_params else "function"
    return roles


def _edge_label(graph: Graph, dst: NodeId, port: int) -> str | None:
    """Port numbers where argument order matters; candidate names on mixed-op edges."""
    op = graph.op(dst)
    if isinstance(op, Mixed):
        return op.labels[port] if port < len(op.labels) else f"#{port}"
    if op.is_merge and graph.kind(dst) != "add" and len(graph.inputs(dst)) > 1:
        return str(port)
    return None


def _node_lines(graph: Graph, nid: NodeId, shape: Shape) -> list[str]:
    node = graph.node(nid)
    head = f"n{nid} {node.name}" if node.name else f"n{nid}"
    if node.kind == "input":  # its label already is its shape
        return [head, op_label(node.op)]
    return [head, op_label(node.op), format_shape(shape)]


# ---------------------------------------------------------------------------- DOT
def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph, *, direction: Direction = "TB", title: str | None = None) -> str:
    """Graphviz DOT text (``dot -Tsvg`` draws it)."""
    shapes = graph.shapes()
    output = graph.output_node()
    roles = node_roles(graph)
    lines = [
        "digraph genome {",
        f'  graph [rankdir={direction}, fontname="Helvetica", fontsize=12];',
        '  node [style="rounded,filled", fontname="Helvetica", fontsize=10, penwidth=0.8];',
        '  edge [fontname="Helvetica", fontsize=8, arrowsize=0.6];',
    ]
    if title:
        lines.append(f'  labelloc="t"; label={_dot_quote(title)};')
    if len(graph) > _LARGE:
        # fewer crossing-minimisation and ranking passes: the 2,900-node DARTS supernet lays
        # out in ~18 s instead of ~100 s, with a picture that is just as readable
        lines.append("  graph [mclimit=0.1, nslimit=1, nslimit1=1];")
    for nid in graph.order():
        fill, shape, _ = _STYLE[roles[nid]]
        label = "\\n".join(
            line.replace("\\", "\\\\").replace('"', '\\"') for line in _node_lines(graph, nid, shapes[nid])
        )
        extra = ", peripheries=2" if nid == output else ""
        lines.append(f'  n{nid} [label="{label}", shape={shape}, fillcolor="{fill}"{extra}];')
    for src, dst, port in graph.edges():
        label = _edge_label(graph, dst, port)
        attrs = f" [label={_dot_quote(label)}]" if label is not None else ""
        lines.append(f"  n{src} -> n{dst}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- Mermaid
def _mermaid_text(text: str) -> str:
    # Mermaid has no backslash escapes inside quoted labels; it uses HTML-like entities.
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(graph: Graph, *, direction: Direction = "TB") -> str:
    """A Mermaid ``flowchart`` (renders on GitHub and in most Markdown viewers)."""
    shapes = graph.shapes()
    roles = node_roles(graph)
    lines = [f"flowchart {direction}"]
    by_role: dict[str, list[str]] = {}
    for nid in graph.order():
        role = roles[nid]
        by_role.setdefault(role, []).append(f"n{nid}")
        left, right = _MERMAID_BRACKETS[_STYLE[role][2]]
        label = "<br/>".join(_mermaid_text(line) for line in _node_lines(graph, nid, shapes[nid]))
        lines.append(f'  n{nid}{left}"{label}"{right}')
    for src, dst, port in graph.edges():
        label = _edge_label(graph, dst, port)
        arrow = f'-->|"{_mermaid_text(label)}"|' if label is not None else "-->"
        lines.append(f"  n{src} {arrow} n{dst}")
    for role, ids in by_role.items():
        border = "stroke-width:3px" if role == "output" else "stroke-width:1px"
        lines.append(f"  classDef {role} fill:{_STYLE[role][0]},stroke:#555,{border}")
        lines.append(f"  class {','.join(ids)} {role}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- JSON node-link
def node_link(graph: Graph) -> dict[str, Any]:
    """networkx-style node-link data: every node with its op model, shape and counts."""
    stats = {s.id: s for s in graph.stats().nodes}
    roles = node_roles(graph)
    nodes = []
    for node in graph.nodes():
        span = node.span
        nodes.append(
            {
                "id": node.id,
                "ref": f"n{node.id}",
                "name": node.name,
                "kind": node.kind,
                "label": op_label(node.op),
                "role": roles[node.id],
                "op": node.op.model_dump(mode="json"),
                "shape": list(stats[node.id].out_shape),
                "params": stats[node.id].params,
                "macs": stats[node.id].macs,
                "span": None
                if span is None
                else {"line": span.line, "column": span.column, "file": span.file},
            }
        )
    links = [{"source": s, "target": t, "key": p, "port": p} for s, t, p in graph.edges()]
    return {
        "directed": True,
        "multigraph": True,
        "graph": {
            "source": graph.source_name,
            "input": graph.input_node(),
            "output": graph.output_node(),
            "aux_outputs": graph.aux_outputs(),
        },
        "nodes": nodes,
        "links": links,
    }


def to_json(graph: Graph, *, indent: int | None = 2) -> str:
    return json.dumps(node_link(graph), indent=indent) + "\n"


def graph_from_node_link(data: dict[str, Any]) -> Graph:
    """Rebuild a graph (same ids, ops, names and wiring) from :func:`node_link` data."""
    graph = Graph()
    graph.source_name = data.get("graph", {}).get("source", "<json>")
    nodes = {node["id"]: node for node in data["nodes"]}
    inputs: dict[int, list[tuple[int, int]]] = {nid: [] for nid in nodes}
    wiring = nx.DiGraph()
    wiring.add_nodes_from(nodes)
    for link in data["links"]:
        if link["source"] not in nodes or link["target"] not in nodes:
            raise VerifyError(f"node-link data has an edge between unknown nodes: {link}")
        inputs[link["target"]].append((link["port"], link["source"]))
        wiring.add_edge(link["source"], link["target"])
    try:
        # node-link data may list nodes in any order; producers must be added first
        order = list(nx.lexicographical_topological_sort(wiring))
    except nx.NetworkXUnfeasible:
        raise VerifyError("node-link data has a cycle") from None
    for nid in order:
        node = nodes[nid]
        try:
            op = op_from_dict(node["op"])
        except ValidationError as err:
            raise GenomeSemanticError(f"node n{nid} has an invalid op: {err}") from None
        graph.add(op, [src for _, src in sorted(inputs[nid])], name=node.get("name"), node_id=nid)
    return graph


#: format name -> renderer; the CLI picks from these
RENDERERS: dict[str, Callable[[Graph], str]] = {
    "dot": to_dot,
    "mermaid": to_mermaid,
    "json": to_json,
}
