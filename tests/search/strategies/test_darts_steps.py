"""The DARTS architecture step: first order is the plain gradient, second order is eq. (17).

The second-order hypergradient (finite-difference Hessian-vector product, ε = 0.01/‖v‖) is
checked against the exact derivative of L_val(w'(α), α) computed by autograd through the
unrolled update, in float64 on a small real supernet; the weights come back bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from genomorph.grammar import parse
from genomorph.lower import lower
from genomorph.search.runtime.darts_steps import (
    HESSIAN_R,
    ArchUpdate,
    SGDUpdate,
    classification_loss,
    cosine_lr,
)
from torch.func import functional_call

SEQ = """\
def layer(row) = mixed(conv(4, 3, bias=false) bn(affine=false), relu sep_conv(4, 3, bias=false) bn(affine=false), \
maxpool(3, 1, 1), skip, zero, group=layers, row=row, labels=[conv_3x3, sep_conv_3x3, max_pool_3x3, skip_connect, "none"])
input 1x6x6
conv(4, 3, bias=false) bn relu
layer(0) relu
layer(1)
gap linear(3)
"""

SEED = 20261201


def _setup(seed: int = SEED):
    torch.manual_seed(seed)
    module = lower(parse(SEQ)).double()
    gen = torch.Generator().manual_seed(seed)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(8, 1, 6, 6, generator=gen, dtype=torch.float64)
        return x, torch.randint(0, 3, (8,), generator=gen)

    with torch.no_grad():  # α away from uniform, so every term of the hypergradient matters
        for a in module.arch_parameters():
            a.copy_(torch.randn(a.shape, generator=gen, dtype=torch.float64))
    return module, batch(), batch()


def _exact_unrolled(module, train, val, xi: float, momentum_part, decay: float) -> list[torch.Tensor]:
    """d/dα L_val(w - ξ(μ·buf + ∇w L_train(w, α) + decay·w), α), by autograd through the update."""
    names = [n for n, _ in module.named_parameters()]
    params = [p for _, p in module.named_parameters()]
    alphas = module.arch_parameters()

    def loss_at(weights, batch):
        out = functional_call(module, dict(zip(names, weights, strict=True)), (batch[0],))
        return F.cross_entropy(out, batch[1])

    grads = torch.autograd.grad(loss_at(params, train), params, create_graph=True)
    unrolled = [
        p - xi * (g + decay * p + (m if m is not None else 0.0))
        for p, g, m in zip(params, grads, momentum_part, strict=True)
    ]
    return list(torch.autograd.grad(loss_at(unrolled, val), alphas))


def test_first_order_is_the_validation_gradient() -> None:
    module, _, val = _setup()
    loss = classification_loss(module)
    expected = torch.autograd.grad(loss(val), module.arch_parameters())
    step = ArchUpdate(module.arch_parameters(), lr=1e-3, betas=(0.5, 0.999), weight_decay=0.0, order=1)
    step.step(loss, val)
    captured = [a.grad for a in step.alphas]  # Adam leaves the gradient it stepped with in .grad
    assert captured
    for got, want in zip(captured, expected, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    ("warm", "r", "rtol"),
    [(False, 1e-5, 1e-5), (True, 1e-5, 1e-5), (True, HESSIAN_R, 0.1)],
    ids=["first-step", "with-momentum", "official-epsilon"],
)
def test_second_order_matches_the_exact_unrolled_hypergradient(warm: bool, r: float, rtol: float) -> None:
    """Tight with a tiny finite-difference step (the code is eq. 17); within the approximation's
    own error (a few %) at the official ε = 0.01/‖v‖."""
    module, train, val = _setup()
    loss = classification_loss(module)
    weights = SGDUpdate(list(module.parameters()), lr=0.1, momentum=0.9, weight_decay=3e-4, grad_clip=5.0)
    if warm:  # a momentum buffer exists: the unrolled step must include μ·buffer, as the official code
        weights.step(loss, train)
    momentum_part = weights.unrolled_direction()
    assert all(m is not None for m in momentum_part) == warm
    expected = _exact_unrolled(module, train, val, 0.1, momentum_part, 3e-4)
    before = [p.detach().clone() for p in module.parameters()]
    arch = ArchUpdate(
        module.arch_parameters(), lr=1e-3, betas=(0.5, 0.999), weight_decay=0.0, order=2, hessian_r=r
    )
    arch.step(loss, val, train, weights)
    captured = [a.grad for a in arch.alphas]  # Adam leaves the gradient it stepped with in .grad
    assert captured
    for got, want in zip(captured, expected, strict=True):
        assert float(want.abs().max()) > 1e-4  # a test that could fail
        scale = float(want.abs().max())
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=rtol, atol=rtol * scale)
    for b, p in zip(before, module.parameters(), strict=True):
        assert torch.equal(b, p)  # w restored bit for bit: no copy of the model, no drift


def test_the_hessian_term_changes_the_gradient() -> None:
    """Second order is not first order in disguise: the ξ·Hv term is there."""
    module, train, val = _setup()
    loss = classification_loss(module)
    first = [g.clone() for g in torch.autograd.grad(loss(val), module.arch_parameters())]
    weights = SGDUpdate(list(module.parameters()), lr=0.1, momentum=0.9, weight_decay=3e-4, grad_clip=5.0)
    arch = ArchUpdate(module.arch_parameters(), lr=1e-3, betas=(0.5, 0.999), weight_decay=0.0, order=2)
    arch.step(loss, val, train, weights)
    captured = [a.grad for a in arch.alphas]  # Adam leaves the gradient it stepped with in .grad
    assert captured
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(captured, first, strict=True))


def test_cosine_schedule_runs_from_lr_to_min_lr() -> None:
    assert cosine_lr(0.025, 0.001, 0, 50) == pytest.approx(0.025)
    assert cosine_lr(0.025, 0.001, 25, 50) == pytest.approx(0.013)
    assert cosine_lr(0.025, 0.001, 50, 50) == pytest.approx(0.001)
