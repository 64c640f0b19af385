"""DOT, Mermaid and JSON node-link text of hand-built graphs (the IR alone: no parser, no torch)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import networkx as nx
import pytest
from genomorph.ir import Graph, op_from_dict
from genomorph.ir.render import (
    graph_from_node_link,
    node_link,
    node_roles,
    op_label,
    to_dot,
    to_json,
    to_mermaid,
)


def _op(kind: str, **fields: object):
    return op_from_dict({"kind": kind, **fields})


def residual_net() -> Graph:
    """input -> stem conv -> (conv, identity-ish branch) add -> relu -> mixed -> concat -> head."""
    g = Graph()
    x = g.add(_op("input", shape=[3, 8, 8]))
    stem = g.add(_op("conv", channels=4, kernel=3, bias=False), [x], name="stem")
    a = g.add(_op("conv", channels=4, kernel=3, stride=1, dilation=2), [stem])
    b = g.add(_op("bn", affine=False), [stem])
    s = g.add(_op("add"), [a, b])
    r = g.add(_op("relu"), [s])
    p = g.add(_op("maxpool", kernel=3, stride=1, padding=1), [r])
    m = g.add(_op("mixed", group="normal", row=0, labels=["max_pool_3x3", "skip_connect"]), [p, r])
    c = g.add(_op("concat"), [m, stem])
    gap = g.add(_op("gap"), [c])
    g.add(_op("linear", features=10), [gap], name="head")
    g.add(_op("aux", weight=0.4), [gap])
    return g


def test_op_label_writes_the_genome_call_without_defaults() -> None:
    assert op_label(_op("conv", channels=64, kernel=3)) == "conv(64, 3)"
    assert (
        op_label(_op("conv", channels=64, kernel=1, stride=2, bias=False))
        == "conv(64, 1, stride=2, bias=false)"
    )
    assert op_label(_op("input", shape=[3, 32, 32])) == "input 3x32x32"
    assert op_label(_op("relu")) == "relu"
    assert op_label(_op("dropout", p=0.2)) == "dropout(0.2)"
    assert op_label(_op("mixed", labels=["a", "b"])) == "mixed(group=normal, row=0)"
    assert op_label(_op("mixed", group="weird name", row=1)) == 'mixed(group="weird name", row=1)'


def test_roles_follow_the_op_not_its_id() -> None:
    g = residual_net()
    roles = {g.node(n).name or g.kind(n): role for n, role in node_roles(g).items()}
    assert roles["input"] == "input"
    assert roles["stem"] == "layer"
    assert roles["relu"] == "function"
    assert roles["add"] == "merge"
    assert roles["concat"] == "merge"
    assert roles["mixed"] == "mixed"
    assert roles["head"] == "output"
    assert roles["aux"] == "aux"


def test_dot_has_every_node_edge_and_label() -> None:
    g = residual_net()
    text = to_dot(g)
    assert text.startswith("digraph genome {") and text.rstrip().endswith("}")
    node_lines = [line for line in text.splitlines() if re.match(r"\s+n\d+ \[label=", line)]
    edge_lines = [line for line in text.splitlines() if "->" in line]
    assert len(node_lines) == len(g)
    assert len(edge_lines) == len(g.edges())
    shapes = g.shapes()
    for nid in g.order():
        line = next(line for line in node_lines if line.lstrip().startswith(f"n{nid} "))
        assert op_label(g.op(nid)).replace('"', '\\"') in line
        if g.kind(nid) != "input":
            assert "x".join(map(str, shapes[nid])) in line
    add_line = next(line for line in node_lines if "\\nadd\\n" in line)
    assert "shape=hexagon" in add_line
    output_line = next(line for line in node_lines if "head" in line)
    assert "peripheries=2" in output_line
    # concat inputs carry their port; mixed inputs carry the candidate they stand for
    concat = next(n for n in g.order() if g.kind(n) == "concat")
    mixed = next(n for n in g.order() if g.kind(n) == "mixed")
    assert f'-> n{concat} [label="0"]' in text and f'-> n{concat} [label="1"]' in text
    assert f'-> n{mixed} [label="max_pool_3x3"]' in text and f'-> n{mixed} [label="skip_connect"]' in text
    # add is commutative: no port labels
    add = next(n for n in g.order() if g.kind(n) == "add")
    assert not re.search(rf"-> n{add} \[", text)


def test_dot_escapes_quotes_and_graphviz_accepts_it() -> None:
    g = Graph()
    x = g.add(_op("input", shape=[4]))
    mixed = g.add(_op("mixed", group='say "hi"', labels=['a"b']), [x])
    text = to_dot(g, direction="LR", title='a "quoted" title')
    assert "rankdir=LR," in text
    # DOT strings escape backslash and quote; the label is the genome's (JSON-quoted) string
    label = op_label(g.op(mixed))
    assert label == 'mixed(group="say \\"hi\\"", row=0)'
    assert label.replace("\\", "\\\\").replace('"', '\\"') in text
    assert '[label="a\\"b"]' in text
    dot = shutil.which("dot")
    if dot is None:
        # CI installs Graphviz (.ci/run): there its absence is a failure, not a skip
        assert not os.environ.get("CI"), "Graphviz's dot is missing on CI"
        pytest.skip("Graphviz is not installed; the text checks above still ran")
    done = subprocess.run([dot, "-Tcanon"], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_mermaid_flowchart_shapes_and_classes() -> None:
    g = residual_net()
    text = to_mermaid(g, direction="LR")
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    edges = [line for line in lines if "-->" in line]
    assert len(edges) == len(g.edges())
    concat = next(n for n in g.order() if g.kind(n) == "concat")
    assert any(line.strip().startswith(f'n{concat}{{{{"') for line in lines)  # hexagon {{ }}
    input_id = g.input_node()
    assert any(line.strip().startswith(f'n{input_id}(["') for line in lines)  # stadium
    mixed = next(n for n in g.order() if g.kind(n) == "mixed")
    assert any(line.strip().endswith(f'-->|"skip_connect"| n{mixed}') for line in lines)
    assert f"class n{g.output_node()} output" in text
    assert "classDef merge" in text and "classDef mixed" in text


def test_mermaid_escapes_quotes() -> None:
    g = Graph()
    x = g.add(_op("input", shape=[4]))
    g.add(_op("mixed", group='a"b<c>'), [x])
    text = to_mermaid(g)
    assert "#quot;" in text and "#lt;c#gt;" in text
    assert 'a"b' not in text


def test_json_is_node_link_data_networkx_reads() -> None:
    g = residual_net()
    data = json.loads(to_json(g))
    assert data == node_link(g)
    nxg = nx.node_link_graph(data, edges="links")
    assert nxg.number_of_nodes() == len(g)
    assert nxg.number_of_edges() == len(g.edges())
    assert data["graph"]["input"] == g.input_node()
    assert data["graph"]["output"] == g.output_node()
    assert data["graph"]["aux_outputs"] == g.aux_outputs()
    stats = {s.id: s for s in g.stats().nodes}
    for node in data["nodes"]:
        assert node["params"] == stats[node["id"]].params
        assert tuple(node["shape"]) == stats[node["id"]].out_shape
        assert node["ref"] == f"n{node['id']}"
    assert sum(node["params"] for node in data["nodes"]) == g.stats().params


def test_json_rebuilds_the_same_graph() -> None:
    g = residual_net()
    data = json.loads(to_json(g))
    data["nodes"].reverse()  # node order in the file must not matter
    back = graph_from_node_link(data)
    assert back.same_structure(g)
    assert sorted(back.order()) == sorted(g.order())
    assert back.edges() == g.edges()


def test_json_with_a_cycle_is_rejected() -> None:
    from genomorph.ir.errors import VerifyError

    data = node_link(residual_net())
    first, last = data["nodes"][1]["id"], data["nodes"][-2]["id"]
    data["links"].append({"source": last, "target": first, "key": 1, "port": 1})
    with pytest.raises(VerifyError, match="cycle"):
        graph_from_node_link(data)


def test_rendering_leaves_the_graph_alone() -> None:
    g = residual_net()
    before = g.structure()
    to_dot(g), to_mermaid(g), to_json(g)
    assert g.structure() == before
