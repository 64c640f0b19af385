"""PC-DARTS supernets lowered: one edge computes what the PC-DARTS formula says (checked against
torch's own channel shuffle and a softmax written here), β is an architecture parameter like α,
and the counts, gradients and Python export agree with the IR."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from genomorph.grammar import parse
from genomorph.grammar.darts import darts_supernet
from genomorph.ir.partial_channels import partial_channels
from genomorph.lower import extract_weights, lower
from genomorph.lower.export import export_genome
from genomorph.lower.functional import channel_shuffle

SEED = 20261202

#: two edges from the input into one node; candidates without weights, so the reference below
#: can compute them with torch functions directly (``{skip}``: identity, or a 2x2 pool at stride 2)
EDGES = """\
x = input 8x6x6
a = x mixed(maxpool(3, {s}, 1), {skip}, zero({s}), group=g, row=0)
b = x mixed(avgpool(3, {s}, 1, count_include_pad=false), zero({s}), {skip}, group=g, row=1)
add(a, b)
"""


def _edges(stride: int) -> str:
    return EDGES.format(s=stride, skip="skip" if stride == 1 else "maxpool(2)")


def _random_arch(module: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    arch = dict(module.named_arch_parameters())  # type: ignore[operator]
    with torch.no_grad():
        for t in arch.values():
            t.copy_(torch.randn(t.shape, generator=generator))
    return arch


def test_channel_shuffle_is_torchs() -> None:
    g = torch.Generator().manual_seed(SEED)
    for shape, groups in [((2, 12, 3, 5), 3), ((1, 8, 2, 2), 4), ((3, 6, 1, 1), 1)]:
        x = torch.randn(shape, generator=g)
        assert torch.equal(channel_shuffle(x, groups), F.channel_shuffle(x, groups))


@pytest.mark.parametrize("stride", [1, 2])
def test_one_node_computes_pc_darts(stride: int) -> None:
    k, c = 4, 8
    graph = partial_channels(parse(_edges(stride)), k)
    module = lower(graph, inplace=False).eval()
    g = torch.Generator().manual_seed(SEED + stride)
    arch = _random_arch(module, g)
    x = torch.randn(3, c, 6, 6, generator=g)
    with torch.no_grad():
        got = module(x)
    # the reference, from the PC-DARTS formula: ops on the first C/K channels, the rest bypass
    sampled, rest = x[:, : c // k], x[:, c // k :]
    if stride == 2:
        rest = F.max_pool2d(rest, 2, 2)
    skip = sampled if stride == 1 else F.max_pool2d(sampled, 2, 2)
    zero = torch.zeros_like(skip)
    candidates = [
        [F.max_pool2d(sampled, 3, stride, 1), skip, zero],
        [F.avg_pool2d(sampled, 3, stride, 1, count_include_pad=False), zero, skip],
    ]
    alpha = torch.softmax(arch["g"], dim=-1)
    edges = []
    for row, cands in enumerate(candidates):
        mixed = sum(w * t for w, t in zip(alpha[row], cands, strict=True))
        edges.append(F.channel_shuffle(torch.cat([mixed, rest], 1), k))
    beta = torch.softmax(arch["g_beta"], dim=-1)  # edge normalisation over the node's two edges
    assert got.shape == (3, c, 6 // stride, 6 // stride)
    torch.testing.assert_close(got, beta[0] * edges[0] + beta[1] * edges[1], rtol=1e-5, atol=1e-6)


def test_beta_is_an_architecture_parameter_beside_alpha() -> None:
    graph = partial_channels(darts_supernet(4, 3, 10, input_shape=(1, 8, 8)), 2)
    module = lower(graph)
    names = [n for n, _ in module.named_arch_parameters()]
    assert names == ["normal", "reduce", "normal_beta", "reduce_beta"]
    assert all(t.shape == (14,) for n, t in module.named_arch_parameters() if n.endswith("_beta"))
    assert sum(p.numel() for p in module.parameters()) == graph.stats().params
    ids = {id(t) for t in module.arch_parameters()}
    assert not ids & {id(p) for p in module.parameters()}  # not weights: the α step owns them
    g = torch.Generator().manual_seed(SEED)
    x, y = torch.randn(6, 1, 8, 8, generator=g), torch.randint(0, 10, (6,), generator=g)
    loss = F.cross_entropy(module(x), y)
    grads = torch.autograd.grad(loss, module.arch_parameters())
    assert all(grad.abs().sum() > 0 for grad in grads)
    _, arch = extract_weights(module, graph)  # what checkpoints and alphas.json carry
    assert set(arch) == set(names) and arch["normal_beta"].shape == (14,)


def test_the_python_export_of_a_pc_supernet_matches(tmp_path: Path) -> None:
    graph = partial_channels(parse(_edges(1)), 2)
    module = lower(graph)
    _random_arch(module, torch.Generator().manual_seed(SEED))
    weights, arch = extract_weights(module, graph)
    result = export_genome(graph, "python", tmp_path / "pc.py", weights, arch)
    assert result.max_abs_diff <= result.tolerance
