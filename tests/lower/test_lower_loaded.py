"""lower(graph, weights) builds modules without torch's random init: same result, own memory.

The reference is the plain path: ``load_weights(lower(graph), graph, weights, arch)``. Both ways
of building a loaded module (on the meta device for big modules, in place for small ones) are
forced in turn through ``META_FROM``, so every op kind goes through each.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from genomorph.ir import Graph, LoweringError
from genomorph.ir.ops import BatchNorm, Conv, GlobalAvgPool, Linear, Relu, SepConv
from genomorph.ir.weights import ArchWeights, Weights, copy_weights
from genomorph.lower import GenomeModule, extract_weights, load_weights, lower
from genomorph.lower import weights as lower_weights
from lower_cases import CASES, chain, example_input, main_output, random_graph

#: META_FROM values forcing the in-place path (never meta) and the meta path (always)
PATHS = {"in_place": 10**12, "meta": 0}


def _trained(graph: Graph, seed: int) -> tuple[Weights, ArchWeights]:
    """Weights unlike a fresh lowering's: perturbed floats, counters off zero."""
    rng = np.random.default_rng(seed)
    weights, arch = extract_weights(lower(graph), graph)

    def perturbed(name: str, array: np.ndarray) -> np.ndarray:
        if name.endswith("running_var"):  # stays positive
            return (array * rng.uniform(0.5, 2.0, array.shape)).astype(array.dtype)
        if array.dtype.kind == "f":
            return (array + rng.normal(0.0, 0.5, array.shape)).astype(array.dtype)
        return array + 3

    return (
        {nid: {name: perturbed(name, a) for name, a in per.items()} for nid, per in weights.items()},
        {group: perturbed(group, a) for group, a in arch.items()},
    )


def _assert_same_module(got: GenomeModule, want: GenomeModule, graph: Graph) -> None:
    got_state, want_state = got.state_dict(keep_vars=True), want.state_dict(keep_vars=True)
    assert list(got_state) == list(want_state)
    for key, tensor in want_state.items():
        other = got_state[key]
        assert type(other) is type(tensor), key  # Parameter stays Parameter, buffer plain
        assert other.dtype == tensor.dtype and other.device == tensor.device, key
        assert other.requires_grad == tensor.requires_grad and other.is_leaf, key
        assert torch.equal(other, tensor), key
    assert [n for n, _ in got.named_parameters()] == [n for n, _ in want.named_parameters()]
    assert [n for n, _ in got.named_buffers()] == [n for n, _ in want.named_buffers()]
    assert [n for n, _ in got.named_arch_parameters()] == [n for n, _ in want.named_arch_parameters()]
    x = example_input(graph)
    got.eval(), want.eval()
    torch.testing.assert_close(main_output(got(x)), main_output(want(x)), rtol=0, atol=0)


def _big() -> Graph:
    """Every parameterised image kind above the default META_FROM, and one below it."""
    return chain(
        (32, 6, 6),
        Conv(channels=32, bias=True),
        BatchNorm(),
        Relu(),
        SepConv(channels=256, bias=False),
        BatchNorm(),
        GlobalAvgPool(),
        Linear(features=40),
        BatchNorm(),
        Linear(features=5),
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_loaded_equals_lowered_then_loaded(case: str, path: str, monkeypatch) -> None:
    monkeypatch.setattr(lower_weights, "META_FROM", PATHS[path])
    graph = CASES[case]()
    weights, arch = _trained(graph, seed=1)
    want = lower(graph)
    load_weights(want, graph, weights, arch)
    _assert_same_module(lower(graph, weights, arch), want, graph)


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_and_a_big_one_with_the_default_threshold(seed: int) -> None:
    for graph in (random_graph(seed), _big()):
        weights, arch = _trained(graph, seed)
        want = lower(graph)
        load_weights(want, graph, weights, arch)
        _assert_same_module(lower(graph, weights, arch), want, graph)


@pytest.mark.parametrize("path", PATHS)
def test_module_never_aliases_the_arrays(path: str, monkeypatch) -> None:
    monkeypatch.setattr(lower_weights, "META_FROM", PATHS[path])
    graph = CASES["mixed"]()
    weights, arch = _trained(graph, seed=2)
    before, arch_before = copy_weights(weights), {g: a.copy() for g, a in arch.items()}
    module = lower(graph, weights, arch).train()
    state = module.state_dict()
    for nid, per in weights.items():
        for name, array in per.items():
            assert not np.shares_memory(state[f"n{nid}.{name}"].numpy(), array)
    for group, array in arch.items():
        assert not np.shares_memory(state[f"arch.{group}"].numpy(), array)
    # a training step and an in-place edit of everything the module holds
    optimizer = torch.optim.SGD([*module.parameters(), *module.arch_parameters()], lr=0.5)
    main_output(module(example_input(graph))).square().sum().backward()
    optimizer.step()
    with torch.no_grad():
        for tensor in module.state_dict().values():
            tensor.add_(1)
    for nid, per in weights.items():
        for name, array in per.items():
            np.testing.assert_array_equal(array, before[nid][name])
    for group, array in arch.items():
        np.testing.assert_array_equal(array, arch_before[group])


def test_loaded_module_trains_and_copies() -> None:
    graph = _big()
    weights, _ = _trained(graph, seed=3)
    module = lower(graph, weights)
    assert all(p.device.type == "cpu" and p.is_leaf and p.requires_grad for p in module.parameters())
    main_output(module(example_input(graph))).sum().backward()
    assert all(p.grad is not None for p in module.parameters())
    clone = copy.deepcopy(module)
    want = module.state_dict()
    assert all(torch.equal(tensor, want[key]) for key, tensor in clone.state_dict().items())


def test_partial_weights_when_not_strict_get_torch_init_elsewhere() -> None:
    graph = _big()
    weights, _ = _trained(graph, seed=4)
    convs = [n for n in weights if graph.kind(n) == "conv"]
    bns = [n for n in weights if graph.kind(n) == "bn"]
    partial = {n: per for n, per in weights.items() if n not in (convs[0], bns[0])}
    with pytest.raises(LoweringError, match=f"n{convs[0]}"):
        lower(graph, partial)
    module = lower(graph, partial, strict=False)
    state = module.state_dict()
    for nid, per in partial.items():
        for name, array in per.items():
            np.testing.assert_array_equal(state[f"n{nid}.{name}"].numpy(), array)
    # the conv left out is drawn as torch draws it: kaiming-uniform, |w| <= 1 / sqrt(fan_in)
    drawn = state[f"n{convs[0]}.weight"]
    fan_in = drawn[0].numel()
    assert drawn.abs().max() <= 1 / fan_in**0.5 and drawn.std() > 0.1 / fan_in**0.5
    bn = {name: state[f"n{bns[0]}.{name}"] for name in ("weight", "bias", "running_mean", "running_var")}
    assert torch.equal(bn["weight"], torch.ones_like(bn["weight"]))
    assert torch.equal(bn["running_var"], torch.ones_like(bn["running_var"]))
    assert not bn["bias"].any() and not bn["running_mean"].any()


def test_float64_strided_and_read_only_arrays(monkeypatch) -> None:
    monkeypatch.setattr(lower_weights, "META_FROM", 0)
    graph = _big()
    weights, _ = _trained(graph, seed=5)
    odd: Weights = {}
    for i, (nid, per) in enumerate(weights.items()):
        odd[nid] = {}
        for name, array in per.items():
            if i % 3 == 0 and array.dtype.kind == "f":
                array = array.astype(np.float64)  # converted by the copy, rounded as copy_ rounds
            elif i % 3 == 1 and array.ndim > 1:
                array = np.asfortranarray(array)  # not C-contiguous
            else:
                array = array.copy()
                array.setflags(write=False)  # as np.load(mmap_mode="r") gives them
            odd[nid][name] = array
    want = lower(graph)
    load_weights(want, graph, odd)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it wraps a read-only array
        got = lower(graph, odd)
    _assert_same_module(got, want, graph)


def test_default_dtype_is_kept(monkeypatch) -> None:
    monkeypatch.setattr(lower_weights, "META_FROM", 0)
    graph = _big()
    weights, _ = _trained(graph, seed=6)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        want = lower(graph)
        load_weights(want, graph, weights)
        got = lower(graph, weights)
    finally:
        torch.set_default_dtype(previous)
    assert next(got.parameters()).dtype == torch.float64
    got_state, want_state = got.state_dict(), want.state_dict()
    assert all(got_state[k].dtype == want_state[k].dtype for k in want_state)
    assert all(torch.equal(got_state[k], want_state[k]) for k in want_state)


def test_bad_weights_are_reported_by_lower() -> None:
    graph = _big()
    weights, _ = _trained(graph, seed=7)
    nid = next(n for n in weights if graph.kind(n) == "sep_conv")
    bad = copy_weights(weights)
    bad[nid]["pointwise.weight"] = np.zeros((1, 2, 3, 4), np.float32)
    with pytest.raises(LoweringError, match=r"shape \(1, 2, 3, 4\) but the IR expects"):
        lower(graph, bad)
