"""What the server and the one-file report share: the page, panels, graphs, files in a run.

- `page_html`: the one HTML template, with its scripts linked (the server) or inlined (the
  report); the page's configuration and, in a report, all its data travel in
  ``<script type="application/json">`` elements, which browsers never execute;
- `panels_for`: the per-strategy figures of `panels` for one run;
- `graph_svg`: a candidate's graph drawn exactly as ``genomorph render -o x.svg`` draws it;
- `safe_file`: the only way a request names a file, refusing anything outside the run.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import sqlite3
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from .panels import PanelContext, build_panels
from .rundata import RunDir

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
#: files of a run a request may read, by suffix (weights, the database and anything else stay private)
SERVED_SUFFIXES = {".png": "image/png", ".json": "application/json", ".genome": "text/plain; charset=utf-8"}


def plotly_js_path() -> Path:
    """plotly.js as the ``plotly`` wheel ships it: nothing is fetched from the internet."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(
            f"the plotly package has no bundled plotly.min.js at {path}; reinstall plotly"
        )
    return path


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no ``</script>`` or ``<!--`` can close it early."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_html(*, title: str, config: dict[str, Any], data: Any = None, inline: bool = False) -> str:
    """The page; ``inline`` puts the CSS and scripts in the file itself (the offline report)."""
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    if inline:
        css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
        # `</script` cannot occur in plotly.js or app.js code outside strings; escape it anyway
        scripts = [
            plotly_js_path().read_text(encoding="utf-8"),
            (STATIC_DIR / "app.js").read_text(encoding="utf-8"),
        ]
        head = f"<style>\n{css}\n</style>"
        escaped = [s.replace("</script", "<\\/script") for s in scripts]
        body = "\n".join(f"<script>\n{s}\n</script>" for s in escaped)
    else:
        head = '<link rel="stylesheet" href="/static/app.css">'
        body = '<script src="/static/plotly.min.js"></script>\n<script src="/static/app.js"></script>'
    blocks = f'<script type="application/json" id="genomorph-config">{_script_json(config)}</script>'
    if data is not None:
        blocks += f'\n<script type="application/json" id="genomorph-data">{_script_json(data)}</script>'
    return (
        template.replace("{{TITLE}}", html.escape(title))
        .replace("{{HEAD}}", head)
        .replace("{{DATA}}", blocks)
        .replace("{{SCRIPTS}}", body)
    )


def title_of(runs: list[RunDir]) -> str:
    return "genomorph: " + ", ".join(r.name for r in runs)


# ---------------------------------------------------------------------------- files
def safe_file(run: RunDir, name: str) -> tuple[Path, str] | None:
    """``name`` as a served file of ``run``, or None.

    Refused: empty names, absolute paths, ``..`` and hidden parts, backslashes and NUL,
    suffixes outside `SERVED_SUFFIXES`, and anything whose real path (symlinks followed)
    leaves the run directory. Percent-encoded separators arrive decoded, so they meet the
    same checks.
    """
    if not name or "\\" in name or "\x00" in name:
        return None
    rel = PurePosixPath(name)
    if rel.is_absolute() or any(part in ("", ".", "..") or part.startswith(".") for part in rel.parts):
        return None
    media_type = SERVED_SUFFIXES.get(rel.suffix.lower())
    if media_type is None:
        return None
    try:
        real = (run.root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(run.root) or not real.is_file() or real.suffix.lower() != rel.suffix.lower():
        return None
    return real, media_type


def read_json(run: RunDir, name: str) -> Any:
    """A JSON file inside the run (the same checks as a request), or None: absent, half-written, not JSON."""
    found = safe_file(run, name)
    if found is None or found[1] != SERVED_SUFFIXES[".json"]:
        return None
    try:
        return json.loads(found[0].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pictures(run: RunDir) -> list[str]:
    """PNG plots at the top of the run directory, in name order."""
    try:
        return sorted(
            p.name for p in run.root.iterdir() if p.suffix.lower() == ".png" and safe_file(run, p.name)
        )
    except OSError:
        return []


# ---------------------------------------------------------------------------- panels
def _strategy_state(run: RunDir) -> Any:
    db = run.connect()
    try:
        row = db.execute("SELECT state FROM strategy WHERE id = 0").fetchone()
    except sqlite3.DatabaseError:
        return {}
    finally:
        db.close()
    try:
        return json.loads(row[0]) if row else {}
    except (TypeError, ValueError):
        return {}


def panel_context(run: RunDir) -> PanelContext:
    rows = run.rows()  # brings the row cache up to date
    page = run.page(f"{run._cache.epoch}:{run._cache.version}")  # status and summary, no rows
    meta = {k: page["status"].get(k) for k in ("hypervolume", "hypervolume_reference")}
    return PanelContext(
        rows=rows,
        summary=page.get("summary"),
        meta=meta,
        strategy_state=_strategy_state(run),
        files=lambda name: read_json(run, name),
        pictures=lambda: pictures(run),
        glob=lambda pattern: _glob(run, pattern),
    )


def _glob(run: RunDir, pattern: str) -> list[str]:
    """Relative names of the served files matching ``pattern`` in the run, in name order."""
    try:
        names = sorted(p.relative_to(run.root).as_posix() for p in run.root.glob(pattern))
    except OSError:
        return []
    return [n for n in names if safe_file(run, n)]


_PANELS: dict[Path, tuple[tuple, list[dict[str, Any]]]] = {}
_PANELS_LOCK = threading.Lock()


def panels_for(run: RunDir) -> list[dict[str, Any]]:
    """The per-strategy figures of one run; RunUnreadable when its database cannot be read.

    Kept until the store changes or a file appears or is replaced at the top of the run
    directory (atomic writes rename, which changes the directory's mtime): many open pages
    and polls then cost one build."""
    context = panel_context(run)
    try:
        key: tuple = (run._cache.epoch, run._cache.version, run.root.stat().st_mtime_ns)
    except OSError:
        key = (None,)
    with _PANELS_LOCK:
        cached = _PANELS.get(run.root)
        if cached is not None and cached[0] == key:
            return cached[1]
    panels = build_panels(context)
    with _PANELS_LOCK:
        _PANELS[run.root] = (key, panels)
    return panels


# ---------------------------------------------------------------------------- graphs
@functools.lru_cache(maxsize=256)
def graph_svg(genome: str) -> tuple[str | None, str | None]:
    """``(svg, None)``, or ``(None, why)`` when the genome does not parse or Graphviz is missing."""
    from genomorph.cli._graphviz import draw, find_dot
    from genomorph.grammar import parse
    from genomorph.ir import GenomorphError
    from genomorph.ir.render import to_dot

    try:
        find_dot()
        graph = parse(genome)
        svg = draw(to_dot(graph), "svg").decode("utf-8")
    except GenomorphError as err:
        hint = f" ({err.hint})" if getattr(err, "hint", None) else ""
        return None, f"{err}{hint}"
    except (RuntimeError, OSError) as err:
        log.warning("drawing a candidate graph failed: %s", err)
        return None, f"Graphviz could not draw this graph: {err}"
    # Graphviz's XML prologue and DOCTYPE are not needed inline
    start = svg.find("<svg")
    return (svg[start:] if start >= 0 else svg), None


__all__ = [
    "SERVED_SUFFIXES",
    "graph_svg",
    "page_html",
    "panel_context",
    "panels_for",
    "pictures",
    "plotly_js_path",
    "read_json",
    "safe_file",
    "title_of",
]
