"""From the syntax tree to the IR: scopes, the flow, merges, def expansion and ``hres``.

Nodes are created in text order (a merge after its branches), so a flat genome - what the
printer writes - gets ids that follow its lines, and ``parse(print(g))`` numbers nodes in
``g.order()``. Shapes are inferred as each node is created: a shape error is reported at
the op that causes it, with the def expansions it sits in, and long chains stay linear time.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from genomorph.ir.errors import GenomeError, GenomeSemanticError, ShapeError, Span
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Add, Input, OpBase, Shape, ShapeMismatch

from ._ast import Anon, Arg, Assign, Call, Chain, Def, Expr, Flow, InputTerm, Pos, Stmt, Term, Word
from ._source import Source
from ._values import Problem, literal, make_op, op_fields, single_word
from ._vocab import HRES, LITERAL_WORDS, OP_WORDS, RESERVED, resolve_op


@dataclass
class Scope:
    """Names visible in the top level or in one def expansion."""

    def_name: str | None
    #: first assignment of every name in this block, for "used before its definition"
    assigned: dict[str, Pos] = field(default_factory=dict)
    values: dict[str, NodeId] = field(default_factory=dict)
    consts: dict[str, object] = field(default_factory=dict)
    bound_at: dict[str, Pos] = field(default_factory=dict)


def _fmt(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


class Builder:
    """Evaluates one genome's statements into a Graph (one instance per parse)."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.graph = Graph()
        self.graph.source_name = source.file
        self.shapes: dict[NodeId, Shape] = {}
        self.defs: dict[str, tuple[Def, int]] = {}
        self.def_lines: dict[str, Pos] = {}
        #: def expansions in progress, innermost last: (def, where it was called)
        self.stack: list[tuple[Def, Pos]] = []
        self.input_pos: Pos | None = None
        self.top = Scope(None)

    # ------------------------------------------------------------------ errors
    def fail(
        self, message: str, pos: Pos, hint: str | None = None, cls: type[GenomeError] = GenomeSemanticError
    ) -> GenomeError:
        """The error to raise, saying which def expansions it happened in."""
        if self.stack:
            sites = ", ".join(f"`{d.name}` called at {p.line}:{p.column}" for d, p in reversed(self.stack))
            message = f"{message} (in {sites})"
        return cls(message, self.source.span(pos), hint)

    def problem(self, p: Problem) -> GenomeError:
        return self.fail(p.message, p.pos, p.hint)

    # ------------------------------------------------------------------ statements
    def build(self, program: tuple[Stmt, ...]) -> Graph:
        self.def_lines = {s.name: s.name_pos for s in program if isinstance(s, Def)}
        self.block(program, self.top, None)
        if len(self.graph) == 0:
            raise GenomeSemanticError(
                "the genome is empty",
                Span(1, 1, file=self.source.file),
                "start with an input, e.g. `input 3x32x32`",
            )
        return self.graph

    def block(self, stmts: tuple[Stmt, ...], scope: Scope, flow: NodeId | None) -> NodeId | None:
        """Run statements in order; each chain continues from the previous statement's value."""
        for stmt in stmts:
            if isinstance(stmt, Assign) and stmt.target not in scope.assigned:
                scope.assigned[stmt.target] = stmt.target_pos
        for stmt in stmts:
            if isinstance(stmt, Def):
                if scope.def_name is not None:
                    raise self.fail(
                        f"def `{stmt.name}` is inside def `{scope.def_name}`",
                        stmt.name_pos,
                        "write every def at the top level",
                    )
                self.define(stmt)
            elif isinstance(stmt, Assign):
                flow = self.chain(stmt.chain, flow, scope)
                self.bind(scope, stmt.target, flow, stmt.target_pos)
            else:
                flow = self.chain(stmt, flow, scope)
        return flow

    def bind(self, scope: Scope, name: str, value: NodeId, pos: Pos) -> None:
        if name in RESERVED:
            raise self.fail(f"`{name}` is a reserved word or op name and cannot name a value", pos)
        if name in self.defs:
            raise self.fail(f"`{name}` is already a def and cannot name a value", pos)
        if name in scope.values or name in scope.consts:
            where = scope.bound_at.get(name)
            at = f" at {where.line}:{where.column}" if where else " as a parameter"
            raise self.fail(
                f"`{name}` is already defined{at}", pos, "every name is defined once; pick a new name"
            )
        scope.values[name] = value
        scope.bound_at[name] = pos
        # Only top-level names belong to nodes: names inside a def would repeat per expansion.
        if scope.def_name is None and not name.startswith("%") and self.graph.node(value).name is None:
            self.graph.set_name(value, name)

    def define(self, d: Def) -> None:
        if d.name in RESERVED:
            raise self.fail(f"`{d.name}` is a reserved word or op name and cannot name a def", d.name_pos)
        if d.name in self.defs:
            first = self.defs[d.name][0].name_pos
            raise self.fail(f"def `{d.name}` is already defined at {first.line}:{first.column}", d.name_pos)
        if d.name in self.top.values:
            raise self.fail(f"`{d.name}` already names a value", d.name_pos)
        seen: set[str] = set()
        has_default = False
        for param in d.params:
            if param.name in RESERVED:
                raise self.fail(
                    f"`{param.name}` is a reserved word or op name and cannot name a parameter", param.pos
                )
            if param.name in seen:
                raise self.fail(f"parameter `{param.name}` appears twice in def `{d.name}`", param.pos)
            if has_default and param.default is None:
                raise self.fail(
                    f"parameter `{param.name}` without a default follows one with a default",
                    param.pos,
                    "put parameters with defaults last",
                )
            seen.add(param.name)
            has_default |= param.default is not None
        if not d.body:
            raise self.fail(f"the body of def `{d.name}` is empty", d.pos)
        self.defs[d.name] = (d, len(self.defs))

    # ------------------------------------------------------------------ chains
    def chain(self, chain: Chain, flow: NodeId | None, scope: Scope) -> NodeId:
        """Evaluate ``chain`` fed by ``flow``; return its last value."""
        terms = chain.terms
        value, start = self.start(terms[0], flow, scope)
        for term in terms[start:]:
            value = self.apply(term, value, scope)
        if value is None:  # a chain of only `_` with nothing flowing in; start() reports it
            raise self.fail("this chain has no value", chain.pos)
        return value

    def start(self, term: Term, flow: NodeId | None, scope: Scope) -> tuple[NodeId | None, int]:
        """The value a chain starts from and how many terms that used (0: starts from the flow)."""
        if isinstance(term, Flow):
            if flow is None:
                raise self.fail(
                    "`_` has no value here: nothing flows into this statement",
                    term.pos,
                    "start the genome with an input, e.g. `input 3x32x32`",
                )
            return flow, 1
        if isinstance(term, Anon):
            return self.lookup_value(term.name, term.pos, scope), 1
        if isinstance(term, InputTerm):
            return self.input(term), 1
        if isinstance(term, Word):
            name = term.name
            if name in scope.values:
                return scope.values[name], 1
            if name in scope.consts:
                if self.op_name(scope.consts[name]) is None:
                    raise self.fail(
                        f"parameter `{name}` holds {scope.consts[name]!r}, not a value",
                        term.pos,
                        "pass a value name (or a chain) for it when calling the def",
                    )
                return flow, 0
            if name == HRES or name in self.defs or resolve_op(name) is not None:
                return flow, 0
            raise self.undefined(name, term.pos, scope)
        return flow, 0

    def op_name(self, value: object) -> str | None:
        """The op/def name a parameter value stands for, if it is one."""
        if isinstance(value, str) and (value == HRES or value in self.defs or resolve_op(value)):
            return value
        return None

    def apply(self, term: Term, flow: NodeId | None, scope: Scope) -> NodeId:
        """Apply an op, merge, def or hres term to the flow."""
        if isinstance(term, Flow):
            raise self.fail("`_` can only start a chain or a merge input", term.pos)
        if isinstance(term, Anon):
            raise self.fail(
                f"`{term.name}` is a value; a value name can only start a chain",
                term.pos,
                f"to combine it with the flow, use a merge such as add(_, {term.name})",
            )
        if isinstance(term, InputTerm):
            raise self.fail("`input` must start its own statement", term.pos)
        args = term.args if isinstance(term, Call) else ()
        name = term.name
        if name in scope.values:
            raise self.fail(
                f"`{name}` is a value, not an op; a value name can only start a chain",
                term.pos,
                f"to combine it with the flow, use a merge such as add(_, {name})",
            )
        passed = name in scope.consts  # an op or def handed in as a def argument
        if passed:
            bound = self.op_name(scope.consts[name])
            if bound is None:
                raise self.fail(f"parameter `{name}` holds {scope.consts[name]!r}, not an op", term.pos)
            name = bound
        if name == HRES:
            return self.hres(term, args, flow, scope)
        if name in self.defs:
            return self.expand(self.defs[name], term, args, flow, scope, lexical=not passed)
        resolved = resolve_op(name)
        if resolved is None:
            raise self.undefined(name, term.pos, scope, as_op=True)
        cls, preset = resolved
        return self.op(cls, preset, term, args, flow, scope)

    def undefined(self, name: str, pos: Pos, scope: Scope, *, as_op: bool = False) -> GenomeError:
        """The clearest error for a name that means nothing here."""
        if name in scope.assigned:
            at = scope.assigned[name]
            return self.fail(
                f"`{name}` is used before its definition at {at.line}:{at.column}",
                pos,
                "values must be defined before use; a later value feeding an earlier one would make a cycle",
            )
        if name in self.def_lines:
            at = self.def_lines[name]
            return self.fail(
                f"def `{name}` is used before its definition at {at.line}:{at.column}",
                pos,
                "move the def above its first use",
            )
        if scope.def_name is not None and name in self.top.values:
            return self.fail(
                f"`{name}` is not visible inside def `{scope.def_name}`",
                pos,
                "a def body sees only its parameters and its own names; pass the value as a parameter",
            )
        if name.startswith("%"):
            return self.fail(
                f"`{name}` is not defined", pos, f"assign it before use: `{name} = ...` on an earlier line"
            )
        words = [*OP_WORDS, *self.defs] if as_op else [*scope.values, *scope.consts, *OP_WORDS, *self.defs]
        close = difflib.get_close_matches(name, words, n=1)
        what = "op" if as_op else "op or name"
        hint = f"did you mean `{close[0]}`?" if close else "see docs/genome.md for the ops"
        return self.fail(f"unknown {what} `{name}`", pos, hint)

    def lookup_value(self, name: str, pos: Pos, scope: Scope) -> NodeId:
        if name in scope.values:
            return scope.values[name]
        raise self.undefined(name, pos, scope)

    # ------------------------------------------------------------------ nodes
    def add_node(self, op: OpBase, inputs: list[NodeId], pos: Pos) -> NodeId:
        """Add a node and infer its shape now, reporting a mismatch at this op."""
        low, high = op.arity
        kind = op.kind  # type: ignore[attr-defined]
        if len(inputs) < low or (high is not None and len(inputs) > high):
            want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            raise self.fail(f"{kind} takes {want} input(s) but has {len(inputs)}", pos)
        nid = self.graph.add(op, inputs, span=self.source.span(pos))
        ins = [self.shapes[i] for i in inputs]
        try:
            self.shapes[nid] = op.out_shape(ins)
        except ShapeMismatch as err:
            got = ", ".join(_fmt(s) for s in ins)
            raise self.fail(
                f"{self.graph.node(nid).describe()}: {err} (input shapes: {got})", pos, err.hint, ShapeError
            ) from None
        return nid

    def input(self, term: InputTerm) -> NodeId:
        if self.input_pos is not None:
            raise self.fail(
                f"the genome already has an input at {self.input_pos.line}:{self.input_pos.column}",
                term.pos,
                "a genome has exactly one input",
            )
        if self.stack:
            raise self.fail("`input` cannot appear inside a def", term.pos)
        try:
            op = Input(shape=term.shape)
        except ValueError:
            raise self.fail(
                f"bad input shape {_fmt(term.shape)}",
                term.pos,
                "write C x H x W for images (input 3x32x32) or a feature count for vectors (input 64)",
            ) from None
        self.input_pos = term.pos
        return self.add_node(op, [], term.pos)

    def op(
        self,
        cls: type[OpBase],
        preset: dict[str, object],
        term: Call | Word,
        args: tuple[Arg, ...],
        flow: NodeId | None,
        scope: Scope,
    ) -> NodeId:
        kind = cls.model_fields["kind"].default
        if cls.is_merge:
            # Positional arguments of a merge are its inputs, evaluated in order.
            inputs = [self.branch(a.value, flow, scope, kind) for a in args if a.key is None]
            named = [a for a in args if a.key is not None]
        else:
            if flow is None:
                raise self.fail(
                    f"no value flows into `{term.name}`",
                    term.pos,
                    "start the genome with an input (e.g. `input 3x32x32`) or the chain with a value name",
                )
            inputs, named = [flow], list(args)
        try:
            evaluated = [(a, literal(a.value, scope.consts)) for a in named]
            fields, where = op_fields(cls, preset, evaluated, term)
            op = make_op(cls, fields, where, term.pos)
        except Problem as p:
            raise self.problem(p) from None
        if not inputs:
            raise self.fail(
                f"{kind} needs its inputs", term.pos, f"write them as arguments, e.g. {kind}(_, x)"
            )
        return self.add_node(op, inputs, term.pos)

    def branch(self, expr: Expr, flow: NodeId | None, scope: Scope, what: str) -> NodeId:
        """A merge/def/hres input: a chain that starts from ``flow`` unless it names a value."""
        if not isinstance(expr, Chain):
            raise self.fail(
                f"an input of {what} must be a value (a name, `_` or a chain of ops)",
                expr.pos,
                "settings go in keyword arguments, e.g. concat(_, x, downsample=true)",
            )
        return self.chain(expr, flow, scope)

    # ------------------------------------------------------------------ hres
    def hres(self, term: Call | Word, args: tuple[Arg, ...], flow: NodeId | None, scope: Scope) -> NodeId:
        """``hres(W, f1, f2, act=relu)`` = ``add(W, f1 act f2)``: an H-ResNet layer (paper 000)."""
        branches = [a for a in args if a.key is None]
        act_word: object = "relu"
        for a in args:
            if a.key is None:
                continue
            if a.key != "act":
                raise self.fail(f"hres has no argument `{a.key}`", a.pos, "hres(W, f1, f2, act=relu)")
            try:
                act_word = literal(a.value, scope.consts)
            except Problem as p:
                raise self.problem(p) from None
        if len(branches) != 3:
            raise self.fail(
                f"hres takes three branches W, f1, f2 but got {len(branches)}",
                term.pos,
                "hres(linear(4), linear(16), linear(4)) is linear(4) + linear(16) relu linear(4)",
            )
        resolved = resolve_op(act_word) if isinstance(act_word, str) else None
        if (
            resolved is None
            or resolved[0].is_merge
            or any(f.is_required() for f in resolved[0].model_fields.values())
        ):
            raise self.fail(f"hres act must name an activation, got {act_word!r}", term.pos, "e.g. act=tanh")
        if flow is None:
            raise self.fail("no value flows into `hres`", term.pos)
        shortcut = self.branch(branches[0].value, flow, scope, HRES)
        inner = self.branch(branches[1].value, flow, scope, HRES)
        cls, preset = resolved
        try:
            act = make_op(cls, dict(preset), {}, term.pos)
        except Problem as p:
            raise self.problem(p) from None
        hidden = self.add_node(act, [inner], term.pos)
        outer = self.branch(branches[2].value, hidden, scope, HRES)
        return self.add_node(Add(), [shortcut, outer], term.pos)

    # ------------------------------------------------------------------ defs
    def expand(
        self,
        entry: tuple[Def, int],
        term: Call | Word,
        args: tuple[Arg, ...],
        flow: NodeId | None,
        scope: Scope,
        *,
        lexical: bool = True,
    ) -> NodeId:
        """Expand a def at a call site: bind its parameters, run its body on the flow.

        ``lexical``: the body names the def itself (not through a parameter), so it must be
        defined above. Any repetition on the expansion stack is recursion, however it arose.
        """
        d, index = entry
        for outer, _ in self.stack:
            if outer is d:
                raise self.fail(
                    f"def `{d.name}` calls itself", term.pos, "recursive defs would expand forever"
                )
        if lexical and self.stack and index > self.defs[self.stack[-1][0].name][1]:
            caller = self.stack[-1][0].name
            raise self.fail(
                f"def `{d.name}` is used in def `{caller}` before its definition at "
                f"{d.name_pos.line}:{d.name_pos.column}",
                term.pos,
                "move the def above the def that uses it",
            )
        body = Scope(d.name)
        names = [p.name for p in d.params]
        given: dict[str, tuple[Expr, Pos]] = {}
        position = 0
        for a in args:
            if a.key is None:
                if position >= len(names):
                    raise self.fail(
                        f"def `{d.name}` takes {len(names)} argument(s) but got more",
                        a.pos,
                        f"def {d.name}({', '.join(names)})",
                    )
                key = names[position]
                position += 1
            else:
                key = a.key
                if key not in names:
                    raise self.fail(
                        f"def `{d.name}` has no parameter `{key}`",
                        a.pos,
                        f"its parameters are: {', '.join(names) or 'none'}",
                    )
            if key in given:
                raise self.fail(f"parameter `{key}` of `{d.name}` is given twice", a.pos)
            given[key] = (a.value, a.pos)
        # Arguments are evaluated in the caller's scope, defaults in the def's own scope.
        bound: dict[str, tuple[bool, object]] = {}
        for param in d.params:
            if param.name in given:
                bound[param.name] = self.argument(given[param.name][0], flow, scope)
            elif param.default is not None:
                bound[param.name] = self.argument(param.default, flow, body)
            else:
                raise self.fail(
                    f"def `{d.name}` needs a value for parameter `{param.name}`",
                    term.pos,
                    f"def {d.name}({', '.join(names)})",
                )
            is_value, value = bound[param.name]
            if is_value:
                body.values[param.name] = value  # type: ignore[assignment]
            else:
                body.consts[param.name] = value
        self.stack.append((d, term.pos))
        try:
            result = self.block(d.body, body, flow)
        finally:
            self.stack.pop()
        if result is None:
            raise self.fail(f"def `{d.name}` produces no value", term.pos)
        return result

    def argument(self, expr: Expr, flow: NodeId | None, scope: Scope) -> tuple[bool, object]:
        """A def argument: ``(True, node)`` for a value, ``(False, literal)`` otherwise.

        A bare word is a value name, a parameter, true/false/none, or else a string (which may
        name an op or def the body applies); any other chain is a branch from the flow.
        """
        word = single_word(expr)
        if word is not None:
            if word.name in scope.values:
                return True, scope.values[word.name]
            if word.name in scope.consts:
                return False, scope.consts[word.name]
            if word.name in LITERAL_WORDS:
                return False, LITERAL_WORDS[word.name]
            return False, word.name
        if isinstance(expr, Chain):
            return True, self.chain(expr, flow, scope)
        try:
            return False, literal(expr, scope.consts)
        except Problem as p:
            raise self.problem(p) from None
