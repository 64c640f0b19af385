"""Exit statuses and messages: 0 on success, 2 on bad input (never a traceback), 1 on a bug."""

from __future__ import annotations

import json
import re

import click
import pytest
from cli_helpers import EXAMPLES, SMALL, invoke, run_script
from genomorph.cli.main import main
from genomorph.ir.errors import GenomeSemanticError

LOCATION = re.compile(r"<stdin>:(\d+):(\d+): error: ")

#: (genome text, line of the error or None when the text has no position to point at, words in the message)
BAD_INPUTS = [
    pytest.param("", None, [], id="empty"),
    pytest.param("(((", 1, [], id="open-parens"),
    pytest.param("conv(", 1, [], id="unclosed-call"),
    pytest.param("@@@", 1, [], id="junk"),
    pytest.param("input 3x8x8\nfrobnicate(3)\n", 2, ["frobnicate"], id="unknown-op"),
    pytest.param("input 3x8x8\nconv(4, 3, strid=2)\n", 2, ["strid"], id="unknown-argument"),
    pytest.param(
        "input 3x8x8\nx = conv(4, 3)\nadd(x, conv(8, 3)) gap linear(2)\n", 3, ["mismatch"], id="shape"
    ),
    pytest.param("input 3x8x8\nadd(_, y) gap linear(2)\n", 2, ["y"], id="undefined-name"),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD_INPUTS)
def test_bad_input_exits_2_with_location_and_no_traceback(
    text: str, line: int | None, words: list[str]
) -> None:
    result = invoke("validate", "-", input=text)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert "error:" in result.stderr
    for word in words:
        assert word in result.stderr
    if line is not None:
        found = LOCATION.search(result.stderr)
        assert found, result.stderr
        assert int(found.group(1)) == line
        assert "^" in result.stderr  # the caret under the spot


@pytest.mark.parametrize("command", ["validate", "info", "render", "fmt"])
def test_every_genome_command_reports_bad_input_the_same_way(command: str) -> None:
    result = invoke(command, "-", input="input 3x8x8\nfrobnicate(3)\n")
    assert result.exit_code == 2
    assert "<stdin>:2:1: error:" in result.stderr and "Traceback" not in result.output


def test_validate_prints_nodes_and_params(small_file) -> None:
    result = invoke("validate", str(small_file))
    assert result.exit_code == 0, result.output
    info = json.loads(invoke("info", str(small_file), "--json").stdout)
    assert result.stdout == f"ok: {info['num_nodes']} nodes, {info['params']} params\n"


def test_validate_many_files_reports_each_and_fails_if_one_does(small_file, tmp_path) -> None:
    bad = tmp_path / "bad.genome"
    bad.write_text("input 3x8x8\nconv(4, 3\n")
    result = invoke("validate", str(small_file), str(bad))
    assert result.exit_code == 2
    assert result.stdout.startswith(f"{small_file}: ok: ")
    assert f"{bad}:2:" in result.stderr


def test_missing_file_is_bad_input() -> None:
    result = invoke("info", "no/such/file.genome")
    assert result.exit_code == 2
    assert "no such file" in result.stderr and "Traceback" not in result.output


def test_usage_errors_exit_2() -> None:
    assert invoke("info", "--no-such-flag", "-").exit_code == 2
    assert invoke("no-such-command").exit_code == 2
    assert invoke("render", "-", "--format", "gif", input=SMALL).exit_code == 2


def test_library_errors_and_bugs_in_any_command() -> None:
    """The group applies the contract to every subcommand, including ones other modules add."""

    @click.command("raise-genome-error")
    def raise_genome_error() -> None:
        raise GenomeSemanticError("no such thing", hint="try another thing")

    @click.command("raise-bug")
    def raise_bug() -> None:
        raise RuntimeError("kaboom")

    main.add_command(raise_genome_error)
    main.add_command(raise_bug)
    try:
        user = invoke("raise-genome-error")
        bug = invoke("raise-bug")
    finally:
        main.commands.pop("raise-genome-error")
        main.commands.pop("raise-bug")
    assert user.exit_code == 2
    assert user.stderr == "error: no such thing\nhint: try another thing\n"
    assert bug.exit_code == 1
    assert "internal error: RuntimeError: kaboom" in bug.stderr
    assert "Traceback (most recent call last)" in bug.stderr


def test_help_of_every_command_has_examples() -> None:
    assert "Examples:" in invoke("--help").stdout
    for name in main.list_commands(click.Context(main)):
        result = invoke(name, "--help")
        assert result.exit_code == 0
        assert "Examples:" in result.stdout and "genomorph " + name in result.stdout


# -------------------------------------------------------------------- the real console script
def test_console_script_bad_input_exit_2() -> None:
    done = run_script("validate", "-", input="(((")
    assert done.returncode == 2
    assert "<stdin>:1:" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not EXAMPLES, reason="no examples yet")
def test_console_script_info_json() -> None:
    done = run_script("info", str(EXAMPLES[0]), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["params"] > 0


def test_console_script_version() -> None:
    done = run_script("--version")
    assert done.returncode == 0 and "genomorph" in done.stdout
