"""Every op kind lowers, runs forward and backward, and agrees with the IR's own numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genomorph.ir import OP_CLASSES
from genomorph.ir.stats import arch_param_shapes
from genomorph.ir.weights import expected_shapes
from genomorph.lower import GenomeModule, extract_weights, lower
from lower_cases import CASES, example_input, flops, main_output


def test_every_op_kind_has_a_case() -> None:
    covered = set().union(*(CASES[name]().histogram() for name in CASES))
    assert covered == set(OP_CLASSES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_backward(case: str) -> None:
    graph = CASES[case]()
    module = lower(graph)
    assert isinstance(module, GenomeModule)
    module.train()
    x = example_input(graph).requires_grad_()
    outs = module(x)
    assert tuple(main_output(outs).shape) == (2, *graph.stats().output_shape)
    sum(o.square().sum() for o in (outs if isinstance(outs, tuple) else [outs])).backward()
    trainable = [x, *module.parameters(), *module.arch_parameters()]
    assert all(p.grad is not None and p.grad.isfinite().all() for p in trainable)


@pytest.mark.parametrize("case", sorted(CASES))
def test_counts_equal_torch(case: str) -> None:
    graph = CASES[case]()
    module = lower(graph)
    stats = graph.stats()
    assert stats.params == sum(p.numel() for p in module.parameters())
    assert stats.arch_params == sum(p.numel() for p in module.arch_parameters())
    batch = 3
    assert flops(module, example_input(graph, batch)) == 2 * batch * stats.macs


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_dict_names_are_the_ir_names(case: str) -> None:
    graph = CASES[case]()
    module = lower(graph)
    want = {
        f"n{nid}.{name}": tuple(shape)
        for nid in graph.order()
        for name, shape in expected_shapes(graph, nid).items()
    }
    want |= {f"arch.{group}": shape for group, shape in arch_param_shapes(graph).items()}
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == want


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_call_module_per_parameterised_node(case: str) -> None:
    graph = CASES[case]()
    module = lower(graph)
    called = [n.target for n in module.graph.nodes if n.op == "call_module"]
    training_only = ("dropout", "stochastic_depth")  # modules without tensors: they read self.training
    want = [
        f"n{nid}" for nid in graph.order() if expected_shapes(graph, nid) or graph.kind(nid) in training_only
    ]
    assert [t for t in called if t != "arch"] == want
    assert called.count("arch") == (1 if arch_param_shapes(graph) else 0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_weights_round_trip(case: str) -> None:
    graph = CASES[case]()
    source = lower(graph)
    # Move every tensor away from its initial value (BN statistics included) so the copy
    # cannot pass by starting from the same defaults.
    source.train()
    source(example_input(graph, seed=1))
    with torch.no_grad():
        for t in [*source.parameters(), *source.arch_parameters()]:
            t.add_(torch.randn_like(t) * 0.1)
    weights, arch = extract_weights(source, graph)
    copy = lower(graph, weights, arch)
    again, arch_again = extract_weights(copy, graph)
    assert weights.keys() == again.keys() and arch.keys() == arch_again.keys()
    for nid, per in weights.items():
        assert per.keys() == again[nid].keys()
        for name, array in per.items():
            assert array.dtype == again[nid][name].dtype
            np.testing.assert_array_equal(array, again[nid][name])
    for group, array in arch.items():
        np.testing.assert_array_equal(array, arch_again[group])
    source.eval()
    copy.eval()
    x = example_input(graph, seed=2)
    torch.testing.assert_close(main_output(copy(x)), main_output(source(x)), rtol=0, atol=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_weight_arrays_have_the_ir_shapes(case: str) -> None:
    graph = CASES[case]()
    weights, _ = extract_weights(lower(graph), graph)
    for nid, per in weights.items():
        shapes = {name: a.shape for name, a in per.items()}
        assert shapes == {n: tuple(s) for n, s in expected_shapes(graph, nid).items()}
