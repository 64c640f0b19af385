"""DARTS / hyperDARTS architecture weights from ``alphas.json``: heat maps and curves.

The file holds α per epoch. Accepted shapes (the DARTS strategies own the format; these are
the ones a record of "α per epoch" can reasonably take):

- ``{"ops": [...], "epochs": [{"epoch": 1, "normal": [[...]], "reduce": [[...]]}, ...]}``
  (a group name → edges × ops matrix per epoch; ``"alphas": {...}`` may wrap the groups);
- ``{"normal": [[[...]]], ...}``: a group name → epochs × edges × ops;
- a list of per-epoch records as in the first form;
- per mixed node instead of per cell edge: a record ``{"n12": [...], "n15": [...]}`` (one row
  of op weights per node) becomes one group whose rows are the nodes.

Op names come from ``ops``/``primitives``/``candidates`` (a list, or a dict per group), edge
names from ``edges``/``rows``. Raw α are turned into softmax(α) per row, unless every row is
already a probability vector.
"""

from __future__ import annotations

import math
from typing import Any

_NAME_KEYS = ("ops", "primitives", "candidates", "op_names")
_ROW_NAME_KEYS = ("edges", "rows", "edge_names")
_SKIP = {"epoch", "step", "time_s", "genotype", *_NAME_KEYS, *_ROW_NAME_KEYS}


def _is_vector(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


def _is_matrix(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_vector(v) for v in value)


def _softmax(row: list[float]) -> list[float]:
    if all(v >= 0 for v in row) and abs(sum(row) - 1.0) < 1e-3:
        return list(row)
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _groups_of(record: dict[str, Any]) -> dict[str, Any]:
    """group name → matrix (edges × ops) in one epoch's record."""
    inner = record.get("alphas", record.get("alpha", record))
    if not isinstance(inner, dict):
        return {"alpha": inner} if _is_matrix(inner) else {}
    groups: dict[str, Any] = {}
    vectors: dict[str, list[float]] = {}
    for key, value in inner.items():
        if key in _SKIP:
            continue
        if _is_matrix(value):
            groups[key] = value
        elif _is_vector(value):
            vectors[key] = value
    if vectors:
        groups["mixed nodes"] = {"rows": list(vectors), "matrix": list(vectors.values())}
    return groups


def _names(data: Any, group: str, keys: tuple[str, ...]) -> list[str] | None:
    if not isinstance(data, dict):
        return None
    for key in keys:
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get(group)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return None


def parse_alphas(data: Any) -> dict[str, dict[str, Any]]:
    """``{group: {"epochs": [...], "probs": epochs × rows × ops, "ops": names, "rows": names}}``."""
    records: list[Any] | None = None
    if isinstance(data, list):
        records = data
    elif isinstance(data, dict) and isinstance(data.get("epochs"), list):
        records = data["epochs"]
    groups: dict[str, dict[str, Any]] = {}
    if records is not None:
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                continue
            epoch = record.get("epoch", i + 1)
            for name, matrix in _groups_of(record).items():
                group = groups.setdefault(name, {"epochs": [], "probs": [], "rows": None})
                if isinstance(matrix, dict):  # per mixed node
                    group["rows"] = matrix["rows"]
                    matrix = matrix["matrix"]
                group["epochs"].append(epoch)
                group["probs"].append([_softmax(row) for row in matrix])
    elif isinstance(data, dict):
        for name, value in data.items():
            if name in _SKIP or not (isinstance(value, list) and value and all(_is_matrix(m) for m in value)):
                continue
            groups[name] = {
                "epochs": list(range(1, len(value) + 1)),
                "probs": [[_softmax(row) for row in m] for m in value],
                "rows": None,
            }
    for name, group in groups.items():
        group["ops"] = _names(data, name, _NAME_KEYS)
        group["rows"] = group["rows"] or _names(data, name, _ROW_NAME_KEYS)
    return {k: g for k, g in groups.items() if g["probs"]}


def alpha_figures(groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    panels = []
    for name, group in groups.items():
        last = group["probs"][-1]
        width = max(len(row) for row in last)
        ops = (
            group["ops"] if group["ops"] and len(group["ops"]) >= width else [f"op {j}" for j in range(width)]
        )
        rows = (
            group["rows"]
            if group["rows"] and len(group["rows"]) == len(last)
            else [f"edge {i}" for i in range(len(last))]
        )
        z = [row + [None] * (width - len(row)) for row in last]
        panels.append(
            {
                "id": f"alphas-heat-{name}",
                "title": f"softmax(α), {name}, epoch {group['epochs'][-1]}",
                "figure": {
                    "data": [
                        {
                            "type": "heatmap",
                            "z": z,
                            "x": ops[:width],
                            "y": rows,
                            "colorscale": "Blues",
                            "zmin": 0,
                        }
                    ],
                    "layout": {
                        "title": {"text": f"softmax(α) per edge and op: {name}"},
                        "yaxis": {"autorange": "reversed"},
                        "height": max(300, 26 * len(rows) + 120),
                    },
                },
            }
        )
        curves = []
        for i, row_name in enumerate(rows):
            for j in range(len(last[i])):
                curves.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "name": f"{row_name} · {ops[j]}",
                        "legendgroup": ops[j],
                        "x": group["epochs"],
                        "y": [
                            probs[i][j] if i < len(probs) and j < len(probs[i]) else None
                            for probs in group["probs"]
                        ],
                    }
                )
        panels.append(
            {
                "id": f"alphas-epochs-{name}",
                "title": f"softmax(α) over epochs, {name}",
                "figure": {
                    "data": curves,
                    "layout": {
                        "title": {"text": f"softmax(α) over epochs: {name}"},
                        "xaxis": {"title": {"text": "epoch"}},
                        "yaxis": {"title": {"text": "weight"}, "range": [0, 1]},
                        "showlegend": len(curves) <= 40,
                    },
                },
            }
        )
    return panels


__all__ = ["alpha_figures", "parse_alphas"]
