"""Genomes with auxiliary outputs return ``(main, *aux)`` in the IR's order."""

from __future__ import annotations

import torch
from genomorph.lower import lower
from lower_cases import CASES, example_input


def test_forward_returns_main_then_aux_outputs() -> None:
    graph = CASES["aux"]()
    module = lower(graph).eval()
    x = example_input(graph)
    out = module(x)
    assert isinstance(out, tuple) and len(out) == 1 + len(graph.aux_outputs())
    assert module.aux_weights == (0.4, 0.2)
    # ids follow lower_cases._aux_head: stem n1-n3, aux head n4-n6, conv n7, aux head n8-n11,
    # main head n12-n14
    stem = module.n2(module.n1(x)).relu()
    b = module.n7(stem)
    torch.testing.assert_close(out[0], module.n14(b.relu().mean((2, 3))))
    torch.testing.assert_close(out[1], module.n5(stem.mean((2, 3))))
    torch.testing.assert_close(out[2], module.n9(b.mean((2, 3))))


def test_without_aux_forward_returns_a_tensor() -> None:
    assert isinstance(lower(CASES["conv"]())(example_input(CASES["conv"]())), torch.Tensor)
