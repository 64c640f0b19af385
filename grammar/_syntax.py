"""Lark's parse errors re-raised as GenomeSyntaxError: position, caret, and a useful hint.

"expected one of ..." is shown only when there are at most five alternatives (a longer list
helps nobody); an unfinished genome says so and points at the bracket left open; common
typos are recognised from example mistakes (as lark's ``match_examples`` does, see ``_typo``)
and named.
"""

from __future__ import annotations

import functools
import re

from genomorph.ir.errors import GenomeSyntaxError
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ._source import Source

#: how regex terminals read in a message (string terminals show their literal text)
_TERMINAL_NAMES: dict[str, str] = {
    "NAME": "a name",
    "ANON": "a %N name",
    "DIMS": "a shape such as 3x32x32",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": 'a "string"',
    "_NL": "a line break",
    "$END": "the end of the genome",
}

_INPUT_SHAPE = "write the input shape without spaces, e.g. `input 3x32x32`"

#: common mistakes: label -> genomes that make the parser fail in the same state
_EXAMPLES: dict[str, list[str]] = {
    "separate arguments with commas": ["conv(32 3)", "maxpool(2 2)", "conv(32, k=3 s=2)"],
    "separate layers with spaces, not commas": ["input 3x8x8\nconv(8, 3), relu", "input 2 relu, linear(2)"],
    "an argument is missing between the commas": ["conv(32,, 3)", "conv(, 3)"],
    "a keyword argument needs a value after `=`": ["conv(32, k=)", "conv(k=, 3)"],
    _INPUT_SHAPE: [
        "input 3 x 32 x 32",
        "input (3, 32, 32)",
        "input [3, 32, 32]",
    ],
    "a def needs `= chain` or `{ statements }` after its name": ["def f(c) conv(c)", "def f conv"],
    "layers follow each other with spaces; there are no arrows": [
        "input 2 linear(2) -> relu",
        "input 2 -> linear(2)",
    ],
}


def _describe_terminal(parser: Lark, name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    try:
        pattern = parser.get_terminal(name).pattern
    except KeyError:
        return name
    return f"`{pattern.value}`" if pattern.type == "str" else name.lower()


def _expected(parser: Lark, names: set[str] | frozenset[str]) -> str | None:
    shown = sorted({_describe_terminal(parser, n) for n in names if n not in ("COMMENT", "WS")})
    if not shown or len(shown) > 5:
        return None
    return "expected " + (shown[0] if len(shown) == 1 else "one of " + ", ".join(shown))


def _token_text(token: Token) -> str:
    return "line break" if token.type == "_NL" else f"`{token.value}`"


def unclosed_bracket(text: str) -> tuple[str, int, int] | None:
    """The innermost bracket left open at the end of ``text`` (skipping strings and comments)."""
    stack: list[tuple[str, int, int]] = []
    line, column = 1, 0
    in_string = in_comment = escaped = False
    for ch in text:
        column += 1
        if ch == "\n":
            line, column = line + 1, 0
            in_comment = in_string = False
            continue
        if in_comment:
            continue
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == "#":
            in_comment = True
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            stack.append((ch, line, column))
        elif ch in ")]}" and stack:
            stack.pop()
    return stack[-1] if stack else None


@functools.cache
def _example_errors(parser: Lark) -> dict[tuple[object, str], str]:
    """(parser state, unexpected token type) -> label, from parsing each example once."""
    found: dict[tuple[object, str], str] = {}
    for label, texts in _EXAMPLES.items():
        for text in texts:
            try:
                parser.parse(text)
            except UnexpectedToken as err:
                found.setdefault((err.state.position, err.token.type), label)
            except UnexpectedInput:
                continue
    return found


#: `input 3, 32, 32` fails in the same state as `relu, tanh`; the text before tells them apart
_INPUT_PREFIX = re.compile(r"\s*(%?\w+\s*=\s*)?input\s+\d+\s*$")


def _typo(err: UnexpectedToken, parser: Lark, source: Source) -> str | None:
    """The label of a known mistake that fails in the same parser state on the same token.

    Like lark's ``match_examples``, but matching the state alone (not the depth of the stack,
    which depends on what came before) and requiring the same kind of token.
    """
    before = (source.line(err.line) or "")[: err.column - 1]
    if err.token.type == "COMMA" and _INPUT_PREFIX.fullmatch(before):
        return _INPUT_SHAPE
    return _example_errors(parser).get((err.state.position, err.token.type))


_STATEMENT_START = "a statement starts with `input`, `def`, a value name, an op or `_`"
_LEGAL = set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=()[]{},;+-*/%"# \t\n')


def _bracket_hint(token: Token, text: str) -> str | None:
    """For a stray closing bracket: which opener it fails to match."""
    pairs = {")": "(", "]": "[", "}": "{"}
    if token.value not in pairs or token.start_pos is None:
        return None
    opened = unclosed_bracket(text[: token.start_pos])
    if opened is None:
        return f"`{token.value}` has no matching `{pairs[token.value]}`"
    if opened[0] != pairs[token.value]:
        return f"`{token.value}` cannot close the `{opened[0]}` at {opened[1]}:{opened[2]}"
    return None


def syntax_error(err: UnexpectedInput, source: Source, parser: Lark) -> GenomeSyntaxError:
    """Translate a lark error into the project's error with position, caret and hint."""
    at_end = isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END")
    if at_end:
        expected = _expected(parser, getattr(err, "expected", set()))
        hints = []
        opened = unclosed_bracket(source.text)
        if opened:
            closer = {"(": ")", "[": "]", "{": "}"}[opened[0]]
            hints.append(f"the `{opened[0]}` at {opened[1]}:{opened[2]} is never closed with `{closer}`")
        if expected:
            hints.append(expected)
        return GenomeSyntaxError("the genome ended unexpectedly", source.end(), "; ".join(hints) or None)
    hint: str | None
    if isinstance(err, UnexpectedToken):
        message = f"unexpected {_token_text(err.token)}"
        accepts = err.accepts or err.expected
        hint = _typo(err, parser, source) or _bracket_hint(err.token, source.text)
        hint = hint or _expected(parser, accepts - {"$END"})
        if hint is None and {"INPUT", "DEF"} <= accepts:
            hint = _STATEMENT_START
    elif isinstance(err, UnexpectedCharacters):
        char = source.text[err.pos_in_stream] if err.pos_in_stream < len(source.text) else "?"
        message = f"unexpected character {char!r}"
        if char not in _LEGAL:
            hint = "this character has no meaning in a genome"
        elif char == '"':
            hint = 'a string is missing its closing `"` on this line'
        else:
            hint = _expected(parser, err.allowed or set())
    else:  # pragma: no cover - lark raises only the kinds above for LALR
        message, hint = "the genome cannot be parsed", None
    return GenomeSyntaxError(message, source.point(err.line, err.column), hint)
