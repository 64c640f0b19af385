"""Per-strategy views, built from whatever the run recorded: a panel appears when its data is there.

Each builder looks for one kind of record and returns Plotly figures (plain dicts: the page
and the one-file report draw them with the same JavaScript), or nothing:

| panel | drawn from |
|---|---|
| front per generation (Pareto-NASH) | candidates whose request ``meta`` has ``generation`` |
| hypervolume per generation | ``hypervolume`` in summary.json, the run table or the strategy state |
| front table | ``front.json`` or ``front`` in summary.json (a `Front`: objectives and members) |
| halving rungs (SH, SHR, SHRsep) | candidates whose ``meta`` has ``rung`` (grouped by ``step``) |
| softmax(α) heat maps, α over epochs (DARTS, hyperDARTS) | ``alphas.json`` |
| parameters / accuracy / meta-parameters vs epoch (Noisy Heuristics) | ``iterations`` in summary.json, else candidates with ``meta.iteration`` |
| pictures | the PNG plots the run's report wrote at the top of the run directory |

The strategies own their record formats; the builders accept the plausible shapes (lists of
numbers or of records, raw α or probabilities) and a builder that fails on a shape it does
not know shows a note instead of its panel, never an error page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from .alphas import alpha_figures, parse_alphas

log = logging.getLogger(__name__)
Panel = dict[str, Any]
GREY = "rgba(150,150,150,0.45)"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _searched(row: dict[str, Any]) -> bool:
    return row["status"] == "finished" and not row["final"] and row["objective"] is not None


def front_of(points: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Non-dominated ``(params, score, id)``: none has fewer-or-equal params and a higher score."""
    front: list[tuple[float, float, int]] = []
    for p in sorted(points, key=lambda p: (p[0], -p[1], p[2])):
        if not front or p[1] > front[-1][1]:
            front.append(p)
    return front


def _figure(data: list[dict], title: str, xaxis: dict, yaxis: dict, **layout: Any) -> dict[str, Any]:
    return {"data": data, "layout": {"title": {"text": title}, "xaxis": xaxis, "yaxis": yaxis, **layout}}


# ---------------------------------------------------------------------------- Pareto-NASH
def generations_panel(ctx: PanelContext) -> Panel | None:
    if not any(isinstance(r["meta"].get("generation"), int) for r in ctx.rows):
        return None
    # the initial front (Pareto-NASH's start networks) is generation 0
    rows = [
        {**r, "meta": {**r["meta"], "generation": r["meta"].get("generation", 0)}}
        for r in ctx.rows
        if isinstance(r["meta"].get("generation"), int) or r["meta"].get("role") == "start"
    ]
    done = [r for r in rows if _searched(r) and r["params"]]
    data: list[dict] = [
        {
            "type": "scattergl" if len(done) > 3000 else "scatter",
            "mode": "markers",
            "name": "all children",
            "x": [r["params"] for r in done],
            "y": [1 - r["objective"] for r in done],
            "text": [f"#{r['id']} gen {r['meta']['generation']}" for r in done],
            "marker": {"color": GREY, "size": 6},
        }
    ]
    generations = sorted({r["meta"]["generation"] for r in done})
    by_generation: dict[int, list[tuple[float, float, int]]] = {g: [] for g in generations}
    for r in done:
        by_generation[r["meta"]["generation"]].append((r["params"], r["objective"], r["id"]))
    front: list[tuple[float, float, int]] = []
    for g in generations:
        # the front after generation g is the front of the previous front and g's children
        front = front_of(front + by_generation[g])
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "line": {"shape": "hv"},
                "name": f"front after gen {g}",
                "x": [p[0] for p in front],
                "y": [1 - p[1] for p in front],
                "text": [f"#{p[2]}" for p in front],
                "marker": {
                    "color": g,
                    "cmin": min(generations),
                    "cmax": max(generations),
                    "colorscale": "Viridis",
                },
                "customdata": [p[2] for p in front],
            }
        )
    return {
        "id": "generations",
        "title": "Pareto front per generation",
        "figure": _figure(
            data,
            "validation error vs parameters, front after each generation",
            {"type": "log", "title": {"text": "parameters"}},
            {"title": {"text": "validation error"}},
        ),
    }


def _series(value: Any, key: str) -> tuple[list[float], list[float]] | None:
    """``[v, ...]`` or ``[{"generation": g, key: v}, ...]`` as (x, y)."""
    if not isinstance(value, list) or not value:
        return None
    xs, ys = [], []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            y = _number(item.get(key, item.get("value")))
            x = _number(item.get("generation", item.get("step", i)))
        else:
            x, y = float(i), _number(item)
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return (xs, ys) if ys else None


def _hypervolumes(ctx: PanelContext) -> tuple[list[float], list[float]] | None:
    """Per generation, from summary.json (numbers, generation 1 first, with ``hypervolume_start``
    as generation 0), the run table, or the strategy state's per-generation ``history``."""
    for source in (ctx.summary, ctx.meta):
        series = _series(source.get("hypervolume"), "hypervolume")
        if series:
            xs, ys = series
            if not isinstance(source["hypervolume"][0], dict):
                xs = [x + 1 for x in xs]
                start = _number(source.get("hypervolume_start"))
                if start is not None:
                    xs, ys = [0.0, *xs], [start, *ys]
            return xs, ys
    history = ctx.strategy_state.get("history")
    if isinstance(history, list) and any(isinstance(h, dict) and "hypervolume" in h for h in history):
        return _series([h for h in history if isinstance(h, dict) and "hypervolume" in h], "hypervolume")
    return None


def hypervolume_panel(ctx: PanelContext) -> Panel | None:
    series = _hypervolumes(ctx)
    if not series:
        return None
    reference = next(
        (
            s.get(k)
            for s in (ctx.summary, ctx.meta, ctx.strategy_state)
            if isinstance(s, dict)
            for k in ("hypervolume_reference", "reference_point")
            if s.get(k) is not None
        ),
        None,
    )
    return {
        "id": "hypervolume",
        "title": "Hypervolume per generation",
        "note": f"reference point {reference}" if reference is not None else None,
        "figure": _figure(
            [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "hypervolume",
                    "x": series[0],
                    "y": series[1],
                }
            ],
            "hypervolume of the front",
            {"title": {"text": "generation"}},
            {"title": {"text": "hypervolume"}},
        ),
    }


def front_table_panel(ctx: PanelContext) -> Panel | None:
    front = ctx.files("front.json")
    if front is None:
        front = ctx.summary.get("front")
    members = front.get("members") if isinstance(front, dict) else front
    if not isinstance(members, list) or not members:
        return None
    names: list[str] = []
    table = []
    for m in members:
        if not isinstance(m, dict):
            m = {"candidate": m}
        objectives = m.get("objectives") if isinstance(m.get("objectives"), dict) else {}
        for k in objectives:
            if k not in names:
                names.append(k)
        cid = m.get("candidate", m.get("id"))
        table.append({"candidate": cid, **objectives, **({"genome": m["genome"]} if "genome" in m else {})})
    columns = ["candidate", *names] + (["genome"] if any("genome" in t for t in table) else [])
    return {
        "id": "front",
        "title": f"Front: {len(table)} members",
        "table": {"columns": columns, "rows": table},
    }


# ---------------------------------------------------------------------------- successive halving
def rungs_panel(ctx: PanelContext) -> Panel | None:
    rows = [r for r in ctx.rows if isinstance(r["meta"].get("rung"), int)]
    done = [r for r in rows if _searched(r)]
    if not done:
        return None
    by_id = {r["id"]: r for r in done}
    data: list[dict] = []
    steps = sorted({r["meta"].get("step", 0) for r in done}, key=str)
    for step in steps:
        members = [r for r in done if r["meta"].get("step", 0) == step]
        xs: list[float | None] = []
        ys: list[float | None] = []
        # a survivor continues from its own weights: draw each child's path through the rungs
        for r in members:
            parent = by_id.get(r["parent"])
            if parent is not None and parent in members:
                xs += [parent["meta"]["rung"], r["meta"]["rung"], None]
                ys += [parent["objective"], r["objective"], None]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"step {step} paths",
                "x": xs,
                "y": ys,
                "line": {"color": GREY},
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"step {step}",
                "x": [r["meta"]["rung"] for r in members],
                "y": [r["objective"] for r in members],
                "text": [f"#{r['id']}" for r in members],
                "customdata": [r["id"] for r in members],
            }
        )
    return {
        "id": "rungs",
        "title": "Successive-halving rungs",
        "figure": _figure(
            data,
            "validation score per halving rung (lines: a child continuing to the next rung)",
            {"title": {"text": "rung"}, "dtick": 1},
            {"title": {"text": "validation score"}},
        ),
    }


# ---------------------------------------------------------------------------- DARTS
def alphas_panels(ctx: PanelContext) -> list[Panel]:
    data = ctx.files("alphas.json")
    if data is None and isinstance(ctx.summary.get("alphas_file"), str):
        data = ctx.files(ctx.summary["alphas_file"])  # the chosen search's artifact (DARTS writes it)
    if data is None and (artifacts := ctx.glob("checkpoints/*.alphas.json")):
        data = ctx.files(artifacts[-1])  # before summary.json names one: the newest search's
    if data is None:
        return []
    parsed = parse_alphas(data)
    if not parsed:
        return [
            {
                "id": "alphas",
                "title": "Architecture weights",
                "note": "alphas.json has no α this page can read",
            }
        ]
    return alpha_figures(parsed)


# ---------------------------------------------------------------------------- Noisy Heuristics
_SCORE_WORDS = ("accuracy", "r2", "objective")


def _iteration_records(ctx: PanelContext) -> list[dict[str, Any]]:
    # summary.json once the run reported; while it runs, the records in the strategy's state
    for records in (ctx.summary.get("iterations"), ctx.strategy_state.get("records")):
        if isinstance(records, list) and records and all(isinstance(r, dict) for r in records):
            return records
    rows = [r for r in ctx.rows if isinstance(r["meta"].get("iteration"), int) and r["status"] == "finished"]
    if any(r["meta"].get("role") == "save" for r in rows):
        rows = [r for r in rows if r["meta"].get("role") == "save"]
    return [
        {
            "iteration": r["meta"]["iteration"],
            "params": r["params"],
            "val_accuracy": r["val_accuracy"],
            "train_accuracy": r["train_accuracy"],
            **{k: v for k, v in r["meta"].items() if k != "iteration"},
        }
        for r in rows
    ]


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif (number := _number(value)) is not None:
            out[prefix + key] = number
    return out


def iterations_panel(ctx: PanelContext) -> Panel | None:
    records = [_flat(r) for r in _iteration_records(ctx)]
    if not records:
        return None
    # x: the epoch the iteration ended at when recorded, else the iteration number
    x_key = next((k for k in ("total_epochs", "epoch", "iteration") if k in records[0]), None)
    xs = [r.get(x_key, i) if x_key else i for i, r in enumerate(records)]
    keys = sorted({k for r in records for k in r} - {x_key, "iteration"})
    params = [k for k in keys if k in ("params", "macs")]
    scores = [k for k in keys if any(w in k for w in _SCORE_WORDS)]
    # the meta-parameters in force (paper 000 Fig. 9 draws them under the curves), else other counts
    rest = [k for k in keys if k.startswith("meta.")] or [
        k for k in keys if k not in params and k not in scores and not k.endswith("_s")
    ]
    data: list[dict] = []
    for k in params:
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": k,
                "x": xs,
                "y": [r.get(k) for r in records],
                "yaxis": "y",
            }
        )
    for k in scores:
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": k,
                "x": xs,
                "y": [r.get(k) for r in records],
                "yaxis": "y2",
            }
        )
    for k in rest:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv"},
                "name": k,
                "x": xs,
                "y": [r.get(k) for r in records],
                "yaxis": "y3",
            }
        )
    layout = {
        "grid": {"rows": 3, "columns": 1, "pattern": "independent"},
        "height": 620,
        "xaxis": {"title": {"text": x_key or "iteration"}, "anchor": "y3"},
        "yaxis": {"title": {"text": "parameters"}, "domain": [0.68, 1.0]},
        "yaxis2": {"title": {"text": "score"}, "domain": [0.36, 0.64]},
        "yaxis3": {"title": {"text": "meta-parameters"}, "domain": [0.0, 0.32]},
    }
    return {
        "id": "iterations",
        "title": "Parameters, accuracy and meta-parameters per iteration",
        "figure": {
            "data": data,
            "layout": {"title": {"text": "growth and shrinking over the run"}, **layout},
        },
    }


# ---------------------------------------------------------------------------- pictures
def pictures_panel(ctx: PanelContext) -> Panel | None:
    names = ctx.pictures()
    if not names:
        return None
    return {"id": "pictures", "title": "Plots the run wrote", "pictures": names}


class PanelContext:
    """What the builders may look at: candidate rows, summary.json, stored meta, JSON files."""

    def __init__(
        self,
        rows: list[dict[str, Any]],
        summary: Any,
        meta: dict[str, Any],
        strategy_state: Any,
        files: Callable[[str], Any],
        pictures: Callable[[], list[str]],
        glob: Callable[[str], list[str]] = lambda pattern: [],
    ) -> None:
        self.rows = rows
        self.summary = summary if isinstance(summary, dict) else {}
        self.meta = meta
        self.strategy_state = strategy_state if isinstance(strategy_state, dict) else {}
        self.files = files
        self.pictures = pictures
        self.glob = glob


_BUILDERS: tuple[Callable[[PanelContext], Any], ...] = (
    generations_panel,
    hypervolume_panel,
    front_table_panel,
    rungs_panel,
    alphas_panels,
    iterations_panel,
    pictures_panel,
)


def build_panels(ctx: PanelContext) -> list[Panel]:
    panels: list[Panel] = []
    for builder in _BUILDERS:
        try:
            made = builder(ctx)
        except Exception as err:  # a record shape no builder knows: say so on the page, keep the rest
            log.warning("dashboard panel %s failed", builder.__name__, exc_info=True)
            made = {"id": builder.__name__, "title": builder.__name__, "note": f"could not draw: {err}"}
        if isinstance(made, list):
            panels.extend(made)
        elif made:
            panels.append(made)
    return panels


__all__ = ["PanelContext", "build_panels", "front_of"]
