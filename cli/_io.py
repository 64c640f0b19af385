"""Reading genomes and writing results: the argument types and options commands share."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from genomorph.ir import Graph

F = TypeVar("F", bound=Callable[..., Any])

STDIN = "-"


@dataclass(frozen=True)
class Source:
    """A genome's text and the name error messages use for it (the path, or ``<stdin>``)."""

    text: str
    name: str
    path: Path | None = None


def read_source(spec: str) -> Source:
    """Read ``spec`` (a path, or ``-`` for standard input); raise click.BadParameter when unreadable."""
    if spec == STDIN:
        return Source(sys.stdin.read(), "<stdin>")
    path = Path(spec)
    try:
        return Source(path.read_text(encoding="utf-8"), spec, path)
    except FileNotFoundError:
        raise click.BadParameter(f"no such file: {spec}") from None
    except IsADirectoryError:
        raise click.BadParameter(f"{spec} is a directory, not a genome file") from None
    except UnicodeDecodeError as err:
        raise click.BadParameter(f"{spec} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise click.BadParameter(f"cannot read {spec}: {err.strerror}") from None


class SourceType(click.ParamType):
    """A click argument type: a genome file path or ``-``, converted to a :class:`Source`."""

    name = "FILE|-"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Source:
        if isinstance(value, Source):
            return value
        try:
            return read_source(str(value))
        except click.BadParameter as err:
            self.fail(err.message, param, ctx)


def load_graph(source: Source) -> Graph:
    """Parse, verify and infer shapes (GenomeError with file:line:col on bad input)."""
    from genomorph.grammar import parse

    return parse(source.text, source_name=source.name)


def write_output(text: str | bytes, output: Path | None) -> None:
    """Write to ``output``, or to standard output when it is None or ``-``."""
    if output is None or str(output) == STDIN:
        if isinstance(text, bytes):
            sys.stdout.buffer.write(text)
            sys.stdout.flush()
        else:
            click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            output.write_bytes(text)
        else:
            output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise click.FileError(str(output), hint=err.strerror) from None


# ---------------------------------------------------------------------------- reusable options
def genome_argument(name: str = "source") -> Callable[[F], F]:
    """The ``FILE|-`` argument, already read into a :class:`Source`."""
    return click.argument(name, metavar="FILE|-", type=SourceType())


def output_option(help_text: str = "Write here instead of standard output.") -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
        default=None,
        help=help_text,
    )


def json_option(help_text: str = "Print one JSON object instead of a table.") -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def network_options(func: F) -> F:
    """``--channels/--cells/--classes``: the macro-network size of converted architectures."""
    options = [
        click.option("--channels", "-C", type=click.IntRange(min=1), help="Initial channels (C)."),
        click.option("--cells", "-N", type=click.IntRange(min=1), help="Number of cells (N)."),
        click.option("--classes", "-K", type=click.IntRange(min=1), help="Output classes.  [default: 10]"),
    ]
    for option in reversed(options):
        func = option(func)
    return func
