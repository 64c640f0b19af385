"""Genomes of a paper-004 search space: a list of conv genes, its IR, and membership checks.

A genome of the space is a tuple of `ConvGene`s (the body); the input, the batch norms and the
head come from the space. `build_graph` turns genes into IR, `genome_text` into canonical genome
text, and `decode` reads a parsed genome back into genes (or says why it is not in the space),
so every genome a strategy emits can be checked independently of how it was made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from genomorph.ir import ConfigError, Graph
from genomorph.ir.ops import OP_CLASSES, BatchNorm, Conv, GlobalAvgPool, Input, Linear
from pydantic import BaseModel, ConfigDict, Field

from .space import SearchSpace

#: how many random genomes `sample` draws before concluding that `max_params` excludes everything
SAMPLE_ATTEMPTS = 200


class ConvGene(BaseModel):
    """One conv layer of the body: conv(filters, kernel, stride) [bn] activation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filters: int = Field(ge=1)
    kernel: int = Field(ge=1)
    stride: int = Field(default=1, ge=1)
    activation: str

    def describe(self) -> str:
        role = "reduction" if self.stride > 1 else "normal"
        return f"{role} conv({self.filters}, {self.kernel}) {self.activation}"


Genes = tuple[ConvGene, ...]


class OutsideSpace(ConfigError):
    """A genome that is valid on its own but breaks a constraint of the search space."""


def genes_to_json(genes: Sequence[ConvGene]) -> list[dict]:
    return [g.model_dump() for g in genes]


def genes_from_json(data: Sequence[dict]) -> Genes:
    return tuple(ConvGene.model_validate(d) for d in data)


def _require_bound(space: SearchSpace) -> tuple[tuple[int, ...], int]:
    if space.input.shape is None or space.input.classes is None:
        raise ConfigError(
            f"search space '{space.name}' has no input shape/classes yet",
            hint="bind it to the dataset first: space.bind(input_shape, classes)",
        )
    return space.input.shape, space.input.classes


# ---------------------------------------------------------------------------------- IR


def build_graph(space: SearchSpace, genes: Sequence[ConvGene]) -> Graph:
    """The IR of a genome: input, the conv body, then the space's fixed head."""
    shape, classes = _require_bound(space)
    graph = Graph()
    node = graph.add(Input(shape=shape))
    bn = space.layers.batch_norm
    for gene in genes:
        # a bias right before batch norm is redundant: BN's shift absorbs it
        node = graph.add(
            Conv(channels=gene.filters, kernel=gene.kernel, stride=gene.stride, bias=not bn), [node]
        )
        if bn:
            node = graph.add(BatchNorm(), [node])
        node = graph.add(OP_CLASSES[gene.activation](), [node])
    node = graph.add(GlobalAvgPool(), [node])
    for width in space.head.hidden:
        node = graph.add(Linear(features=width), [node])
        node = graph.add(OP_CLASSES[space.head.activation](), [node])
    graph.add(Linear(features=classes), [node])
    return graph


def genome_text(space: SearchSpace, genes: Sequence[ConvGene]) -> str:
    """Canonical genome text of a genome of the space."""
    from genomorph.ir.printer import print_genome

    return print_genome(build_graph(space, genes))


def params(space: SearchSpace, genes: Sequence[ConvGene]) -> int:
    return build_graph(space, genes).stats().params


# ---------------------------------------------------------------------------------- membership


def violations(space: SearchSpace, genes: Sequence[ConvGene]) -> list[str]:
    """Every constraint of the space the genome breaks, in words; empty = in the space."""
    out: list[str] = []
    layers, reductions = space.layers, space.reductions
    low = max(layers.min, reductions.count)
    if not low <= len(genes) <= layers.max:
        out.append(f"{len(genes)} conv layers, the space allows {low}..{layers.max}")
    n_red = sum(g.stride == reductions.stride for g in genes)
    if n_red != reductions.count:
        out.append(f"{n_red} reduction convs, the space needs exactly {reductions.count}")
    for i, g in enumerate(genes):
        if g.stride not in (1, reductions.stride):
            out.append(f"layer {i} has stride {g.stride}; convs have stride 1 or {reductions.stride}")
        if g.filters not in layers.filters:
            out.append(f"layer {i} has {g.filters} filters, not one of {list(layers.filters)}")
        if g.kernel not in layers.kernels:
            out.append(f"layer {i} has kernel {g.kernel}, not one of {list(layers.kernels)}")
        if g.activation not in layers.activations:
            out.append(f"layer {i} uses {g.activation}, not one of {list(layers.activations)}")
    if not out and space.max_params is not None:
        count = params(space, genes)
        if count > space.max_params:
            out.append(f"{count} parameters, above max_params = {space.max_params}")
    return out


def contains(space: SearchSpace, genes: Sequence[ConvGene]) -> bool:
    return not violations(space, genes)


def decode(space: SearchSpace, graph: Graph) -> Genes:
    """The genes of a (parsed) genome, or OutsideSpace saying which constraint it breaks."""
    shape, classes = _require_bound(space)
    order = graph.order()
    for nid in order[:-1]:
        if len(graph.user_ids(nid)) != 1 or len(graph.inputs(nid)) > 1:
            raise OutsideSpace(f"{graph.node(nid).describe()} branches: the space is sequential")
    ops = [graph.op(n) for n in order]
    expected_head = ["gap"] + ["linear", space.head.activation] * len(space.head.hidden) + ["linear"]
    head = ops[len(ops) - len(expected_head) :]
    if [op.kind for op in head] != expected_head:  # type: ignore[attr-defined]
        raise OutsideSpace(f"the head must be {' '.join(expected_head)}")
    widths = [op.features for op in head if isinstance(op, Linear)]
    if widths != [*space.head.hidden, classes] or any(not op.bias for op in head if isinstance(op, Linear)):
        raise OutsideSpace(f"the head's linear widths must be {[*space.head.hidden, classes]}")
    if not isinstance(ops[0], Input) or tuple(ops[0].shape) != tuple(shape):
        raise OutsideSpace(f"the input must be {'x'.join(map(str, shape))}")
    body = ops[1 : len(ops) - len(expected_head)]
    step = 3 if space.layers.batch_norm else 2
    genes: list[ConvGene] = []
    for start in range(0, len(body), step):
        block = body[start : start + step]
        kinds = [op.kind for op in block]  # type: ignore[attr-defined]
        want = ["conv", "bn", "<activation>"] if step == 3 else ["conv", "<activation>"]
        conv, act = block[0], block[-1]
        if (
            len(block) != step
            or not isinstance(conv, Conv)
            or (step == 3 and block[1] != BatchNorm())
            or act.kind not in space.layers.activations  # type: ignore[attr-defined]
        ):
            raise OutsideSpace(f"body layer {start // step} is {' '.join(kinds)}, expected {' '.join(want)}")
        plain = Conv(channels=conv.channels, kernel=conv.kernel, stride=conv.stride, bias=conv.bias)
        if conv != plain or conv.bias == space.layers.batch_norm:
            raise OutsideSpace(f"body layer {start // step} has conv options outside the space: {conv}")
        genes.append(
            ConvGene(filters=conv.channels, kernel=conv.kernel, stride=conv.stride, activation=act.kind)  # type: ignore[attr-defined]
        )
    problems = violations(space, genes)
    if problems:
        raise OutsideSpace("; ".join(problems))
    return tuple(genes)


# ---------------------------------------------------------------------------------- sampling


def random_layer(space: SearchSpace, rng: np.random.Generator, stride: int = 1) -> ConvGene:
    layers = space.layers
    return ConvGene(
        filters=int(rng.choice(layers.filters)),
        kernel=int(rng.choice(layers.kernels)),
        stride=stride,
        activation=str(rng.choice(layers.activations)),
    )


def sample(space: SearchSpace, rng: np.random.Generator) -> Genes:
    """A uniformly random genome of the space: length, reduction positions, then each layer."""
    layers, reductions = space.layers, space.reductions
    low = max(layers.min, reductions.count)
    for _ in range(SAMPLE_ATTEMPTS):
        n = int(rng.integers(low, layers.max + 1))
        where = set(rng.choice(n, size=reductions.count, replace=False).tolist())
        genes = tuple(random_layer(space, rng, reductions.stride if i in where else 1) for i in range(n))
        # only max_params can reject a sample: everything else holds by construction
        if contains(space, genes):
            return genes
    raise ConfigError(
        f"search space '{space.name}': no random genome out of {SAMPLE_ATTEMPTS} fits max_params = "
        f"{space.max_params}",
        hint="raise max_params, or allow fewer layers / smaller filter counts",
    )
