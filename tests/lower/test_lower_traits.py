"""Lowering covers every op kind, and the op traits agree with what the lowered ops compute."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genomorph.ir import OP_CLASSES, Graph, NodeId
from genomorph.ir.rewrites import randomized
from genomorph.ir.rewrites._places import nonnegative
from genomorph.lower import lower
from genomorph.lower.lower import EMITTERS
from lower_cases import CASES, chain, example_input
from torch import fx

SEED = 20261201


def test_lowering_covers_every_op_kind() -> None:
    assert set(EMITTERS) == set(OP_CLASSES.values())


def _values(graph: Graph, x: torch.Tensor, weights: object = None) -> dict[NodeId, torch.Tensor]:
    """The value of every IR node that emits an fx node, in eval mode, out of place."""
    module = lower(graph, weights, inplace=False, strict=False).eval()  # type: ignore[arg-type]
    interpreter = fx.Interpreter(module, garbage_collect_values=False)
    with torch.no_grad():
        interpreter.run(x)
    by_name = {node.name: value for node, value in interpreter.env.items()}
    return {nid: by_name[f"n{nid}"] for nid in graph.order() if f"n{nid}" in by_name}


@pytest.mark.parametrize("case", sorted(CASES))
def test_channel_layouts_cover_the_per_channel_tensors(case: str) -> None:
    graph = CASES[case]()
    for nid in graph.order():
        op, ins = graph.op(nid), graph.input_shapes(nid)
        declared = {**op.param_shapes(ins), **op.buffer_shapes(ins)}
        if op.channel_role(ins) in ("layer", "pass"):
            per_channel = {name for name, shape in declared.items() if len(shape) >= 1}
            assert per_channel <= set(op.channel_layout(ins)), f"{op} lacks a layout for some tensor"
        scale = op.traits.output_scale
        if scale and getattr(op, "affine", True):
            assert set(scale) & set(op.param_shapes(ins)), f"{op}: output_scale names no tensor"


@pytest.mark.parametrize("case", sorted(CASES))
def test_provably_nonnegative_values_are_nonnegative(case: str) -> None:
    graph = CASES[case]()
    rng = np.random.default_rng(SEED)
    weights = randomized(graph, None, rng)
    values = _values(graph, example_input(graph, batch=4, seed=SEED), weights)
    for nid in nonnegative(graph, weights) & set(values):
        assert values[nid].min() >= 0, (
            f"{graph.node(nid).describe()} is negative ({graph.op(nid).traits.sign})"
        )


def _single_input_ops() -> list[tuple[str, Graph]]:
    """``input -> op`` for every parameter-free single-input op of the cases, once per op."""
    seen, out = set(), []
    for case in sorted(CASES):
        graph = CASES[case]()
        for nid in graph.order():
            op, ins = graph.op(nid), graph.input_shapes(nid)
            if op.arity != (1, 1) or op.kind == "aux" or op.param_shapes(ins) or op.buffer_shapes(ins):
                continue
            if (op, ins[0]) not in seen:
                seen.add((op, ins[0]))
                out.append((f"{op.kind}-{len(out)}", chain(ins[0], op)))
    return out


SINGLE = _single_input_ops()


def test_single_input_ops_are_found() -> None:
    assert {g.op(g.output_node()).kind for _, g in SINGLE} >= {"relu", "sigmoid", "maxpool", "gap", "zero"}


@pytest.mark.parametrize(("name", "graph"), SINGLE, ids=[name for name, _ in SINGLE])
def test_homogeneous_and_pointwise_traits_hold(name: str, graph: Graph) -> None:
    op = graph.op(graph.output_node())
    x = example_input(graph, batch=3, seed=SEED)
    module = lower(graph, inplace=False).eval()
    with torch.no_grad():
        y, y2 = module(x), module(2 * x)
    if op.traits.homogeneous:
        torch.testing.assert_close(y2, 2 * y)
    else:  # a parameter-free op that claims no homogeneity must show it
        assert not torch.allclose(y2, 2 * y)
    if op.traits.pointwise:
        bumped = x.clone()
        bumped.view(-1)[5] += 1.0
        with torch.no_grad():
            changed = (module(bumped) != y).view(-1).nonzero().view(-1).tolist()
        assert changed in ([5], []), f"{op.kind} is not pointwise: element 5 moved {changed}"
