"""PC-DARTS for real: a one-epoch digits search with --partial-channels 2 on a tiny cell space,
through the CLI, the driver, the darts recipe, the store and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from genomorph.cli.main import main
from genomorph.grammar import parse
from genomorph.grammar.darts import darts_supernet, parse_genotype
from genomorph.ir.printer import print_genome
from genomorph.search.core.store import RunStore


def _space(tmp_path: Path, channels: int = 4) -> Path:
    space = tmp_path / "cells.genome"
    space.write_text(print_genome(darts_supernet(channels, 3, 10, input_shape=(1, 8, 8))))
    return space


def _search(tmp_path: Path, *args: str) -> tuple[int, str]:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["search", "--strategy", "darts", "--dataset", "digits", "--space", str(_space(tmp_path)),
         "--out", str(out), "--set", "epochs=1", "--set", "eval_channels=4", "--set", "eval_cells=3",
         "--set", "final_epochs=0", *args],
    )  # fmt: skip
    return result.exit_code, result.output


def test_a_partial_channel_search_finds_a_plain_genotype_and_records_beta(tmp_path: Path) -> None:
    code, output = _search(tmp_path, "--partial-channels", "2")
    assert code == 0, output
    out = tmp_path / "run"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["partial_channels"] == 2
    assert summary["method"] == "DARTS (first order, partial channels K=2)"
    genotype = parse_genotype(summary["genotype"])
    assert len(genotype.normal) == len(genotype.reduce) == 8
    # the searched supernet is the partial-channel one ...
    store = RunStore.open(out)
    searched = parse(next(c.genome for c in store.candidates() if c.request.recipe == "darts"))
    store.close()
    assert {"channel_slice", "channel_shuffle", "edge_sum", "mixed"} <= set(searched.histogram())
    # ... the found network the plain DARTS evaluation network
    found = parse((out / "best.genome").read_text())
    assert not {"channel_slice", "channel_shuffle", "edge_sum", "mixed"} & set(found.histogram())
    # β went where α goes: trained, and in alphas.json after every epoch
    alphas = json.loads((out / "alphas.json").read_text())
    epochs = alphas["epochs"]
    assert len(epochs) == 2 and set(epochs[-1]) == {"normal", "reduce", "normal_beta", "reduce_beta"}
    assert len(epochs[-1]["normal_beta"]) == 14 and epochs[0]["normal_beta"] != epochs[-1]["normal_beta"]
    for name in ("alphas_heatmap.png", "alphas_epochs.png"):
        assert (out / name).is_file()


def test_channels_that_k_does_not_divide_are_a_clear_error(tmp_path: Path) -> None:
    code, output = _search(tmp_path, "--partial-channels", "3")
    assert code == 2, output
    assert "K=3 needs the channels of every edge divisible by 3" in output
    code, output = _search(tmp_path, "--partial-channels", "2", "--set", "partial_channels=4")
    assert code == 2 and "--partial-channels" in output and "contradicts --set partial_channels=4" in output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "setting", "method"),
    [
        ("darts", "order=2", "DARTS (second order, partial channels K=2)"),
        ("hyperdarts", "hypernet=linear", "hyperDARTS-1 (linear, partial channels K=2)"),
    ],
)
def test_second_order_and_hyperdarts_search_with_partial_channels(
    tmp_path: Path, strategy: str, setting: str, method: str
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["search", "--strategy", strategy, "--dataset", "digits", "--space", str(_space(tmp_path)),
         "--out", str(out), "--partial-channels", "2", "--set", setting, "--set", "epochs=1",
         "--set", "eval_channels=4", "--set", "eval_cells=3", "--set", "final_epochs=0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == method and summary["genotype"].startswith("Genotype(normal=")
    epochs = json.loads((out / "alphas.json").read_text())["epochs"]
    assert epochs[0]["reduce_beta"] != epochs[-1]["reduce_beta"]
