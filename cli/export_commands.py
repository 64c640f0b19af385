"""Models in and out: ``genomorph export`` (genome -> Python / torch.export / ONNX) and
``genomorph import`` (torchvision or your own PyTorch module -> genome + weights).

Both commands check their result before they return: an export against the lowered genome, an
import against the source module; a failed check exits 1 with the difference.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from genomorph.ir.errors import ConfigError
from pydantic import BaseModel, ConfigDict

from ._errors import EXIT_INTERNAL
from ._io import load_graph, read_source

SUFFIXES = {".py": "python", ".pt2": "exported", ".onnx": "onnx"}
DEFAULT_SUFFIX = {"python": ".py", "exported": ".pt2", "onnx": ".onnx"}


class ExportConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    format: str
    output: Path
    weights: Path | None = None
    discretise: bool = False


def _load(config: ExportConfig) -> tuple[object, object, object, str]:
    """Graph, weights, arch of the SOURCE (a genome file or a run directory) and its name."""
    from genomorph.grammar import parse
    from genomorph.search.runtime.checkpoint import load_checkpoint

    path = Path(config.source)
    if path.is_dir():
        from genomorph.search.core.store import RunStore
        from genomorph.search.runtime.report import summarize

        store = RunStore.open(path)
        _, _, best = summarize(store, measure_test=False)
        if best is None or best.checkpoint is None:
            raise ConfigError(f"the run in {path} has no finished candidate with weights to export")
        checkpoint = config.weights or path / str(best.checkpoint)
        weights, arch, _ = load_checkpoint(checkpoint)
        return (
            parse(best.genome, source_name=f"{path} (candidate {best.id})"),
            weights,
            arch,
            f"candidate {best.id} of {path}",
        )
    graph = load_graph(read_source(config.source))
    if config.weights is None:
        return graph, None, None, config.source
    weights, arch, _ = load_checkpoint(config.weights)
    return graph, weights, arch or None, config.source


@click.command(
    epilog="""\b
Examples:
  genomorph export examples/resnet18_cifar.genome --format python -o resnet18.py
  genomorph export runs/nash --format python -o best.py        # best genome + trained weights
  genomorph export net.genome --weights net.pt --format onnx -o net.onnx
  genomorph export runs/darts --discretise -o cell_net.py      # supernet -> strongest ops

\b
python: one .py file (an nn.Module needing only torch) and, with weights, a .pt state_dict
beside it; exported: a torch.export program (.pt2); onnx: an ONNX file (needs
genomorph[onnx]). The batch dimension of exported/onnx is dynamic. Every export is checked
against the lowered genome in eval mode (max abs difference <= 1e-5, ONNX Runtime <= 1e-4);
a failed check exits 1.
""",
)
@click.argument("source", metavar="FILE|RUN_DIR|-")
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["python", "exported", "onnx"]),
    default=None,
    help="Artefact format.  [default: from -o's suffix, else python]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output file.  [default: the source's name with the format's suffix]",
)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A genomorph checkpoint (train/search/import write them) to export with.",
)
@click.option(
    "--discretise",
    "--discretize",
    "discretise",
    is_flag=True,
    help="Supernets: keep each mixed op's strongest candidate (not 'none'), drop the rest.",
)
def export(source: str, fmt: str | None, output: Path | None, weights: Path | None, discretise: bool) -> None:
    """Export a genome (or a run's best genome with its weights) as PyTorch code, torch.export or ONNX."""
    from genomorph.lower.export import ExportMismatch, export_genome
    from genomorph.lower.export import discretise as discretise_graph

    if fmt is None:
        fmt = SUFFIXES.get(output.suffix, "python") if output is not None else "python"
    if output is None:
        if source == "-":
            raise click.UsageError("give -o FILE when the genome comes from standard input")
        stem = Path(source).name if Path(source).is_dir() else Path(source).stem
        output = Path(f"{stem or 'model'}{DEFAULT_SUFFIX[fmt]}")
    config = ExportConfig(source=source, format=fmt, output=output, weights=weights, discretise=discretise)
    graph, tensors, arch, name = _load(config)
    if config.discretise:
        if not arch:
            raise ConfigError(
                "--discretise needs the supernet's architecture weights",
                hint="pass --weights CKPT or a run directory",
            )
        graph, tensors = discretise_graph(graph, tensors, arch)  # type: ignore[arg-type]
        arch = None
    start = time.perf_counter()
    try:
        result = export_genome(graph, config.format, config.output, tensors, arch, source=name)  # type: ignore[arg-type]
    except ExportMismatch as err:
        click.echo(f"error: {err}", err=True)
        raise click.exceptions.Exit(EXIT_INTERNAL) from None
    files = ", ".join(str(f) for f in result.files)
    click.echo(
        f"wrote {files} ({result.format}); checked against the lowered genome: "
        f"max abs diff {result.max_abs_diff:.3g} <= {result.tolerance:g} ({time.perf_counter() - start:.1f} s)"
    )


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(
            f"'{text}' is not a shape such as 3x224x224", param_hint="'--input-shape'"
        ) from None
    if len(dims) not in (1, 3) or min(dims) < 1:
        raise click.BadParameter(
            "the input shape is C x H x W or a feature count", param_hint="'--input-shape'"
        )
    return dims


@click.command(
    "import",
    epilog="""\b
Examples:
  genomorph import torchvision:resnet18 -o resnet18.genome --weights-out resnet18.pt
  genomorph import 'torchvision:resnet50(num_classes=10)' --input-shape 3x64x64 -o r50.genome
  genomorph import my_net.py:build -o my_net.genome --input-shape 3x32x32

\b
SOURCE is torchvision:NAME or FILE.py:FACTORY, either with keyword arguments in
parentheses (Python literals). torchvision models are built without pretrained weights;
nothing is downloaded. The module is traced with torch.fx; the genome's parameter count
must equal the module's and the re-lowered genome with the imported weights must give
the module's logits (eval mode, max abs diff <= 1e-4), else the command exits 1.
""",
)
@click.argument("source_spec", metavar="SOURCE")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The genome file to write.",
)
@click.option(
    "--weights-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the module's weights as a genomorph checkpoint (for train/search/export).",
)
@click.option(
    "--input-shape",
    "input_shape",
    default=None,
    metavar="CxHxW",
    help="Input shape without batch.  [default: 3x224x224 for torchvision, required otherwise]",
)
def import_(source_spec: str, output: Path, weights_out: Path | None, input_shape: str | None) -> None:
    """Import a PyTorch module (torchvision or your own) as a genome, with its weights."""
    from genomorph.ir.printer import print_genome
    from genomorph.lower.importer import build_model, check_import, import_model, parse_source
    from genomorph.search.runtime.checkpoint import save_checkpoint

    source = parse_source(source_spec)
    shape = _shape(input_shape) or ((3, 224, 224) if source.is_torchvision else None)
    if shape is None:
        raise click.UsageError("give --input-shape CxHxW for a FILE.py:FACTORY source")
    start = time.perf_counter()
    model = build_model(source)
    imported = import_model(model, shape)
    diff = check_import(imported, model)
    text = print_genome(imported.graph)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(f"# imported by genomorph from {source_spec}\n{text}", encoding="utf-8")
    if weights_out is not None:
        save_checkpoint(weights_out, imported.weights, genome=text)
    stats = imported.graph.stats()
    click.echo(
        f"imported {source_spec}: {len(imported.graph)} nodes, {stats.params:,} params "
        f"(module: {imported.module_params:,}), {stats.macs:,} MACs; logits max abs diff {diff:.3g} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    click.echo(f"wrote {output}" + (f" and {weights_out}" if weights_out else ""))
    if not diff <= 1e-4:
        click.echo(f"error: the genome's logits differ from the module's by {diff:.3g} (> 1e-4)", err=True)
        raise click.exceptions.Exit(EXIT_INTERNAL)
