"""Architecture parameters of supernets live apart from the weights but travel with the module."""

from __future__ import annotations

import copy

import pytest
import torch
from genomorph.ir import Graph, LoweringError
from genomorph.ir.ops import Input, Mixed, Relu, Zero
from genomorph.ir.stats import arch_param_shapes
from genomorph.lower import lower
from lower_cases import CASES, example_input, main_output
from torch import nn


@pytest.fixture
def supernet() -> tuple[Graph, nn.Module]:
    graph = CASES["mixed"]()
    return graph, lower(graph)


def test_one_tensor_per_group_with_the_ir_shape(supernet) -> None:
    graph, module = supernet
    named = module.named_arch_parameters()
    assert [(g, tuple(t.shape)) for g, t in named] == list(arch_param_shapes(graph).items())
    for _, t in named:
        assert t.is_leaf and t.requires_grad
        assert t.abs().max() < 0.01  # DARTS' 1e-3 * randn: a near-uniform softmax


def test_not_among_the_weights_even_when_wrapped(supernet) -> None:
    _, module = supernet
    arch_ids = {id(t) for t in module.arch_parameters()}
    assert arch_ids
    wrapper = nn.Sequential(module)
    for owner in (module, wrapper):
        assert not arch_ids & {id(p) for p in owner.parameters()}
        assert not any(name.startswith("arch") for name, _ in owner.named_parameters())


def test_saved_and_loaded_with_the_state_dict(supernet) -> None:
    graph, module = supernet
    with torch.no_grad():
        module.arch_parameters()[0].fill_(0.5)
    other = lower(graph)
    other.load_state_dict(module.state_dict())
    for a, b in zip(other.arch_parameters(), module.arch_parameters(), strict=True):
        torch.testing.assert_close(a, b)
        assert a.requires_grad and a.is_leaf


def test_move_with_to_and_stay_optimisable(supernet) -> None:
    _, module = supernet
    alphas = module.arch_parameters()
    optimiser = torch.optim.Adam(alphas, lr=0.1)
    module.to(torch.float64)
    moved = module.arch_parameters()
    assert [id(t) for t in moved] == [id(t) for t in alphas]  # the optimiser holds live tensors
    assert all(t.dtype == torch.float64 and t.is_leaf and t.requires_grad for t in moved)
    before = [t.detach().clone() for t in moved]
    main_output(module(example_input(CASES["mixed"]()).double())).sum().backward()
    optimiser.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, moved, strict=True))


def test_gradients_reach_every_group(supernet) -> None:
    graph, module = supernet
    module(example_input(graph)).square().sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in module.arch_parameters())


def test_deepcopy_owns_its_own_alphas(supernet) -> None:
    _, module = supernet
    other = copy.deepcopy(module)
    with torch.no_grad():
        other.arch_parameters()[0].add_(1.0)
    assert not torch.equal(other.arch_parameters()[0], module.arch_parameters()[0])
    assert other.arch_parameters()[0].requires_grad
    assert {id(p) for p in other.parameters()}.isdisjoint(id(p) for p in module.parameters())


def test_networks_without_mixed_ops_have_none() -> None:
    module = lower(CASES["conv"]())
    assert module.arch_parameters() == [] and "arch" not in dict(module.named_children())


@pytest.mark.parametrize("group", ["train", "bad.name", "forward"])
def test_group_names_that_cannot_name_a_tensor_are_rejected(group: str) -> None:
    g = Graph()
    x = g.add(Input(shape=(2, 4, 4)))
    g.add(Mixed(group=group), [g.add(Relu(), [x]), g.add(Zero(), [x])])
    with pytest.raises(LoweringError, match="architecture group name"):
        lower(g)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(supernet) -> None:
    graph, module = supernet
    module.cuda()
    assert all(t.is_cuda and t.is_leaf for t in module.arch_parameters())
    module(example_input(graph).cuda()).sum().backward()
