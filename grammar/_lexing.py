"""Post-lexer: newlines end statements except inside ( ) and [ ], where they are dropped.

This lets a long argument list or merge span several lines without a continuation mark,
while newlines inside ``def name { ... }`` keep separating statements.
"""

from __future__ import annotations

from collections.abc import Iterator

from lark import Token
from lark.lark import PostLex

_OPEN = frozenset({"LPAR", "LSQB"})
_CLOSE = frozenset({"RPAR", "RSQB"})


class BracketNewlines(PostLex):
    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            if token.type in _OPEN:
                depth += 1
            elif token.type in _CLOSE:
                depth = max(0, depth - 1)
            elif token.type == "_NL" and depth:
                continue
            yield token
