"""Argument values: evaluating literal expressions and turning call arguments into op models.

Pure functions over the syntax tree. A failure raises :class:`Problem` (message, position,
hint); the builder adds its context (which def expansion) and re-raises it as a GenomeError.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping

from genomorph.ir.ops import OpBase
from pydantic import ValidationError

from ._ast import Arg, BinOp, Call, Chain, Expr, ListExpr, Neg, Num, Pos, Str, Word
from ._vocab import ARG_ALIASES, LITERAL_WORDS, describe_fields, field_order

Literal = int | float | bool | str | None | tuple


class Problem(Exception):
    """A mistake found while evaluating values; the builder turns it into a GenomeError."""

    def __init__(self, message: str, pos: Pos, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint


def single_word(expr: Expr) -> Word | None:
    """The word when ``expr`` is a chain of one bare word (a name, parameter or string)."""
    if isinstance(expr, Chain) and len(expr.terms) == 1 and isinstance(expr.terms[0], Word):
        return expr.terms[0]
    return None


def literal(expr: Expr, consts: Mapping[str, object]) -> object:
    """The value of an argument expression; ``consts`` are the def parameters in scope."""
    if isinstance(expr, Num):
        if isinstance(expr.value, float) and not math.isfinite(expr.value):
            raise Problem(f"the number at {expr.pos.line}:{expr.pos.column} is too large", expr.pos)
        return expr.value
    if isinstance(expr, Str):
        return expr.value
    if isinstance(expr, ListExpr):
        return tuple(literal(item, consts) for item in expr.items)
    if isinstance(expr, Neg):
        return -_number(literal(expr.operand, consts), expr.operand.pos)
    if isinstance(expr, BinOp):
        return _arith(expr, consts)
    word = single_word(expr)
    if word is None:
        raise Problem(
            "expected a value (number, true/false, string or list) but found a chain of ops",
            expr.pos,
            "only merges, defs and hres take chains as arguments",
        )
    if word.name in consts:
        return consts[word.name]
    if word.name in LITERAL_WORDS:
        return LITERAL_WORDS[word.name]
    return word.name  # a bare string, e.g. group=normal


def _number(value: object, pos: Pos) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Problem(f"arithmetic needs numbers, got {value!r}", pos)
    return value


def _arith(expr: BinOp, consts: Mapping[str, object]) -> int | float:
    left = _number(literal(expr.left, consts), expr.left.pos)
    right = _number(literal(expr.right, consts), expr.right.pos)
    try:
        if expr.op == "+":
            out = left + right
        elif expr.op == "-":
            out = left - right
        elif expr.op == "*":
            out = left * right
        elif expr.op == "//":
            out = left // right
        else:
            out = left / right
    except ZeroDivisionError:
        raise Problem("division by zero", expr.pos) from None
    except OverflowError:
        raise Problem("the result is too large", expr.pos) from None
    if isinstance(out, float) and not math.isfinite(out):
        raise Problem("the result is too large", expr.pos)
    return out


def op_fields(
    cls: type[OpBase], preset: Mapping[str, object], args: list[tuple[Arg, object]], call: Call | Word
) -> tuple[dict[str, object], dict[str, Pos]]:
    """Map evaluated arguments onto the op's fields: positional ones in ``field_order``.

    Returns the fields and where each was written (for pointing at a bad value).
    """
    kind = cls.model_fields["kind"].default
    order = field_order(cls)
    fields: dict[str, object] = dict(preset)
    where: dict[str, Pos] = {}
    position = 0
    for arg, value in args:
        if arg.key is None:
            if position >= len(order):
                raise Problem(
                    f"{kind} takes at most {len(order)} positional argument(s) but got more",
                    arg.pos,
                    f"{kind} accepts: {describe_fields(cls)}",
                )
            name = order[position]
            position += 1
        else:
            name = ARG_ALIASES.get(arg.key, arg.key)
            if name not in order:
                close = difflib.get_close_matches(arg.key, [*order, *ARG_ALIASES], n=1)
                guess = f"did you mean `{close[0]}`? " if close else ""
                raise Problem(
                    f"{kind} has no argument `{arg.key}`",
                    arg.pos,
                    f"{guess}{kind} accepts: {describe_fields(cls)}",
                )
        if name in where:
            raise Problem(f"argument `{name}` of {kind} is given twice", arg.pos)
        fields[name] = list_to_tuple(value)
        where[name] = arg.pos
    return fields, where


def list_to_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def make_op(cls: type[OpBase], fields: dict[str, object], where: Mapping[str, Pos], call_pos: Pos) -> OpBase:
    """Validate the fields into the op model; a bad value points at its argument."""
    kind = cls.model_fields["kind"].default
    try:
        return cls.model_validate(fields, strict=True)
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        if first["type"] == "missing":
            usage = ", ".join(cls.positional) or field
            raise Problem(
                f"{kind} needs a value for `{field}`", call_pos, f"write it as {kind}({usage})"
            ) from None
        message = str(first["msg"]).removeprefix("Value error, ")
        value = first.get("input")
        raise Problem(
            f"bad value {_show(value)} for `{field}` of {kind}: {message}",
            where.get(field, call_pos),
            f"{kind} accepts: {describe_fields(cls)}",
        ) from None


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
