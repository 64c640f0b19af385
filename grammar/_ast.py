"""The genome syntax tree: small frozen records, and the lark Transformer that builds them.

The tree says only what was written; what names mean (an op, a value, a parameter, a def) is
decided later by the builder (grammar/_build.py), which knows the scope. Positions are kept as
raw ``Pos`` tuples so the Transformer needs no state; the builder turns them into spans.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from lark import Token, v_args
from lark.tree import Meta
from lark.visitors import Transformer_NonRecursive


class Pos(NamedTuple):
    """1-based line and column of the first character, and of the character after the last."""

    line: int
    column: int
    end_line: int
    end_column: int


class TextProblem(Exception):
    """A token that matched the grammar but cannot be read (e.g. a 5000-digit number)."""

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _int(text: str, pos: Pos) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise TextProblem(f"the number {text[:12]}... has too many digits", pos) from None


def _pos(meta: Meta) -> Pos:
    return Pos(meta.line, meta.column, meta.end_line, meta.end_column)


def _tpos(token: Token) -> Pos:
    return Pos(token.line, token.column, token.end_line, token.end_column)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- terms of a chain
@dataclass(frozen=True)
class Word:
    """A bare name: an op or def without arguments, a value, or a parameter."""

    name: str
    pos: Pos


@dataclass(frozen=True)
class Flow:
    """``_``: the value flowing into the current merge or statement."""

    pos: Pos


@dataclass(frozen=True)
class Anon:
    """``%N``: an anonymous value name (printer-generated, never stored on a node)."""

    name: str
    pos: Pos


@dataclass(frozen=True)
class InputTerm:
    shape: tuple[int, ...]
    pos: Pos


@dataclass(frozen=True)
class Arg:
    key: str | None
    value: Expr
    pos: Pos


@dataclass(frozen=True)
class Call:
    """``name(args)``: an op, a merge, a def call or the ``hres`` form."""

    name: str
    args: tuple[Arg, ...]
    pos: Pos
    name_pos: Pos


Term = Word | Flow | Anon | InputTerm | Call


@dataclass(frozen=True)
class Chain:
    terms: tuple[Term, ...]
    pos: Pos


# ---------------------------------------------------------------------- argument values
@dataclass(frozen=True)
class Num:
    value: int | float
    pos: Pos


@dataclass(frozen=True)
class Str:
    value: str
    pos: Pos


@dataclass(frozen=True)
class ListExpr:
    items: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True)
class Neg:
    operand: Expr
    pos: Pos


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr
    pos: Pos


Expr = Num | Str | ListExpr | Neg | BinOp | Chain


# ---------------------------------------------------------------------- statements
@dataclass(frozen=True)
class Assign:
    target: str
    target_pos: Pos
    chain: Chain


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    pos: Pos


@dataclass(frozen=True)
class Def:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    pos: Pos
    name_pos: Pos


Stmt = Assign | Chain | Def


def _string_value(token: str) -> str:
    # The STRING terminal is a JSON-compatible quoted string; the printer writes json.dumps.
    try:
        return json.loads(token, strict=False)
    except ValueError:
        # Escapes JSON lacks (e.g. "\q") keep the character after the backslash.
        out, chars = [], iter(token[1:-1])
        for ch in chars:
            out.append(next(chars, "") if ch == "\\" else ch)
        return "".join(out)


@v_args(meta=True)
class ToAst(Transformer_NonRecursive):
    """Parse tree -> syntax records. Stateless: positions come from lark's ``meta``."""

    def start(self, meta: Meta, children: list[Any]) -> tuple[Stmt, ...]:
        return tuple(children)

    body = start

    # ---------------------------------------------------------------- statements
    def assign(self, meta: Meta, children: list[Any]) -> Assign:
        target, chain = children
        return Assign(str(target), _tpos(target), chain)

    def def_chain(self, meta: Meta, children: list[Any]) -> Def:
        name, *rest = children
        params = rest[0] if len(rest) == 2 else ()
        return Def(str(name), params, (rest[-1],), _pos(meta), _tpos(name))

    def def_block(self, meta: Meta, children: list[Any]) -> Def:
        name, *rest = children
        params = rest[0] if len(rest) == 2 else ()
        return Def(str(name), params, rest[-1], _pos(meta), _tpos(name))

    def params(self, meta: Meta, children: list[Any]) -> tuple[Param, ...]:
        return tuple(children)

    def param(self, meta: Meta, children: list[Any]) -> Param:
        name, *default = children
        return Param(str(name), default[0] if default else None, _pos(meta))

    # ---------------------------------------------------------------- chains
    def chain(self, meta: Meta, children: list[Any]) -> Chain:
        return Chain(tuple(children), _pos(meta))

    def call(self, meta: Meta, children: list[Any]) -> Call:
        name, *args = children
        return Call(str(name), tuple(args), _pos(meta), _tpos(name))

    def word(self, meta: Meta, children: list[Any]) -> Word:
        return Word(str(children[0]), _pos(meta))

    def flow(self, meta: Meta, children: list[Any]) -> Flow:
        return Flow(_pos(meta))

    def anon(self, meta: Meta, children: list[Any]) -> Anon:
        return Anon(str(children[0]), _pos(meta))

    def input_term(self, meta: Meta, children: list[Any]) -> InputTerm:
        pos = _pos(meta)
        return InputTerm(tuple(_int(d, pos) for d in str(children[0]).split("x")), pos)

    def posarg(self, meta: Meta, children: list[Any]) -> Arg:
        return Arg(None, children[0], _pos(meta))

    def kwarg(self, meta: Meta, children: list[Any]) -> Arg:
        key, value = children
        return Arg(str(key), value, _pos(meta))

    # ---------------------------------------------------------------- values
    def int_(self, meta: Meta, children: list[Any]) -> Num:
        pos = _pos(meta)
        return Num(_int(str(children[0]), pos), pos)

    def dims_(self, meta: Meta, children: list[Any]) -> ListExpr:
        # `kernel=7x1`: a rectangular setting, height x width, read as the list [7, 1]
        pos = _pos(meta)
        return ListExpr(tuple(Num(_int(d, pos), pos) for d in str(children[0]).split("x")), pos)

    def float_(self, meta: Meta, children: list[Any]) -> Num:
        return Num(float(children[0]), _pos(meta))

    def string_(self, meta: Meta, children: list[Any]) -> Str:
        return Str(_string_value(str(children[0])), _pos(meta))

    def neg_(self, meta: Meta, children: list[Any]) -> Neg:
        return Neg(children[0], _pos(meta))

    def list_(self, meta: Meta, children: list[Any]) -> ListExpr:
        return ListExpr(tuple(children), _pos(meta))

    def _binary(self, op: str, meta: Meta, children: list[Any]) -> BinOp:
        left, right = children
        return BinOp(op, left, right, _pos(meta))

    def add_(self, meta: Meta, children: list[Any]) -> BinOp:
        return self._binary("+", meta, children)

    def sub_(self, meta: Meta, children: list[Any]) -> BinOp:
        return self._binary("-", meta, children)

    def mul_(self, meta: Meta, children: list[Any]) -> BinOp:
        return self._binary("*", meta, children)

    def floordiv_(self, meta: Meta, children: list[Any]) -> BinOp:
        return self._binary("//", meta, children)

    def div_(self, meta: Meta, children: list[Any]) -> BinOp:
        return self._binary("/", meta, children)
