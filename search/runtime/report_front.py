"""The report of a multi-result search: ``front.json``, ``front/cNNNNN.genome`` and ``front.png``.

A strategy reports its answer as a set through ``Strategy.front()`` (a `Front`: named
objectives, all minimised, and the member candidates with their values). The report writes

- ``front.json``: ``{"objectives": [...], "members": [{"candidate", "objectives",
  "genome_file", "genome"}, ...]}``, members in the strategy's order;
- ``front/cNNNNN.genome``: one genome file per member (files of earlier members that left the
  front are removed);
- ``front.png``: the front over its objectives (pairs of objectives when there are more than
  two), every finished candidate in grey behind it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genomorph.search.core.files import atomic_write
from genomorph.search.core.protocol import Front, objective_value
from genomorph.search.core.store import Candidate
from pydantic import BaseModel, ConfigDict

FRONT_JSON = "front.json"
FRONT_DIR = "front"
FRONT_PLOT = "front.png"


class FrontEntry(BaseModel):
    """One member of the front as ``summary.json`` lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    candidate: int
    objectives: dict[str, float]
    genome_file: str
    """Relative to the run directory: ``front/cNNNNN.genome``."""


def genome_file(candidate: int) -> str:
    return f"{FRONT_DIR}/c{candidate:05d}.genome"


def write_front(root: Path, front: Front, candidates: list[Candidate]) -> list[FrontEntry]:
    """Write front.json and front/*.genome; return the entries for summary.json."""
    by_id = {c.id: c for c in candidates}
    missing = [m.candidate for m in front.members if m.candidate not in by_id]
    if missing:
        raise ValueError(f"front members {missing} are not candidates of this run")
    (root / FRONT_DIR).mkdir(exist_ok=True)
    entries, members = [], []
    for member in front.members:
        entry = FrontEntry(
            candidate=member.candidate,
            objectives=dict(member.objectives),
            genome_file=genome_file(member.candidate),
        )
        text = by_id[member.candidate].genome.rstrip("\n") + "\n"
        atomic_write(root / entry.genome_file, lambda handle, text=text: handle.write(text.encode()))
        entries.append(entry)
        members.append({**entry.model_dump(), "genome": text})
    keep = {Path(e.genome_file).name for e in entries}
    for old in (root / FRONT_DIR).glob("c*.genome"):
        if old.name not in keep:
            old.unlink()
    document = json.dumps({"objectives": list(front.objectives), "members": members}, indent=2) + "\n"
    atomic_write(root / FRONT_JSON, lambda handle: handle.write(document.encode()))
    return entries


def _pairs(objectives: tuple[str, ...]) -> list[tuple[str, str]]:
    if len(objectives) < 2:
        return []
    first = objectives[0]
    return [(first, other) for other in objectives[1:]]


def _wide(values: list[float]) -> bool:
    """Positive values spanning more than a factor of 20."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > 20


def plot_front(figure: Any, front: Front, candidates: list[Candidate], title: str) -> None:
    """Draw the front over each pair (first objective, other objective) on ``figure``."""
    pairs = _pairs(front.objectives)
    if not pairs:  # one objective: the members' values against their candidate ids
        ax = figure.add_subplot(1, 1, 1)
        name = front.objectives[0] if front.objectives else "objective"
        ax.scatter([m.candidate for m in front.members], [m.objectives.get(name) for m in front.members])
        ax.set_xlabel("candidate")
        ax.set_ylabel(name)
        ax.set_title(title)
        return
    finished = [c for c in candidates if c.status == "finished" and c.metrics is not None]
    for index, (x_name, y_name) in enumerate(pairs):
        ax = figure.add_subplot(1, len(pairs), index + 1)
        grey = [(objective_value(x_name, c.metrics), objective_value(y_name, c.metrics)) for c in finished]  # type: ignore[arg-type]
        grey = [(x, y) for x, y in grey if x is not None and y is not None]
        if grey:
            ax.scatter([p[0] for p in grey], [p[1] for p in grey], s=12, color="0.7", label="candidates")
        points = sorted(
            (m.objectives[x_name], m.objectives[y_name], m.candidate)
            for m in front.members
            if x_name in m.objectives and y_name in m.objectives
        )
        if points:
            ax.step(
                [p[0] for p in points], [p[1] for p in points], where="post", color="tab:green", alpha=0.6
            )
            ax.scatter([p[0] for p in points], [p[1] for p in points], s=30, color="tab:green", zorder=4,
                       label=f"front ({len(points)})")  # fmt: skip
            for x, y, cid in points:
                ax.annotate(str(cid), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        # counts (parameters, MACs) spread over orders of magnitude: a log axis keeps small nets visible
        xs = [p[0] for p in grey] + [p[0] for p in points]
        ys = [p[1] for p in grey] + [p[1] for p in points]
        if _wide(xs):
            ax.set_xscale("log")
        if _wide(ys):
            ax.set_yscale("log")
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    figure.suptitle(title)


__all__ = ["FRONT_DIR", "FRONT_JSON", "FRONT_PLOT", "FrontEntry", "genome_file", "plot_front", "write_front"]
