"""Log records of a running search, printed through the rich console above its progress bars.

The CLI logs to standard error with a plain stream handler (``-v``: info, ``-vv``: debug). While
a search shows live progress bars, a plain write lands inside the live display and the next
refresh overwrites it: a warning about a broken meta-parameter edit lost its first line, the one
with FILE:LINE:COL. `console_logging` swaps the root logger's stream handlers for one that prints
through the console for the duration of the search.

Library code that has something the user should see without ``-v`` (a live setting that took
effect) logs it at INFO on a child of `NOTICE_LOGGER`; `show_notices` lets those through at the
default level. Warnings are printed as ``warning: ...`` in yellow, notices as their message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

#: parent logger of what is shown to the user at INFO even without ``-v``
NOTICE_LOGGER = "genomorph.notice"
#: the CLI's format of other records (as ``logging.basicConfig`` in ``main``)
FORMAT = "%(levelname)s %(name)s: %(message)s"


def show_notices() -> None:
    """Let INFO records of the notice loggers through, whatever the root level."""
    logging.getLogger(NOTICE_LOGGER).setLevel(logging.INFO)


class ConsoleHandler(logging.Handler):
    """Prints records with ``console.print`` (rich keeps them above a live progress display)."""

    def __init__(self, console: Console, formatter: logging.Formatter | None = None) -> None:
        super().__init__()
        self.console = console
        self.setFormatter(formatter or logging.Formatter(FORMAT))

    def format(self, record: logging.LogRecord) -> str:
        if record.name == NOTICE_LOGGER or record.name.startswith(NOTICE_LOGGER + "."):
            return record.getMessage()
        if record.levelno >= logging.WARNING and record.name.startswith("genomorph"):
            return f"{record.levelname.lower()}: {record.getMessage()}"
        return super().format(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            style = "yellow" if record.levelno >= logging.WARNING else None
            self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must never break the search
            self.handleError(record)


@contextmanager
def console_logging(console: Console) -> Iterator[None]:
    """Route the root logger's stream output through ``console`` inside the ``with`` block."""
    root = logging.getLogger()
    streams = [h for h in root.handlers if type(h) is logging.StreamHandler]
    formatter = next((h.formatter for h in streams if h.formatter is not None), None)
    handler = ConsoleHandler(console, formatter)
    handler.setLevel(min((h.level for h in streams), default=logging.NOTSET))
    for h in streams:
        root.removeHandler(h)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for h in streams:
            root.addHandler(h)


__all__ = ["NOTICE_LOGGER", "ConsoleHandler", "console_logging", "show_notices"]
