"""Importing PyTorch modules: torchvision models and FILE.py:factory, traced into genomes.

Every import is checked the way the issue asks: the genome's parameter count equals the
module's, and the genome re-parsed from its printed text, lowered with the imported weights,
gives the module's logits (eval mode, <= 1e-4). Batch-norm statistics are randomised before the
import (seeded) so the check covers buffers too, not only trainable weights.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from genomorph.cli.main import main
from genomorph.grammar import parse
from genomorph.ir.printer import print_genome
from genomorph.lower import lower
from genomorph.lower.importer import ImportFailure, build_model, import_model, parse_source
from genomorph.search.runtime.checkpoint import load_checkpoint
from torch import nn

HERE = Path(__file__).parent
FACTORY = HERE / "digits_net.py"
SEED = 20261201
log = logging.getLogger(__name__)


def _randomise_statistics(model: nn.Module, seed: int) -> nn.Module:
    """Batch-norm running statistics and affine weights off their defaults, as after training."""
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=generator))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=generator))
            if m.affine:
                with torch.no_grad():
                    m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=generator))
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))
    return model


def _check(spec: str, shape: tuple[int, ...]) -> None:
    log.info("seed %d", SEED)
    torch.manual_seed(SEED)
    model = _randomise_statistics(build_model(parse_source(spec)), SEED).eval()
    imported = import_model(model, shape)
    assert (
        imported.graph.stats().params == imported.module_params == sum(p.numel() for p in model.parameters())
    )
    # through genome text, as a user gets it: same node ids, so the weights still fit
    graph = parse(print_genome(imported.graph))
    module = lower(graph, imported.weights).eval()
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        diff = float((module(x) - model(x)).abs().max())
    assert diff <= 1e-4, f"{spec}: logits differ by {diff}"


#: a plain residual net and an SE/stochastic-depth one stay in the default suite (small inputs)
@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "mobilenet_v3_small"])
def test_torchvision_model_imports_exactly(name: str) -> None:
    _check(f"torchvision:{name}", (3, 64, 64))


ALL = [
    "resnet18",
    "resnet50",
    "vgg11_bn",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "densenet121",
    "squeezenet1_1",
    "efficientnet_b0",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_every_listed_torchvision_model_imports_at_224(name: str) -> None:
    _check(f"torchvision:{name}", (3, 224, 224))


def test_keyword_arguments_reach_the_model() -> None:
    model = build_model(parse_source("torchvision:resnet18(num_classes=7)"))
    assert model.fc.out_features == 7
    imported = import_model(model, (3, 32, 32))
    assert imported.graph.stats().output_shape == (7,)


def test_factory_file_with_squeeze_excitation_imports_exactly() -> None:
    _check(f"{FACTORY}:build(width=8)", (1, 8, 8))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("permuting", r"cannot express Tensor\.permute in module 'mixer'"),
        ("shared", r"Conv2d at module path 'conv' .*called 2 times"),
        ("unused", r"the genome has 650 parameters but the module has 1,300"),
    ],
)
def test_what_the_ir_cannot_express_is_named(factory: str, message: str) -> None:
    with pytest.raises(ImportFailure, match=message) as info:
        import_model(build_model(parse_source(f"{FACTORY}:{factory}")), (1, 8, 8))
    assert info.value.hint  # says what to do


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("resnet18", "write torchvision:NAME"),
        ("torchvision:resnet1000", "torchvision has no model 'resnet1000'"),
        ("torchvision:resnet18(weights='DEFAULT')", "does not download pretrained weights"),
        ("torchvision:resnet18(3)", "keyword"),
        (f"{FACTORY}:nothing_here", "has no callable 'nothing_here'"),
    ],
)
def test_bad_sources_exit_2_with_a_message(spec: str, message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["import", spec, "--input-shape", "1x8x8", "-o", str(tmp_path / "x.genome")]
    )
    assert result.exit_code == 2
    assert message in result.output


def test_cli_import_writes_genome_and_checkpoint(tmp_path: Path) -> None:
    genome, weights = tmp_path / "net.genome", tmp_path / "net.pt"
    args = ["import", f"{FACTORY}:build(width=4)", "--input-shape", "1x8x8", "-o", str(genome)]
    result = CliRunner().invoke(main, [*args, "--weights-out", str(weights)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "logits max abs diff 0" in result.output
    graph = parse(genome.read_text())
    tensors, arch, text = load_checkpoint(weights)
    assert arch == {} and parse(text).structure() == graph.structure()
    model = build_model(parse_source(f"{FACTORY}:build(width=4)"))
    assert graph.stats().params == sum(p.numel() for p in model.parameters())
    lower(graph, tensors)  # the checkpoint's node ids are the genome's


def test_imported_genome_morphs_like_any_genome(tmp_path: Path) -> None:
    genome = tmp_path / "net.genome"
    result = CliRunner().invoke(
        main,
        ["import", f"{FACTORY}:build", "--input-shape", "1x8x8", "-o", str(genome)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        main, ["morph", str(genome), "--op", "deepen", "--check", "--seed", "1"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    found = re.search(r"max abs output difference .*: ([0-9.e+-]+)", result.output)
    assert found is not None and float(found.group(1)) <= 1e-5  # an exact morphism of the import
