"""Each strategy for real: a tiny search on digits through the CLI, the driver, the trainer and the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner
from genomorph.cli.main import main
from genomorph.grammar import parse
from genomorph.search.strategies.sequential import decode
from genomorph.search.strategies.space import load_space

ROOT = Path(__file__).resolve().parents[3]
SPACE_FILE = ROOT / "examples" / "space_ga.toml"


def _search(out: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, ["search", "--dataset", "digits", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def _genomes(out: Path) -> list[tuple[int, int | None, str, str]]:
    with sqlite3.connect(out / "run.db") as db:
        return db.execute("select id, parent, status, genome from candidates order by id").fetchall()


def test_evolution_on_digits_stays_in_the_space(tmp_path: Path) -> None:
    out = tmp_path / "ga"
    summary = _search(
        out, "--strategy", "evolution", "--space", str(SPACE_FILE), "--epochs", "1",
        "--set", "population=2", "--set", "cycles=4", "--set", "final_epochs=1",
    )  # fmt: skip
    rows = _genomes(out)
    assert len(rows) == 5 and all(status == "finished" for _, _, status, _ in rows)
    space = load_space(SPACE_FILE).bind((1, 8, 8), 10)
    for _, _, _, genome in rows:
        decode(space, parse(genome))  # raises if any candidate left the space
    assert rows[2][1] in (0, 1) and rows[3][1] is not None  # children name a parent
    assert summary["strategy"] == "evolution" and summary["candidates_finished"] == 5
    assert summary["test_accuracy"] > 0.3  # one epoch of training is far above chance (0.1)


def test_nash_on_digits_grows_by_morphisms_and_inherits_weights(tmp_path: Path) -> None:
    out = tmp_path / "nash"
    summary = _search(
        out, "--strategy", "nash",
        "--set", "steps=1", "--set", "children=2", "--set", "ops=2", "--set", "epochs=1",
        "--set", "start_epochs=2", "--set", "final_epochs=1",
    )  # fmt: skip
    rows = _genomes(out)
    assert [parent for _, parent, _, _ in rows] == [None, 0, 0, rows[3][1]]
    start, children = parse(rows[0][3]), [parse(g) for _, _, _, g in rows[1:3]]
    assert not any(child.same_structure(start) for child in children)
    with sqlite3.connect(out / "run.db") as db:
        inits = [
            r[0] for r in db.execute("select json_extract(request, '$.init_checkpoint') from candidates")
        ]
        records = [json.loads(r[0]) for r in db.execute("select rewrites from candidates where id in (1, 2)")]
    assert all(len(recs) == 2 and all(rec["exact"] for rec in recs) for recs in records)
    assert inits[0] is None and all(inits[1:])  # children and the final start from inherited weights
    # the initial weights were written for every child (the run deletes those of children it
    # no longer needs once they are observed, see test_prune.py); the final's start stays
    assert inits[1:3] == ["checkpoints/c00001.init.pt", "checkpoints/c00002.init.pt"]
    assert inits[3] == f"checkpoints/c{rows[3][1]:05d}.pt" and (out / inits[3]).exists()  # N*'s own weights
    # an exact morphism of a trained parent starts where the parent ended, so one more epoch
    # keeps the accuracy far above chance
    assert summary["test_accuracy"] > 0.5


def test_random_search_on_digits(tmp_path: Path) -> None:
    out = tmp_path / "random"
    summary = _search(
        out, "--strategy", "random", "--space", str(SPACE_FILE), "--budget", "3", "--epochs", "2",
        "--set", "final_epochs=1",
    )  # fmt: skip
    assert summary["candidates_finished"] == 4 and summary["test_accuracy"] > 0.3
