"""Training-step benchmark: a lowered genome against the same network written by hand.

One SGD step (forward, cross-entropy, backward, optimiser step) on a CPU batch of 64, timed
alternately for the two contenders; the table shows median step times and the median of
the per-round ratios (target <= 1.02: the lowered fx module runs like hand-written eager code).

- ``examples/resnet18_cifar.genome`` vs torchvision's ``resnet18(num_classes=10)`` adapted to
  CIFAR (3x3 stride-1 stem conv, no max-pool);
- ``examples/vanilla.genome`` vs a hand-written ``nn.Sequential`` of the same layers.

Both networks of a pair are checked to have the same parameter count before timing.
Run: ``python bench/bench_train_step.py`` (``--repeats N``, ``--batch B``, ``--threads T``,
``--only vanilla``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _timing import Comparison, interleaved, table
from genomorph.grammar import parse_file
from genomorph.lower import lower
from genomorph.lower.torchvision_compat import import_torchvision
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def resnet18_cifar_by_hand() -> nn.Module:
    """torchvision's ResNet-18 with the usual CIFAR stem: 3x3 stride-1 conv, no max-pool."""
    model = import_torchvision().models.resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def vanilla_by_hand(in_channels: int, widths: list[int], classes: int) -> nn.Module:
    """NASH's start net (paper 002 §5.1) in eager PyTorch: Conv-BN-ReLU blocks with max-pooling
    between them, global average pooling, linear. The widths come from examples/vanilla.genome
    so the two sides stay the same network when the example changes."""
    layers: list[nn.Module] = []
    c_in = in_channels
    for i, c_out in enumerate(widths):
        if i:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes)]
    return nn.Sequential(*layers)


def vanilla_sizes(genome: Path) -> tuple[int, list[int], int]:
    """Input channels, conv widths and classes of the vanilla genome."""
    graph = parse_file(genome)
    stats = graph.stats()
    widths = [graph.op(n).channels for n in graph.order() if graph.kind(n) == "conv"]  # type: ignore[attr-defined]
    return stats.input_shape[0], widths, stats.output_shape[0]


def train_step(model: nn.Module, batch: int, shape: tuple[int, ...]) -> Callable[[], None]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shape, generator=generator)
    y = torch.randint(0, 10, (batch,), generator=generator)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()

    return step


def compare(name: str, genome: Path, by_hand: nn.Module, batch: int, repeats: int) -> tuple[str, Comparison]:
    graph = parse_file(genome)
    ours = lower(graph)
    theirs_count = sum(p.numel() for p in by_hand.parameters())
    ours_count = sum(p.numel() for p in ours.parameters())
    if ours_count != theirs_count:
        raise SystemExit(
            f"{genome.name} has {ours_count:,} parameters but the hand-written {name} has {theirs_count:,}: "
            "the benchmark would compare different networks"
        )
    shape = graph.stats().input_shape
    result = interleaved(
        "genomorph",
        train_step(ours, batch, shape),
        "by hand",
        train_step(by_hand, batch, shape),
        repeats=repeats,
        warmup=2,
    )
    return name, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="interleaved rounds for resnet18_cifar (vanilla, ~100x cheaper, gets 10x)",
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--only", choices=["resnet18_cifar", "vanilla"], help="run one pair")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vanilla = EXAMPLES / "vanilla.genome"
    pairs = {
        "resnet18_cifar": (EXAMPLES / "resnet18_cifar.genome", resnet18_cifar_by_hand, args.repeats),
        "vanilla": (vanilla, lambda: vanilla_by_hand(*vanilla_sizes(vanilla)), 10 * args.repeats),
    }
    rows = []
    for name, (genome, build, repeats) in pairs.items():
        if args.only and name != args.only:
            continue
        _, result = compare(name, genome, build(), args.batch, repeats)
        rows.append(
            [
                name,
                str(repeats),
                f"{result.median_a * 1e3:.1f}",
                f"{result.median_b * 1e3:.1f}",
                f"{result.median_ratio:.3f}",
                f"{min(result.ratios):.3f}-{max(result.ratios):.3f}",
            ]
        )
    print(f"One SGD training step, batch {args.batch}, CPU, {torch.get_num_threads()} threads (medians)")
    print(table(["network", "rounds", "genomorph ms", "by hand ms", "ratio", "ratio range"], rows))
    print("target: ratio <= 1.02")
    return 0


if __name__ == "__main__":
    sys.exit(main())
