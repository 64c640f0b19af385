"""`lower.fuse.fuse_mixed`: the fused supernet computes the plain lowering's function (forward,
gradients of weights and α, batch-norm running statistics) and has the same tensors and names."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
import torch.nn.functional as F
from genomorph.grammar import parse
from genomorph.grammar.darts import darts_supernet
from genomorph.ir import Graph
from genomorph.lower import GenomeModule, lower
from genomorph.lower.fuse import fuse_mixed
from genomorph.search.runtime.hypernet import HyperSupernet
from genomorph.search.strategies._darts_space import share_pure_ops

log = logging.getLogger(__name__)

SEED = 20261202

#: a hand-written supernet: candidates the fuser does not batch (plain convs, a sep conv without
#: a ReLU of its own) beside a skip and a ``none``, and an in-place ReLU after each mixed op
SEQUENTIAL = """\
def layer(row) = mixed(conv(4, 3, stride=2, bias=false) bn(affine=false), sep_conv(4, 3, dilation=2, stride=2, \
bias=false), max_pool(3, stride=2, padding=1), zero(stride=2), group=layers, row=row)
input 2x8x8
conv(4, 3, bias=false) bn relu
layer(0) relu
layer(1) relu
gap linear(3)
"""


def _cells(shared: bool) -> Graph:
    # 3 cells: normal, reduction (stride-2 edges, factorized reduce), reduction; all 8 candidates
    graph = darts_supernet(4, 3, 5, input_shape=(3, 8, 8))
    return share_pure_ops(graph)[0] if shared else graph


def _pair(graph: Graph) -> tuple[GenomeModule, GenomeModule, GenomeModule]:
    """A plain module, an independent copy of it, and the copy fused (float64 for tight checks)."""
    plain = lower(graph).double()
    twin = copy.deepcopy(plain)
    return plain, twin, fuse_mixed(twin)


def _loss_and_grads(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    out = module(x)
    loss = F.cross_entropy(out, y)
    tensors = [*module.parameters(), *module.arch_parameters()]  # type: ignore[operator]
    return [out.detach(), *torch.autograd.grad(loss, tensors)]


def _batch(shape: tuple[int, ...], classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(SEED)
    log.info("inputs from seed %d", SEED)
    x = torch.randn(6, *shape, generator=gen, dtype=torch.float64)
    return x, torch.randint(0, classes, (6,), generator=gen)


@pytest.mark.parametrize("shared", [False, True], ids=["as-lowered", "share_pure_ops"])
def test_fused_cells_compute_the_same_function_and_gradients(shared: bool) -> None:
    plain, twin, fused = _pair(_cells(shared))
    rewrites = fused.fusion_rewrites  # type: ignore[attr-defined]
    log.info("rewrites: %s", rewrites)
    # every edge has a `none` to skip; the reduction cells' stride-2 dil convs run undilated
    assert rewrites["none_skipped"] == rewrites["mixed_sum"] == 3 * 14
    assert rewrites["undilated"] == 2 * 8 * 2
    assert (rewrites["shared"] > 0) != shared  # the IR pass already shared them, or the fuser does
    x, y = _batch((3, 8, 8), 5)
    for train in (True, False):  # batch statistics, then the running statistics both updated
        plain.train(train)
        fused.train(train)
        expected, got = _loss_and_grads(plain, x, y), _loss_and_grads(fused, x, y)
        assert len(expected) == len(got) > 2
        for a, b in zip(expected, got, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)
    for (name, a), (_, b) in zip(plain.named_buffers(), twin.named_buffers(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12, msg=name)


def test_fused_module_has_the_plain_modules_tensors_and_names() -> None:
    plain = lower(_cells(shared=True))
    fused = fuse_mixed(plain)
    assert list(fused.state_dict()) == list(plain.state_dict())
    pairs = list(zip(fused.named_parameters(), plain.named_parameters(), strict=True))
    assert pairs and all(na == nb and a is b for (na, a), (nb, b) in pairs)
    assert all(a is b for a, b in zip(fused.arch_parameters(), plain.arch_parameters(), strict=True))
    # the plain module is untouched: its graph still has a mixed call per edge
    assert sum(n.target.__name__ == "mixed" for n in plain.graph.nodes if n.op == "call_function") == 42
    # a checkpoint of one loads into the other
    fused.load_state_dict(plain.state_dict())
    torch.save(fused.state_dict(), __import__("io").BytesIO())


def test_fusion_in_channels_last_and_float32_stays_close() -> None:
    plain, twin, fused = _pair(_cells(shared=True))
    plain.float()
    twin.float().to(memory_format=torch.channels_last)  # the fused module reads the converted tensors
    x, y = _batch((3, 8, 8), 5)
    x = x.float()
    expected, got = _loss_and_grads(plain, x, y), _loss_and_grads(fused, x, y)
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_unrecognised_candidates_keep_the_plain_lowering() -> None:
    plain, twin, fused = _pair(parse(SEQUENTIAL))
    rewrites = fused.fusion_rewrites  # type: ignore[attr-defined]
    assert rewrites["none_skipped"] == 2 and rewrites["undilated"] == 2
    x, y = _batch((2, 8, 8), 3)
    expected, got = _loss_and_grads(plain, x, y), _loss_and_grads(fused, x, y)
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


def test_hyperdarts_generates_the_weights_the_fused_module_reads() -> None:
    plain, twin, fused = _pair(_cells(shared=True))
    torch.manual_seed(SEED)
    hyper_plain = HyperSupernet(plain, "mlp").double()
    torch.manual_seed(SEED)
    hyper_fused = HyperSupernet(twin, "mlp", run=fused).double()
    with torch.no_grad():  # a hypernetwork whose output depends on λ (it starts at W = 0)
        for a, b in zip(hyper_plain.hypernets.parameters(), hyper_fused.hypernets.parameters(), strict=True):
            b.copy_(a.normal_(0.0, 0.01))
    x, y = _batch((3, 8, 8), 5)
    results = []
    for net in (hyper_plain, hyper_fused):
        loss = F.cross_entropy(net(x), y)
        results.append([loss, *torch.autograd.grad(loss, [*net.weight_parameters(), *net.arch_parameters()])])
    assert len(results[0]) == len(results[1]) > 2
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)
