"""One error hierarchy for everything a user can get wrong.

`GenomorphError` is the root; the CLI catches it, prints `str(err)` and exits with status 2.
Anything else that escapes is a bug in genomorph and keeps its traceback (exit 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Where a piece of IR came from in genome text (1-based line and column)."""

    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    file: str = "<genome>"
    source_line: str | None = None

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def caret(self) -> str:
        """The source line with `^^^` under the spot, or '' when the text is unknown."""
        if self.source_line is None:
            return ""
        width = 1
        if self.end_line == self.line and self.end_column and self.end_column > self.column:
            width = self.end_column - self.column
        text = self.source_line.rstrip("\n")
        width = max(1, min(width, len(text) - self.column + 1))
        return f"    {text}\n    {' ' * (self.column - 1)}{'^' * width}"


class GenomorphError(Exception):
    """Base of every error caused by user input (exit status 2 in the CLI)."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def __str__(self) -> str:
        head = f"{self.span.location()}: " if self.span else ""
        parts = [f"{head}error: {self.message}"]
        if self.span and self.span.caret():
            parts.append(self.span.caret())
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class GenomeError(GenomorphError):
    """Anything wrong with a genome text or the graph it describes."""


class GenomeSyntaxError(GenomeError):
    """The text does not follow the grammar."""


class GenomeSemanticError(GenomeError):
    """The text parses but means nothing valid: unknown op, bad argument, undefined name, cycle."""


class ShapeError(GenomeError):
    """Shapes do not fit together: channel or spatial mismatch, kernel larger than input, ..."""


class VerifyError(GenomeError):
    """The graph breaks a structural invariant (arity, acyclicity, one input, one output)."""


class NotApplicable(GenomorphError):
    """A rewrite was asked for where it does not apply; nothing was changed."""


class LoweringError(GenomorphError):
    """The IR cannot be turned into a torch module (e.g. weights of the wrong shape)."""


class DataError(GenomorphError):
    """A dataset cannot be found, read or does not fit the genome."""


class ConfigError(GenomorphError):
    """A configuration or search-space file is invalid."""
