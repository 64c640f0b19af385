"""PC-DARTS (Xu et al. 2020) on the IR: a supernet whose mixed edges see 1/K of their channels.

``partial_channels(graph, k)`` maps a supernet genome to its partial-channel form. Every mixed
node (an *edge*: candidate op chains that all start from one value ``x`` of ``C`` channels and
keep that channel count) becomes::

    xa  = channel_slice(0, C/K) x             # the sampled channels (the first C/K, as PC-DARTS)
    m'  = mixed(candidates rebuilt on xa at C/K channels, same group / row / labels)
    xb  = channel_slice(C/K, C) x [maxpool(2)]  # the rest bypass the ops (pooled on stride-2 edges)
    out = channel_shuffle(K) concat(m', xb)

and every ``add`` whose inputs are all such edges of one architecture group (the intermediate
nodes of a DARTS cell) becomes ``edge_sum(group, first)``: PC-DARTS' edge normalisation, the
edges weighted by the softmax of one more architecture parameter per edge (``{group}_beta``, one
per row of the group's α, shared by every cell of the group like α).

The candidate ops are rebuilt, not reused: every op with an output width of its own (conv,
sep_conv, factorized_reduce, ...) gets ``width / K``, so their parameters and activations shrink
by K or more. α keeps its groups, rows and candidates, so the discretisation of the plain
supernet applies to the partial-channel one; β only weights which edges a node keeps
(``grammar.darts.decode_genotype``). ``k == 1`` returns an unchanged copy (plain DARTS).

Pure and torch-free: the input graph is never edited.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pydantic import ValidationError

from .errors import ConfigError, GenomorphError
from .graph import Graph, NodeId
from .ops import (
    Add,
    ChannelShuffle,
    ChannelSlice,
    Concat,
    Conv,
    EdgeSum,
    FactorizedReduce,
    MaxPool,
    Mixed,
    OpBase,
    Shape,
)
from .verify import verify

log = logging.getLogger(__name__)

#: op classes whose output width is a field although their traits give none (``width_field``
#: is for rewrites that follow an input's channels; factorized_reduce only reads them)
_OWN_WIDTH: dict[type[OpBase], str] = {FactorizedReduce: "channels"}


def partial_channels(graph: Graph, k: int) -> Graph:
    """The PC-DARTS form of supernet ``graph`` with 1/``k`` of every edge's channels in its ops.

    Raises ConfigError (with what to change) when an edge cannot be split: its channel count is
    not a multiple of ``k``, its candidates change the channel count, or a narrowed op no longer
    fits (e.g. factorized_reduce needs an even width).
    """
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"partial channels K must be a positive integer, got {k!r}")
    if k == 1:
        return graph.copy()
    shapes = graph.shapes()
    mixed = [nid for nid in graph.order() if isinstance(graph.op(nid), Mixed)]
    if not mixed:
        raise ConfigError("partial channels applies to supernets, but the genome has no mixed ops")
    out = graph.copy()
    replaced: dict[NodeId, NodeId] = {}
    for m in mixed:
        replaced[m] = _split_edge(graph, out, m, k, shapes, replaced)
    sums = _normalise_edges(graph, out, replaced)
    out.remove_unreachable([graph.output_node(), *graph.aux_outputs()])  # the replaced mixed nodes
    try:
        verify(out)
    except GenomorphError as err:
        raise ConfigError(
            f"partial channels K={k} does not fit this supernet: {err.message}",
            span=getattr(err, "span", None),
            hint="choose a K that divides the channels of every edge (and keeps factorized_reduce widths even)",
        ) from None
    log.info("partial channels K=%d: %d edges split, %d nodes edge-normalised", k, len(replaced), sums)
    return out


def _split_edge(
    graph: Graph,
    out: Graph,
    m: NodeId,
    k: int,
    shapes: Mapping[NodeId, Shape],
    replaced: dict[NodeId, NodeId],
) -> NodeId:
    """Add the partial-channel form of mixed node ``m`` to ``out``; return its output node.

    ``replaced`` maps the mixed nodes already split to their new outputs: an edge may read one.
    """
    x, chains = edge_input(graph, m)
    source = replaced.get(x, x)
    node = graph.node(m)
    where = node.describe()
    if len(shapes[x]) != 3:
        raise ConfigError(f"partial channels splits image channels, but {where} mixes vectors")
    (c, h, w), (c_out, h_out, w_out) = shapes[x], shapes[m]
    if c_out != c:
        raise ConfigError(
            f"partial channels needs edges that keep their channel count, but the candidates of {where} "
            f"map {c} channels to {c_out}",
            hint="leave partial channels at 1 for this search space",
        )
    if c % k:
        raise ConfigError(
            f"partial channels K={k} needs the channels of every edge divisible by {k}, but {where} reads {c}",
            hint=f"choose a K that divides {c}",
        )
    part = c // k
    sampled = out.add(ChannelSlice(start=0, stop=part), [source])
    candidates = []
    for chain in chains:
        value = sampled
        for nid in chain:
            value = out.add(_narrowed(graph, nid, k), [value], span=graph.node(nid).span)
        candidates.append(value)
    edge = out.add(node.op, candidates, span=node.span)
    rest = out.add(ChannelSlice(start=part, stop=c), [source])
    if (h_out, w_out) != (h, w):
        rest = out.add(_bypass_pool(where, (h, w), (h_out, w_out)), [rest])
    joined = out.add(Concat(), [edge, rest])
    if node.name is not None:  # the name moves to the value that now stands for the edge
        out.set_name(m, None)
    shuffled = out.add(ChannelShuffle(groups=k), [joined], name=node.name, span=node.span)
    out.replace_uses(m, shuffled)
    return shuffled


def edge_input(graph: Graph, m: NodeId) -> tuple[NodeId, list[list[NodeId]]]:
    """The value every candidate of mixed node ``m`` starts from, and each candidate's op chain
    after it (in flow order; empty when the candidate is that value itself)."""
    paths = [_path_back(graph, cand) for cand in graph.inputs(m)]
    others = [set(p) for p in paths[1:]]
    common = next((nid for nid in paths[0] if all(nid in p for p in others)), None)
    if common is None:
        raise ConfigError(
            f"partial channels needs the candidates of {graph.node(m).describe()} to be chains of "
            "single-input ops from one value",
            hint="write each candidate as a chain, e.g. mixed(relu sep_conv(16, 3), skip, ...)",
        )
    return common, [list(reversed(p[: p.index(common)])) for p in paths]


def _path_back(graph: Graph, nid: NodeId) -> list[NodeId]:
    """``nid`` and the values before it along single inputs, up to a merge or the input."""
    path = [nid]
    while graph.kind(nid) != "input" and len(ins := graph.inputs(nid)) == 1:
        nid = ins[0]
        path.append(nid)
    return path


def _narrowed(graph: Graph, nid: NodeId, k: int) -> OpBase:
    """The op of ``nid`` with its own output width (if any) divided by ``k``."""
    op = graph.op(nid)
    field = op.traits.width_field or _OWN_WIDTH.get(type(op))
    if field is None:
        return op  # batch norm, activations, pools, zero, identity: sized by their input
    width = getattr(op, field)
    if width % k:
        raise ConfigError(
            f"partial channels K={k} cannot narrow {graph.node(nid).describe()}: its width {width} "
            f"is not divisible by {k}",
            span=graph.node(nid).span,
        )
    data = op.model_dump() | {field: width // k}
    if isinstance(op, Conv) and op.is_depthwise(graph.input_shapes(nid)):
        data["groups"] = width // k  # one filter per channel, at the new width too
    try:
        return type(op).model_validate(data)
    except ValidationError as err:
        reason = err.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"partial channels K={k} narrows {graph.node(nid).describe()} to width {width // k}: {reason}",
            span=graph.node(nid).span,
            hint="choose a smaller K",
        ) from None


def _bypass_pool(where: str, size: tuple[int, int], reduced: tuple[int, int]) -> MaxPool:
    """The max-pool that brings the bypassed channels to the size of a strided edge's output."""
    factor = -(-size[0] // reduced[0])
    if any(-(-s // factor) != r for s, r in zip(size, reduced, strict=True)):
        raise ConfigError(
            f"partial channels cannot pool the bypassed channels of {where} from {size[0]}x{size[1]} "
            f"to {reduced[0]}x{reduced[1]}: the edge must reduce both sides by one integer factor"
        )
    return MaxPool(kernel=factor, ceil_mode=any(s % factor for s in size))


def _normalise_edges(graph: Graph, out: Graph, replaced: dict[NodeId, NodeId]) -> int:
    """Turn every add of split edges of one group into an edge_sum over their rows."""
    count = 0
    for nid in graph.order():
        ins = graph.inputs(nid)
        if not isinstance(graph.op(nid), Add) or not all(i in replaced for i in ins):
            continue
        ops = [graph.op(i) for i in ins]
        groups = {op.group for op in ops}  # type: ignore[attr-defined]
        if len(groups) != 1:
            continue  # edges of different groups have no common β to normalise over
        by_row = sorted(zip((op.row for op in ops), ins, strict=True))  # type: ignore[attr-defined]
        rows = [row for row, _ in by_row]
        if rows != list(range(rows[0], rows[0] + len(rows))):
            raise ConfigError(
                f"edge normalisation weights the edges into {graph.node(nid).describe()} by consecutive "
                f"rows of their group, but they use rows {rows}",
                span=graph.node(nid).span,
                hint="number the rows of the edges into one node consecutively, as the DARTS cell space does",
            )
        out.set_op(nid, EdgeSum(group=groups.pop(), first=rows[0]))
        out.set_inputs(nid, [replaced[i] for _, i in by_row])
        count += 1
    return count


__all__ = ["edge_input", "partial_channels"]
