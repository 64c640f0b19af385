"""Per-strategy panels: drawn from the records each strategy writes, absent otherwise."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from dashboard_helpers import make_run
from genomorph.cli.dashboard import views
from genomorph.cli.dashboard.alphas import parse_alphas
from genomorph.cli.dashboard.rundata import run_dirs


def _panels(root: Path) -> dict[str, dict]:
    [run] = run_dirs([root])
    panels = views.panels_for(run)
    json.dumps(panels, allow_nan=False)
    return {p["id"]: p for p in panels}


def test_a_plain_run_has_no_strategy_panels(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 4).close()
    assert _panels(tmp_path / "run") == {}


def test_pareto_generations_fronts_and_hypervolume(tmp_path: Path) -> None:
    def meta(i: int) -> dict:
        return {"role": "start"} if i < 3 else {"role": "child", "generation": 1 + (i - 3) // 5}

    make_run(tmp_path / "run", 13, meta=meta, state={"history": []}).close()
    (tmp_path / "run" / "summary.json").write_text(
        json.dumps(
            {"hypervolume": [1.5, 1.7], "hypervolume_start": 1.2, "reference_point": {"val_error": 1.0}}
        )
    )
    (tmp_path / "run" / "front.json").write_text(
        json.dumps(
            {
                "objectives": ["val_error", "log_params"],
                "members": [{"candidate": 4, "objectives": {"val_error": 0.1, "log_params": 9.1}}],
            }
        )
    )
    panels = _panels(tmp_path / "run")
    fronts = [t for t in panels["generations"]["figure"]["data"] if t["name"].startswith("front after")]
    assert [t["name"] for t in fronts] == ["front after gen 0", "front after gen 1", "front after gen 2"]
    for trace in fronts:  # each front is non-dominated: params rise, error falls
        assert trace["x"] == sorted(trace["x"]) and trace["y"] == sorted(trace["y"], reverse=True)
    hv = panels["hypervolume"]["figure"]["data"][0]
    assert hv["x"] == [0.0, 1.0, 2.0] and hv["y"] == [1.2, 1.5, 1.7]
    assert "val_error" in panels["hypervolume"]["note"]
    assert panels["front"]["table"]["rows"] == [{"candidate": 4, "val_error": 0.1, "log_params": 9.1}]


def test_hypervolume_from_the_strategy_state_while_running(tmp_path: Path) -> None:
    history = [{"generation": 1, "hypervolume": 0.5, "front": [1, 2]}, {"generation": 2, "hypervolume": 0.7}]
    make_run(tmp_path / "run", 2, state={"history": history}).close()
    hv = _panels(tmp_path / "run")["hypervolume"]["figure"]["data"][0]
    assert hv["x"] == [1.0, 2.0] and hv["y"] == [0.5, 0.7]


def test_halving_rungs_connect_a_child_to_its_next_rung(tmp_path: Path) -> None:
    # step 1: children 0-3 in rung 0, children 4-5 continue two of them in rung 1
    store = make_run(tmp_path / "run", 0)
    from dashboard_helpers import request, result

    rng = random.Random(0)
    plan = [(None, 0)] * 4 + [(0, 1), (2, 1)]
    reqs = [
        request(i, parent, {"role": "child", "step": 1, "rung": rung})
        for i, (parent, rung) in enumerate(plan)
    ]
    store.add_candidates([(i, r, i) for i, r in enumerate(reqs)], {})
    for i, r in enumerate(reqs):
        store.record_result(result(i, r, rng))
    store.close()
    data = _panels(tmp_path / "run")["rungs"]["figure"]["data"]
    paths = next(t for t in data if t["mode"] == "lines")
    assert paths["x"] == [0, 1, None, 0, 1, None]
    points = next(t for t in data if t["mode"] == "markers")
    assert sorted(points["x"]) == [0, 0, 0, 0, 1, 1]


def test_darts_alphas_as_the_recipe_writes_them(tmp_path: Path) -> None:
    rng = random.Random(3)
    epochs = [
        {"normal": [[rng.gauss(0, 1) for _ in range(8)] for _ in range(14)], "n9": [0.1, 0.5, -0.2]}
        for _ in range(3)
    ]
    make_run(tmp_path / "run", 1).close()
    (tmp_path / "run" / "checkpoints" / "c00000.alphas.json").write_text(json.dumps({"epochs": epochs}))
    (tmp_path / "run" / "summary.json").write_text(
        json.dumps({"alphas_file": "checkpoints/c00000.alphas.json"})
    )
    panels = _panels(tmp_path / "run")
    heat = panels["alphas-heat-normal"]["figure"]["data"][0]
    assert len(heat["z"]) == 14 and all(math.isclose(sum(row), 1.0) for row in heat["z"])
    assert len(panels["alphas-epochs-normal"]["figure"]["data"]) == 14 * 8
    mixed = panels["alphas-heat-mixed nodes"]["figure"]["data"][0]
    assert mixed["y"] == ["n9"] and math.isclose(sum(mixed["z"][0]), 1.0)


def test_alpha_shapes_and_probabilities() -> None:
    probs = [[0.25, 0.75], [0.5, 0.5]]
    parsed = parse_alphas({"ops": ["skip", "conv"], "normal": [probs, probs]})
    assert parsed["normal"]["probs"][-1] == probs and parsed["normal"]["ops"] == ["skip", "conv"]
    assert parse_alphas([{"epoch": 4, "alphas": {"reduce": [[0.0, 0.0]]}}])["reduce"]["epochs"] == [4]
    assert parse_alphas({"something": "else"}) == {}


def test_an_unknown_alphas_file_gives_a_note_not_an_error(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 1).close()
    (tmp_path / "run" / "alphas.json").write_text(json.dumps({"epochs": [3, 4]}))
    assert "note" in _panels(tmp_path / "run")["alphas"]


def test_noisy_iterations_with_meta_parameters(tmp_path: Path) -> None:
    iterations = [
        {"iteration": i, "params": 100 + 50 * i, "train_accuracy": 0.5 + 0.1 * i, "val_accuracy": 0.5,
         "total_epochs": 10 * (i + 1), "units": [4, 5], "stopped_early": True,
         "meta": {"neurons_to_add": 16, "add_to_remove": 2.0 if i < 2 else 0.5, "rule": "paper"}}
        for i in range(4)
    ]  # fmt: skip
    make_run(tmp_path / "run", 1).close()
    (tmp_path / "run" / "summary.json").write_text(json.dumps({"iterations": iterations}))
    figure = _panels(tmp_path / "run")["iterations"]["figure"]
    traces = {t["name"]: t for t in figure["data"]}
    assert traces["params"]["x"] == [10, 20, 30, 40] and traces["params"]["y"] == [100, 150, 200, 250]
    assert traces["train_accuracy"]["yaxis"] == "y2"
    assert (
        traces["meta.add_to_remove"]["y"] == [2.0, 2.0, 0.5, 0.5]
        and traces["meta.add_to_remove"]["yaxis"] == "y3"
    )
    assert "units" not in traces and "meta.rule" not in traces


def test_noisy_iterations_from_the_state_while_running(tmp_path: Path) -> None:
    records = [
        {"iteration": 0, "params": 10, "objective": 0.6},
        {"iteration": 1, "params": 30, "objective": 0.8},
    ]
    make_run(tmp_path / "run", 1, state={"records": records}).close()
    traces = {t["name"]: t for t in _panels(tmp_path / "run")["iterations"]["figure"]["data"]}
    assert traces["params"]["x"] == [0, 1] and traces["objective"]["y"] == [0.6, 0.8]


def test_pictures_list_only_the_runs_png_files(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 1).close()
    (tmp_path / "run" / "progress.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "outside.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "run" / "link.png").symlink_to(tmp_path / "outside.png")
    assert _panels(tmp_path / "run")["pictures"]["pictures"] == ["progress.png"]


def test_darts_alphas_before_the_summary_names_them(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 1).close()
    epochs = [{"normal": [[0.0, 1.0], [2.0, 0.0]]}]
    (tmp_path / "run" / "checkpoints" / "c00000.alphas.json").write_text(json.dumps({"epochs": epochs}))
    heat = _panels(tmp_path / "run")["alphas-heat-normal"]["figure"]["data"][0]
    assert heat["z"][0][1] > heat["z"][0][0] and heat["z"][1][0] > heat["z"][1][1]
