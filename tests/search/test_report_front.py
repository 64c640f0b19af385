"""Multi-result reports: front.json, front/ genomes, the summary's front list and strategy keys,
front.png, per-strategy plots, and the front table of `genomorph report`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from front_helpers import FRONT, nondominated
from genomorph.cli.main import main
from genomorph.search.core.config import DataConfig, TrainConfig
from genomorph.search.core.driver import RunConfig
from genomorph.search.core.protocol import Front, FrontMember
from genomorph.search.core.store import RunStore
from genomorph.search.runtime.report import PLOTS, write_report
from genomorph.search.runtime.report_front import write_front
from genomorph.search.runtime.run import prepare_setup, start_search

PNG = b"\x89PNG\r\n\x1a\n"


def _config(**options: object) -> RunConfig:
    data = DataConfig(name="digits")
    return RunConfig(
        strategy=FRONT,
        strategy_config=dict(options),
        setup=prepare_setup(data, seed=2),
        data=data,
        train=TrainConfig(threads=1),
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("front") / "run"
    start_search(_config(), run).close()
    return run


def test_front_files_and_summary_list_the_non_dominated_candidates(run_dir: Path) -> None:
    store = RunStore.open(run_dir)
    summary = write_report(store)
    candidates = {c.id: c for c in store.candidates()}
    assert len(candidates) == 4 and all(c.status == "finished" for c in candidates.values())
    data = json.loads((run_dir / "summary.json").read_text())
    front = data["front"]
    assert front, "a front of four trained candidates cannot be empty"
    # the members are exactly the non-dominated (validation error, parameters) pairs
    points = [(1 - c.metrics.objective, c.metrics.params, c.id) for c in candidates.values()]
    expected = {
        cid
        for e, p, cid in points
        if not any(e2 <= e and p2 <= p and (e2, p2) != (e, p) for e2, p2, _ in points)
    }
    assert {m["candidate"] for m in front} == expected
    document = json.loads((run_dir / "front.json").read_text())
    assert document["objectives"] == ["val_error", "params"]
    for entry, member in zip(front, document["members"], strict=True):
        cid = entry["candidate"]
        assert entry["genome_file"] == member["genome_file"] == f"front/c{cid:05d}.genome"
        assert (run_dir / entry["genome_file"]).read_text() == candidates[cid].genome == member["genome"]
        assert entry["objectives"]["params"] == candidates[cid].metrics.params
        assert entry["objectives"]["val_error"] == pytest.approx(1 - candidates[cid].metrics.objective)
    assert sorted(p.name for p in (run_dir / "front").iterdir()) == sorted(
        Path(e["genome_file"]).name for e in front
    )
    # best.genome stays the single best by validation score
    best = max(candidates.values(), key=lambda c: (c.metrics.objective, -c.metrics.params, -c.id))
    assert (run_dir / "best.genome").read_text() == best.genome and summary.best_candidate == best.id


def test_strategy_keys_and_plots_join_the_report(run_dir: Path) -> None:
    summary = write_report(RunStore.open(run_dir))
    data = json.loads((run_dir / "summary.json").read_text())
    assert data["front_sizes"] == summary.model_dump()["front_sizes"]
    assert len(data["front_sizes"]) == 4 and data["front_sizes"][0] == 1
    assert data["plots"] == [*PLOTS, "front.png", "front_sizes.png"]
    for name in data["plots"]:
        assert (run_dir / name).read_bytes()[:8] == PNG


def test_a_strategy_key_the_report_fills_itself_keeps_the_reports_value(
    run_dir: Path, tmp_path: Path
) -> None:
    store = start_search(_config(clash=True, genomes=["input 1x8x8\nconv(4, 3, padding=1) gap linear(10)\n"],
                                 epochs=0), tmp_path / "run")  # fmt: skip
    summary = write_report(store)
    assert summary.params == store.candidates()[0].metrics.params != 1  # the clashing value was dropped


def test_members_that_left_the_front_leave_front_dir(run_dir: Path, tmp_path: Path) -> None:
    candidates = RunStore.open(run_dir).candidates()
    assert len(candidates) >= 2
    both = Front(
        objectives=("val_error",),
        members=tuple(FrontMember(candidate=c.id, objectives={"val_error": 0.5}) for c in candidates[:2]),
    )
    write_front(tmp_path, both, candidates)
    assert len(list((tmp_path / "front").iterdir())) == 2
    one = Front(objectives=both.objectives, members=both.members[:1])
    entries = write_front(tmp_path, one, candidates)
    assert [p.name for p in (tmp_path / "front").iterdir()] == [Path(entries[0].genome_file).name]
    with pytest.raises(ValueError, match="not candidates"):
        write_front(tmp_path, Front(objectives=("x",), members=(FrontMember(candidate=99, objectives={}),)),
                    candidates)  # fmt: skip


def test_report_command_shows_the_front_table(run_dir: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "front:" in result.output and "val_error" in result.output and "front/c0000" in result.output
    assert "front.png" in result.output


def test_nondominated_helper_is_a_real_filter() -> None:
    from front_helpers import Point

    points = [Point(id=0, val_error=0.1, params=10), Point(id=1, val_error=0.2, params=5),
              Point(id=2, val_error=0.3, params=20)]  # fmt: skip
    assert [p.id for p in nondominated(points)] == [0, 1]


def test_objective_values_are_minimised_and_named() -> None:
    import math

    from genomorph.search.core.protocol import Metrics, objective_value

    m = Metrics(objective=0.9, params=1000, macs=50, epochs=1, extra={"latency_ms": 2.5})
    assert objective_value("val_error", m) == pytest.approx(0.1)
    assert objective_value("params", m) == 1000 and objective_value("macs", m) == 50
    assert objective_value("log_params", m) == pytest.approx(math.log(1000))
    assert objective_value("latency_ms", m) == 2.5 and objective_value("log_latency_ms", m) == pytest.approx(
        math.log(2.5)
    )
    assert objective_value("energy", m) is None
