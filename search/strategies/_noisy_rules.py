"""The torch-free rules of Noisy Heuristics NAS (paper 000 §2) on the graph IR and numpy weights.

- *hidden layers*: the layers whose units (a linear layer's outputs, a conv's channels) can be
  added and pruned; layers whose units are tied together (they feed one ``add``) form one group,
  named by its first layer;
- *growth*: P new units over the groups, 70 % placed with probability ∝ the moving average of
  each group's past ΔN = P_i − M_i, the rest uniformly (``add-neurons``: random incoming, zero
  outgoing weights, so the function is kept);
- *shrink*: the M units of least importance I = A·(1 − B^33) over all groups (``prune-neurons``'
  global selection), plus the last unit of every residual layer about to be removed, so that
  once their outgoing weights have decayed to zero the removal changes nothing;
- *layers*: a residual layer with linear inner layers whose hidden units H exceed the threshold
  nests (``hres-grow`` on both inner layers); one whose hidden units fell to ≤ 1 is removed
  (``hres-shrink``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from genomorph.ir import Graph, NodeId, NotApplicable, Weights
from genomorph.ir.rewrites import Record, add_neurons, hres_grow, hres_shrink, prune_neurons
from genomorph.ir.rewrites._base import Rewrite
from genomorph.ir.rewrites._channels import identity_map, outgoing_places, output_width, plan
from genomorph.ir.rewrites.prune_channels import check_prunable
from genomorph.ir.weights import expected_shapes

from ._noisy_layers import Layer, nest_conv, unnest
from ._noisy_layers import layers as hres_layers
from ._noisy_meta import LayerRule

Stats = Mapping[NodeId, tuple[np.ndarray, np.ndarray]]


# ------------------------------------------------------------------------------- hidden layers
def groups(graph: Graph) -> dict[NodeId, set[NodeId]]:
    """Hidden-layer groups: first layer -> every value whose units are the same units.

    Memoised per graph (``Graph.memo``): an iteration reads those of its 2-3 networks several
    times. The same dict goes to every caller: read it, never edit it."""
    return graph.memo("noisy.groups", lambda: _groups(graph))


def _groups(graph: Graph) -> dict[NodeId, set[NodeId]]:
    out: dict[NodeId, set[NodeId]] = {}
    covered: set[NodeId] = set()
    for nid in graph.order():
        if nid in covered:
            continue
        try:
            prune_neurons.moves_at(graph, nid)
        except NotApplicable:
            continue
        values = set(plan(graph, nid, identity_map(output_width(graph, nid))).maps) | {nid}
        covered |= values
        out[nid] = values
    return out


def group_of(found: Mapping[NodeId, set[NodeId]], value: NodeId) -> NodeId | None:
    return next((g for g, values in found.items() if value in values), None)


def units(graph: Graph) -> dict[NodeId, int]:
    """Units per hidden-layer group."""
    return {g: output_width(graph, g) for g in groups(graph)}


# ------------------------------------------------------------------------------- growth
def moving_average(history: Sequence[Mapping[str, int]], layer: NodeId, window: int) -> float:
    """Mean ΔN of ``layer`` over the last ``window`` iterations that had it (0 when none)."""
    seen = [h[str(layer)] for h in history if str(layer) in h][-window:]
    return float(np.mean(seen)) if seen else 0.0


def place_growth(
    total: int,
    layers: Sequence[NodeId],
    averages: Mapping[NodeId, float],
    guided: float,
    rng: np.random.Generator,
) -> dict[NodeId, int]:
    """How many of ``total`` new units each layer gets.

    ``guided`` of them go to layer i with probability ∝ max(MA(ΔN_i), 0) (uniform while no
    layer has grown on average yet), the rest uniformly; every draw is from ``rng``."""
    if total <= 0 or not layers:
        return {}
    weights = np.asarray([max(averages.get(n, 0.0), 0.0) for n in layers], dtype=np.float64)
    n_guided = int(round(total * guided)) if weights.sum() > 0 else 0
    counts = np.zeros(len(layers), dtype=np.int64)
    if n_guided:
        counts += rng.multinomial(n_guided, weights / weights.sum())
    counts += rng.multinomial(total - n_guided, np.full(len(layers), 1.0 / len(layers)))
    return {n: int(c) for n, c in zip(layers, counts, strict=True) if c > 0}


def apply_all(
    rewrite: Rewrite, graph: Graph, weights: Weights | None, moves: Sequence[Any], rng: np.random.Generator
) -> tuple[Graph, Weights | None, list[Record]]:
    """``rewrite.apply`` of ``moves`` one after the other, verified once at the end.

    The same seeds (one drawn from ``rng`` per move), edits and records as applying them one by
    one; only the copy of the graph, the verification and the weight check, which cost more
    than a small edit itself, are done once for the whole sequence instead of once per move."""
    from genomorph.ir import GenomeError
    from genomorph.ir.rewrites._base import Work, draw_seed, move_to_dict
    from genomorph.ir.rewrites._init import fill_missing
    from genomorph.ir.verify import verify
    from genomorph.ir.weights import check_weights

    if not moves:
        return graph, weights, []
    work = Work(graph.copy(), {}, rng)
    records = []
    after = set(graph.order())
    for i, move in enumerate(moves):
        seed = draw_seed(rng)
        work.rng = np.random.default_rng(seed)
        if i == 0:  # afterwards every edit leaves complete weights (checked at the end): nothing to fill
            work.weights = fill_missing(graph, weights, work.rng)
        before = after
        outcome = rewrite.edit(work, move)
        after = set(work.graph.order())
        records.append(
            Record(
                rewrite=rewrite.name,
                move=move_to_dict(outcome.move),
                seed=seed,
                exact=rewrite.exact if outcome.exact is None else outcome.exact,
                text=f"{rewrite.name}: {outcome.text}",
                created=tuple(sorted(after - before)),
                removed=tuple(sorted(before - after)),
                repair=tuple(sorted(n for n in set(outcome.repair) if n in after)),
            )
        )
        for gone in set(work.weights) - after:
            del work.weights[gone]
    try:
        verify(work.graph)
    except GenomeError as err:
        raise NotApplicable(f"{rewrite.name} would make an invalid network here: {err.message}") from None
    check_weights(work.graph, work.weights)
    return work.graph, work.weights, records


def grow(
    graph: Graph, weights: Weights | None, counts: Mapping[NodeId, int], rng: np.random.Generator
) -> tuple[Graph, Weights | None, list[Record]]:
    """Apply ``add-neurons`` for every layer's count (exact: zero outgoing weights)."""
    moves = [add_neurons.Move(nid, count) for nid, count in sorted(counts.items())]
    return apply_all(add_neurons.REWRITE, graph, weights, moves, rng)


# ------------------------------------------------------------------------------- shrink
def residual_groups(graph: Graph) -> dict[NodeId, Layer]:
    """Hidden-layer group -> the residual layer whose hidden units it is."""
    found = groups(graph)
    out = {}
    for layer in hres_layers(graph):
        g = group_of(found, layer.hidden)
        if g is not None:
            out[g] = layer
    return out


def plan_shrink(
    graph: Graph, stats: Stats, total: int, remove_at: int
) -> tuple[list[prune_neurons.Move], dict[NodeId, list[int]]]:
    """The prune moves for the ``total`` least important units, and the units to fade per layer.

    A residual layer left with ``remove_at`` or fewer units is removed after the shrink: its
    remaining units fade too, so that its removal is as gentle as the pruning."""
    ids = set(graph.order())
    known = {n: s for n, s in stats.items() if n in ids and n in groups(graph)}
    moves = prune_neurons.select(graph, known, total) if total > 0 and known else []
    fade = {m.node: list(m.remove or ()) for m in moves}
    for g, _layer in residual_groups(graph).items():
        width = output_width(graph, g)
        left = width - len(fade.get(g, []))
        if left <= remove_at:
            fade[g] = list(range(width))
    return moves, {n: sorted(u) for n, u in fade.items() if u}


def outgoing_columns(graph: Graph, fade: Mapping[NodeId, Sequence[int]]) -> dict[str, list[int]]:
    """The input columns (axis 1) of the reading layers' tensors that carry ``fade``'s units onwards.

    Where ``prune-neurons``' ``fade`` would scale (it knows how units propagate through adds,
    batch norms and flattens: the channel plan's readers), so the worker can decay exactly
    those entries without the graph. Only tensors of two or more axes (biases read no units)."""
    out: dict[str, set[int]] = {}
    for nid, chosen in sorted(fade.items()):
        check_prunable(graph, nid, image=None)
        change = plan(graph, nid, identity_map(output_width(graph, nid)))
        for reader, name, axis, cols in outgoing_places(change, chosen):
            shape = expected_shapes(graph, reader).get(name)
            if shape is None or len(shape) < 2 or axis != 1 or not len(cols):
                continue
            out.setdefault(f"n{reader}.{name}", set()).update(int(c) for c in cols)
    return {k: sorted(v) for k, v in sorted(out.items()) if v}


def prune(
    graph: Graph, weights: Weights, moves: Sequence[prune_neurons.Move], rng: np.random.Generator
) -> tuple[Graph, Weights, list[Record]]:
    graph, pruned, records = apply_all(prune_neurons.REWRITE, graph, weights, moves, rng)
    assert pruned is not None
    return graph, pruned, records


# ------------------------------------------------------------------------------- layers
def threshold(features_in: int, features_out: int, rule: LayerRule) -> float:
    """Hidden units above which a residual layer nests: paper (I·O²)^(1/3), authors (max·min²)^(1/3)."""
    if rule == "authors":
        big, small = max(features_in, features_out), min(features_in, features_out)
        return float((big * small**2) ** (1 / 3))
    return float((features_in * features_out**2) ** (1 / 3))


def remove_layers(
    graph: Graph, weights: Weights, remove_at: int, rng: np.random.Generator
) -> tuple[Graph, Weights, list[Any]]:
    """Remove every residual layer with ``remove_at`` or fewer hidden units (innermost first):
    ``hres-shrink`` for linear layers, the same edit here for conv layers."""
    records: list[Any] = []
    while True:
        small = [h for h in hres_layers(graph) if h.width <= remove_at]
        applied = False
        for layer in sorted(small, key=lambda h: -h.add):
            if layer.kind == "conv":
                graph, weights, text = unnest(graph, weights, layer.add)
                records.append({"rewrite": "hres-shrink (conv)", "node": layer.add, "text": text})
                applied = True
                break
            try:
                result = hres_shrink.apply(graph, weights, hres_shrink.Move(layer.add, remove_at), rng)
            except NotApplicable:
                continue
            graph, weights = result.graph, result.weights
            records.append(result.record)
            applied = True
            break
        if not applied:
            return graph, weights, records


def nest_layers(
    graph: Graph, weights: Weights, rule: LayerRule, rng: np.random.Generator
) -> tuple[Graph, Weights, list[Any]]:
    """Turn the linear inner layers of every residual layer with H > threshold into H-ResNet layers."""
    records = []
    for layer in hres_layers(graph):
        features_in = graph.shape(layer.source)[0]
        features_out = graph.shape(layer.add)[0]
        if layer.width <= threshold(features_in, features_out, rule):
            continue
        inner = [n for n in (layer.hidden, layer.residual) if graph.kind(n) == layer.kind]
        if len(inner) < 2:
            continue  # already nested (paper: only a layer with linear inner layers grows a level)
        for nid in inner:
            i, o = graph.shape(graph.inputs(nid)[0])[0], graph.shape(nid)[0]
            hidden = max(1, int(threshold(i, o, rule)))  # at the threshold: it nests again only once it grows
            if layer.kind == "conv":
                graph, weights, text = nest_conv(graph, weights, nid, hidden, rng)
                records.append({"rewrite": "hres-grow (conv)", "node": nid, "hidden": hidden, "text": text})
                continue
            result = hres_grow.apply(graph, weights, hres_grow.Move(nid, hidden), rng)
            graph, weights = result.graph, result.weights
            records.append(result.record)
    return graph, weights, records


def open_residual(
    graph: Graph, weights: Weights | None, rng: np.random.Generator
) -> tuple[Graph, Weights | None, list[Any]]:
    """Give a network without hidden layers its first H-ResNet layer: ``hres-grow`` on the last
    linear connection, with two hidden units (the fewest a prunable layer has; growth adds the
    rest); exact."""
    linears = [n for n in graph.order() if graph.kind(n) == "linear"]
    for nid in reversed(linears):
        try:
            result = hres_grow.apply(graph, weights, hres_grow.Move(nid, 2), rng)
        except NotApplicable:
            continue
        return result.graph, result.weights, [result.record]
    return graph, weights, []


def record_json(record: Any) -> Any:
    if isinstance(record, dict):
        return record
    return record.model_dump(mode="json") if hasattr(record, "model_dump") else {"text": str(record)}


def fallback_stats(graph: Graph, weights: Weights) -> dict[NodeId, tuple[np.ndarray, np.ndarray]]:
    """Weight-only importance when the worker measured none: A = |incoming| x |outgoing| L1, B = 0."""
    out = {}
    for g in groups(graph):
        w = weights.get(g, {}).get("weight")
        if w is None:
            continue
        incoming = np.abs(w.reshape(w.shape[0], -1)).sum(1)
        out[g] = (incoming, np.zeros_like(incoming))
    return out


__all__ = [
    "apply_all",
    "fallback_stats",
    "group_of",
    "groups",
    "grow",
    "moving_average",
    "nest_layers",
    "place_growth",
    "open_residual",
    "outgoing_columns",
    "plan_shrink",
    "prune",
    "record_json",
    "remove_layers",
    "residual_groups",
    "threshold",
    "units",
]
