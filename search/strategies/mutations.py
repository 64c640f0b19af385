"""Paper 004's genome mutations on the conv body of a sequential genome.

Each mutation is a pure function ``(space, genes, rng) -> (genes', description) | None``; ``None``
means it cannot change this genome (e.g. no two different layers to swap, or no room to add a
layer). They keep the reduction count by construction (a reduction layer is only ever replaced
by a reduction layer); `mutate` then checks the whole space (``max_params`` included) and
rejects any mutant outside it, drawing again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .sequential import ConvGene, Genes, random_layer, violations
from .space import SearchSpace

Mutation = Callable[[SearchSpace, Genes, np.random.Generator], "tuple[Genes, str] | None"]


def swap(space: SearchSpace, genes: Genes, rng: np.random.Generator) -> tuple[Genes, str] | None:
    """Exchange two different layers."""
    pairs = [(i, j) for i in range(len(genes)) for j in range(i + 1, len(genes)) if genes[i] != genes[j]]
    if not pairs:
        return None
    i, j = pairs[int(rng.integers(len(pairs)))]
    out = list(genes)
    out[i], out[j] = out[j], out[i]
    return tuple(out), f"swap layers {i} and {j}"


def inversion(space: SearchSpace, genes: Genes, rng: np.random.Generator) -> tuple[Genes, str] | None:
    """Reverse a contiguous run of layers (the fixed head is never part of it)."""
    spans = [
        (i, j)
        for i in range(len(genes))
        for j in range(i + 2, len(genes) + 1)
        if genes[i:j] != genes[i:j][::-1]
    ]
    if not spans:
        return None
    i, j = spans[int(rng.integers(len(spans)))]
    return genes[:i] + genes[i:j][::-1] + genes[j:], f"invert layers {i}..{j - 1}"


def filter_change(space: SearchSpace, genes: Genes, rng: np.random.Generator) -> tuple[Genes, str] | None:
    """Give one layer another filter count from the space's list."""
    if len(space.layers.filters) < 2 or not genes:
        return None
    i = int(rng.integers(len(genes)))
    choices = [f for f in space.layers.filters if f != genes[i].filters]
    new = int(rng.choice(choices))
    gene = genes[i].model_copy(update={"filters": new})
    return genes[:i] + (gene,) + genes[i + 1 :], f"layer {i} filters {genes[i].filters} -> {new}"


def layer_change(space: SearchSpace, genes: Genes, rng: np.random.Generator) -> tuple[Genes, str] | None:
    """Replace one layer by a fresh random layer of the same role (normal or reduction)."""
    if not genes:
        return None
    i = int(rng.integers(len(genes)))
    for _ in range(8):
        gene = random_layer(space, rng, genes[i].stride)
        if gene != genes[i]:
            return genes[:i] + (gene,) + genes[
                i + 1 :
            ], f"layer {i} {genes[i].describe()} -> {gene.describe()}"
    return None


def add_layer(space: SearchSpace, genes: Genes, rng: np.random.Generator) -> tuple[Genes, str] | None:
    """Insert a random normal layer anywhere in the body."""
    if len(genes) >= space.layers.max:
        return None
    i = int(rng.integers(len(genes) + 1))
    gene: ConvGene = random_layer(space, rng, 1)
    return genes[:i] + (gene,) + genes[i:], f"add {gene.describe()} at {i}"


MUTATIONS: dict[str, Mutation] = {
    "swap": swap,
    "inversion": inversion,
    "filter": filter_change,
    "layer": layer_change,
    "add": add_layer,
}

#: how many draws `mutate` makes before giving up on a parent
MUTATE_ATTEMPTS = 50


def mutate(
    space: SearchSpace, genes: Genes, rng: np.random.Generator, kinds: tuple[str, ...]
) -> tuple[Genes, str, str] | None:
    """A mutant of ``genes`` in the space: ``(mutant, mutation name, description)``.

    The mutation is drawn uniformly from ``kinds``; one that does not apply, or whose result
    breaks a constraint of the space, is rejected and another is drawn. ``None`` when no draw
    succeeds (the caller decides what to do, e.g. sample a fresh genome).
    """
    for _ in range(MUTATE_ATTEMPTS):
        kind = kinds[int(rng.integers(len(kinds)))]
        made = MUTATIONS[kind](space, genes, rng)
        if made is None:
            continue
        mutant, description = made
        if mutant != genes and not violations(space, mutant):
            return mutant, kind, description
    return None
