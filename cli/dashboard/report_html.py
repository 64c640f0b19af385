"""``genomorph report RUN_DIR --html OUT.html``: the dashboard's views as one offline file.

The file is the live page's template with plotly.js, the page script, the CSS and the run's
data inlined (``<script type="application/json">``), so it opens from disk in any browser with
no server and no network, and can be attached to a paper or an issue. Candidate details
(genome, metrics, lineage) are embedded for every candidate; graph drawings (one Graphviz call
each) for the candidates a reader looks at first: the answer and its lineage, the Pareto front
and the best by validation score, up to `MAX_GRAPHS`. PNG plots the run wrote are inlined as
data URIs.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from genomorph.ir import DataError

from . import views
from .panels import front_of
from .rundata import RunDir, RunUnreadable, run_dirs

#: graph drawings embedded per run; the others say to open the live dashboard
MAX_GRAPHS = 40


def _graph_ids(page: dict[str, Any], details: dict[int, dict[str, Any]]) -> list[int]:
    rows = page["candidates"]
    done = [r for r in rows if r["status"] == "finished" and not r["final"] and r["objective"] is not None]
    chosen: list[int] = []
    named = page["status"].get("result_candidate")
    best = named if named in details else (max(done, key=lambda r: r["objective"])["id"] if done else None)
    if best is not None:
        chosen += [step["id"] for step in reversed(details[best]["lineage"])]
    chosen += [p[2] for p in front_of([(r["params"] or 0, r["objective"], r["id"]) for r in done])]
    chosen += [r["id"] for r in sorted(done, key=lambda r: -r["objective"])]
    chosen += [r["id"] for r in rows]
    unique = list(dict.fromkeys(chosen))
    return unique[:MAX_GRAPHS]


def run_report(run: RunDir) -> dict[str, Any]:
    """Everything the page shows about one run, as embedded data."""
    try:
        page = run.page(None)
    except RunUnreadable as err:
        return {"run": run.describe(), "page": {"run": run.describe(), "error": str(err)}, "panels": []}
    details = run.details()
    graphs: dict[int, str] = {}
    note = None
    for cid in _graph_ids(page, details):
        svg, why = views.graph_svg(details[cid]["genome"])
        if svg is None:
            note = why
            if why and "Graphviz" in why and "not on PATH" in why:
                break  # no dot: every other call would fail the same way
            continue
        graphs[cid] = svg
    if note is None and len(graphs) < len(details):
        note = f"this report embeds {len(graphs)} graph drawings; `genomorph dashboard {run.root}` draws any candidate"
    panels = views.panels_for(run)
    pictures = {}
    for panel in panels:
        for name in panel.get("pictures", []):
            found = views.safe_file(run, name)
            if found:
                pictures[name] = "data:image/png;base64," + base64.b64encode(found[0].read_bytes()).decode()
    return {
        "run": run.describe(),
        "page": page,
        "panels": panels,
        "details": details,
        "graphs": graphs,
        "graph_note": note,
        "pictures": pictures,
    }


def write_html_report(paths: list[Path], out: Path) -> Path:
    """Write the one-file report of ``paths`` (run directories) to ``out``; returns ``out``."""
    runs = run_dirs(paths)
    data = {"written": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": [run_report(r) for r in runs]}
    html = views.page_html(title=views.title_of(runs), config={"mode": "report"}, data=data, inline=True)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
    except OSError as err:
        raise DataError(
            f"cannot write the HTML report {out}: {err}", hint="choose a writable --html path"
        ) from None
    return out


__all__ = ["MAX_GRAPHS", "run_report", "write_html_report"]
