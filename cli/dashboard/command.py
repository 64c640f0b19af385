"""The ``genomorph dashboard`` command: flags in, a server out; only this module prints."""

from __future__ import annotations

import errno
from pathlib import Path

import click
from genomorph.ir import ConfigError
from pydantic import BaseModel, ConfigDict, Field


class DashboardConfig(BaseModel):
    """The command's flags, collapsed into one frozen value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runs: tuple[Path, ...] = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    """0: a free port chosen by the OS."""
    poll_s: float = Field(default=2.0, ge=0.2)
    """Seconds between the page's updates."""


@click.command(
    epilog="""\b
Examples:
  genomorph dashboard runs/nash
  genomorph dashboard runs/nash runs/ga --port 8800      # two runs side by side
  genomorph dashboard runs/nash --port 0                 # any free port
  genomorph report runs/nash --html nash.html            # the same views as one offline file

\b
The page updates while the search runs (it polls every --poll seconds) and only reads the
run store, so a page left open for hours never gets in the run's way. It binds to 127.0.0.1:
--host 0.0.0.0 exposes your runs to the network; do that only on a network you trust.
""",
)
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: a free one)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between the page's updates.",
)
def dashboard(run_dirs: tuple[Path, ...], port: int, host: str, poll: float) -> None:
    """Serve a live web page over search runs: plots, candidates, lineages, strategy views."""
    from .rundata import run_dirs as resolve
    from .server import bind, create_app, hosts_for, serve, warm

    config = DashboardConfig(runs=run_dirs, host=host, port=port, poll_s=poll)
    runs = resolve(list(config.runs))
    host, port = config.host, config.port
    try:
        sock = bind(host, port)
    except OSError as err:
        hint = "choose another --port, or --port 0 for a free one"
        if err.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use", hint=hint) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}", hint=hint) from None
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    app = create_app(runs, poll_s=config.poll_s, allowed_hosts=hosts_for(host))
    warm(runs)
    for run in runs:
        click.echo(f"serving {run.root}", err=True)
    click.echo(f"genomorph dashboard: http://{shown}:{bound_port}/  (Ctrl-C stops)", err=True)
    try:
        serve(app, sock)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


__all__ = ["DashboardConfig", "dashboard"]
