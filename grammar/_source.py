"""Genome source text: normalisation and positions -> spans for error messages and IR nodes."""

from __future__ import annotations

from genomorph.ir.errors import Span

from ._ast import Pos


def normalize(text: str) -> str:
    """Drop a byte-order mark and turn CRLF into LF, so columns count what a user sees."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


class Source:
    """One genome text and the name it came from (a file path or ``<genome>``)."""

    def __init__(self, text: str, file: str = "<genome>") -> None:
        self.text = text
        self.file = file
        # lark counts lines by "\n" only; str.splitlines would also split on \f, \x1c, ...
        self.lines = text.split("\n")

    def line(self, number: int) -> str | None:
        if 1 <= number <= len(self.lines):
            return self.lines[number - 1]
        return None

    def span(self, pos: Pos) -> Span:
        return Span(pos.line, pos.column, pos.end_line, pos.end_column, self.file, self.line(pos.line))

    def point(self, line: int, column: int) -> Span:
        """A one-character span (syntax errors know only where they stopped)."""
        return Span(line, column, line, column + 1, self.file, self.line(line))

    def end(self) -> Span:
        """Just after the last non-blank character: where an unfinished genome stops."""
        stripped = self.text.rstrip()
        line = stripped.count("\n") + 1
        column = len(stripped) - (stripped.rfind("\n") + 1) + 1
        return self.point(line, column)
