"""The op counts of the genotype α gives now (the DARTS search's epoch progress): the same rule as
the final discretisation, in the epoch records of a real search, and as the CLI prints them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from genomorph.grammar import parse
from genomorph.grammar.darts import darts_supernet, decode_genotype
from genomorph.ir.printer import print_genome
from genomorph.ir.stats import arch_param_shapes
from genomorph.search.core.config import DataConfig, Job, TrainConfig, WorkerSpec
from genomorph.search.core.protocol import Budget, EvalRequest
from genomorph.search.runtime.checkpoint import load_checkpoint
from genomorph.search.runtime.evaluate import evaluate_job
from genomorph.search.strategies._darts_options import DartsRecipeOptions
from genomorph.search.strategies._darts_progress import (
    current_op_counts,
    format_op_counts,
    genotype_layout,
    op_counts_record,
)
from genomorph.search.strategies._darts_space import argmax_genome, op_counts, share_pure_ops

log = logging.getLogger(__name__)

SEQ = """\
def layer(row) = mixed(conv(4, 3, bias=false) bn(affine=false), relu sep_conv(4, 3, bias=false) bn(affine=false), \
skip, zero, group=layers, row=row, labels=[conv_3x3, sep_conv_3x3, skip_connect, "none"])
input 1x8x8
conv(4, 3, bias=false) bn relu
layer(0) relu
layer(1) relu
layer(2)
gap linear(10)
"""


@pytest.mark.parametrize("shared", [False, True])
def test_counts_match_the_discretised_genotype_on_random_alphas(shared: bool) -> None:
    graph = darts_supernet(4, 5, 10, input_shape=(1, 8, 8))
    if shared:
        graph, _ = share_pure_ops(graph)
    layout = genotype_layout(graph)
    assert set(layout.nodes) == {"normal", "reduce"}
    assert [len(rows) for rows in layout.nodes["normal"]] == [2, 3, 4, 5]
    shapes = arch_param_shapes(graph)
    seeds = range(20)
    assert len(seeds) > 0
    for seed in seeds:
        log.info("random alphas from seed %d", seed)
        rng = np.random.default_rng(seed)
        arch = {g: rng.normal(size=shape) for g, shape in shapes.items()}
        genotype = decode_genotype(graph, arch)
        counts = current_op_counts(arch, layout)
        assert counts["normal"] == op_counts([op for op, _ in genotype.normal]), seed
        assert counts["reduce"] == op_counts([op for op, _ in genotype.reduce]), seed
        assert sum(counts["normal"].values()) == 8


def test_counts_of_any_supernet_are_the_argmax_per_mixed_node() -> None:
    graph = parse(SEQ)
    layout = genotype_layout(graph)
    assert layout.nodes == {} and len(layout.labels["layers"]) == 3
    seeds = range(20)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        arch = {g: rng.normal(size=shape) for g, shape in arch_param_shapes(graph).items()}
        _, chosen = argmax_genome(graph, arch)
        assert current_op_counts(arch, layout)["layers"] == op_counts(list(chosen.values())), seed


def test_the_progress_line() -> None:
    record = {"train_loss": 0.5, "ops.normal.sep_conv_3x3": 5.0, "ops.normal.skip_connect": 2.0,
              "ops.normal.max_pool_3x3": 1.0, "ops.reduce.max_pool_3x3": 8.0}  # fmt: skip
    assert format_op_counts(record) == "normal sep3×5 skip×2 max×1  reduce max×8"
    assert format_op_counts({"ops.layers.conv_3x3": 2.0}) == "conv_3x3×2"
    assert format_op_counts({"train_loss": 1.0}) == ""
    graph = parse(SEQ)
    arch = {"layers": np.eye(4)[[0, 0, 2]] * 5}
    assert op_counts_record(arch, genotype_layout(graph)) == {
        "ops.layers.conv_3x3": 2.0,
        "ops.layers.skip_connect": 1.0,
    }


def test_a_darts_search_records_the_genotype_counts_every_epoch(tmp_path: Path) -> None:
    graph = darts_supernet(4, 3, 10, input_shape=(1, 8, 8))
    options = DartsRecipeOptions(layout=genotype_layout(graph), arch_lr=3e-2)  # α moves in 2 epochs
    spec = WorkerSpec(run_dir=str(tmp_path), data=DataConfig(name="digits"), train=TrainConfig(), threads=1)
    request = EvalRequest(
        genome=print_genome(graph),
        budget=Budget(epochs=2),
        recipe="darts",
        recipe_options=options.model_dump(mode="json"),
    )
    result = evaluate_job(spec, Job(id=0, request=request, seed=0, checkpoint="checkpoints/c00000.pt"))
    assert result.ok, result.reason
    history = result.metrics.history
    assert len(history) == 2
    for record in history:
        normal = {k: v for k, v in record.items() if k.startswith("ops.normal.")}
        assert sum(normal.values()) == 8  # 4 nodes x 2 kept edges
        assert format_op_counts(record).startswith("normal ")
    # the last epoch's counts are those of the genotype decoded from the trained α
    _, arch, _ = load_checkpoint(tmp_path / result.checkpoint)
    genotype = decode_genotype(graph, arch)
    last = {k[len("ops.") :]: int(v) for k, v in history[-1].items() if k.startswith("ops.")}
    wanted = {f"normal.{op}": n for op, n in op_counts([op for op, _ in genotype.normal]).items()}
    wanted.update({f"reduce.{op}": n for op, n in op_counts([op for op, _ in genotype.reduce]).items()})
    assert last == wanted
