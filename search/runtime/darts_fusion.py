"""The network a DARTS / hyperDARTS search steps through: the lowered supernet, fused and in the
memory format its CPU kernels run fastest in.

- ``channels_last`` (on CPU): the module's 4-D weights are stored NHWC, so every convolution,
  pool and batch norm after the stem runs NHWC; oneDNN's depthwise convolutions (most of a DARTS
  supernet's time) are 2-4x faster than in the default layout (``bench/bench_darts.py``).
  The layout changes strides, not values or names: checkpoints and ``state_dict`` are the same.
- ``fuse``: `genomorph.lower.fuse.fuse_mixed`, a module that shares every parameter and buffer
  with the lowered one and computes its function with fewer kernels. The steps forward through
  it; validation and checkpoints keep using the lowered module (the same tensors).

Both are on by default (``--set fuse=false`` / ``--set channels_last=false`` turn them off).
"""

from __future__ import annotations

import logging

import torch
from genomorph.lower import GenomeModule
from genomorph.lower.fuse import fuse_mixed

log = logging.getLogger(__name__)


def search_network(
    module: GenomeModule, device: torch.device, fuse: bool, channels_last: bool
) -> GenomeModule:
    """``module`` converted in place to channels_last (on CPU, when asked), then fused (when asked).

    Returns the module the steps should call: ``module`` itself or the fused one sharing its tensors.
    """
    if channels_last and device.type == "cpu":
        module.to(memory_format=torch.channels_last)
    if not fuse:
        return module
    fused = fuse_mixed(module)
    log.info("fused supernet: %s", fused.fusion_rewrites)  # type: ignore[attr-defined]
    return fused


__all__ = ["search_network"]
