"""Changing the channels (or units) of one value, and everything that change drags along.

Widening, pruning, concatenating a skip and removing a concat input all change the channel
axis of some value. This module, written once and shared by all of them, works out which
other values must change with it and how every affected weight is rebuilt.

A change is described by a **channel map** ``src``: one entry per new channel, holding the old
channel it continues (``>= 0``) or ``-1`` for a fresh one. Widening by zero padding is
``[0, 1, ..., C-1, -1, -1]``, Net2Net widening repeats old indices, pruning keeps a subset.

Propagation (``plan``) walks the graph from the changed value:

- forward through ops that keep the channel axis (role ``pass``: batch norm, activations,
  pooling, depthwise conv, ...) — their outputs change the same way;
- through merges that need equal shapes (role ``addlike``) forward *and backward*: every other
  input of an ``add`` must change the same way, up to the layers that produce it;
- forward through ``concat`` (the change moves to an offset) and ``flatten`` (one channel
  becomes ``H*W`` features), role ``derived``, which start a new, derived map;
- it stops at the layers that read the value (roles ``layer`` and ``reader``): their
  input columns are remapped — fresh columns are zero (the function is kept), a column whose
  channel was replicated ``n`` times is divided by ``n`` (Net2Net).

It refuses (``NotApplicable``) when the change would reach the network's input or output,
an auxiliary output, or something that cannot follow (a grouped conv, a value feeding a
concat from behind).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from genomorph.ir.errors import NotApplicable
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import OpBase, Shape
from genomorph.ir.traits import ChannelRole, Layout

from ._base import Work, describe, memo_refusal
from ._init import fan_in, uniform


def role(graph: Graph, nid: NodeId) -> ChannelRole:
    """How a node relates to its channels: pass, addlike, derived, layer, reader or fixed."""
    op = graph.op(nid)
    if type(op).channel_role is OpBase.channel_role:
        # the kind's trait as it stands: reading the input shapes of every node a change
        # reaches would cost a fifth of widen's candidate list on deep chains
        return op.traits.channels
    return op.channel_role(graph.input_shapes(nid))


def layout_of(graph: Graph, nid: NodeId) -> Layout:
    """Where the node's tensors keep their channels (the op's ``channel_layout``)."""
    return graph.op(nid).channel_layout(graph.input_shapes(nid))


@dataclass
class Plan:
    """Which values change channels, how, and which layers read them."""

    maps: dict[NodeId, np.ndarray]
    """New channel map of every changed value (old widths are in the unedited graph)."""
    layers: set[NodeId]
    """Layers whose own output width changes (their rows are rebuilt, their op resized)."""
    readers: dict[NodeId, NodeId]
    """Layer -> the changed value it reads (its input columns are rebuilt)."""
    virtual: NodeId | None = None
    """The changed value whose own weights stay (a new concat, a removed block's output)."""
    weighted_pass: set[NodeId] = field(default_factory=set)
    """Changed pass-through nodes with per-channel tensors (batch norm, depthwise conv)."""
    layouts: dict[NodeId, Layout] = field(default_factory=dict)
    """Tensor layout of every affected node, fixed before the caller edits the graph."""

    def affected(self) -> set[NodeId]:
        """Nodes whose weights this change rebuilds."""
        return self.layers | set(self.readers) | self.weighted_pass


class _Planner:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.shapes = graph.shapes()
        self.output = graph.output_node()
        self.parent: dict[NodeId, NodeId] = {}
        self.derived: set[NodeId] = set()
        self.layers: set[NodeId] = set()
        self.readers: dict[NodeId, NodeId] = {}
        self.forwarded: set[NodeId] = set()
        self.todo: list[tuple[str, NodeId, NodeId | None]] = []

    # union-find over values that must share one channel map
    def find(self, n: NodeId) -> NodeId:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def join(self, n: NodeId, other: NodeId | None = None) -> None:
        g = self.graph
        if n == self.output or g.kind(n) == "aux":
            raise NotApplicable(
                f"the change would reach {describe(g, n)}, an output of the network, whose width is fixed",
                hint="choose a layer whose channels are read by another layer before the output",
            )
        if g.kind(n) == "input":
            raise NotApplicable(
                f"the change would reach the network input {describe(g, n)}, whose width is fixed"
            )
        self.parent.setdefault(n, n)
        if other is not None:
            self.parent[self.find(n)] = self.find(other)

    def forward(self, n: NodeId) -> None:
        if n in self.forwarded:
            return
        self.forwarded.add(n)
        g = self.graph
        for user, _ in g.users(n):
            how = role(g, user)
            if how == "pass":
                self.join(user, n)
                self.todo.append(("fwd", user, None))
            elif how == "addlike":
                self.join(user, n)
                self.todo.append(("fwd", user, None))
                self.todo.extend(("bwd", other, user) for other in g.inputs(user) if other != n)
            elif how == "derived":
                self.join(user)
                self.derived.add(user)
                self.todo.append(("fwd", user, None))
            elif how in ("layer", "reader"):
                self.readers[user] = n
            else:
                self.join(user)  # raises for outputs
                raise NotApplicable(
                    f"{describe(g, user)} reads the changed channels and cannot follow the change",
                    hint="grouped convolutions keep their channel count",
                )

    def backward(self, n: NodeId, via: NodeId) -> None:
        g = self.graph
        if n in self.parent:
            self.parent[self.find(n)] = self.find(via)
            return
        how = role(g, n)
        if how == "pass":
            self.join(n, via)
            self.todo.append(("bwd", g.inputs(n)[0], n))
        elif how == "addlike":
            self.join(n, via)
            self.todo.extend(("bwd", i, n) for i in g.inputs(n))
        elif how == "layer":
            self.join(n, via)
            self.layers.add(n)
        else:
            self.join(n)  # raises for input/outputs
            raise NotApplicable(
                f"{describe(g, n)} would have to change its channels to match a merge, which it cannot",
                hint="a value produced by concat, flatten or a fixed-width op cannot be resized from behind",
            )
        self.todo.append(("fwd", n, None))

    def drain(self) -> None:
        while self.todo:
            what, n, via = self.todo.pop()
            if what == "fwd":
                self.forward(n)
            else:
                assert via is not None
                self.backward(n, via)


@dataclass(frozen=True)
class _Reach:
    """What a change of ``seed`` reaches: everything of a `Plan` but the channel maps.

    It depends on the graph and the seed only, never on the map, so it is kept in the graph's
    cache (cleared by every edit): a rewrite checks that a change is possible, then plans the
    real one at the same node (add-neurons, prune-neurons, ``select``, the noisy groups), and a
    strategy plans the same layers of one network many times per iteration."""

    roots: Mapping[NodeId, NodeId]
    """Every changed value -> the representative of the values that share its map."""
    derived: tuple[NodeId, ...]
    layers: frozenset[NodeId]
    readers: Mapping[NodeId, NodeId]
    weighted_pass: frozenset[NodeId]
    layouts: Mapping[NodeId, Layout]


def _reach(graph: Graph, seed: NodeId, virtual: bool) -> _Reach:
    """The memoised `_Reach` of ``seed`` (a refusal too, raised again as new)."""
    return memo_refusal(graph, ("channels.reach", seed, virtual), lambda: _walk(graph, seed, virtual))


def _walk(graph: Graph, seed: NodeId, virtual: bool) -> _Reach:
    planner = _Planner(graph)
    planner.join(seed)
    if not virtual:
        if role(graph, seed) != "layer":
            raise NotApplicable(f"{describe(graph, seed)} does not produce channels of its own")
        planner.layers.add(seed)
    planner.todo.append(("fwd", seed, None))
    planner.drain()
    members = set(planner.parent)
    weighted = {n for n in members - {seed} if role(graph, n) == "pass" and _has_tensors(graph, n)}
    layers = planner.layers - ({seed} if virtual else set())
    affected = layers | set(planner.readers) | weighted
    return _Reach(
        roots=MappingProxyType({n: planner.find(n) for n in planner.parent}),
        derived=tuple(sorted(planner.derived)),
        layers=frozenset(layers),
        readers=MappingProxyType(dict(planner.readers)),
        weighted_pass=frozenset(weighted),
        layouts=MappingProxyType({n: layout_of(graph, n) for n in affected}),
    )


def plan(
    graph: Graph, seed: NodeId, src: np.ndarray, *, virtual: bool = False, keep: Iterable[NodeId] = ()
) -> Plan:
    """Propagate "value ``seed`` now has channels ``src``" through ``graph`` (not edited yet).

    With ``virtual`` the seed's own op and weights stay as they are: the caller is about to
    put something else (a concat, a bypass) in its place for its users. Values in ``keep``
    (and, for a virtual seed, the values it is computed from) must not change.
    """
    src = np.asarray(src, dtype=np.int64)
    reach = _reach(graph, seed, virtual)
    fixed = set(keep) | (set(graph.inputs(seed)) if virtual else set())
    caught = sorted(fixed & reach.roots.keys())
    if caught:
        raise NotApplicable(
            f"the change would come back around to {describe(graph, caught[0])}, whose channels must stay",
            hint="the readers of the changed value are merged with values it is computed from",
        )
    return Plan(
        maps=_resolve(graph, reach, seed, src),
        layers=set(reach.layers),
        readers=dict(reach.readers),
        virtual=seed if virtual else None,
        weighted_pass=set(reach.weighted_pass),
        layouts=dict(reach.layouts),
    )


def _has_tensors(graph: Graph, nid: NodeId) -> bool:
    op, ins = graph.op(nid), [graph.shape(i) for i in graph.inputs(nid)]
    return bool(op.param_shapes(ins) or op.buffer_shapes(ins))


def _resolve(graph: Graph, reach: _Reach, seed: NodeId, src: np.ndarray) -> dict[NodeId, np.ndarray]:
    """Give every changed value its map: the seed's class gets ``src``, concat/flatten derive theirs."""
    g, shapes, roots = graph, graph.shapes(), reach.roots
    definition: dict[NodeId, NodeId] = {}
    for n in [seed, *reach.derived]:
        root = roots[n]
        if root in definition:
            raise NotApplicable(
                f"the change reaches {describe(g, n)} in two different ways",
                hint="the channels would have to be resized inconsistently",
            )
        definition[root] = n
    resolved: dict[NodeId, np.ndarray] = {}
    busy: set[NodeId] = set()

    def resolve(root: NodeId) -> np.ndarray:
        if root in resolved:
            return resolved[root]
        if root in busy:
            raise NotApplicable(f"the change feeds back into itself around {describe(g, root)}")
        busy.add(root)
        n = definition[root]
        if n == seed:
            m = src
        elif g.kind(n) == "concat":
            pieces, offset = [], 0
            for i in g.inputs(n):
                width = shapes[i][0]
                part = resolve(roots[i]) if i in roots else np.arange(width)
                pieces.append(np.where(part >= 0, part + offset, -1))
                offset += width
            m = np.concatenate(pieces)
        else:  # flatten: channel c becomes features c*H*W .. c*H*W + H*W - 1
            i = g.inputs(n)[0]
            spatial = int(np.prod(shapes[i][1:], dtype=np.int64))
            part = resolve(roots[i])
            block = part[:, None] * spatial + np.arange(spatial)[None, :]
            m = np.where(part[:, None] >= 0, block, -1).reshape(-1)
        busy.discard(root)
        resolved[root] = m
        return m

    return {n: resolve(root) for n, root in roots.items()}


# ---------------------------------------------------------------------------- realising a plan
def _fresh(
    kind: str, shape: Shape, dtype: np.dtype, rng: np.random.Generator, bound_shape: Shape
) -> np.ndarray:
    if kind == "one":
        return np.ones(shape, dtype=dtype)
    if kind == "init":
        return uniform(rng, shape, 1 / np.sqrt(fan_in(bound_shape))).astype(dtype)
    return np.zeros(shape, dtype=dtype)


def remap(
    array: np.ndarray,
    axis: int,
    src: np.ndarray,
    fresh: str,
    rng: np.random.Generator,
    bound_shape: Shape,
) -> np.ndarray:
    """``array`` with slice ``j`` along ``axis`` taken from old slice ``src[j]``, or fresh where -1.

    ``fresh="mix"`` marks input columns of a mixing layer: fresh ones are zero and a column
    copied ``n`` times is divided by ``n``. The input is never written into.
    """
    old = src >= 0
    # the common maps keep a prefix in place (widen, net2net, concat): copy it as one slice
    prefix = len(src) if old.all() else int(np.argmin(old))
    if not np.array_equal(src[:prefix], np.arange(prefix)):
        prefix = 0
    at = (slice(None),) * axis
    if prefix == len(src) == array.shape[axis]:
        out = array.copy()
    elif prefix == len(src):
        out = np.ascontiguousarray(array[(*at, slice(0, prefix))])
    else:
        shape = list(array.shape)
        shape[axis] = len(src)
        out = np.empty(shape, dtype=array.dtype)
        out[(*at, slice(0, prefix))] = array[(*at, slice(0, prefix))]
        rest = np.flatnonzero(old[prefix:]) + prefix
        if len(rest):
            out[(*at, rest)] = np.take(array, src[rest], axis=axis)
        new = np.flatnonzero(~old)
        if len(new):
            shape[axis] = len(new)
            out[(*at, new)] = (
                0 if fresh == "mix" else _fresh(fresh, tuple(shape), array.dtype, rng, bound_shape)
            )
    if fresh == "mix" and old.any():
        counts = np.bincount(src[old], minlength=array.shape[axis])
        if counts.max() > 1:  # Net2Net copies share their outgoing weight
            scale = np.where(old, 1.0 / np.maximum(counts[np.where(old, src, 0)], 1), 0.0).astype(array.dtype)
            view = [1] * array.ndim
            view[axis] = len(src)
            out *= scale.reshape(view)
    return out


def _replicas(src: np.ndarray) -> np.ndarray:
    """Positions of channels that copy an old channel already copied at an earlier position."""
    seen: set[int] = set()
    out = []
    for j, s in enumerate(src.tolist()):
        if s >= 0 and s in seen:
            out.append(j)
        seen.add(s)
    return np.asarray(out, dtype=np.int64)


def realise(work: Work, plan: Plan, *, noise: float = 0.0) -> None:
    """Resize ops and rebuild weights in ``work`` as ``plan`` says (graph edits already made).

    ``noise`` (Net2Net's symmetry breaking, off by default) perturbs the incoming weights of
    replicated channels by ``noise`` times their tensor's standard deviation.
    """
    g, rng = work.graph, work.rng
    out_side = plan.layers | plan.weighted_pass
    for nid in sorted(out_side | set(plan.readers)):
        if nid not in g:  # removed by the caller's edit (a cut branch)
            continue
        out_map = plan.maps.get(nid) if nid in out_side else None
        in_map = plan.maps[plan.readers[nid]] if nid in plan.readers else None
        if nid in plan.weighted_pass:
            in_map = None  # batch norm, depthwise conv: input and output channels are one map
        arrays = dict(work.arrays(nid))
        for name, places in plan.layouts[nid].items():
            if name not in arrays:
                continue
            array = arrays[name]
            bound = arrays.get(name.replace("bias", "weight"), array).shape
            for space, axis, fresh in places:
                src = out_map if space == "out" else in_map
                if src is None:
                    continue
                array = remap(array, axis, src, fresh, rng, bound)
                if noise and space == "out" and fresh == "init" and nid in plan.layers:
                    rows = _replicas(src)
                    if len(rows):
                        moved = np.moveaxis(array, axis, 0)
                        moved[rows] += (noise * array.std() * rng.standard_normal(moved[rows].shape)).astype(
                            array.dtype
                        )
            arrays[name] = array
        if arrays:
            work.put(nid, arrays)
        if out_map is not None and (nid in plan.layers or g.op(nid).traits.width_field is not None):
            # a layer, or a pass-through op with a width of its own (a depthwise conv)
            g.set_op(nid, g.op(nid).resized(len(out_map)))


def identity_map(width: int) -> np.ndarray:
    return np.arange(width, dtype=np.int64)


def widened(width: int, extra: int) -> np.ndarray:
    return np.concatenate([identity_map(width), -np.ones(extra, dtype=np.int64)])


def kept(width: int, remove: Iterable[int]) -> np.ndarray:
    drop = set(remove)
    return np.asarray([c for c in range(width) if c not in drop], dtype=np.int64)


def outgoing_places(plan: Plan, units: Iterable[int]) -> list[tuple[NodeId, str, int, np.ndarray]]:
    """``(reader, tensor name, axis, indices)`` of every input weight that reads ``units`` of the
    planned value: what `scale_outgoing` scales (the tensor may be absent from the weights)."""
    units = np.asarray(sorted(set(units)), dtype=np.int64)
    out = []
    for reader, value in plan.readers.items():
        cols = np.flatnonzero(np.isin(plan.maps[value], units))
        for name, places in plan.layouts[reader].items():
            out += [
                (reader, name, axis, cols)
                for space, axis, fresh in places
                if space == "in" and fresh == "mix"
            ]
    return out


def scale_outgoing(work: Work, plan: Plan, units: Iterable[int], factor: float) -> None:
    """Multiply the input columns that read ``units`` of the planned value by ``factor``.

    Used with an identity plan to fade units out before pruning them (paper 000).
    """
    places = outgoing_places(plan, units)
    for reader in plan.readers:
        arrays = dict(work.arrays(reader))
        for name, axis, cols in ((n, a, c) for r, n, a, c in places if r == reader and n in arrays):
            array = arrays[name].copy()
            np.moveaxis(array, axis, 0)[cols] *= factor
            arrays[name] = array
        work.put(reader, arrays)


def output_width(graph: Graph, nid: NodeId) -> int:
    return graph.shape(nid)[0]
