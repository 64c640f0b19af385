"""An fx trace -> IR graph + weights keyed by the new node ids.

Nodes are added in the trace's order, which is topological, so node ids follow the trace and
``graph.order()`` is that order too: the printed genome re-parses to the same ids and the
weights stay keyed correctly. Parameterised nodes are named after their module path
(``layer1.0.conv1`` -> ``layer1_0_conv1``) so the genome reads like the model's source.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import OP_CLASSES, OpBase, ShapeMismatch
from genomorph.ir.printer import is_value_name
from genomorph.ir.weights import Weights, remap
from pydantic import ValidationError
from torch import fx, nn

from ._table import Alias, Emit, describe_target, shape, translate_call, translate_module
from ._trace import ImportFailure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Imported:
    """The IR of an imported module, its weights, and the numbers that check the import."""

    graph: Graph
    weights: Weights
    #: ``sum(p.numel() for p in module.parameters())`` of the source module
    module_params: int


def _node_name(path: str, used: set[str]) -> str | None:
    """A genome value name for a module path, unique in this graph (None if none fits)."""
    base = re.sub(r"\W", "_", path).strip("_") or "m"
    if base[0].isdigit():
        base = f"m_{base}"
    name = base
    suffix = 1
    while not is_value_name(name) or name in used:
        name = f"{base}_{suffix}"
        suffix += 1
    used.add(name)
    return name


#: what a user can do about an op the IR lacks
_REPLACE_HINT = (
    "replace it in the model with ops genomorph has (docs/genome.md lists them), or import the part "
    "of the network before it; docs/export.md explains how to extend the op set"
)


def _fail_unsupported(
    node: fx.Node, what: str, why: str | None = None, hint: str = _REPLACE_HINT
) -> ImportFailure:
    where = f" at module path '{node.target}'" if node.op == "call_module" else ""
    trace_path = node.meta.get("nn_module_stack")
    if not where and trace_path:
        where = f" in module '{list(trace_path)[-1]}'"
    return ImportFailure(
        f"the IR cannot express {what}{where} (fx node '{node.name}')" + (f": {why}" if why else ""),
        hint=hint,
    )


def _module_weights(
    m: nn.Module, op: OpBase, ins: list[tuple[int, ...]], node: fx.Node
) -> dict[str, np.ndarray]:
    declared = {**op.param_shapes(ins), **op.buffer_shapes(ins)}
    state = m.state_dict()
    if set(state) != set(declared):
        extra = sorted(set(state) ^ set(declared))
        raise _fail_unsupported(
            node, f"{type(m).__name__}", f"its tensors differ from the IR op's ({', '.join(extra)})"
        )
    out: dict[str, np.ndarray] = {}
    for name, want in declared.items():
        tensor = state[name].detach().cpu()
        if tuple(tensor.shape) != tuple(want):
            raise _fail_unsupported(
                node,
                type(m).__name__,
                f"tensor '{name}' has shape {tuple(tensor.shape)}, the IR op expects {want}",
            )
        out[name] = tensor.numpy().copy()
    return out


def _make_op(fields: dict[str, object], node: fx.Node, what: str) -> OpBase:
    cls = OP_CLASSES.get(str(fields["kind"]))
    if cls is None:
        raise _fail_unsupported(node, what, f"genomorph has no '{fields['kind']}' op")
    try:
        return cls.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        raise _fail_unsupported(node, what, f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def build_graph(traced: fx.GraphModule, model: nn.Module, input_shape: tuple[int, ...]) -> Imported:
    """The IR of ``traced`` (from :func:`trace`), with the weights of ``model``'s modules."""
    graph = Graph()
    weights: Weights = {}
    values: dict[fx.Node, NodeId] = {}
    shapes: dict[NodeId, tuple[int, ...]] = {}
    used_names: set[str] = set()
    calls = Counter(n.target for n in traced.graph.nodes if n.op == "call_module")
    output: NodeId | None = None
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            if values:
                raise ImportFailure("the model takes more than one input", hint="genomes have one input")
            nid = graph.add(OP_CLASSES["input"](shape=input_shape))  # type: ignore[call-arg]
            values[node], shapes[nid] = nid, input_shape
            continue
        if node.op == "output":
            result = node.args[0]
            if not isinstance(result, fx.Node) or result not in values:
                raise ImportFailure(
                    "the model's output is not one tensor",
                    hint="import a wrapper whose forward returns only the logits",
                )
            output = values[result]
            continue
        if shape(node) is None:
            continue  # x.size(0) and the like: read only by the reshapes they feed
        module = traced.get_submodule(str(node.target)) if node.op == "call_module" else None
        if node.op == "get_attr":
            raise _fail_unsupported(node, f"the constant tensor '{node.target}'")
        what = f"{type(module).__name__}" if module is not None else describe_target(node)
        result_t = translate_module(module, node) if module is not None else translate_call(node)
        if result_t is None:
            raise _fail_unsupported(node, what)
        if isinstance(result_t, Alias):
            values[node] = values[result_t.source]
            continue
        assert isinstance(result_t, Emit)
        missing = [x for x in result_t.inputs if x not in values]
        if missing:
            raise _fail_unsupported(node, what, f"its input '{missing[0].name}' is not a traced tensor")
        ins_ids = [values[x] for x in result_t.inputs]
        ins = [shapes[i] for i in ins_ids]
        op = _make_op(result_t.op, node, what)
        try:
            out = op.out_shape(ins)
        except ShapeMismatch as err:
            raise _fail_unsupported(node, what, str(err)) from None
        # gap stands for the head's adaptive pool to 1x1: torch's (C, 1, 1) is the IR's (C,)
        if out != shape(node) and not (op.kind == "gap" and (*out, 1, 1) == shape(node)):  # type: ignore[attr-defined]
            raise _fail_unsupported(node, what, f"the IR op gives shape {out}, torch gives {shape(node)}")
        has_tensors = bool(op.param_shapes(ins) or op.buffer_shapes(ins))
        name = None
        if module is not None and has_tensors:
            if calls[node.target] > 1:
                raise _fail_unsupported(
                    node,
                    what,
                    f"the module is called {calls[node.target]} times, and IR nodes own their weights",
                    hint="give each call its own module (copy.deepcopy), then the import carries copies",
                )
            name = _node_name(str(node.target), used_names)
        nid = graph.add(op, ins_ids, name=name)
        values[node], shapes[nid] = nid, out
        if has_tensors:
            if module is None:
                raise _fail_unsupported(node, what, "a functional call with weights")
            weights[nid] = _module_weights(module, op, ins, node)
    if output is None:  # pragma: no cover - every fx graph has an output node
        raise ImportFailure("the traced model has no output")
    _drop_dead(graph, output, weights)
    # ids 0..n-1 in order: what parsing the printed genome gives, so the weights stay keyed
    graph, mapping = graph.relabeled()
    return Imported(graph, remap(weights, mapping), sum(p.numel() for p in model.parameters()))


def _drop_dead(graph: Graph, output: NodeId, weights: Weights) -> None:
    """Remove nodes the output does not depend on (fx keeps calls whose results are unused)."""
    live = {output}
    stack = [output]
    while stack:
        for src in graph.inputs(stack.pop()):
            if src not in live:
                live.add(src)
                stack.append(src)
    for nid in sorted(set(graph) - live, reverse=True):
        log.info("dropping %s: the output does not depend on it", graph.node(nid).describe())
        graph.remove(nid)
        weights.pop(nid, None)


def example_input(input_shape: tuple[int, ...], batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *input_shape), generator=generator)
