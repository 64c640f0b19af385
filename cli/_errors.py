"""How the CLI ends: the exit-status contract in one place.

- 0: success;
- 1: an internal error (a bug in genomorph): one short line, then the traceback for the report;
- 2: bad input: any :class:`GenomorphError` (its ``str`` already holds location, caret and
  hint) or a click usage error (click itself exits 2 for those).

:func:`guarded` wraps a callable in that contract; the ``genomorph`` group applies it to every
subcommand, so commands simply raise and never catch.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

import click
from genomorph.ir.errors import GenomorphError

T = TypeVar("T")

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2


def report_user_error(err: GenomorphError) -> None:
    click.echo(str(err), err=True)


def report_internal_error(err: BaseException) -> None:
    click.echo(
        f"genomorph: internal error: {type(err).__name__}: {err}\n"
        "This is a bug in genomorph, not in your input; please report it with the traceback below.",
        err=True,
    )
    click.echo("".join(traceback.format_exception(err)).rstrip(), err=True)


def guarded(call: Callable[[], T]) -> T:
    """Run ``call``; turn user errors into exit 2 and unexpected exceptions into exit 1.

    click's own exceptions (usage errors, ``Exit``, ``Abort``) pass through untouched: click
    turns them into their exit statuses itself.
    """
    try:
        return call()
    except GenomorphError as err:
        report_user_error(err)
        raise click.exceptions.Exit(EXIT_BAD_INPUT) from None
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except BrokenPipeError:
        # `genomorph fmt x | head`: the reader went away, which is not an error of ours; point
        # stdout at devnull so Python's final flush does not raise again (Python docs' recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise click.exceptions.Exit(EXIT_OK) from None
    except Exception as err:
        report_internal_error(err)
        raise click.exceptions.Exit(EXIT_INTERNAL) from None
