"""Data-parallel supernet training: what each rank does inside one DARTS / hyperDARTS candidate.

Every rank runs the same recipe on the same global batches (the batch generators are seeded
alike), takes its contiguous share of each batch, and scales its loss by its share, so the sum
of the ranks' gradients *is* the gradient of the global batch's mean loss. `DataParallel.sum`
all-reduces (sums) gradients and losses in one flat buffer per dtype; every rank then applies
the same update to the same parameters and ends with the same genotype.

Batch norm in training mode would normalise each rank's share by its own statistics, so that
2 x B/2 differs from 1 x B. `sync_batch_norm` gives every batch-norm module of the supernet the
statistics of the whole global batch instead: the per-channel sums and sums of squares are
added over the ranks with the differentiable ``torch.distributed.nn.functional.all_reduce``
(whose backward all-reduces the gradients of the sums, so each rank's inputs get the gradient
of every rank's loss through the shared mean and variance), accumulated in float64, and the
running statistics move exactly as one process's would. torch's ``SyncBatchNorm`` would do
the same on CUDA only; this works on CPU (gloo) and CUDA (nccl) alike.

The recipe (``darts_recipe.DartsRecipe.steps``) asks `current()` whether its candidate runs
data-parallel; the executor (`distributed.DataParallelExecutor`) and the followers
(`distributed.follow`) make a `DataParallel` current while such a candidate trains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from genomorph.ir import ConfigError
from torch import Tensor, nn

Batch = tuple[Tensor, Tensor]
LossFn = Callable[[Batch], Tensor]

_CURRENT: DataParallel | None = None


class DataParallel:
    """One rank's part of a data-parallel candidate (the default process group must exist)."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size
        self.digest: str | None = None
        """sha256 of the module's final state on this rank (`record_final`), to compare ranks."""

    # ------------------------------------------------------------------ batches and losses
    def check_batch(self, batch_size: int) -> None:
        if batch_size < self.size:
            raise ConfigError(
                f"a global batch of {batch_size} cannot be split over {self.size} processes",
                hint=f"use --set batch_size={self.size} or more, or fewer processes",
            )

    def shard_loss(self, loss_fn: LossFn) -> LossFn:
        """``loss_fn`` on this rank's contiguous share of a global batch, weighted by the share."""

        def loss(batch: Batch) -> Tensor:
            x, y = batch
            n = len(y)
            lo, hi = self._bounds(n)
            return loss_fn((x[lo:hi], y[lo:hi])) * ((hi - lo) / n)

        return loss

    def _bounds(self, n: int) -> tuple[int, int]:
        # torch.tensor_split's rule: the first n % size ranks take one sample more
        base, extra = divmod(n, self.size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    # ------------------------------------------------------------------ collectives
    def sum(self, tensors: Sequence[Tensor]) -> list[Tensor]:
        """The sums over the ranks of ``tensors`` (new tensors; one all-reduce per dtype)."""
        out: list[Tensor | None] = [None] * len(tensors)
        by_dtype: dict[torch.dtype, list[int]] = {}
        for i, t in enumerate(tensors):
            by_dtype.setdefault(t.dtype, []).append(i)
        for indices in by_dtype.values():
            flat = torch.cat([tensors[i].detach().reshape(-1) for i in indices])
            dist.all_reduce(flat)
            offset = 0
            for i in indices:
                n = tensors[i].numel()
                out[i] = flat[offset : offset + n].view_as(tensors[i])
                offset += n
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def broadcast(self, tensors: Sequence[Tensor]) -> None:
        """Rank 0's values into ``tensors`` on every rank (in place)."""
        for t in tensors:
            dist.broadcast(t.data if isinstance(t, nn.Parameter) else t, src=0)

    def prepare(self, module: nn.Module) -> None:
        """Before the steps are built: rank 0's parameters, buffers and RNG state everywhere, and
        batch norm on global statistics. (Every rank lowered the same genome from the same seed,
        so this only matters where they could differ: inherited weights, other hardware.)"""
        self.broadcast(list(module.state_dict(keep_vars=True).values()))
        state = torch.get_rng_state()
        dist.broadcast(state, src=0)
        torch.set_rng_state(state)
        sync_batch_norm(module)

    def record_final(self, module: nn.Module) -> None:
        """Remember a digest of the trained module's state (the executor compares the ranks')."""
        digest = hashlib.sha256()
        for name, t in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        self.digest = digest.hexdigest()


def current() -> DataParallel | None:
    """The `DataParallel` of the candidate this process trains now, or ``None`` (one process)."""
    return _CURRENT


@contextmanager
def active(parallel: DataParallel) -> Iterator[DataParallel]:
    """Make ``parallel`` current while a candidate trains."""
    global _CURRENT
    _CURRENT = parallel
    try:
        yield parallel
    finally:
        _CURRENT = None


# ---------------------------------------------------------------------------- batch norm
class _GlobalStatistics:
    """Mixin put in front of a batch-norm class: training-mode statistics of the global batch."""

    def forward(self, x: Tensor) -> Tensor:
        bn: Any = self
        batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
        if not batch_stats or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)  # type: ignore[misc]
        bn._check_input_dim(x)
        return global_batch_norm(bn, x)


_SYNCED: dict[type, type] = {}


def sync_batch_norm(module: nn.Module) -> int:
    """Give every batch-norm module in ``module`` global statistics; returns how many.

    The class of each module is swapped for a subclass (as ``torch.nn.utils.parametrize`` does),
    so parameters, buffers and ``state_dict`` keys stay exactly what they were: the optimizers,
    the hypernetworks' ``functional_call`` and the checkpoints see the same module.
    """
    count = 0
    for m in module.modules():
        cls = type(m)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, _GlobalStatistics):
            if cls not in _SYNCED:
                _SYNCED[cls] = type(f"Global{cls.__name__}", (_GlobalStatistics, cls), {})
            m.__class__ = _SYNCED[cls]
            count += 1
    return count


class _GlobalNormalise(torch.autograd.Function):
    """``(x - mean) / sqrt(var + eps)`` with the mean and variance of every rank's batch together.

    Forward and backward are SyncBatchNorm's: the per-channel sums (of x, x²; in the backward of
    dy, dy·x̂) are added over the ranks with one all-reduce each, and the input gradient is
    ``(dy - mean(dy) - x̂·mean(dy·x̂)) / std`` with those global means, as one formula rather than
    autograd through the sums: the two means nearly cancel the first term (exactly so for the
    parts of dy that batch norm makes the loss blind to), so they are computed in float64, as
    torch's CPU kernel accumulates them.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # type: ignore[override]
        channels, dims = x.shape[1], [0, *range(2, x.dim())]
        wide = x.double()
        count = torch.full((1,), x.numel() / channels, dtype=torch.float64, device=x.device)
        stats = torch.cat([wide.sum(dims), (wide * wide).sum(dims), count])
        dist.all_reduce(stats)
        total = stats[-1]
        mean = stats[:channels] / total
        var = (stats[channels : 2 * channels] / total - mean * mean).clamp_min(0.0)
        inv_std = torch.rsqrt(var + eps)
        shape = [1, channels] + [1] * (x.dim() - 2)
        ctx.save_for_backward(x, mean, inv_std, total)
        ctx.shape, ctx.dims = shape, dims
        ctx.mark_non_differentiable(mean, var, total)
        y = ((wide - mean.view(shape)) * inv_std.view(shape)).to(x.dtype)
        return y, mean, var, total

    @staticmethod
    def backward(ctx: Any, dy: Tensor, *unused: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        x, mean, inv_std, total = ctx.saved_tensors
        shape, dims = ctx.shape, ctx.dims
        x_hat = (x.double() - mean.view(shape)) * inv_std.view(shape)
        wide = dy.double()
        sums = torch.cat([wide.sum(dims), (wide * x_hat).sum(dims)])
        dist.all_reduce(sums)
        channels = mean.numel()
        mean_dy, mean_dy_xhat = sums[:channels] / total, sums[channels:] / total
        dx = (wide - mean_dy.view(shape) - x_hat * mean_dy_xhat.view(shape)) * inv_std.view(shape)
        return dx.to(dy.dtype), None


def global_batch_norm(bn: Any, x: Tensor) -> Tensor:
    """Batch norm of ``x`` with the mean and (biased) variance over every rank's batch."""
    y, mean, var, total = _GlobalNormalise.apply(x, bn.eps)
    if bn.affine:
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    if bn.training and bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            unbiased = var * (total / (total - 1.0)) if float(total) > 1 else var
            bn.running_mean.mul_(1.0 - momentum).add_(mean.to(bn.running_mean.dtype), alpha=momentum)
            bn.running_var.mul_(1.0 - momentum).add_(unbiased.to(bn.running_var.dtype), alpha=momentum)
    return y


__all__ = ["DataParallel", "active", "current", "global_batch_norm", "sync_batch_norm"]
