"""The compiler's commands: validate, info, render, fmt, convert.

Each command collapses its flags into a frozen config, calls the library and prints; errors are
raised, not caught (the ``genomorph`` group turns them into exit statuses), except in
``validate``, which reports every file it is given before exiting. None of these commands
imports torch: they work on the IR alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click
from genomorph.ir.errors import GenomorphError
from genomorph.ir.printer import print_genome
from genomorph.ir.render import format_shape, op_label, to_dot, to_json, to_mermaid
from pydantic import BaseModel, ConfigDict, Field

from ._errors import EXIT_BAD_INPUT, report_user_error
from ._io import (
    STDIN,
    Source,
    genome_argument,
    json_option,
    load_graph,
    network_options,
    output_option,
    read_source,
    write_output,
)

if TYPE_CHECKING:
    from genomorph.ir import Graph


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def _fmt_si(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


# ============================================================================ validate
@click.command(
    epilog="""\b
Examples:
  genomorph validate examples/vanilla.genome
  genomorph validate examples/*.genome
  echo 'input 3x32x32; conv(16, 3) relu gap linear(10)' | genomorph validate -
""",
)
@click.argument("sources", nargs=-1, required=True, metavar="FILE|- ...", type=str)
def validate(sources: tuple[str, ...]) -> None:
    """Check genomes: syntax, names, arity and every shape.

    Prints `ok: N nodes, P params` per genome, or the error with file:line:col, the source
    line and a hint; exits 2 if any genome is invalid.
    """
    failed = 0
    for spec in sources:
        prefix = f"{spec}: " if len(sources) > 1 else ""
        try:
            graph = load_graph(read_source(spec))
        except click.BadParameter as err:
            click.echo(f"{prefix}error: {err.message}", err=True)
            failed += 1
            continue
        except GenomorphError as err:
            report_user_error(err)
            failed += 1
            continue
        stats = graph.stats()
        arch = f", {stats.arch_params} arch params" if stats.arch_params else ""
        click.echo(f"{prefix}ok: {len(graph)} nodes, {stats.params} params{arch}")
    if failed:
        raise click.exceptions.Exit(EXIT_BAD_INPUT)


# ============================================================================ info
def info_data(graph: Graph) -> dict[str, object]:
    """Everything `info` shows, as JSON-ready data (IR passes only, no torch)."""
    stats = graph.stats()
    nodes = []
    for node_stats in stats.nodes:
        node = graph.node(node_stats.id)
        nodes.append(
            {
                "id": node.id,
                "ref": f"n{node.id}",
                "name": node.name,
                "kind": node.kind,
                "op": op_label(node.op),
                "args": node.op.model_dump(mode="json", exclude={"kind"}),
                "inputs": graph.inputs(node.id),
                "out_shape": list(node_stats.out_shape),
                "params": node_stats.params,
                "macs": node_stats.macs,
            }
        )
    return {
        "source": graph.source_name,
        "input_shape": list(stats.input_shape),
        "output_shape": list(stats.output_shape),
        "params": stats.params,
        "arch_params": stats.arch_params,
        "macs": stats.macs,
        "depth": stats.depth,
        "num_nodes": len(graph),
        "aux_outputs": graph.aux_outputs(),
        "histogram": stats.histogram,
        "nodes": nodes,
    }


def _print_info(data: dict, summary_only: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 (our "internal error"); the CLI's guard treats it as success
            self.quiet = True
            raise BrokenPipeError

    # a wide virtual terminal when piped, so long op labels are not wrapped mid-word
    console = _Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    if not summary_only:
        table = Table(title=f"genome {data['source']}", show_footer=True, header_style="bold")
        table.add_column("id", justify="right", footer="total")
        table.add_column("name")
        table.add_column("op", footer=f"{data['num_nodes']} nodes")
        table.add_column("output shape", justify="right")
        table.add_column("params", justify="right", footer=_fmt_count(data["params"]))
        table.add_column("MACs", justify="right", footer=_fmt_count(data["macs"]))
        for node in data["nodes"]:
            table.add_row(
                node["ref"],
                node["name"] or "",
                node["op"],
                format_shape(node["out_shape"]),
                _fmt_count(node["params"]) if node["params"] else "",
                _fmt_count(node["macs"]) if node["macs"] else "",
            )
        console.print(table)
    histogram = ", ".join(f"{kind} {count}" for kind, count in data["histogram"].items())
    lines = [
        f"input {format_shape(data['input_shape'])} -> output {format_shape(data['output_shape'])}",
        f"params {_fmt_count(data['params'])} ({_fmt_si(data['params'])})"
        + (f", architecture params {_fmt_count(data['arch_params'])}" if data["arch_params"] else ""),
        f"MACs {_fmt_count(data['macs'])} ({_fmt_si(data['macs'])}), depth {data['depth']} layers",
        f"ops: {histogram}",
    ]
    if data["aux_outputs"]:
        lines.append("auxiliary outputs: " + ", ".join(f"n{n}" for n in data["aux_outputs"]))
    console.print("\n".join(lines), soft_wrap=True)


@click.command(
    epilog="""\b
Examples:
  genomorph info examples/resnet18_cifar.genome
  genomorph info examples/darts_v2.genome --summary
  genomorph info examples/vanilla.genome --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["params"])'

\b
JSON keys: source, input_shape, output_shape, params, arch_params, macs, depth,
num_nodes, aux_outputs, histogram, nodes (id, ref, name, kind, op, args, inputs,
out_shape, params, macs). params counts trainable weights exactly as the lowered torch
module does; arch_params counts DARTS architecture weights apart; macs counts conv and
linear multiply-accumulates.
""",
)
@genome_argument()
@json_option()
@click.option("--summary", is_flag=True, help="Only the totals, no per-node table.")
def info(source: Source, as_json: bool, summary: bool) -> None:
    """Per-node table of op, output shape, parameters and MACs, with totals."""
    data = info_data(load_graph(source))
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _print_info(data, summary)


# ============================================================================ render
TEXT_FORMATS = ("dot", "json", "mermaid")
IMAGE_FORMATS = ("svg", "png")
RenderFormat = Literal["dot", "json", "mermaid", "svg", "png"]
SUFFIX_FORMATS: dict[str, RenderFormat] = {
    ".dot": "dot",
    ".gv": "dot",
    ".json": "json",
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".svg": "svg",
    ".png": "png",
}


class RenderConfig(_Config):
    format: RenderFormat
    output: Path | None = None
    direction: Literal["TB", "LR"] = "TB"


def _render_config(fmt: str | None, output: Path | None, direction: str) -> RenderConfig:
    if fmt is None and output is not None and str(output) != STDIN:
        fmt = SUFFIX_FORMATS.get(output.suffix.lower())
        if fmt is None:
            raise click.BadParameter(
                f"cannot tell the format from '{output.suffix or output.name}'; "
                f"use --format or one of {', '.join(SUFFIX_FORMATS)}",
                param_hint="'-o'",
            )
    config = RenderConfig(format=fmt or "dot", output=output, direction=direction)  # type: ignore[arg-type]
    if config.format == "png" and (output is None or str(output) == STDIN) and sys.stdout.isatty():
        raise click.UsageError("a PNG is not for the terminal: give -o FILE.png")
    return config


def render_text(graph: Graph, config: RenderConfig) -> str:
    """The text form: JSON, Mermaid, or DOT (also the input Graphviz draws SVG/PNG from)."""
    if config.format == "json":
        return to_json(graph)
    if config.format == "mermaid":
        return to_mermaid(graph, direction=config.direction)
    return to_dot(graph, direction=config.direction, title=graph.source_name)


@click.command(
    epilog="""\b
Examples:
  genomorph render examples/vanilla.genome -o vanilla.svg
  genomorph render examples/resnet18_cifar.genome -o out/resnet18.png --direction LR
  genomorph render examples/nb201_best.genome --format mermaid > nb201.mmd
  genomorph render examples/vanilla.genome --format json | jq '.nodes | length'

\b
DOT, JSON (networkx node-link data) and Mermaid are plain text and always work.
SVG and PNG are drawn by Graphviz's `dot` program; without it genomorph says what
to install and exits 2. The format comes from -o's suffix when --format is omitted.
""",
)
@genome_argument()
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(TEXT_FORMATS + IMAGE_FORMATS),
    default=None,
    help="Output format.  [default: from -o's suffix, else dot]",
)
@output_option("Output file (standard output when omitted).")
@click.option(
    "--direction",
    type=click.Choice(["TB", "LR"]),
    default="TB",
    show_default=True,
    help="Layout direction: top-bottom or left-right.",
)
def render(source: Source, fmt: str | None, output: Path | None, direction: str) -> None:
    """Draw a genome's graph: DOT, JSON, Mermaid, SVG or PNG.

    Nodes show their id, op with its arguments and output shape; merges are hexagons with
    input ports on the edges, mixed ops show the candidate op on each incoming edge.
    """
    from ._graphviz import draw, find_dot

    config = _render_config(fmt, output, direction)
    if config.format in IMAGE_FORMATS:
        find_dot()  # say what to install before spending time on the genome
    graph = load_graph(source)
    text = render_text(graph, config)
    if config.format in IMAGE_FORMATS:
        write_output(draw(text, config.format), config.output)
    else:
        write_output(text, config.output)
    if config.output is not None and str(config.output) != STDIN:
        click.echo(f"wrote {config.output} ({config.format}, {len(graph)} nodes)", err=True)


# ============================================================================ fmt
def _canonical(source: Source) -> str:
    return print_genome(load_graph(source)).rstrip("\n") + "\n"


@click.command(
    epilog="""\b
Examples:
  genomorph fmt examples/vanilla.genome
  genomorph fmt --check examples/vanilla.genome
  genomorph fmt --in-place my_net.genome
  echo 'input 3x32x32; conv(16,3,stride=1) relu gap linear(10)' | genomorph fmt -

\b
The canonical text has definitions expanded, one chain per line where the flow is
linear, generated %N names where a value is reused, and default arguments left out.
""",
)
@genome_argument()
@click.option("--check", is_flag=True, help="Print nothing; exit 1 if the file is not canonical.")
@click.option("--in-place", "-i", "in_place", is_flag=True, help="Rewrite the file in canonical form.")
def fmt(source: Source, check: bool, in_place: bool) -> None:
    """Print a genome in canonical form."""
    if check and in_place:
        raise click.UsageError("--check and --in-place do not go together")
    if in_place and source.path is None:
        raise click.UsageError("--in-place needs a file, not standard input")
    canonical = _canonical(source)
    if check:
        if source.text != canonical:
            click.echo(
                f"{source.name} is not canonical; `genomorph fmt --in-place {source.name}` fixes it", err=True
            )
            raise click.exceptions.Exit(1)
        return
    if in_place:
        assert source.path is not None
        if source.text != canonical:
            source.path.write_text(canonical, encoding="utf-8")
            click.echo(f"reformatted {source.name}", err=True)
        return
    click.echo(canonical, nl=False)


# ============================================================================ convert
ConvertSource = Literal["darts", "nb201", "darts-search"]
ConvertTarget = Literal["darts", "nb201"]


class NetworkSize(_Config):
    channels: int
    cells: int


#: sizes of the published networks each source is usually built with
DEFAULT_SIZES: dict[str, NetworkSize] = {
    "darts": NetworkSize(channels=36, cells=20),  # DARTS CIFAR-10 evaluation network
    "nb201": NetworkSize(channels=16, cells=5),  # NAS-Bench-201 TinyNetwork (N cells per stage)
    "darts-search": NetworkSize(channels=16, cells=8),  # DARTS search supernet
}


class ConvertConfig(_Config):
    source: ConvertSource
    text: str | None = None
    channels: int = Field(ge=1)
    cells: int = Field(ge=1)
    classes: int = Field(default=10, ge=1)
    auxiliary: bool = False
    input_shape: tuple[int, ...] = (3, 32, 32)
    """C x H x W of the input images (darts and darts-search)."""
    drop_path: float = Field(default=0.0, ge=0, lt=1)
    """darts: drop-path on every edge op but the identity, rising linearly to this in training."""


def _darts_drop_path(given: float | None, shape: tuple[int, ...]) -> float:
    """The darts strategy's default for inputs of this size (0.2, DARTS' value, on both kinds)."""
    if given is not None:
        return given
    from genomorph.search.strategies.darts import DROP_PATH, SMALL_DROP_PATH

    return DROP_PATH if min(shape[1:]) >= 32 else SMALL_DROP_PATH


def _image_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"expected CxHxW such as 1x8x8, got {text!r}", param_hint="--input-shape")
    return shape


def convert_to_graph(config: ConvertConfig) -> Graph:
    """Build the IR of a published architecture."""
    if config.source == "darts":
        from genomorph.grammar.darts import genotype_to_graph

        assert config.text is not None
        return genotype_to_graph(
            config.text,
            config.channels,
            config.cells,
            config.classes,
            config.auxiliary,
            input_shape=config.input_shape,
            drop_path=config.drop_path,
        )
    if config.source == "darts-search":
        from genomorph.grammar.darts import darts_supernet

        return darts_supernet(config.channels, config.cells, config.classes, input_shape=config.input_shape)
    from genomorph.grammar.nb201 import nb201_to_graph

    assert config.text is not None
    return nb201_to_graph(config.text, config.channels, config.cells, config.classes)


def convert_from_graph(graph: Graph, target: ConvertTarget) -> str:
    """The published string (DARTS Genotype text or NB201 arch string) of a genome."""
    if target == "darts":
        from genomorph.grammar import darts as module

        name = "graph_to_genotype"
    else:
        from genomorph.grammar import nb201 as module  # type: ignore[no-redef]

        name = "graph_to_nb201"
    inverse = getattr(module, name, None)
    if inverse is None:
        raise GenomorphError(f"converting a genome to {target} is not supported yet")
    return inverse(graph)


@click.command(
    epilog="""\b
Examples:
  genomorph convert --from darts "Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])" --auxiliary > darts_v2.genome
  genomorph convert --from nb201 '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
  genomorph convert --from darts-search --channels 16 --cells 8 > darts_search.genome
  genomorph convert --from darts-search -C 8 -N 5 --input-shape 1x8x8 > digits_space.genome
  echo '|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|' | genomorph convert --from nb201 -
  genomorph convert --to nb201 examples/nb201_best.genome

\b
Defaults: darts C=36 N=20 (CIFAR-10 evaluation network), nb201 C=16 N=5 (cells per
stage), darts-search C=16 N=8 (supernet with the 8 candidate ops on every edge);
10 classes. --auxiliary adds DARTS' auxiliary head (darts only). --drop-path P (darts):
drop-path on every edge op but the identity, its rate rising linearly to P over a training;
default 0.2 (DARTS' value; also the search's default on small images).
""",
)
@click.argument("text", required=False, metavar="[TEXT|FILE|-]")
@click.option(
    "--from",
    "from_",
    type=click.Choice(["darts", "nb201", "darts-search"]),
    help="Build a genome from a DARTS Genotype, an NB201 arch string, or the DARTS supernet.",
)
@click.option(
    "--to",
    type=click.Choice(["darts", "nb201"]),
    help="Turn the genome FILE|- into its DARTS Genotype or NB201 arch string.",
)
@network_options
@click.option("--auxiliary", is_flag=True, help="Add the auxiliary head (darts).")
@click.option(
    "--input-shape",
    metavar="CxHxW",
    help="Input image shape of darts / darts-search networks, e.g. 1x8x8.  [default: 3x32x32]",
)
@click.option(
    "--drop-path",
    type=click.FloatRange(0, 1, max_open=True),
    help="darts: drop-path rate the training raises linearly to (0 = none).  [default: 0.2]",
)
@output_option()
def convert(
    text: str | None,
    from_: str | None,
    to: str | None,
    channels: int | None,
    cells: int | None,
    classes: int | None,
    auxiliary: bool,
    input_shape: str | None,
    output: Path | None,
    drop_path: float | None = None,
) -> None:
    """Convert published architectures (DARTS, NAS-Bench-201) to genomes and back."""
    if (from_ is None) == (to is None):
        raise click.UsageError("give exactly one of --from SOURCE or --to TARGET")
    if to is not None:
        if text is None:
            raise click.UsageError("--to needs a genome FILE or - for standard input")
        if channels or cells or classes or auxiliary or input_shape:
            raise click.UsageError(
                "--channels/--cells/--classes/--auxiliary/--input-shape apply to --from only"
            )
        write_output(convert_from_graph(load_graph(read_source(text)), to) + "\n", output)  # type: ignore[arg-type]
        return
    assert from_ is not None
    if from_ == "darts-search" and text is not None:
        raise click.UsageError("--from darts-search builds the supernet from sizes alone; drop TEXT")
    if from_ != "darts-search" and text is None:
        what = "a DARTS Genotype(...) text" if from_ == "darts" else "an NB201 arch string"
        raise click.UsageError(
            f"--from {from_} needs {what} as argument, or - to read it from standard input"
        )
    if auxiliary and from_ != "darts":
        raise click.UsageError("--auxiliary applies to --from darts only")
    if drop_path is not None and from_ != "darts":
        raise click.UsageError("--drop-path applies to --from darts only")
    if input_shape and from_ == "nb201":
        raise click.UsageError("--input-shape applies to --from darts and darts-search")
    shape = _image_shape(input_shape) if input_shape else (3, 32, 32)
    if text == STDIN:
        text = sys.stdin.read().strip()
    size = DEFAULT_SIZES[from_]
    config = ConvertConfig(
        source=from_,  # type: ignore[arg-type]
        text=text,
        channels=channels or size.channels,
        cells=cells or size.cells,
        classes=classes or 10,
        auxiliary=auxiliary,
        input_shape=shape,
        drop_path=_darts_drop_path(drop_path, shape) if from_ == "darts" else 0.0,
    )
    write_output(print_genome(convert_to_graph(config)).rstrip("\n") + "\n", output)
