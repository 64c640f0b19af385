"""Weights in and out by node id: exact round trips and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genomorph.ir import LoweringError
from genomorph.ir.weights import copy_weights
from genomorph.lower import extract_weights, load_weights, lower
from lower_cases import CASES, example_input, main_output


@pytest.fixture
def resnetish():
    graph = CASES["mixed"]()
    module = lower(graph)
    weights, arch = extract_weights(module, graph)
    return graph, module, weights, arch


def _state(module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_lower_with_weights_gives_the_same_function(resnetish) -> None:
    graph, module, weights, arch = resnetish
    other = lower(graph, weights, arch)
    module.eval()
    other.eval()
    x = example_input(graph)
    torch.testing.assert_close(main_output(other(x)), main_output(module(x)), rtol=0, atol=0)


def test_extracted_arrays_are_copies(resnetish) -> None:
    graph, module, weights, _ = resnetish
    first = next(iter(weights))
    name = next(iter(weights[first]))
    weights[first][name][...] = 123.0
    assert not (module.state_dict()[f"n{first}.{name}"] == 123.0).any()


def test_missing_tensor_names_node_and_tensor(resnetish) -> None:
    graph, module, weights, arch = resnetish
    bad = copy_weights(weights)
    nid = next(n for n in bad if "running_var" in bad[n])
    del bad[nid]["running_var"]
    with pytest.raises(LoweringError, match=rf"n{nid} \(bn.*'running_var'.*missing"):
        load_weights(module, graph, bad, arch)


def test_wrong_shape_is_reported_with_both_shapes(resnetish) -> None:
    graph, module, weights, arch = resnetish
    bad = copy_weights(weights)
    nid = next(n for n in bad if graph.kind(n) == "conv")
    bad[nid]["weight"] = np.zeros((1, 2, 3, 4), np.float32)
    before = _state(module)
    with pytest.raises(LoweringError, match=r"shape \(1, 2, 3, 4\) but the IR expects"):
        load_weights(module, graph, bad, arch)
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing half-loaded


def test_unexpected_and_stale_weights_are_errors(resnetish) -> None:
    graph, module, weights, arch = resnetish
    extra = copy_weights(weights)
    nid = next(iter(extra))
    extra[nid]["surprise"] = np.zeros(1, np.float32)
    with pytest.raises(LoweringError, match="unexpected weight"):
        load_weights(module, graph, extra, arch)
    stale = copy_weights(weights) | {999: {}}
    with pytest.raises(LoweringError, match="n999"):
        lower(graph, stale, arch)


def test_node_left_out_is_an_error_unless_not_strict(resnetish) -> None:
    graph, module, weights, arch = resnetish
    partial = copy_weights(weights)
    nid = next(iter(partial))
    del partial[nid]
    with pytest.raises(LoweringError, match=f"n{nid}"):
        load_weights(module, graph, partial, arch)
    other = lower(graph)
    kept = other.state_dict()[f"n{nid}.weight"].clone()
    load_weights(other, graph, partial, arch, strict=False)
    assert torch.equal(other.state_dict()[f"n{nid}.weight"], kept)
    others = [n for n in partial if "weight" in partial[n]]
    np.testing.assert_array_equal(
        other.state_dict()[f"n{others[0]}.weight"].numpy(), partial[others[0]]["weight"]
    )


def test_arch_weights_errors(resnetish) -> None:
    graph, module, weights, arch = resnetish
    with pytest.raises(LoweringError, match="group 'normal'.*rows x candidates"):
        load_weights(module, graph, weights, {**arch, "normal": np.zeros((3, 3))})
    with pytest.raises(LoweringError, match="unknown group 'other'"):
        load_weights(module, graph, weights, {**arch, "other": np.zeros((1, 1))})
    with pytest.raises(LoweringError, match="group 'reduce' are missing"):
        load_weights(module, graph, weights, {"normal": arch["normal"]})


def test_extract_from_a_module_of_another_graph_fails() -> None:
    graph = CASES["conv"]()
    with pytest.raises(LoweringError, match="the graph the module was lowered from"):
        extract_weights(lower(CASES["sep_conv"]()), graph)


def test_errors_print_with_a_hint(resnetish) -> None:
    graph, module, weights, arch = resnetish
    bad = copy_weights(weights)
    nid = next(iter(bad))
    bad[nid] = {}
    with pytest.raises(LoweringError) as info:
        load_weights(module, graph, bad, arch)
    assert "error:" in str(info.value) and "hint:" in str(info.value)


def test_float64_arrays_load_into_float32_module(resnetish) -> None:
    graph, module, weights, arch = resnetish
    doubled = {n: {k: v.astype(np.float64) * 2 for k, v in per.items()} for n, per in weights.items()}
    load_weights(module, graph, doubled, arch)
    back, _ = extract_weights(module, graph)
    nid = next(n for n in back if graph.kind(n) == "conv")
    assert back[nid]["weight"].dtype == np.float32
    np.testing.assert_allclose(back[nid]["weight"], weights[nid]["weight"] * 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_round_trip_on_cuda(resnetish) -> None:
    graph, module, weights, arch = resnetish
    module.cuda()
    load_weights(module, graph, weights, arch)
    back, arch_back = extract_weights(module, graph)
    for nid, per in weights.items():
        for name, array in per.items():
            np.testing.assert_array_equal(back[nid][name], array)
    np.testing.assert_array_equal(arch_back["normal"], arch["normal"])
