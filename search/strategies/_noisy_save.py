"""The save phase of a noisy iteration: remove the faded units, remove small layers, nest large ones.

The shrink candidate fine-tunes the network while the outgoing weights of the units to prune
decay to exactly zero. Removing those units then changes nothing the network computes, and
neither does removing a residual layer whose residual branch outputs exactly zero, or nesting
a layer (``hres-grow`` starts its new residual at zero). When `rewrite` can show that from the
weights (`Saved.exact`), the shrink candidate's measurements are the saved network's and the
strategy records the iteration without another evaluation: the save is *folded* into the
shrink candidate. Its weights are not written a second time either: the `Derivation` (the
shrink candidate's genome and checkpoint, the prune moves and the seed of the rewrite) rebuilds
them exactly whenever they are needed (`replay`). When the rewrite may change the function (a
residual with a bias, units whose outgoing weights are not all zero), the strategy evaluates the
rewritten network as a ``save`` candidate instead, as it does when nothing was pruned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from genomorph.ir import Graph, NodeId, Weights
from genomorph.ir.rewrites import prune_neurons
from pydantic import BaseModel, ConfigDict

from . import _noisy_rules as rules
from ._noisy_layers import Layer
from ._noisy_layers import layers as hres_layers
from ._noisy_meta import LayerRule


class PruneMove(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    node: int
    remove: list[int]


class Derivation(BaseModel):
    """How a folded iteration's network follows from its shrink candidate: replayed, not stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    genome: str
    """The shrink candidate's genome (the faded units still in it)."""
    checkpoint: str
    """Its weights: the outgoing weights of the faded units are zero."""
    prune: list[PruneMove]
    seed: int
    """Seed of the generator the rewrite draws from (nesting draws the new first layers)."""
    remove_layer_at: int
    layer_rule: LayerRule

    def key(self) -> str:
        return f"{self.checkpoint}#{self.seed}"


@dataclass
class Saved:
    """The rewritten network in canonical form, what the rewrite did, and whether it is exact."""

    genome: str
    weights: Weights
    mapping: dict[NodeId, NodeId]
    """Node id before the rewrite -> id in ``genome`` (nodes that remain)."""
    records: list[Any] = field(default_factory=list)
    removed: int = 0
    layers_removed: int = 0
    layers_added: int = 0
    exact: bool = False


def _zero(weights: Weights, name: str, columns: Sequence[int]) -> bool:
    """Whether the input columns ``columns`` of tensor ``n<id>.<name>`` are all zero."""
    node, _, tensor = name.partition(".")
    array = weights.get(int(node[1:]), {}).get(tensor)
    if array is None:
        return False
    return not np.any(np.take(array, list(columns), axis=1))


def silent(graph: Graph, weights: Weights, layer: Layer) -> bool:
    """Whether the residual branch of ``layer`` outputs exactly zero: its last connection reads
    the hidden units directly and has zero weights and no (or a zero) bias."""
    if graph.kind(layer.residual) != layer.kind:
        return False  # a nested residual: its biases may reach the output
    arrays = weights.get(layer.residual, {})
    return all(not np.any(arrays[k]) for k in ("weight", "bias") if k in arrays) and "weight" in arrays


def rewrite(
    graph: Graph,
    weights: Weights,
    prune: Sequence[PruneMove],
    remove_at: int,
    rule: LayerRule,
    seed: int,
    outgoing: Mapping[str, Sequence[int]] | None = None,
) -> Saved:
    """Prune ``prune``'s units, remove residual layers with ``remove_at`` or fewer units, nest
    the large ones, every draw from ``default_rng(seed)``.

    ``outgoing`` are the input columns the shrink decayed (`rules.outgoing_columns`); the result
    is ``exact`` when they are all zero in ``weights`` and every removed residual is `silent`."""
    from .noisy import _canonical

    rng = np.random.default_rng(seed)
    exact = outgoing is not None and all(_zero(weights, n, cols) for n, cols in outgoing.items())
    moves = [prune_neurons.Move(p.node, len(p.remove), None, tuple(p.remove)) for p in prune]
    graph, weights, pruned = rules.prune(graph, weights, moves, rng)
    doomed = [layer for layer in hres_layers(graph) if layer.width <= remove_at]
    exact = exact and all(silent(graph, weights, layer) for layer in doomed)
    graph, weights, removed = rules.remove_layers(graph, weights, remove_at, rng)
    graph, weights, nested = rules.nest_layers(graph, weights, rule, rng)
    text, canonical, mapping = _canonical(graph, weights)
    assert canonical is not None
    return Saved(
        genome=text,
        weights=canonical,
        mapping=mapping,
        records=[rules.record_json(r) for r in pruned + removed + nested],
        removed=sum(len(p.remove) for p in prune),
        layers_removed=len(removed),
        layers_added=len(nested) // 2,
        exact=exact,
    )


def replay(derivation: Derivation, weights: Weights) -> Saved:
    """`rewrite` again from the shrink candidate's weights: the same network, the same weights."""
    from .noisy import _parse

    return rewrite(
        _parse(derivation.genome),
        weights,
        derivation.prune,
        derivation.remove_layer_at,
        derivation.layer_rule,
        derivation.seed,
    )


__all__ = ["Derivation", "PruneMove", "Saved", "replay", "rewrite", "silent"]
