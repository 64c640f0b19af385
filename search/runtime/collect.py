"""Measurements a request can ask for after training (``EvalRequest.collect``).

- ``importance``: paper 000's A and B per unit of every prunable layer (`importance.unit_statistics`),
  over (at most `IMPORTANCE_SAMPLES` of) the training split, written as an ``.npy`` artifact that
  `genomorph.search.core.importance.read_importance` reads without torch;
- ``latency``: the median CPU forward time of one sample through the lowered module in eval
  mode, in milliseconds (``Metrics.extra["latency_ms"]``), after a few warm-up passes.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from genomorph.ir import Graph, Weights
from genomorph.search.core.importance import write_importance
from genomorph.search.runtime.data import Dataset, Split
from genomorph.search.runtime.recipes import ArtifactWriter

#: cap on the samples the importance sums run over (a full CIFAR split would need GBs of floats)
IMPORTANCE_SAMPLES = 10_000
LATENCY_WARMUP = 5
LATENCY_REPEATS = 30


def collect_importance(
    graph: Graph,
    weights: Weights,
    data: Dataset,
    split: Split,
    files: ArtifactWriter,
    module: torch.fx.GraphModule | None = None,
) -> str:
    """Measure A and B on ``split`` and write them; returns the artifact's relative path.

    ``module``: ``graph`` already lowered with ``weights`` (the trained one: not lowered again)."""
    # imported here: the rewrites it needs cost every worker start, and few requests collect this
    from genomorph.search.runtime.importance import stats_arrays, unit_statistics

    n = min(len(split), IMPORTANCE_SAMPLES)
    x = data.normalise(split.x[:n])
    stats = unit_statistics(graph, weights, x, split.y[:n], task=data.info.task, module=module)
    return files.write_bytes("importance", ".npy", write_importance(stats_arrays(stats), n))


@torch.inference_mode()
def measure_latency_ms(module: torch.nn.Module, data: Dataset) -> float:
    """Median wall time in ms of one eval-mode forward pass of one sample on the CPU."""
    cpu = module if all(p.device.type == "cpu" for p in module.parameters()) else copy.deepcopy(module).cpu()
    was_training = cpu.training
    cpu.eval()
    x = data.normalise(data.train.x[:1].cpu())
    for _ in range(LATENCY_WARMUP):
        cpu(x)
    times = []
    for _ in range(LATENCY_REPEATS):
        started = time.perf_counter()
        cpu(x)
        times.append(time.perf_counter() - started)
    cpu.train(was_training)
    return 1000.0 * statistics.median(times)


__all__ = ["IMPORTANCE_SAMPLES", "collect_importance", "measure_latency_ms"]
