"""Import and export benchmark: models in and out of genomorph, against doing it without.

1. **Import + lower** of each torchvision model the import tests cover (trace with torch.fx,
   translate to the IR with the weights, lower the genome back to an fx module with those
   weights) against **constructing** the model in torchvision (random initialisation, no
   pretrained weights). The ratio says what an import costs in units of building the model.
2. **Training step of the exported ``python`` module** (the standalone ``.py`` file, loaded as
   a fresh module with the same weights) against the lowered genome: one SGD step (forward,
   cross-entropy, backward, optimiser step), CPU, alternated round by round. Target <= 1.02:
   the exported file is as fast as the fx module it was checked against.

Run: ``python bench/bench_export.py`` (``--repeats N``, ``--threads T``, ``--models a,b``,
``--batch B``, ``--only import|train``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import torch
from _timing import interleaved, table
from bench_train_step import train_step
from genomorph.grammar import parse, parse_file
from genomorph.ir.printer import print_genome
from genomorph.lower import extract_weights, lower
from genomorph.lower.export import export_genome
from genomorph.lower.importer import build_model, import_model, parse_source
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
MODELS = [
    "resnet18", "resnet50", "vgg11_bn", "mobilenet_v2", "mobilenet_v3_small", "densenet121", "squeezenet1_1",
    "efficientnet_b0",
]  # fmt: skip


def bench_import(models: list[str], repeats: int) -> list[list[str]]:
    rows = []
    for name in models:
        source = parse_source(f"torchvision:{name}")

        def construct(source=source) -> nn.Module:
            return build_model(source)

        model = construct()

        def import_and_lower(model=model) -> nn.Module:
            imported = import_model(model, (3, 224, 224))
            return lower(imported.graph, imported.weights)

        result = interleaved("import+lower", import_and_lower, "construct", construct, repeats=repeats)
        params = sum(p.numel() for p in model.parameters())
        rows.append(
            [
                name,
                f"{params:,}",
                f"{result.median_a * 1e3:.0f}",
                f"{result.median_b * 1e3:.0f}",
                f"{result.median_ratio:.2f}",
            ]
        )
    return rows


def _load_python(path: Path, class_name: str) -> nn.Module:
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net: nn.Module = getattr(module, class_name)()
    net.load_state_dict(torch.load(path.with_suffix(".pt"), weights_only=True))
    return net


def bench_train(batch: int, repeats: int) -> list[list[str]]:
    cases = {
        "resnet18_cifar": parse_file(ROOT / "examples" / "resnet18_cifar.genome"),
        "vanilla": parse_file(ROOT / "examples" / "vanilla.genome"),
    }
    # an imported network with the new op kinds (SE blocks, hardswish, ...), at a small input
    imported = import_model(
        build_model(parse_source("torchvision:mobilenet_v3_small(num_classes=10)")), (3, 64, 64)
    )
    cases["mobilenet_v3_small@64 (imported)"] = parse(print_genome(imported.graph))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for i, (name, graph) in enumerate(cases.items()):
            torch.manual_seed(0)
            weights, arch = extract_weights(lower(graph), graph)
            path = Path(folder) / f"net{i}.py"
            export_genome(graph, "python", path, weights, arch or None)
            exported = _load_python(path, f"Net{i}")
            lowered = lower(graph, weights)
            shape = graph.stats().input_shape
            rounds = repeats if "resnet" in name else 4 * repeats
            result = interleaved(
                "exported", train_step(exported, batch, shape), "lowered", train_step(lowered, batch, shape),
                repeats=rounds, warmup=2,
            )  # fmt: skip
            rows.append(
                [
                    name,
                    str(rounds),
                    f"{result.median_a * 1e3:.1f}",
                    f"{result.median_b * 1e3:.1f}",
                    f"{result.median_ratio:.3f}",
                    f"{min(result.ratios):.3f}-{max(result.ratios):.3f}",
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds per contender")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated torchvision names")
    parser.add_argument("--only", choices=["import", "train"], help="run one part")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    if args.only != "train":
        rows = bench_import(args.models.split(","), args.repeats)
        print(
            f"Import (torch.fx trace -> IR + weights) + lower vs constructing in torchvision, 3x224x224, {threads} threads (medians)"
        )
        print(table(["model", "params", "import+lower ms", "construct ms", "ratio"], rows))
        print()
    if args.only != "import":
        rows = bench_train(args.batch, args.repeats)
        print(
            f"One SGD step of the exported python module vs the lowered genome, batch {args.batch}, CPU, {threads} threads"
        )
        print(table(["network", "rounds", "exported ms", "lowered ms", "ratio", "ratio range"], rows))
        print("target: ratio <= 1.02")
    return 0


if __name__ == "__main__":
    sys.exit(main())
