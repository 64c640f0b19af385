"""The strategy contract's helpers: derived seeds and canonical genome text with re-keyed weights."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.ir.rewrites import REWRITES
from genomorph.lower import extract_weights, lower
from genomorph.search.core.protocol import Budget, EvalRequest, canonical, derive_seed

NET = (
    "input 1x8x8\nconv(4, 3, padding=1) bn relu\nmaxpool(2)\nconv(6, 3, padding=1) bn relu\ngap linear(10)\n"
)


def test_derived_seeds_are_distinct_31_bit_and_stable_across_processes() -> None:
    seeds = [derive_seed(7, i) for i in range(2000)]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(8, 0) != derive_seed(7, 0)
    code = (
        "from genomorph.search.core.protocol import derive_seed; print([derive_seed(7, i) for i in range(5)])"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str(seeds[:5])  # no per-process hash randomisation


def test_requests_are_plain_json_data() -> None:
    request = EvalRequest(genome=NET, budget=Budget(epochs=3, schedule="sgdr"), parent=2, meta={"step": 1})
    assert EvalRequest.model_validate_json(request.model_dump_json()) == request
    with pytest.raises(ValueError):
        Budget(epochs=-1)


@pytest.mark.parametrize("rewrite", ["deepen", "widen", "skip-add"])
def test_canonical_text_and_weights_rebuild_the_same_function(rewrite: str) -> None:
    graph = parse(NET)
    torch.manual_seed(0)
    module = lower(graph)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for buffer_name, buffer in module.named_buffers():
            if buffer_name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    weights, _ = extract_weights(module, graph)
    rng = np.random.default_rng(0)
    move = REWRITES[rewrite].candidates(graph, weights)[0]
    result = REWRITES[rewrite].apply(graph, weights, move, rng)

    text, rekeyed = canonical(result.graph, result.weights)
    reparsed = parse(text)
    assert reparsed.same_structure(result.graph)
    x = torch.randn(5, 1, 8, 8)
    expected = lower(result.graph, result.weights).eval()(x)
    rebuilt = lower(reparsed, rekeyed).eval()(x)
    torch.testing.assert_close(rebuilt, expected, rtol=0, atol=0)
