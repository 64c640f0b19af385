"""The ResNet-18 examples are torchvision's ResNet-18, parameter for parameter and logit for logit.

Reference figures come from torchvision itself (imported through genomorph's compat shim):
``torchvision.models.resnet18()`` has 11,689,512 parameters; the CIFAR variant (``num_classes=10``,
``conv1`` replaced by a 3x3 stride-1 pad-1 conv without bias, ``maxpool`` by ``Identity``) has
11,173,962. The tests compute them from the torchvision models rather than trusting the numbers,
and also check the numbers, so a change on either side shows up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from genomorph.grammar import parse_file
from genomorph.ir import Graph, Weights
from genomorph.ir.weights import expected_shapes
from genomorph.lower import extract_weights, lower
from genomorph.lower.torchvision_compat import import_torchvision
from torch import nn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: torchvision layer type -> the IR op kind it must pair with
_KINDS: dict[type[nn.Module], str] = {nn.Conv2d: "conv", nn.BatchNorm2d: "bn", nn.Linear: "linear"}


def torchvision_resnet18(cifar: bool) -> nn.Module:
    models = import_torchvision().models
    if not cifar:
        return models.resnet18()
    model = models.resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def torchvision_to_weights(model: nn.Module, graph: Graph) -> Weights:
    """Map a torchvision model's tensors onto IR node ids by walking both in order.

    torchvision's parameterised layers in definition order (``named_modules``: conv1, bn1,
    layer1.0.conv1, bn1, conv2, bn2, [downsample.0, downsample.1], ..., fc) pair one to one with
    the IR's parameterised nodes in ``graph.order()``; the genome writes each block's main branch
    before its shortcut, as torchvision defines them. Kinds are checked pair by pair and shapes by
    ``load_weights``, so a wrong pairing fails loudly instead of loading garbage.
    """
    layers = [(name, m) for name, m in model.named_modules() if type(m) in _KINDS]
    nodes = [nid for nid in graph.order() if expected_shapes(graph, nid)]
    assert len(layers) == len(nodes), f"{len(layers)} torchvision layers vs {len(nodes)} IR nodes"
    weights: Weights = {}
    for (name, layer), nid in zip(layers, nodes, strict=True):
        assert graph.kind(nid) == _KINDS[type(layer)], f"{name} pairs with {graph.node(nid).describe()}"
        weights[nid] = {k: v.detach().cpu().numpy().copy() for k, v in layer.state_dict().items()}
    return weights


def _randomise(model: nn.Module, size: int) -> None:
    """Give BN non-trivial affine parameters and running statistics (a few train-mode passes)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=generator))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=generator))
        model.train()
        for _ in range(3):
            model(torch.randn(4, 3, size, size, generator=generator))
    model.eval()


@pytest.mark.parametrize(
    ("file", "cifar", "params"),
    [
        ("resnet18.genome", False, 11_689_512),  # torchvision.models.resnet18()
        ("resnet18_cifar.genome", True, 11_173_962),  # resnet18(num_classes=10), 3x3 stem, no max-pool
    ],
)
def test_parameter_count_equals_torchvision(file: str, cifar: bool, params: int) -> None:
    graph = parse_file(EXAMPLES / file)
    reference = torchvision_resnet18(cifar)
    assert sum(p.numel() for p in reference.parameters()) == params
    assert graph.stats().params == params
    assert sum(p.numel() for p in lower(graph).parameters()) == params


@pytest.mark.parametrize(("file", "cifar"), [("resnet18.genome", False), ("resnet18_cifar.genome", True)])
def test_logits_equal_torchvision_with_its_weights(file: str, cifar: bool) -> None:
    torch.manual_seed(0)
    graph = parse_file(EXAMPLES / file)
    size = graph.stats().input_shape[1]
    reference = torchvision_resnet18(cifar)
    _randomise(reference, size)
    weights = torchvision_to_weights(reference, graph)
    module = lower(graph, weights).eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = reference(x), module(x)
    assert got.shape == want.shape == (2, 10 if cifar else 1000)
    assert (got - want).abs().max().item() <= 1e-4
    # and back out: the lowered module's weights are torchvision's, tensor for tensor
    back, _ = extract_weights(module, graph)
    for nid, per in weights.items():
        for name, array in per.items():
            np.testing.assert_array_equal(back[nid][name], array)


def test_lowered_module_trains_like_torchvision() -> None:
    """One SGD step from the same weights moves both networks to the same weights."""
    torch.manual_seed(0)
    graph = parse_file(EXAMPLES / "resnet18_cifar.genome")
    reference = torchvision_resnet18(cifar=True)
    module = lower(graph, torchvision_to_weights(reference, graph))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([3, 9])
    for model in (reference, module):
        model.train()
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    moved = torchvision_to_weights(reference, graph)
    back, _ = extract_weights(module, graph)
    for nid, per in moved.items():
        for name, array in per.items():
            np.testing.assert_allclose(back[nid][name], array, rtol=1e-4, atol=1e-5)
