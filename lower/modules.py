"""Small ``nn.Module``s for IR ops that are more than one torch layer.

Their submodule and parameter names are exactly the tensor names of the op's ``param_shapes`` /
``buffer_shapes`` in ``ir/ops.py`` (``depthwise.weight``, ``conv_1.weight``, ``lam``, ...), so
``state_dict`` keys and IR weight names agree without a translation table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn


class SepConv(nn.Module):
    """Depthwise conv (``groups=C_in``, no bias) then a pointwise 1x1 conv to ``channels``."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        bias: bool,
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, kernel, stride, padding, dilation, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


class FactorizedReduce(nn.Module):
    """DARTS' FactorizedReduce without its leading ReLU (the IR writes that ReLU as its own node).

    Two 1x1 stride-2 convs, one on the input and one on the input shifted by one pixel, so the
    pair sees every pixel; their outputs are concatenated and batch-normalised.
    """

    def __init__(self, in_channels: int, channels: int, affine: bool) -> None:
        super().__init__()
        half = channels // 2
        self.conv_1 = nn.Conv2d(in_channels, half, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(in_channels, half, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(channels, affine=affine)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class Convex(nn.Module):
    """Convex combination ``lam * a + (1 - lam) * b`` with a learnable scalar ``lam``."""

    def __init__(self, init: float) -> None:
        super().__init__()
        self.lam = nn.Parameter(torch.tensor(float(init)))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.lam * a + (1.0 - self.lam) * b


class StochasticDepth(nn.Module):
    """Drop the input per sample (``row``) or for the whole batch with probability ``p`` while
    training, scaling what is kept by ``1/(1-p)``; the identity in eval mode.

    The same computation as torchvision's ``StochasticDepth``, written with torch alone so an
    exported model needs nothing else.
    """

    def __init__(self, p: float, mode: str, schedule: str = "constant") -> None:
        super().__init__()
        self.p = p
        self.mode = mode
        self.schedule = schedule
        #: ``schedule="linear"``: the rate is ``p * progress``; the trainer sets ``progress`` (the
        #: fraction of the training done) at every epoch start. 1.0 outside a genomorph training.
        self.progress = 1.0

    @property
    def rate(self) -> float:
        return self.p * self.progress if self.schedule == "linear" else self.p

    def forward(self, x: Tensor) -> Tensor:
        rate = self.rate
        if not self.training or rate == 0.0:
            return x
        keep = 1.0 - rate
        shape = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * noise.div_(keep)


ARCH = "arch"  #: name of the ArchParameters submodule in a lowered network


class ArchParameters(nn.Module):
    """The architecture parameters of a supernet, one ``(rows, candidates)`` tensor per group.

    They are kept as buffers that require grad, not as ``nn.Parameter``s: then no
    ``parameters()`` call sees them, not even one made on a module that wraps the lowered
    network, while ``state_dict``, ``load_state_dict`` and deep copies still carry them. Only
    ``.to()`` / ``.cuda()`` / ``.double()`` need help (see ``_apply``).

    ``forward()`` returns the softmax of every group, in group order, so each is computed once
    per network forward and shared by all mixed ops of the group.
    """

    def __init__(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        super().__init__()
        self.groups: tuple[str, ...] = tuple(shapes)
        for group, shape in shapes.items():
            # DARTS initialises alphas as 1e-3 * N(0, 1): a near-uniform softmax.
            self.register_buffer(group, (1e-3 * torch.randn(*shape)).requires_grad_())

    def forward(self) -> tuple[Tensor, ...]:
        return tuple(torch.softmax(self._buffers[g], dim=-1) for g in self.groups)  # type: ignore[arg-type]

    def named_tensors(self) -> list[tuple[str, Tensor]]:
        return [(g, self._buffers[g]) for g in self.groups]  # type: ignore[misc]

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> ArchParameters:
        # nn.Module applies `fn` to buffers with autograd on, which would turn these leaves
        # into non-leaf copies an optimiser cannot step. Do what it does for parameters
        # instead: convert without autograd and keep the same tensor object where torch allows,
        # so an optimiser built before `.to(device)` still holds the live tensors.
        for group in self.groups:
            old = self._buffers[group]
            assert old is not None
            with torch.no_grad():
                new = fn(old)
            if new is old:
                continue
            grad = old.grad
            if torch._has_compatible_shallow_copy_type(old, new):
                old.data = new
            else:
                self._buffers[group] = new.detach().requires_grad_(old.requires_grad)
            if grad is not None:
                with torch.no_grad():
                    self._buffers[group].grad = fn(grad)  # type: ignore[union-attr]
        return self
