"""The dashboard's web app (Starlette) and its server (uvicorn).

Routes (GET only; nothing writes):

| route | answer |
|---|---|
| ``/`` | the page |
| ``/static/{app.js, app.css, plotly.min.js}`` | its scripts: a fixed table, never a path |
| ``/api/runs`` | the runs given on the command line |
| ``/api/runs/{i}/page?since=T`` | status, summary, candidate rows changed after store time T |
| ``/api/runs/{i}/panels`` | the per-strategy figures (`panels`) |
| ``/api/runs/{i}/candidates/{id}`` | one candidate: genome, metrics, lineage with rewrite records |
| ``/api/runs/{i}/candidates/{id}/graph.svg`` | its graph, drawn by the renderer of ``genomorph render`` |
| ``/api/runs/{i}/files/{name}`` | a PNG/JSON/genome file inside run ``i`` (see `views.safe_file`) |

Runs are addressed by their index in the command line, so a request can only name what was
given. A run that cannot be read answers 200 with ``{"error": message}`` for the page to
show; an unexpected error answers a JSON message without a traceback (the traceback goes to
the server's log). ``TrustedHostMiddleware`` refuses other Host headers, so a web page on the
internet cannot reach a loopback dashboard through DNS rebinding.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from . import views
from .rundata import RunDir, RunUnreadable

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Plotly adds <style> elements at run time; scripts come only from this server
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'"
    ),
}


def static_files() -> dict[str, tuple[Path, str]]:
    """The only files the page loads: name → (path, media type)."""
    return {
        "app.js": (views.STATIC_DIR / "app.js", "text/javascript"),
        "app.css": (views.STATIC_DIR / "app.css", "text/css"),
        "plotly.min.js": (views.plotly_js_path(), "text/javascript"),
    }


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_SECURITY_HEADERS)


def _json(payload: Any) -> JSONResponse:
    return JSONResponse(payload, headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"})


def create_app(
    runs: list[RunDir], *, poll_s: float = 2.0, allowed_hosts: list[str] | None = None
) -> Starlette:
    """The ASGI app serving exactly ``runs``, read-only."""
    statics = static_files()

    def run_of(request: Request) -> RunDir | None:
        index = request.path_params["run"]
        return runs[index] if 0 <= index < len(runs) else None

    def index(request: Request) -> Response:
        html = views.page_html(
            title=views.title_of(runs), config={"mode": "live", "poll_ms": int(poll_s * 1000)}
        )
        return Response(html, media_type="text/html; charset=utf-8", headers=_SECURITY_HEADERS)

    def static(request: Request) -> Response:
        entry = statics.get(request.path_params["name"])
        if entry is None:
            return _error("no such file", 404)
        return FileResponse(
            entry[0], media_type=entry[1], headers={**_SECURITY_HEADERS, "Cache-Control": "max-age=3600"}
        )

    def list_runs(request: Request) -> Response:
        return _json({"runs": [r.describe() for r in runs]})

    def page(request: Request) -> Response:
        run = run_of(request)
        if run is None:
            return _error("no such run", 404)
        since = request.query_params.get("since") or None
        if since is not None and not re.fullmatch(r"[0-9a-f]+:[0-9]+", since):
            return _error("since must be the cursor of a previous answer (EPOCH:VERSION)", 400)
        try:
            text = run.page_json(since)
            return Response(
                text,
                media_type="application/json",
                headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"},
            )
        except RunUnreadable as err:
            return _json({"run": run.describe(), "error": str(err)})

    def panels(request: Request) -> Response:
        run = run_of(request)
        if run is None:
            return _error("no such run", 404)
        try:
            return _json({"panels": views.panels_for(run)})
        except RunUnreadable as err:
            return _json({"panels": [], "error": str(err)})

    def candidate(request: Request) -> Response:
        run = run_of(request)
        if run is None:
            return _error("no such run", 404)
        try:
            detail = run.candidate(request.path_params["cid"])
        except RunUnreadable as err:
            return _error(str(err), 503)
        return _json(detail) if detail is not None else _error("no such candidate", 404)

    def graph(request: Request) -> Response:
        run = run_of(request)
        if run is None:
            return _error("no such run", 404)
        try:
            genome = run.candidate_genome(request.path_params["cid"])
        except RunUnreadable as err:
            return _error(str(err), 503)
        if genome is None:
            return _error("no such candidate", 404)
        svg, message = views.graph_svg(genome)
        if svg is None:
            return _error(message or "cannot draw this graph", 503)
        return Response(
            svg, media_type="image/svg+xml", headers={**_SECURITY_HEADERS, "Cache-Control": "max-age=3600"}
        )

    def files(request: Request) -> Response:
        run = run_of(request)
        if run is None:
            return _error("no such run", 404)
        found = views.safe_file(run, request.path_params["name"])
        if found is None:
            return _error("no such file in this run", 404)
        path, media_type = found
        return FileResponse(
            path, media_type=media_type, headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"}
        )

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("dashboard request %s failed", request.url.path, exc_info=exc)
        return _error(f"internal error ({type(exc).__name__}); the dashboard's log has the details", 500)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/runs", list_runs),
        Route("/api/runs/{run:int}/page", page),
        Route("/api/runs/{run:int}/panels", panels),
        Route("/api/runs/{run:int}/candidates/{cid:int}", candidate),
        Route("/api/runs/{run:int}/candidates/{cid:int}/graph.svg", graph),
        Route("/api/runs/{run:int}/files/{name:path}", files),
    ]
    # no compression: on loopback it would only cost the CPU a search is using
    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(routes=routes, middleware=middleware, exception_handlers={Exception: internal_error})


def warm(runs: list[RunDir]) -> threading.Thread:
    """Read every run once in the background, so the first page load finds the row caches full."""

    def read() -> None:
        for run in runs:
            with contextlib.suppress(RunUnreadable):
                run.page_json()

    thread = threading.Thread(target=read, name="genomorph-dashboard-warm", daemon=True)
    thread.start()
    return thread


def hosts_for(host: str) -> list[str]:
    """Host headers to accept: loopback names, plus the bound address; any when bound to all."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return sorted({*LOOPBACK, host, "[::1]"})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one chosen by the OS)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve until Ctrl-C."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


__all__ = ["bind", "create_app", "hosts_for", "serve", "static_files", "warm"]
