"""DARTS interchange: ``Genotype(...)`` text <-> evaluation network IR, and the search supernet.

The networks reproduce quark0/darts exactly (same ops, order, affine flags, parameter count):

- :func:`genotype_to_graph` builds ``cnn/model.py`` ``NetworkCIFAR(C, classes, layers,
  auxiliary, genotype)``: a 3x3 stem to ``3C`` channels + BN; ``layers`` cells, the ones at
  ``layers//3`` and ``2*layers//3`` reducing (stride 2 on edges from the two inputs, ``C``
  doubled); each cell preprocesses input 0 with ``ReLUConvBN`` 1x1 (``FactorizedReduce`` after
  a reduction cell) and input 1 with ``ReLUConvBN`` 1x1, sums two ops into every node and
  concatenates the ``concat`` states; optionally ``AuxiliaryHeadCIFAR`` on the output of cell
  ``2*layers//3``, marked ``aux(0.4)`` (its loss weight, paper 003 §4.8); global average
  pooling and a linear classifier.
- :func:`darts_supernet` builds ``cnn/model_search.py`` ``Network(C, classes, layers)``: every
  edge a ``mixed`` node over the eight ``PRIMITIVES`` (``affine=False`` in the cells, a
  non-affine BN after each pool), architecture weights shared per group ``normal`` /
  ``reduce``, row = edge index.
- :func:`graph_to_genotype` is the inverse: it reads a converted network back, or discretises
  a supernet with given architecture weights exactly as DARTS' ``Network.genotype()`` does.

Names make the printed genome readable and let the inverse find the cells: ``stem``, and per
cell ``i`` the inputs ``c{i}_s0``, ``c{i}_s1`` (after preprocessing), the nodes ``c{i}_n{k}``
(``k`` = DARTS state index, 2..), the output ``c{i}``; ``logits`` and ``logits_aux``.

Differences that do not change the function, kept on purpose:

- drop-path (``drop_path_prob``): with ``drop_path=P`` every edge's op except the identity is
  followed by ``stochastic_depth(P, schedule=linear)`` (per sample, as DARTS' ``drop_path``),
  whose rate the trainer raises from 0 towards P over the epochs (``search/runtime/drop_path.py``);
  it is the identity in eval mode, so the function and the parameter count are unchanged;
- the auxiliary head's in-place ReLU rewrites the cell output it reads in the reference code;
  the next cells start with ReLU, so nothing downstream changes and the IR keeps it pure;
- values that never reach the output (an input no edge reads, a node neither read nor
  concatenated) are left out; the reference code computes and discards them, so its
  parameter count then includes their weights and the IR's does not (a warning is logged).
"""

from __future__ import annotations

from collections.abc import Sequence

from genomorph.ir import GenomeSemanticError, Graph, NodeId, OpBase, verify
from genomorph.ir.ops import (
    Add,
    Aux,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    Flatten,
    GlobalAvgPool,
    Identity,
    Input,
    Linear,
    Mixed,
    Relu,
    StochasticDepth,
)

from ._cells import chain, check_image_shape, check_positive, prune_dead
from ._darts_decode import decode_genotype, graph_to_genotype
from ._darts_ops import OPS, PRIMITIVES, factorized_reduce, relu_conv_bn, search_candidate
from ._genotype import Genotype, parse_genotype

__all__ = [
    "PRIMITIVES",
    "Genotype",
    "darts_supernet",
    "decode_genotype",
    "genotype_to_graph",
    "graph_to_genotype",
    "parse_genotype",
]

STEM_MULTIPLIER = 3
AUX_WEIGHT = 0.4
#: DARTS' ``--drop_path_prob`` for its CIFAR evaluation network (paper 003 §4.8.2)
DROP_PATH = 0.2


def _reductions(cells: int) -> frozenset[int]:
    return frozenset({cells // 3, 2 * cells // 3})


def _stem(graph: Graph, x: NodeId, channels: int) -> NodeId:
    return chain(graph, x, (Conv(channels=channels, kernel=3, bias=False), BatchNorm()), name="stem")


def _preprocess(
    graph: Graph, i: int, s0: NodeId, s1: NodeId, c: int, reduction_prev: bool, affine: bool
) -> list[NodeId]:
    first = factorized_reduce(c, affine) if reduction_prev else relu_conv_bn(c, affine)
    pre0 = chain(graph, s0, first, name=f"c{i}_s0")
    pre1 = chain(graph, s1, relu_conv_bn(c, affine), name=f"c{i}_s1")
    return [pre0, pre1]


def _cell_output(graph: Graph, i: int, states: list[NodeId], concat: Sequence[int]) -> NodeId:
    picked = [states[j] for j in concat]
    if len(picked) == 1:  # torch.cat of one tensor is that tensor
        return graph.add(Identity(), picked, name=f"c{i}")
    return graph.add(Concat(), picked, name=f"c{i}")


def _eval_cell(
    graph: Graph,
    i: int,
    genotype: Genotype,
    inputs: tuple[NodeId, NodeId],
    c: int,
    reduction: bool,
    reduction_prev: bool,
    drop_path: float = 0.0,
) -> NodeId:
    edges = genotype.reduce if reduction else genotype.normal
    concat = genotype.reduce_concat if reduction else genotype.normal_concat
    states = _preprocess(graph, i, *inputs, c, reduction_prev, affine=True)
    for step in range(len(edges) // 2):
        ends = []
        for op, j in edges[2 * step : 2 * step + 2]:
            stride = 2 if reduction and j < 2 else 1
            ops = OPS[op](c, stride, True)
            if drop_path > 0 and not (op == "skip_connect" and stride == 1):  # DARTS: all but Identity
                ops = (*ops, StochasticDepth(p=drop_path, schedule="linear"))
            ends.append(chain(graph, states[j], ops))
        states.append(graph.add(Add(), ends, name=f"c{i}_n{step + 2}"))
    return _cell_output(graph, i, states, concat)


def _aux_head(graph: Graph, x: NodeId, classes: int, weight: float) -> NodeId:
    """AuxiliaryHeadCIFAR: written for the 8x8 maps of 32x32 inputs (2x2 after the pool)."""
    _, h, w = graph.shapes()[x]
    if (h, w) != (8, 8):
        raise GenomeSemanticError(
            f"the auxiliary head needs an 8x8 feature map (as for 32x32 inputs), but cell "
            f"{graph.node(x).name} gives {h}x{w}",
            hint="use 32x32 inputs with --auxiliary, or leave the auxiliary head out",
        )
    ops: tuple[OpBase, ...] = (
        Relu(),
        AvgPool(kernel=5, stride=3, count_include_pad=False),
        Conv(channels=128, kernel=1, bias=False),
        BatchNorm(),
        Relu(),
        Conv(channels=768, kernel=2, bias=False),
        BatchNorm(),
        Relu(),
        Flatten(),
        Linear(features=classes),
    )
    logits = chain(graph, x, ops)
    return graph.add(Aux(weight=weight), [logits], name="logits_aux")


def _head(graph: Graph, x: NodeId, classes: int) -> NodeId:
    return chain(graph, x, (GlobalAvgPool(), Linear(features=classes)), name="logits")


def genotype_to_graph(
    text: str | Genotype,
    channels: int = 36,
    cells: int = 20,
    classes: int = 10,
    auxiliary: bool = False,
    input_shape: Sequence[int] = (3, 32, 32),
    aux_weight: float = AUX_WEIGHT,
    drop_path: float = 0.0,
) -> Graph:
    """The DARTS evaluation network ``NetworkCIFAR(channels, classes, cells, auxiliary, genotype)``.

    ``drop_path`` > 0 puts drop-path with that final rate on every edge but the identity.

    ``text`` is DARTS ``Genotype(...)`` text (or a parsed :class:`Genotype`). Raises
    GenomeSyntaxError / GenomeSemanticError with the position of the problem on bad text.
    """
    genotype = text if isinstance(text, Genotype) else parse_genotype(text)
    check_positive(channels=channels, cells=cells, classes=classes)
    if not 0.0 <= drop_path < 1.0:
        raise GenomeSemanticError(f"the drop-path rate must be in [0, 1), got {drop_path}")
    shape = check_image_shape(input_shape, 4)
    graph = Graph()
    graph.source_name = "<darts>"
    x = graph.add(Input(shape=shape))
    s0 = s1 = _stem(graph, x, STEM_MULTIPLIER * channels)
    c, reduction_prev, aux_from = channels, False, s1
    for i in range(cells):
        reduction = i in _reductions(cells)
        c *= 2 if reduction else 1
        out = _eval_cell(graph, i, genotype, (s0, s1), c, reduction, reduction_prev, drop_path)
        s0, s1, reduction_prev = s1, out, reduction
        if i == 2 * cells // 3:
            aux_from = out
    # the reference registers the auxiliary head after all cells, then the classifier
    outputs = [_aux_head(graph, aux_from, classes, aux_weight)] if auxiliary else []
    outputs.append(_head(graph, s1, classes))
    prune_dead(graph, outputs)
    return verify(graph)


def darts_supernet(
    channels: int = 16,
    cells: int = 8,
    classes: int = 10,
    steps: int = 4,
    multiplier: int = 4,
    input_shape: Sequence[int] = (3, 32, 32),
) -> Graph:
    """The DARTS search network ``Network(channels, classes, cells, steps, multiplier)``.

    Every edge is a ``mixed`` node over :data:`PRIMITIVES`; architecture groups ``normal`` and
    ``reduce`` have one row per edge (``sum(2 + k for k in range(steps))`` rows, 14 for 4 steps).
    """
    check_positive(channels=channels, cells=cells, classes=classes, steps=steps, multiplier=multiplier)
    if multiplier > steps + 2:
        raise GenomeSemanticError(
            f"multiplier {multiplier} concatenates more states than a cell has ({steps + 2})",
            hint="the multiplier counts the last states of a cell; DARTS uses multiplier = steps = 4",
        )
    shape = check_image_shape(input_shape, 4)
    graph = Graph()
    graph.source_name = "<darts-search>"
    x = graph.add(Input(shape=shape))
    s0 = s1 = _stem(graph, x, STEM_MULTIPLIER * channels)
    c, reduction_prev = channels, False
    for i in range(cells):
        reduction = i in _reductions(cells)
        c *= 2 if reduction else 1
        group = "reduce" if reduction else "normal"
        states = _preprocess(graph, i, s0, s1, c, reduction_prev, affine=False)
        row = 0
        for step in range(steps):
            mixed = []
            for j, state in enumerate(list(states)):
                stride = 2 if reduction and j < 2 else 1
                candidates = [chain(graph, state, search_candidate(p, c, stride)) for p in PRIMITIVES]
                mixed.append(graph.add(Mixed(group=group, row=row, labels=PRIMITIVES), candidates))
                row += 1
            states.append(graph.add(Add(), mixed, name=f"c{i}_n{step + 2}"))
        out = _cell_output(graph, i, states, range(len(states) - multiplier, len(states)))
        s0, s1, reduction_prev = s1, out, reduction
    _head(graph, s1, classes)
    return verify(graph)
