"""The graph IR: a small class wrapping a private networkx multigraph.

Node = one op (a frozen pydantic model) + an optional value name + the source span it came
from; node ids are integers that never change once given, so weights keyed by id survive
rewrites. Edge = tensor flow ``src -> dst`` carrying the input ``port`` of ``dst`` (argument
order matters for concat, convex, weighted_sum, mixed). A multigraph, because ``add(x, x)``
has two edges between the same pair of nodes.

Editing methods exist for builders and for rewrites working on their own ``copy()``: a
rewrite never edits the graph it was given.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

import networkx as nx

from .errors import Span, VerifyError
from .ops import OpBase, Shape

if TYPE_CHECKING:
    from .stats import GraphStats

NodeId = int
T = TypeVar("T")


@dataclass(frozen=True)
class Node:
    id: NodeId
    op: OpBase
    name: str | None = None
    span: Span | None = None

    @property
    def kind(self) -> str:
        return self.op.kind  # type: ignore[attr-defined]

    def describe(self) -> str:
        """How error messages name a node: ``n7 (conv 'stem')``."""
        label = f" '{self.name}'" if self.name else ""
        return f"n{self.id} ({self.kind}{label})"


class Graph:
    """A DAG of ops. Read API is cheap and cached; every edit clears the caches."""

    def __init__(self) -> None:
        self._g: nx.MultiDiGraph = nx.MultiDiGraph()
        self._next_id: NodeId = 0
        self._cache: dict[str, object] = {}
        #: where the genome came from, for error messages ("<genome>" or a file path)
        self.source_name: str = "<genome>"

    # ------------------------------------------------------------------ editing
    def add(
        self,
        op: OpBase,
        inputs: Sequence[NodeId] = (),
        *,
        name: str | None = None,
        span: Span | None = None,
        node_id: NodeId | None = None,
    ) -> NodeId:
        """Add a node fed by ``inputs`` (in port order) and return its id."""
        nid = self._next_id if node_id is None else node_id
        if nid in self._g:
            raise ValueError(f"node id {nid} already exists")
        self._next_id = max(self._next_id, nid + 1)
        self._g.add_node(nid, node=Node(nid, op, name, span))
        for port, src in enumerate(inputs):
            if src not in self._g:
                raise ValueError(f"input n{src} of new node does not exist")
            self._g.add_edge(src, nid, key=port, port=port)
        self._cache.clear()
        return nid

    def remove(self, nid: NodeId) -> None:
        """Remove a node and all its edges (users must be rewired first by the caller)."""
        self._g.remove_node(nid)
        self._cache.clear()

    def set_op(self, nid: NodeId, op: OpBase) -> None:
        old = self.node(nid)
        self._g.nodes[nid]["node"] = Node(nid, op, old.name, old.span)
        self._cache.clear()

    def set_name(self, nid: NodeId, name: str | None) -> None:
        old = self.node(nid)
        self._g.nodes[nid]["node"] = Node(nid, old.op, name, old.span)
        self._cache.clear()

    def set_inputs(self, nid: NodeId, inputs: Sequence[NodeId]) -> None:
        """Replace all inputs of ``nid`` by ``inputs`` in port order."""
        for src, _, key in list(self._g.in_edges(nid, keys=True)):
            self._g.remove_edge(src, nid, key=key)
        for port, src in enumerate(inputs):
            self._g.add_edge(src, nid, key=port, port=port)
        self._cache.clear()

    def replace_uses(self, old: NodeId, new: NodeId, *, keep: Iterable[NodeId] = ()) -> None:
        """Make every user of ``old`` (except those in ``keep``) read ``new`` instead."""
        keep_set = set(keep)
        for user, port in self.users(old):
            if user in keep_set:
                continue
            inputs = self.inputs(user)
            inputs[port] = new
            self.set_inputs(user, inputs)

    def unreachable(self, keep: Iterable[NodeId]) -> list[NodeId]:
        """The nodes from which none of ``keep`` (the outputs) can be reached, in topological order."""
        alive: set[NodeId] = set()
        todo = list(keep)
        while todo:
            nid = todo.pop()
            if nid not in alive:
                alive.add(nid)
                todo.extend(self.inputs(nid))
        return [nid for nid in self.order() if nid not in alive]

    def remove_unreachable(self, keep: Iterable[NodeId]) -> set[NodeId]:
        """Remove every node from which none of ``keep`` (the outputs) can be reached; return
        their ids (candidates a discretisation did not choose, what a removed branch fed)."""
        dead = self.unreachable(keep)
        for nid in reversed(dead):
            self.remove(nid)
        return set(dead)

    def new_id(self) -> NodeId:
        """The id the next ``add`` will use."""
        return self._next_id

    def copy(self) -> Graph:
        other = Graph()
        other._g = self._g.copy()
        other._next_id = self._next_id
        other.source_name = self.source_name
        # what the passes computed holds for the copy too (immutable values; an edit of either
        # graph clears its own cache): a rewrite's checks on its copy need not compute it again.
        # The memo table itself is shared, so a fact either one memoises before its first edit
        # is there for both (a worker's copy of a strategy's graph: one computation for both)
        self._cache.setdefault("memo", {})
        other._cache.update(self._cache)
        return other

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def __contains__(self, nid: object) -> bool:
        return nid in self._g

    def __iter__(self) -> Iterator[NodeId]:
        return iter(self.order())

    def node(self, nid: NodeId) -> Node:
        try:
            return self._g.nodes[nid]["node"]
        except KeyError:
            raise KeyError(f"no node n{nid} in the graph") from None

    def op(self, nid: NodeId) -> OpBase:
        return self.node(nid).op

    def kind(self, nid: NodeId) -> str:
        return self.node(nid).kind

    def nodes(self) -> list[Node]:
        """All nodes in deterministic topological order."""
        return [self.node(n) for n in self.order()]

    def inputs(self, nid: NodeId) -> list[NodeId]:
        """Producers of ``nid``'s inputs, sorted by port."""
        # rewrites and passes ask for the same node's inputs many times between edits: per node,
        # cached until the next edit (the adjacency maps directly: networkx's edge views cost more)
        cached: dict[NodeId, tuple[NodeId, ...]] = self._cache.setdefault("inputs", {})  # type: ignore[assignment]
        found = cached.get(nid)
        if found is None:
            edges = sorted(
                (d["port"], src) for src, keys in self._adjacent(self._g.pred, nid) for d in keys.values()
            )
            found = cached[nid] = tuple(src for _, src in edges)
        return list(found)

    def in_ports(self, nid: NodeId) -> list[int]:
        return sorted(d["port"] for _, keys in self._adjacent(self._g.pred, nid) for d in keys.values())

    def users(self, nid: NodeId) -> list[tuple[NodeId, int]]:
        """``(consumer, port)`` pairs reading ``nid``, sorted."""
        cached: dict[NodeId, tuple[tuple[NodeId, int], ...]] = self._cache.setdefault("users", {})  # type: ignore[assignment]
        found = cached.get(nid)
        if found is None:
            found = cached[nid] = tuple(
                sorted(
                    (dst, d["port"]) for dst, keys in self._adjacent(self._g.succ, nid) for d in keys.values()
                )
            )
        return list(found)

    @staticmethod
    def _adjacent(adjacency: Mapping, nid: NodeId) -> Iterable[tuple[NodeId, Mapping]]:
        try:
            return adjacency[nid].items()
        except KeyError:
            raise KeyError(f"no node n{nid} in the graph") from None

    def user_ids(self, nid: NodeId) -> list[NodeId]:
        return sorted({dst for dst, _ in self.users(nid)})

    def edges(self) -> list[tuple[NodeId, NodeId, int]]:
        """``(src, dst, port)`` for every edge, sorted."""
        return sorted((s, t, d["port"]) for s, t, d in self._g.edges(data=True))

    def order(self) -> list[NodeId]:
        """Deterministic topological order (smallest id first among the ready nodes)."""
        if "order" not in self._cache:
            self._cache["order"] = self._topological_order()
        return list(self._cache["order"])  # type: ignore[arg-type]  # a copy: callers may edit it

    def _topological_order(self) -> list[NodeId]:
        """Kahn's algorithm with a heap of the ready ids: ``nx.lexicographical_topological_sort``'s
        order, on the adjacency maps directly (rewrites edit and re-sort a graph many times, and
        networkx's general version costs several times more)."""
        pred, succ = self._g.pred, self._g.succ
        waiting = {n: len(pred[n]) for n in pred}
        ready = [n for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order: list[NodeId] = []
        while ready:
            nid = heapq.heappop(ready)
            order.append(nid)
            for user in succ[nid]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready, user)
        if len(order) < len(waiting):
            cycle = nx.find_cycle(self._g)
            names = " -> ".join(self.node(s).describe() for s, *_ in cycle)
            raise VerifyError(f"the graph has a cycle: {names}")
        return order

    def input_node(self) -> NodeId:
        found = [n for n in self.order() if self.kind(n) == "input"]
        if len(found) != 1:
            raise VerifyError(
                f"a genome needs exactly one input, found {len(found)}",
                hint="declare the input once, e.g. `input 3x32x32`",
            )
        return found[0]

    def output_node(self) -> NodeId:
        """The main output: the one sink that is not an auxiliary output."""
        if "output" in self._cache:  # rewrites ask once per node: keep it O(1) on deep graphs
            return self._cache["output"]  # type: ignore[return-value]
        sinks = [n for n in self.order() if self._g.out_degree(n) == 0 and self.kind(n) != "aux"]
        if len(sinks) != 1:
            described = ", ".join(self.node(n).describe() for n in sinks) or "none"
            span = self.node(sinks[0]).span if len(sinks) > 1 else None
            raise VerifyError(
                f"a genome needs exactly one output, found {len(sinks)}: {described}",
                span=span,
                hint="every value except the last must be used, or marked as an auxiliary output with `aux`",
            )
        self._cache["output"] = sinks[0]
        return sinks[0]

    def aux_outputs(self) -> list[NodeId]:
        return [n for n in self.order() if self.kind(n) == "aux"]

    def find(self, name: str) -> NodeId:
        """Node id from a user's reference: ``n7``, ``7`` or a value name."""
        text = name.strip()
        if text.startswith("n") and text[1:].isdigit():
            text = text[1:]
        if text.isdigit() and int(text) in self._g:
            return int(text)
        for node in self.nodes():
            if node.name == name:
                return node.id
        raise KeyError(name)

    def histogram(self) -> dict[str, int]:
        return dict(sorted(Counter(self.kind(n) for n in self.order()).items()))

    # ------------------------------------------------------------------ passes (cached)
    def shapes(self) -> Mapping[NodeId, Shape]:
        """Output shape of every node (raises ShapeError naming the node).

        A read-only view of the cache, not a copy: passes call this once per node.
        """
        if "shapes" not in self._cache:
            from .shapes import infer_shapes

            self._cache["shapes"] = MappingProxyType(infer_shapes(self))
        return self._cache["shapes"]  # type: ignore[return-value]

    def shape(self, nid: NodeId) -> Shape:
        """Output shape of one node, without copying the whole table (cheap in loops)."""
        if "shapes" not in self._cache:
            self.shapes()
        return self._cache["shapes"][nid]  # type: ignore[index]

    def input_shapes(self, nid: NodeId) -> list[Shape]:
        return [self.shape(i) for i in self.inputs(nid)]

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, computed once for this graph until its next edit (and shared with its
        copies): for a pass's fact about an unchanged graph that many callers ask for, such as
        which layers can be pruned. ``key`` names the fact and its arguments; the value must be
        immutable (every caller gets the same object)."""
        memos: dict[Hashable, object] = self._cache.setdefault("memo", {})  # type: ignore[assignment]
        if key not in memos:
            memos[key] = compute()
        return memos[key]  # type: ignore[return-value]

    def stats(self) -> GraphStats:
        if "stats" not in self._cache:
            from .stats import compute_stats

            self._cache["stats"] = compute_stats(self)
        return self._cache["stats"]  # type: ignore[return-value]

    # ------------------------------------------------------------------ identity
    def relabeled(self) -> tuple[Graph, dict[NodeId, NodeId]]:
        """A copy whose ids are 0..n-1 in topological order, and the old -> new id map.

        This is the numbering ``parse(print(g))`` produces, so weights keyed by ``g``'s ids
        can be carried over to a re-parsed genome with the returned map.
        """
        mapping = {old: new for new, old in enumerate(self.order())}
        out = Graph()
        out.source_name = self.source_name
        for old in self.order():
            node = self.node(old)
            out.add(node.op, [mapping[i] for i in self.inputs(old)], name=node.name, span=node.span)
        if "shapes" in self._cache:  # the same ops and wiring under new ids: the same shapes
            shapes = self._cache["shapes"]
            out._cache["shapes"] = MappingProxyType({mapping[n]: s for n, s in shapes.items()})  # type: ignore[attr-defined]
        return out, mapping

    def structure(self) -> tuple:
        """A hashable value equal for graphs with the same ops, names and wiring (ids and spans ignored)."""
        mapping = {old: new for new, old in enumerate(self.order())}
        return tuple(
            (self.node(n).op, self.node(n).name, tuple(mapping[i] for i in self.inputs(n)))
            for n in self.order()
        )

    def same_structure(self, other: Graph) -> bool:
        return self.structure() == other.structure()

    def __repr__(self) -> str:
        return f"<Graph {len(self)} nodes>"
