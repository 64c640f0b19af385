"""How much does a function-preserving morphism cost next to training?

Issue 3 point 7: applying one exact morphism to ``resnet18_cifar`` with its weights (IR and
weights in, IR and weights out, lowered module ready) should cost less than 5 % of one
training step of the same network at batch 64 on CPU. This prints, per rewrite, the time of
``apply`` (the IR rewrite with its weights), of ``lower`` (the new ``GenomeModule`` with those
weights loaded) and their sum as a share of one SGD step; then the same for plain chains of
100 and 1 000 Conv-BN-ReLU layers, to show how the cost grows with depth.

    python bench/bench_morph.py                 # resnet18_cifar + chains of 100 and 1000 layers
    python bench/bench_morph.py --layers 100 --repeat 3 --threads 1

Numbers are medians over ``--repeat`` runs. On a shared machine several torch threads fight
for the cores and a training step's time swings several-fold between runs; ``--threads 1``
gives stable numbers there. The chains are thin (8 channels, 8x8 images) so that 1 000 layers
train in under a second: the fixed per-layer cost of building torch modules then weighs far
more than on a real network (``--chain-channels`` / ``--chain-size`` change that).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from genomorph.grammar import parse
from genomorph.ir import Graph, Weights
from genomorph.ir.rewrites import EXACT, REWRITES, randomized
from genomorph.lower import lower

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def median_time(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step_time(graph: Graph, weights: Weights, repeat: int) -> float:
    """Median seconds of one SGD step (forward, backward, update) at batch 64."""
    module = lower(graph, weights).train()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)
    shape = graph.shapes()[graph.input_node()]
    x = torch.randn(BATCH, *shape)
    classes = graph.shapes()[graph.output_node()][0]
    y = torch.randint(0, classes, (BATCH,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(module(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: first-call allocations and kernel selection
    return median_time(step, repeat)


@dataclass(frozen=True)
class Cost:
    rewrite: str
    apply_s: float
    lower_s: float

    @property
    def total_s(self) -> float:
        return self.apply_s + self.lower_s


def morph_cost(graph: Graph, weights: Weights, name: str, repeat: int, seed: int = 0) -> Cost | None:
    rewrite = REWRITES[name]
    moves = rewrite.candidates(graph, weights)
    if not moves:
        return None
    move = moves[int(np.random.default_rng(seed).integers(len(moves)))]
    rng = np.random.default_rng(seed)
    result = rewrite.apply(graph, weights, move, rng)
    apply_s = median_time(lambda: rewrite.apply(graph, weights, move, rng), repeat)
    lower_s = median_time(lambda: lower(result.graph, result.weights), repeat)
    return Cost(name, apply_s, lower_s)


def chain_genome(layers: int, channels: int = 8, size: int = 8) -> str:
    body = "\n".join(f"conv({channels}, 3, bias=false) bn relu" for _ in range(layers))
    return f"input 3x{size}x{size}\n{body}\ngap linear(10)\n"


def report(title: str, graph: Graph, names: list[str], repeat: int) -> None:
    weights = randomized(graph, None, np.random.default_rng(0))
    stats = graph.stats()
    step = train_step_time(graph, weights, repeat)
    print(f"\n{title}: {len(graph)} IR nodes, depth {stats.depth}, {stats.params:,} parameters")
    print(
        f"  one training step (batch {BATCH}, CPU, {torch.get_num_threads()} threads): {step * 1000:9.1f} ms"
    )
    print(f"  {'rewrite':<14}{'apply':>10}{'lower':>10}{'total':>10}{'/ step':>9}")
    for name in names:
        cost = morph_cost(graph, weights, name, repeat)
        if cost is None:
            print(f"  {name:<14}  (applies nowhere)")
            continue
        share = 100 * cost.total_s / step
        print(
            f"  {name:<14}{cost.apply_s * 1000:8.1f}ms{cost.lower_s * 1000:8.1f}ms"
            f"{cost.total_s * 1000:8.1f}ms{share:8.2f}%"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--layers", type=int, nargs="*", default=[100, 1000], help="chain depths to measure")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip-resnet", action="store_true", help="only the chains")
    parser.add_argument("--chain-channels", type=int, default=8, help="channels of every chain layer")
    parser.add_argument("--chain-size", type=int, default=8, help="image side of the chains")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.skip_resnet:
        graph = parse((ROOT / "examples" / "resnet18_cifar.genome").read_text())
        report("resnet18_cifar", graph, list(EXACT), args.repeat)
    for layers in args.layers:
        report(
            f"chain of {layers} conv-bn-relu layers",
            parse(chain_genome(layers, args.chain_channels, args.chain_size)),
            ["deepen", "widen", "split"],
            args.repeat,
        )


if __name__ == "__main__":
    main()
