"""What every rewrite shares: the record it leaves, its result, its registry entry and the driver.

A rewrite module defines a frozen dataclass ``Move`` whose first field is ``node`` (the place
it acts on), ``_moves(graph, node, context)`` (the moves at one node, or ``NotApplicable``
saying why none) and ``edit(work, move) -> Outcome``, and registers them as one
:class:`Rewrite` (``REWRITE = Rewrite("deepen", True, Move, _moves, edit, context=...)``).
The ``Rewrite`` owns what every module used to repeat: ``moves_at`` and ``candidates`` (the
``context`` — non-negativity, reachability — is computed once per graph, not once per node),
``apply(graph, weights, move, rng)`` and the seeded replay. ``edit`` changes a :class:`Work`
— a copy of the graph and a copy of the weights dict — and :func:`run` does the rest:
copying, drawing a seed, filling missing weights, verifying, recording. Modules re-export
``apply``, ``candidates`` and ``moves_at`` as the bound methods of their ``REWRITE``.

Weights are treated as immutable values: a rewrite never writes into an array, it puts a new
one in its copy of the dict. Untouched arrays are therefore shared between the input and the
result, which keeps a morphism of a large network cheap.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
from genomorph.ir.errors import GenomeError, NotApplicable
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import OpBase
from genomorph.ir.verify import verify
from genomorph.ir.weights import Weights, check_weights
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ._init import fill_missing

SEED_BOUND = 2**63 - 1
T = TypeVar("T")


class Record(BaseModel):
    """One applied rewrite, as a log prints it and as a history replays it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rewrite: str
    """Registry name of the rewrite (``deepen``, ``skip-add``, ...)."""
    move: dict[str, Any]
    """The resolved move (every choice made), as plain JSON data."""
    seed: int
    """Seed of the generator that drew every random number of this application."""
    exact: bool
    """Whether the rewrite preserves the network function."""
    text: str
    """The sentence a log prints."""
    created: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    repair: tuple[int, ...] = ()
    """Nodes whose weights need repair training (approximate rewrites)."""

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class RewriteResult:
    graph: Graph
    weights: Weights
    record: Record
    repair: tuple[NodeId, ...] = ()


@dataclass
class Work:
    """The mutable scratch state of one application: copies that belong to the rewrite."""

    graph: Graph
    weights: Weights
    rng: np.random.Generator

    def put(self, nid: NodeId, arrays: dict[str, np.ndarray]) -> None:
        self.weights[nid] = arrays

    def arrays(self, nid: NodeId) -> dict[str, np.ndarray]:
        return self.weights.get(nid, {})


@dataclass(frozen=True)
class Outcome:
    """What a rewrite's ``_edit`` reports: the fully resolved move and a sentence."""

    move: Any
    text: str
    repair: tuple[NodeId, ...] = ()
    exact: bool | None = None
    """Overrides the rewrite's exactness for this move (e.g. Net2Net with noise is not exact)."""


class Edit(Protocol):
    def __call__(self, work: Work, move: Any) -> Outcome: ...


def describe(graph: Graph, nid: NodeId) -> str:
    return graph.node(nid).describe()


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        if all(isinstance(v, int) for v in value):
            return "x".join(str(v) for v in value)
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def op_text(op: OpBase) -> str:
    """An op as genome text, e.g. ``conv(32, 3, bias=false)`` or ``relu``."""
    args = op.arguments()
    parts = [_value(args.pop(name)) for name in op.positional if name in args]
    parts += [f"{name}={_value(value)}" for name, value in args.items()]
    kind = op.kind  # type: ignore[attr-defined]
    return f"{kind}({', '.join(parts)})" if parts else kind


def move_to_dict(move: Any) -> dict[str, Any]:
    def plain(value: object) -> object:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    return {f.name: plain(getattr(move, f.name)) for f in dataclasses.fields(move)}


def move_from_dict(move_type: type, data: dict[str, Any]) -> Any:
    """Rebuild and type-check a Move from plain data (a record's JSON, or a user's settings).

    Lists become tuples, and a single value given for a tuple field becomes a 1-tuple.
    """
    fields = {f.name: f for f in dataclasses.fields(move_type)}
    rewrite = move_type.__module__.rsplit(".", 1)[-1].replace("_", "-")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise NotApplicable(
            f"a {rewrite} move has no field {unknown[0]!r}", hint=f"its fields are {', '.join(fields)}"
        )
    values = {}
    for name, value in data.items():
        wants_tuple = "tuple" in str(fields[name].type)
        if wants_tuple and value is not None and not isinstance(value, list | tuple):
            value = (value,)
        values[name] = value
    try:
        return _adapter(move_type).validate_python(values)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise NotApplicable(
            f"bad {rewrite} move: {where}: {problem['msg']} (got {problem.get('input')!r})",
            hint=f"its fields are {', '.join(fields)}",
        ) from None


@functools.cache
def _adapter(move_type: type) -> TypeAdapter[Any]:
    return TypeAdapter(move_type)


def collect(
    graph: Graph,
    moves_at: Callable[[Graph, NodeId, Weights | None], list[Any]],
    weights: Weights | None = None,
    nodes: Iterable[NodeId] | None = None,
) -> list[Any]:
    """Every move of one rewrite, gathered node by node in topological order."""
    out: list[Any] = []
    for nid in graph.order() if nodes is None else nodes:
        try:
            out.extend(moves_at(graph, nid, weights))
        except NotApplicable:
            continue
    return out


def draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(SEED_BOUND))


def run(
    name: str,
    exact: bool,
    edit: Edit,
    graph: Graph,
    weights: Weights | None,
    move: Any,
    seed: int,
) -> RewriteResult:
    """Apply ``edit`` to copies of ``graph``/``weights``; verify and record the result.

    The inputs are never touched: every edit happens on ``graph.copy()`` and on a new dict of
    arrays, so a ``NotApplicable`` raised half-way leaves nothing behind.
    """
    rng = np.random.default_rng(seed)
    work = Work(graph.copy(), fill_missing(graph, weights, rng), rng)
    before = set(graph.order())
    outcome = edit(work, move)
    out = work.graph
    try:
        verify(out)
    except GenomeError as err:
        raise NotApplicable(
            f"{name} would make an invalid network here: {err.message}",
            hint="choose another place (see the candidates of this rewrite)",
        ) from None
    after = set(out.order())
    for gone in set(work.weights) - after:
        del work.weights[gone]
    try:
        check_weights(out, work.weights)
    except GenomeError as err:  # a rewrite that forgot to reshape weights is a bug, not bad input
        raise RuntimeError(f"{name} left inconsistent weights: {err.message}") from err
    repair = tuple(sorted(n for n in set(outcome.repair) if n in after))
    record = Record(
        rewrite=name,
        move=move_to_dict(outcome.move),
        seed=seed,
        exact=exact if outcome.exact is None else outcome.exact,
        text=f"{name}: {outcome.text}",
        created=tuple(sorted(after - before)),
        removed=tuple(sorted(before - after)),
        repair=repair,
    )
    return RewriteResult(out, work.weights, record, repair)


def require(condition: bool, why: str, hint: str | None = None) -> None:
    """Raise NotApplicable(why) unless ``condition`` holds."""
    if not condition:
        raise NotApplicable(why, hint=hint)


def memo_refusal(graph: Graph, key: Hashable, compute: Callable[[], T]) -> T:
    """``graph.memo`` of ``compute()`` where a refusal (`NotApplicable`) is a result too: memoised,
    and raised again as a new exception to every caller (rewrites ask "can this layer be pruned /
    widened?" of every node of an unchanged graph many times)."""

    def outcome() -> T | _Refusal:
        try:
            return compute()
        except NotApplicable as err:
            return _Refusal(err.message, err.span, err.hint)

    found = graph.memo(key, outcome)
    if isinstance(found, _Refusal):
        raise NotApplicable(found.message, span=found.span, hint=found.hint)
    return found  # type: ignore[return-value]


@dataclass(frozen=True)
class _Refusal:
    message: str
    span: Any
    hint: str | None


def require_node(graph: Graph, nid: NodeId) -> None:
    require(nid in graph, f"there is no node n{nid} in the genome")


def no_context(graph: Graph, weights: Weights | None) -> None:
    """The context of a rewrite whose places need nothing computed over the whole graph."""
    return None


Moves = Callable[[Graph, NodeId, Any], list[Any]]
Context = Callable[[Graph, Weights | None], Any]


@dataclass(frozen=True)
class Rewrite:
    """One rewrite: its name, exactness, move type, places and edit; what the registry lists."""

    name: str
    """Registry and CLI name (``deepen``, ``skip-add``, ...)."""
    exact: bool
    """Whether the rewrite preserves the network function."""
    move_type: type
    moves: Moves
    """``(graph, node, context) -> moves`` at one node, raising NotApplicable when none."""
    edit: Edit
    context: Context = no_context
    """``(graph, weights) -> context`` shared by every node's ``moves`` in one candidate list."""

    def moves_at(self, graph: Graph, node: NodeId, weights: Weights | None = None) -> list[Any]:
        """The moves at ``node``; NotApplicable says why there are none."""
        require_node(graph, node)
        return self.moves(graph, node, self.context(graph, weights))

    def candidates(self, graph: Graph, weights: Weights | None = None) -> list[Any]:
        """Every move of this rewrite in ``graph``, node by node in topological order."""
        context = self.context(graph, weights)
        return collect(graph, lambda g, n, w: self.moves(g, n, context))

    def apply(
        self, graph: Graph, weights: Weights | None, move: Any, rng: np.random.Generator
    ) -> RewriteResult:
        """Apply ``move`` purely: the inputs are never touched; the seed is drawn from ``rng``."""
        return run(self.name, self.exact, self.edit, graph, weights, move, draw_seed(rng))

    def apply_seeded(self, graph: Graph, weights: Weights | None, move: Any, seed: int) -> RewriteResult:
        """Apply ``move`` with the generator of ``seed`` (a record's replay)."""
        return run(self.name, self.exact, self.edit, graph, weights, move, seed)

    def move(self, data: dict[str, Any]) -> Any:
        """A move of this rewrite from plain data (a record's JSON, a user's settings)."""
        return move_from_dict(self.move_type, data)
