"""docs/genome.md: every ```genome block parses, the canonical example is canonical, every op is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from genomorph.grammar import parse
from genomorph.ir.ops import OP_CLASSES
from genomorph.ir.printer import OP_ALIASES, print_genome

DOC = (Path(__file__).resolve().parents[2] / "docs" / "genome.md").read_text()
BLOCKS = re.findall(r"```genome\n(.*?)```", DOC, re.S)


def test_the_reference_has_genome_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_genome_block_parses(block: str) -> None:
    graph = parse(block, "docs/genome.md")
    assert len(graph) > 1


def test_canonical_example_is_the_print_of_the_first_example() -> None:
    first, canonical = BLOCKS[0], BLOCKS[-1]
    assert print_genome(parse(first)) == canonical
    assert print_genome(parse(canonical)) == canonical


def test_resnet_block_example_has_torchvisions_cifar_parameter_count() -> None:
    block = next(b for b in BLOCKS if "ResNet-18 for CIFAR-10" in b)
    assert parse(block).stats().params == 11_173_962  # torchvision resnet18(num_classes=10), CIFAR stem


def test_mixed_example_counts_its_architecture_parameters() -> None:
    block = next(b for b in BLOCKS if "def edge(row)" in b)
    assert parse(block).stats().arch_params == 15  # 3 rows x 5 candidates, as the text says


@pytest.mark.parametrize("kind", sorted(OP_CLASSES))
def test_every_op_is_in_the_ops_table(kind: str) -> None:
    if kind == "input":
        assert "`input 3x32x32`" in DOC
    else:
        assert re.search(rf"^\| [^|]*`{kind}`", DOC, re.M), f"{kind} missing from the ops table"


@pytest.mark.parametrize("alias", sorted(OP_ALIASES))
def test_every_alias_is_documented(alias: str) -> None:
    assert f"`{alias}`" in DOC or f"`{alias}(" in DOC
