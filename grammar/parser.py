"""Genome text -> verified IR: the lark LALR parser, the syntax tree, and the builder.

``parse(text)`` is the one entry point; every mistake in the text comes out as a
:class:`~genomorph.ir.errors.GenomeError` subclass with file:line:col, the source line, a
caret and a hint. docs/genome.md is the language reference.
"""

from __future__ import annotations

import functools
from pathlib import Path

from genomorph.ir.errors import GenomeError, GenomeSyntaxError, Span
from genomorph.ir.graph import Graph
from genomorph.ir.verify import verify
from lark import Lark
from lark.exceptions import UnexpectedInput, VisitError

from ._ast import Stmt, TextProblem, ToAst
from ._build import Builder
from ._lexing import BracketNewlines
from ._source import Source, normalize
from ._syntax import syntax_error

GRAMMAR_PATH = Path(__file__).with_name("genome.lark")


@functools.cache
def genome_parser() -> Lark:
    """The LALR parser, built once per process (a few tens of milliseconds)."""
    return Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        postlex=BracketNewlines(),
    )


def parse_syntax(text: str, source_name: str = "<genome>") -> tuple[Stmt, ...]:
    """The syntax tree of ``text`` (no meaning checked yet)."""
    source = Source(normalize(text), source_name)
    return _syntax(source)


def _syntax(source: Source) -> tuple[Stmt, ...]:
    parser = genome_parser()
    try:
        tree = parser.parse(source.text)
    except UnexpectedInput as err:
        raise syntax_error(err, source, parser) from None
    try:
        return ToAst().transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, TextProblem):
            raise GenomeSyntaxError(err.orig_exc.message, source.span(err.orig_exc.pos)) from None
        raise


def parse(text: str, source_name: str = "<genome>") -> Graph:
    """Parse genome text into a verified Graph with shapes inferred.

    Raises GenomeSyntaxError, GenomeSemanticError, ShapeError or VerifyError (all GenomeError).
    """
    source = Source(normalize(text), source_name)
    try:
        program = _syntax(source)
        graph = Builder(source).build(program)
    except RecursionError:
        raise GenomeSyntaxError(
            "the genome nests too deeply",
            Span(1, 1, file=source_name),
            "flatten deeply nested merges into named values",
        ) from None
    try:
        return verify(graph)
    except GenomeError as err:
        if err.span is not None:
            raise
        # A whole-graph problem (e.g. no main output) has no node to point at: point at the end.
        raise type(err)(err.message, source.end(), err.hint) from None


def parse_file(path: str | Path) -> Graph:
    """Parse a ``.genome`` file; errors name the file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GenomeError(f"no such genome file: {file}", hint="check the path") from None
    except UnicodeDecodeError as err:
        raise GenomeError(f"{file} is not UTF-8 text ({err.reason})") from None
    except OSError as err:
        raise GenomeError(f"cannot read {file}: {err.strerror}") from None
    return parse(text, str(file))
