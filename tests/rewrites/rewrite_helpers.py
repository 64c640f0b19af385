"""Shared pieces of the rewrite tests: small genomes, trained-looking weights, torch checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from genomorph.grammar import parse
from genomorph.ir import Graph, Weights
from genomorph.ir.rewrites import randomized
from genomorph.lower import lower
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TOLERANCE = 1e-5

#: small genomes that between them hold every place a rewrite acts on
NETS: dict[str, str] = {
    "cnn": """
input 3x8x8
conv(4, 3, bias=false) bn relu
maxpool(2)
conv(6, 3) bn relu
add(conv(6, 3, bias=false) bn, _) relu
gap linear(5)
""",
    "branches": """
input 3x8x8
s = conv(4, 3, bias=false) bn relu
b = add(conv(4, 3, bias=false) bn relu conv(4, 3, bias=false) bn, _) relu
c = concat(b, s conv(4, 3) relu)
maxpool(2) flatten linear(6) relu linear(3)
""",
    "mlp": """
input 4
linear(8) relu
linear(6) tanh
linear(3)
""",
    "hres": """
input 3
add(linear(2), linear(5) relu add(linear(4), linear(3) relu linear(4)) relu linear(2))
""",
    "thin": """
input 3
add(linear(4), linear(1) relu linear(4)) tanh
linear(2)
""",
}

_ALL_NETS = ("branches", "cnn", "hres", "mlp", "thin")
_IMAGE_NETS = ("branches", "cnn")
#: rewrite -> the small nets on which it must have candidates (and on the others, none).
#: Tests that loop over candidates take their (rewrite, net) pairs from here, so a rewrite
#: that stops applying fails them instead of passing with nothing checked.
APPLIES: dict[str, tuple[str, ...]] = {
    "deepen": _ALL_NETS,
    "widen": _ALL_NETS,
    "skip-add": _ALL_NETS,
    "skip-concat": _ALL_NETS,
    "merge-convex": _IMAGE_NETS,
    "merge-concat": ("branches", "cnn", "hres"),
    "split": _ALL_NETS,
    "sepconv": _IMAGE_NETS,
    "add-neurons": _ALL_NETS,
    "hres-grow": _ALL_NETS,
    "remove-block": _ALL_NETS,
    "prune-channels": _IMAGE_NETS,
    "prune-neurons": _ALL_NETS,
    "substitute-sepconv": _IMAGE_NETS,
    "hres-shrink": ("thin",),
}
#: every (rewrite, net) pair of APPLIES
APPLICABLE: list[tuple[str, str]] = [(name, n) for name, nets in APPLIES.items() for n in nets]


def net(name: str) -> Graph:
    return parse(NETS[name], source_name=name)


def example(name: str) -> Graph:
    path = EXAMPLES / name
    return parse(path.read_text(), source_name=str(path))


def trained(graph: Graph, seed: int = 0) -> Weights:
    """Weights with non-identity batch-norm statistics, as after some training."""
    return randomized(graph, None, np.random.default_rng(seed))


def inputs(graph: Graph, batch: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *graph.shapes()[graph.input_node()], generator=generator)


def outputs(graph: Graph, weights: Weights, x: torch.Tensor) -> torch.Tensor:
    module = lower(graph, weights).eval()
    with torch.no_grad():
        out = module(x)
    return out[0] if isinstance(out, tuple) else out


def max_diff(before: tuple[Graph, Weights], after: tuple[Graph, Weights], batch: int = 4) -> float:
    x = inputs(before[0], batch)
    return float((outputs(*before, x) - outputs(*after, x)).abs().max())


def torch_counts(graph: Graph, weights: Weights) -> tuple[int, int]:
    """(parameters, MACs) of the lowered module, as torch counts them."""
    module = lower(graph, weights).eval()
    params = sum(p.numel() for p in module.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(inputs(graph, batch=1))
    return params, counter.get_total_flops() // 2


def snapshot(graph: Graph, weights: Weights | None) -> tuple:
    """Everything about a (graph, weights) pair a rewrite must not change in its inputs."""
    arrays = {
        (nid, name): (array.copy(), array.dtype, array.shape)
        for nid, per in (weights or {}).items()
        for name, array in per.items()
    }
    nodes = tuple((n.id, n.op, n.name) for n in graph.nodes())
    return graph.structure(), nodes, tuple(graph.edges()), graph.new_id(), arrays


def same_snapshot(a: tuple, b: tuple) -> bool:
    if a[:4] != b[:4] or a[4].keys() != b[4].keys():
        return False
    return all(np.array_equal(a[4][k][0], b[4][k][0]) and a[4][k][1:] == b[4][k][1:] for k in a[4])
