"""`genomorph morph`: apply a rewrite (or a random chain of them) to a genome and print the result.

The flags collapse into a frozen :class:`MorphConfig`; :func:`morph_graph` does the work on the
IR (no torch), and :func:`check_function` lowers both networks for ``--check``. Stdout stays
a valid genome: the records and the check come first as ``#`` comments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np
from genomorph.ir.errors import NotApplicable

from ._errors import EXIT_BAD_INPUT
from ._io import Source, genome_argument, json_option, load_graph, output_option, write_output

if TYPE_CHECKING:
    from genomorph.ir import Graph, Weights
    from genomorph.ir.rewrites import RewriteResult

CHECK_BATCH = 4


@dataclass(frozen=True)
class MorphConfig:
    op: str | None
    at: str | None
    seed: int
    steps: int | None
    settings: tuple[tuple[str, str], ...] = ()
    approximate: bool = False


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"expected FIELD=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _value(text: str) -> Any:
    """A move field from text: int, float, bool, none, a node (n7), a comma list, else a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if "," in text:
        return tuple(_value(part.strip()) for part in text.split(",") if part.strip())
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.startswith("n") and text[1:].isdigit():
        return int(text[1:])
    return text


def _node(graph: Graph, ref: str) -> int:
    try:
        return graph.find(ref)
    except KeyError:
        raise NotApplicable(
            f"there is no node {ref!r} in the genome", hint="name a node as n7, 7, or by its value name"
        ) from None


def _with_settings(move: Any, settings: tuple[tuple[str, str], ...], graph: Graph) -> Any:
    """``move`` with the user's ``--set FIELD=VALUE`` applied and type-checked."""
    from genomorph.ir.rewrites import move_from_dict, move_to_dict

    if not settings:
        return move
    values = move_to_dict(move)
    for name, text in settings:
        values[name] = _node(graph, text) if name in ("source", "other") else _value(text)
    return move_from_dict(type(move), values)


def morph_graph(graph: Graph, weights: Weights, config: MorphConfig) -> list[RewriteResult]:
    """Apply the rewrite(s) the config asks for; NotApplicable says why when none fits."""
    from genomorph.ir.rewrites import APPROXIMATE, EXACT, get, random_chain

    rng = np.random.default_rng([config.seed, 0])
    if config.steps is not None:
        names = [config.op] if config.op else [*EXACT, *(APPROXIMATE if config.approximate else ())]
        return random_chain(graph, weights, config.steps, rng, names)
    assert config.op is not None
    rewrite = get(config.op)
    if config.at is not None:
        moves = rewrite.moves_at(graph, _node(graph, config.at), weights)
    else:
        moves = rewrite.candidates(graph, weights)
        if not moves:
            raise NotApplicable(f"{config.op} applies nowhere in this genome")
    moves = list(dict.fromkeys(_with_settings(m, config.settings, graph) for m in moves))
    move = moves[int(rng.integers(len(moves)))]
    return [rewrite.apply(graph, weights, move, rng)]


def check_function(before: tuple[Graph, Weights], after: tuple[Graph, Weights], seed: int) -> float:
    """Max abs difference of the two lowered networks' outputs in eval mode on random inputs."""
    import torch
    from genomorph.lower import lower

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(CHECK_BATCH, *before[0].shapes()[before[0].input_node()], generator=generator)
    outs = []
    for graph, weights in (before, after):
        module = lower(graph, weights).eval()
        with torch.no_grad():
            out = module(x)
        outs.append(out[0] if isinstance(out, tuple) else out)
    return float((outs[0] - outs[1]).abs().max())


@click.command(
    epilog="""\b
Examples:
  genomorph morph examples/vanilla.genome --op deepen
  genomorph morph examples/vanilla.genome --op widen --at n5 --set mode=net2net --check
  genomorph morph examples/resnet18_cifar.genome --op skip-add --seed 3 --json
  genomorph morph examples/hresnet_mlp.genome --random 20 --check

Rewrites: deepen widen skip-add skip-concat merge-convex merge-concat split sepconv
add-neurons hres-grow (exact); remove-block prune-channels prune-neurons substitute-sepconv
hres-shrink (approximate). A rewrite that applies nowhere (or not at --at) prints
"not applicable: <why>" and exits 2.
""",
)
@genome_argument()
@click.option("--op", "op", metavar="NAME", help="The rewrite to apply (see below).")
@click.option("--at", "at", metavar="NODE", help="Apply at this node (n7, 7 or a value name).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
@click.option("--check", is_flag=True, help="Lower both networks and print the max abs output difference.")
@click.option("--random", "steps", type=click.IntRange(min=1), metavar="K",
              help="Apply K random exact morphisms in a chain (of --op only, when given).")  # fmt: skip
@click.option("--approximate", is_flag=True, help="With --random: draw approximate rewrites too.")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE", callback=lambda c, p, v: tuple(map(_setting, v)),
              help="Set a field of the move, e.g. --set mode=net2net --set factor=2 (repeatable).")  # fmt: skip
@json_option("Print genome, records, max_abs_diff, params and MACs as one JSON object.")
@output_option("Write the new genome here instead of standard output.")
def morph(
    source: Source,
    op: str | None,
    at: str | None,
    seed: int,
    check: bool,
    steps: int | None,
    approximate: bool,
    settings: tuple[tuple[str, str], ...],
    as_json: bool,
    output: Path | None,
) -> None:
    """Rewrite a genome with a network morphism and print the new genome.

    Weights travel with the rewrite: the parent gets random weights (seeded; batch-norm
    statistics off identity, as after training) and the child inherits them transformed,
    so --check can compare the two networks' outputs.
    """
    from genomorph.ir.printer import print_genome
    from genomorph.ir.rewrites import REWRITES, randomized

    if op is None and steps is None:
        raise click.UsageError("give --op NAME, --random K, or both")
    if op is not None and op not in REWRITES:
        raise click.BadParameter(
            f"unknown rewrite {op!r}; rewrites are: {', '.join(REWRITES)}", param_hint="--op"
        )
    if at is not None and steps is not None:
        raise click.UsageError("--at applies to a single rewrite, not to --random chains")
    config = MorphConfig(op, at, seed, steps, settings, approximate)
    graph = load_graph(source)
    weights = randomized(graph, None, np.random.default_rng([seed, 1]))
    try:
        results = morph_graph(graph, weights, config)
    except NotApplicable as err:
        hint = f"\nhint: {err.hint}" if err.hint else ""
        click.echo(f"not applicable: {err.message}{hint}", err=True)
        raise click.exceptions.Exit(EXIT_BAD_INPUT) from None
    final = results[-1]
    diff = check_function((graph, weights), (final.graph, final.weights), seed) if check else None
    genome = print_genome(final.graph)
    before, after = graph.stats(), final.graph.stats()
    if as_json:
        payload = {
            "genome": genome,
            "records": [r.record.model_dump(mode="json") for r in results],
            "max_abs_diff": diff,
            "exact": all(r.record.exact for r in results),
            "params_before": before.params,
            "params_after": after.params,
            "macs_before": before.macs,
            "macs_after": after.macs,
            "repair": sorted({n for r in results for n in r.repair if n in final.graph}),
        }
        write_output(json.dumps(payload, indent=2) + "\n", output)
        return
    lines = [f"# {r.record.text}" for r in results]
    lines.append(f"# params {before.params:,} -> {after.params:,}, MACs {before.macs:,} -> {after.macs:,}")
    if diff is not None:
        lines.append(f"# max abs output difference (eval mode, {CHECK_BATCH} random inputs): {diff:.3e}")
    write_output("\n".join(lines) + "\n" + genome, output)
