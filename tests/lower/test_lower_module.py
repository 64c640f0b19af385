"""GenomeModule survives deep copies and pickling, and lower() rejects graphs that are not valid."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from genomorph.ir import Graph, VerifyError
from genomorph.ir.ops import Conv, Input, Relu
from genomorph.lower import GenomeModule, lower
from lower_cases import CASES, example_input


def _pickled(module: GenomeModule) -> GenomeModule:
    return pickle.loads(pickle.dumps(module))


def _torch_saved(module: GenomeModule) -> GenomeModule:
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("clone", [copy.deepcopy, _pickled, _torch_saved])
@pytest.mark.parametrize("case", ["mixed", "aux"])
def test_copies_are_equivalent_genome_modules(clone, case: str) -> None:
    graph = CASES[case]()
    module = lower(graph).eval()
    other = clone(module)
    assert isinstance(other, GenomeModule)
    assert other.code == module.code
    assert other.aux_weights == module.aux_weights and not other.training
    assert [(n, t.shape) for n, t in other.named_arch_parameters()] == [
        (n, t.shape) for n, t in module.named_arch_parameters()
    ]
    assert all(t.is_leaf and t.requires_grad for t in other.arch_parameters())
    x = example_input(graph)
    want, got = module(x), other(x)
    for a, b in zip(
        got if isinstance(got, tuple) else [got], want if isinstance(want, tuple) else [want], strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_invalid_graph_is_a_genome_error_not_a_crash() -> None:
    g = Graph()
    x = g.add(Input(shape=(3, 4, 4)))
    g.add(Conv(channels=2), [x])
    g.add(Relu(), [x])  # a second output
    with pytest.raises(VerifyError, match="exactly one output"):
        lower(g)
