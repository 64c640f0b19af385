"""`genomorph morph`: the genome it prints, --check, --json, --random, --at and the exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from genomorph.cli.main import main
from genomorph.grammar import parse
from rewrite_helpers import EXAMPLES, NETS, TOLERANCE


def morph(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["morph", *args], input=input, catch_exceptions=False)


@pytest.fixture
def cnn(tmp_path: Path) -> Path:
    path = tmp_path / "cnn.genome"
    path.write_text(NETS["cnn"])
    return path


@pytest.mark.parametrize(
    "op", ["deepen", "widen", "skip-add", "skip-concat", "merge-concat", "split", "sepconv"]
)
def test_exact_rewrite_prints_a_genome_that_keeps_the_function(cnn: Path, op: str) -> None:
    result = morph(str(cnn), "--op", op, "--seed", "1", "--check", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"genome", "records", "max_abs_diff", "params_before", "params_after"} <= set(data)
    assert data["max_abs_diff"] <= TOLERANCE
    assert data["records"][0]["rewrite"] == op and data["exact"]
    child = parse(data["genome"])
    assert child.stats().params == data["params_after"]
    assert parse(NETS["cnn"]).stats().params == data["params_before"]


def test_plain_output_is_a_valid_genome_with_the_records_as_comments(cnn: Path) -> None:
    result = morph(str(cnn), "--op", "deepen", "--check")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# deepen: inserted conv(")
    assert any(line.startswith("# max abs output difference") for line in lines)
    assert parse(result.stdout).stats().params > parse(NETS["cnn"]).stats().params


def test_random_chain_of_twenty(cnn: Path) -> None:
    result = morph(str(cnn), "--random", "20", "--seed", "3", "--check", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["records"]) == 20 and data["max_abs_diff"] <= TOLERANCE
    assert all(record["exact"] for record in data["records"])


def test_random_chain_of_one_rewrite(cnn: Path) -> None:
    data = json.loads(morph(str(cnn), "--random", "3", "--op", "widen", "--json").stdout)
    assert [r["rewrite"] for r in data["records"]] == ["widen"] * 3


def test_approximate_rewrite_reports_repair_and_a_difference(cnn: Path) -> None:
    data = json.loads(morph(str(cnn), "--op", "prune-channels", "--check", "--json").stdout)
    assert not data["exact"] and data["repair"]
    assert data["params_after"] < data["params_before"] and data["max_abs_diff"] > 0


def test_at_and_set_choose_the_move(cnn: Path) -> None:
    data = json.loads(
        morph(
            str(cnn),
            "--op",
            "widen",
            "--at",
            "n1",
            "--set",
            "mode=net2net",
            "--set",
            "width=10",
            "--check",
            "--json",
        ).stdout
    )
    move = data["records"][0]["move"]
    assert move == {**move, "node": 1, "mode": "net2net", "width": 10}
    assert data["max_abs_diff"] <= TOLERANCE


def test_not_applicable_anywhere_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "mlp.genome"
    path.write_text(NETS["mlp"])
    result = morph(str(path), "--op", "sepconv")
    assert result.exit_code == 2
    assert result.stderr.startswith("not applicable: sepconv applies nowhere")
    assert result.stdout == ""


def test_not_applicable_at_a_node_says_why(cnn: Path) -> None:
    result = morph(str(cnn), "--op", "deepen", "--at", "n1")
    assert result.exit_code == 2
    assert "not applicable:" in result.stderr and "inside a block" in result.stderr
    missing = morph(str(cnn), "--op", "deepen", "--at", "n99")
    assert missing.exit_code == 2 and "no node 'n99'" in missing.stderr


def test_usage_errors(cnn: Path) -> None:
    assert morph(str(cnn)).exit_code == 2
    unknown = morph(str(cnn), "--op", "deeper")
    assert unknown.exit_code == 2 and "unknown rewrite 'deeper'" in unknown.stderr
    bad_field = morph(str(cnn), "--op", "widen", "--set", "colour=red")
    assert bad_field.exit_code == 2 and "no field 'colour'" in bad_field.stderr


def test_reads_standard_input() -> None:
    result = morph("-", "--op", "hres-grow", "--json", input=NETS["mlp"])
    assert result.exit_code == 0
    assert "add(" in json.loads(result.stdout)["genome"]


def test_resnet18_example_deepens_exactly() -> None:
    data = json.loads(
        morph(str(EXAMPLES / "resnet18_cifar.genome"), "--op", "deepen", "--check", "--json").stdout
    )
    assert data["max_abs_diff"] <= TOLERANCE
