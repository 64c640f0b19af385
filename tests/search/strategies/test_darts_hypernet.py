"""hyperDARTS hypernetworks and the supernet-space helpers, on real lowered supernets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.grammar.darts import darts_supernet
from genomorph.ir import verify
from genomorph.lower import lower
from genomorph.search.runtime.darts_steps import ArchUpdate, SGDUpdate, classification_loss
from genomorph.search.runtime.hypernet import HyperSupernet, cell_modules, linear_hypernet_size
from genomorph.search.strategies._darts_space import argmax_genome, candidate_nodes, is_darts_supernet

SEQ = """\
def layer(row) = mixed(conv(4, 3, bias=false) bn(affine=false), relu sep_conv(4, 3, bias=false) bn(affine=false), \
skip, zero, group=layers, row=row, labels=[conv_3x3, sep_conv_3x3, skip_connect, "none"])
input 1x6x6
conv(4, 3, bias=false) bn relu
layer(0) relu
layer(1)
gap linear(3)
"""
SEED = 1201


@pytest.fixture
def small_darts():
    return darts_supernet(channels=2, cells=3, classes=3, input_shape=(1, 8, 8))


def test_candidate_nodes_are_the_cell_ops_only(small_darts) -> None:
    graph = small_darts
    nodes = candidate_nodes(graph)
    assert set(nodes) == {"normal", "reduce"}
    names = {graph.node(n).name for ns in nodes.values() for n in ns}
    # stem, cell inputs (preprocessing) and the classifier are outside the candidates
    assert not names & {"stem", "logits", "c0_s0", "c0_s1", "c1_s0", "c1_s1"}
    kinds = {graph.kind(n) for ns in nodes.values() for n in ns}
    assert {"sep_conv", "maxpool", "avgpool", "zero"} <= kinds


def test_fx_cell_modules_agree_with_the_ir(small_darts) -> None:
    graph = small_darts
    module = lower(graph)
    ir = {
        g: {f"n{n}" for n in ns} & set(dict(module.named_children()))
        for g, ns in candidate_nodes(graph).items()
    }
    fx = {g: set(ms) for g, ms in cell_modules(module).items()}
    assert fx == ir and all(fx.values())


def test_linear_hypernet_size_of_the_paper_space() -> None:
    # #λ x #cell-weights + bias; the issue quotes 207 M for C=16, 8 cells
    assert linear_hypernet_size(darts_supernet(16, 8)) == 206_921_984


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_hypernet_starts_as_the_supernet_and_learns(kind: str, small_darts) -> None:
    torch.manual_seed(SEED)
    module = lower(small_darts)
    net = HyperSupernet(module, kind)  # type: ignore[arg-type]
    if kind == "linear":
        assert net.hypernet_size() == linear_hypernet_size(small_darts)
    gen = torch.Generator().manual_seed(SEED)
    x, y = torch.randn(6, 1, 8, 8, generator=gen), torch.randint(0, 3, (6,), generator=gen)
    module.train()
    torch.testing.assert_close(net(x), module(x))  # output layer at zero, bias = the init
    loss = classification_loss(net)
    weights = SGDUpdate(net.weight_parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4, grad_clip=5.0)
    arch = ArchUpdate(net.arch_parameters(), lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    generated = set(net.generated_names)
    trained = {id(p) for p in net.weight_parameters()}
    assert generated and not any(id(p) in trained for n, p in module.named_parameters() if n in generated)
    for _ in range(2):
        arch.step(loss, (x, y))
        weights.step(loss, (x, y))
    assert all(float(h.weight.detach().abs().max()) > 0 for h in net.hypernets.values())
    net.materialise()
    params = dict(module.named_parameters())
    for name, t in net.generated().items():
        torch.testing.assert_close(params[name], t.detach())
    # λ now reaches the loss through the hypernetworks too: its gradient differs from the direct one
    lam = net.arch_parameters()
    through = torch.autograd.grad(loss((x, y)), lam)
    direct = torch.autograd.grad(classification_loss(module)((x, y)), lam)
    assert any(not torch.allclose(a, b) for a, b in zip(through, direct, strict=True))


def test_argmax_genome_keeps_the_strongest_real_candidate() -> None:
    graph = parse(SEQ)
    # row 0: "none" is largest but never chosen -> sep_conv_3x3; row 1: skip_connect
    arch = {"layers": np.array([[0.1, 0.5, 0.2, 0.9], [0.0, 0.1, 0.7, 0.2]])}
    found, chosen = argmax_genome(graph, arch)
    assert sorted(chosen.values()) == ["sep_conv_3x3", "skip_connect"]
    verify(found)
    kinds = found.histogram()
    assert "mixed" not in kinds and "zero" not in kinds and kinds["sep_conv"] == 1 and kinds["conv"] == 1
    assert not is_darts_supernet(graph)


def test_darts_cells_are_recognised(small_darts) -> None:
    assert is_darts_supernet(small_darts)


def test_sharing_pure_ops_keeps_the_function_and_the_genotype(small_darts) -> None:
    from genomorph.grammar.darts import decode_genotype
    from genomorph.ir.printer import print_genome
    from genomorph.lower import extract_weights
    from genomorph.search.strategies._darts_space import share_pure_ops

    graph = small_darts
    shared, removed = share_pure_ops(graph)
    assert removed > 0 and len(shared) == len(graph) - removed
    assert shared.stats().params == graph.stats().params  # only parameter-free ops went
    torch.manual_seed(SEED)
    module = lower(graph)
    weights, arch = extract_weights(module, graph)
    kept = set(shared.order())
    other = lower(shared, {n: w for n, w in weights.items() if n in kept}, arch)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(SEED))
    module.train(), other.train()
    torch.testing.assert_close(other(x), module(x), rtol=0, atol=0)
    rng = np.random.default_rng(SEED)
    alphas = {g: rng.normal(size=a.shape) for g, a in arch.items()}
    reparsed = parse(print_genome(shared))  # the shared space survives the genome text
    assert decode_genotype(reparsed, alphas) == decode_genotype(graph, alphas)


@pytest.mark.parametrize(("method", "expected"), [("darts", 1), ("hyperdarts", 0)])
def test_repeats_keep_the_best_run_and_hyperdarts_wants_a_skip(method: str, expected: int) -> None:
    """§4.7: the best validation accuracy, hyperDARTS ignoring runs whose normal cell has no skip."""
    from genomorph.search.core.protocol import DatasetInfo, SearchSetup
    from genomorph.search.strategies import STRATEGIES
    from genomorph.search.strategies.darts import SearchRun

    info = DatasetInfo(
        name="digits", task="classification", input_shape=(1, 8, 8), num_outputs=10,
        train_size=1151, val_size=287, test_size=359,
    )  # fmt: skip
    cls = STRATEGIES[method]
    strategy = cls(cls.Config(repeats=3), SearchSetup(dataset=info, start_genome=SEQ))
    runs = [(0, 0.90, True), (1, 0.95, False), (2, 0.93, True)]
    strategy.state.runs = [
        SearchRun(repeat=r, candidate=r, ok=True, best_val_accuracy=acc, genome="g", has_skip=skip)
        for r, acc, skip in runs
    ]
    strategy.state.runs[2].ok = False  # a failed run is never chosen
    assert strategy._choose() == expected
