"""The ``genomorph`` command: a click group whose subcommands live in their own modules.

Subcommands are imported only when they run (click's lazy-group pattern), so ``genomorph
validate`` does not pay for importing torch just because ``train`` exists.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

from ._errors import guarded

#: command name -> "module:attribute" of its click command.
#: To add a command, write it in its own module under cli/ and add ONE line here.
COMMANDS: dict[str, str] = {
    "validate": "genomorph.cli.compile_commands:validate",
    "info": "genomorph.cli.compile_commands:info",
    "render": "genomorph.cli.compile_commands:render",
    "fmt": "genomorph.cli.compile_commands:fmt",
    "convert": "genomorph.cli.compile_commands:convert",
    "morph": "genomorph.cli.morph:morph",
    "train": "genomorph.cli.search_commands:train",
    "search": "genomorph.cli.search_commands:search",
    "resume": "genomorph.cli.search_commands:resume",
    "report": "genomorph.cli.search_commands:report",
    "export": "genomorph.cli.export_commands:export",
    "import": "genomorph.cli.export_commands:import_",
    "dashboard": "genomorph.cli.dashboard.command:dashboard",
}

EPILOG = """\b
Examples:
  genomorph validate examples/vanilla.genome
  genomorph info examples/resnet18_cifar.genome
  genomorph render examples/vanilla.genome -o vanilla.svg
  genomorph fmt examples/vanilla.genome
  genomorph convert --from nb201 '|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|'

Exit status: 0 success, 2 bad input (message with file:line:col), 1 internal error.
"""


class GenomorphGroup(click.Group):
    """A group that imports subcommands on demand and applies the exit-status contract."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module_name, attribute = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        return guarded(lambda: super(GenomorphGroup, self).invoke(ctx))


@click.group(
    name="genomorph",
    cls=GenomorphGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="genomorph", prog_name="genomorph")
@click.option("-v", "--verbose", count=True, help="Log more (-v: info, -vv: debug) to stderr.")
def main(verbose: int) -> None:
    """genomorph: a compiler and search engine for neural architectures.

    A genome is a short text describing a network. genomorph parses it into a graph IR,
    checks it, rewrites it, lowers it to a torch.fx module and searches over genomes.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from ._console_log import show_notices

    show_notices()  # e.g. a live meta-parameter change taking effect, shown without -v


if __name__ == "__main__":
    main()
