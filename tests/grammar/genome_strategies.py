"""Hypothesis strategies for the genome language: random VALID graphs built through the IR API.

Graphs are built node by node with arbitrary (non-sequential) ids and optional names, every
op drawn with random arguments and kept only when its shape rule accepts the inputs, so each
draw is a valid graph as a rewrite or a searcher could produce it. Extra sinks become
auxiliary outputs, leaving one main output.

Settings: derandomized by default so CI is reproducible; ``GENOMORPH_FUZZ=deep`` switches to
random seeds and ten times the examples for a long local run.
"""

from __future__ import annotations

import functools
import os
import string

from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import (
    Add,
    Aux,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    Convex,
    Dropout,
    FactorizedReduce,
    Flatten,
    Gelu,
    GlobalAvgPool,
    Identity,
    Input,
    Linear,
    MaxPool,
    Mixed,
    OpBase,
    Relu,
    SepConv,
    Shape,
    ShapeMismatch,
    Sigmoid,
    Swish,
    Tanh,
    WeightedSum,
    Zero,
)
from genomorph.ir.printer import is_value_name
from genomorph.ir.verify import verify
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

DEEP = os.environ.get("GENOMORPH_FUZZ") == "deep"


def genome_settings(max_examples: int) -> settings:
    """Reproducible settings (derandomized) unless GENOMORPH_FUZZ=deep."""
    return settings(
        max_examples=max_examples * (10 if DEEP else 1),
        derandomize=not DEEP,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
names = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_letters + "_"),
    st.text(string.ascii_lowercase + "0123456789_", max_size=7),
).filter(is_value_name)
# any characters (quotes, backslashes, newlines, non-ASCII): exercises quoting in the printer
labels_text = st.text(st.characters(codec="utf-8"), max_size=6)

ACTIVATIONS = [Relu(), Sigmoid(), Tanh(), Swish(), Gelu(), Identity()]


@functools.cache
def image_ops(channels: int) -> st.SearchStrategy[OpBase]:
    small = st.integers(1, 6)
    return st.one_of(
        st.builds(
            Conv,
            channels=small,
            kernel=st.sampled_from([1, 3, 5]),
            stride=st.integers(1, 2),
            padding=st.none() | st.integers(0, 2),
            dilation=st.integers(1, 2),
            groups=st.sampled_from([1, channels]),
            bias=st.booleans(),
        ),
        st.builds(
            SepConv,
            channels=small,
            kernel=st.sampled_from([1, 3]),
            stride=st.integers(1, 2),
            padding=st.none() | st.integers(0, 1),
            dilation=st.integers(1, 2),
            bias=st.booleans(),
        ),
        st.builds(
            MaxPool, kernel=st.integers(1, 3), stride=st.none() | st.integers(1, 2), padding=st.integers(0, 1)
        ),
        st.builds(
            AvgPool,
            kernel=st.integers(1, 3),
            stride=st.none() | st.integers(1, 2),
            padding=st.integers(0, 1),
            count_include_pad=st.booleans(),
        ),
        st.builds(FactorizedReduce, channels=st.sampled_from([2, 4, 6]), affine=st.booleans()),
        st.builds(Zero, stride=st.integers(1, 2)),
        st.just(GlobalAvgPool()),
        st.just(Flatten()),
        common_ops(),
    )


@functools.cache
def vector_ops() -> st.SearchStrategy[OpBase]:
    return st.one_of(
        st.builds(Linear, features=st.integers(1, 8), bias=st.booleans()),
        st.just(Zero()),
        st.just(Flatten()),
        common_ops(),
    )


@functools.cache
def common_ops() -> st.SearchStrategy[OpBase]:
    return st.one_of(
        st.sampled_from(ACTIVATIONS),
        st.builds(BatchNorm, affine=st.booleans(), eps=finite, momentum=finite),
        st.builds(Dropout, p=unit),
    )


@functools.cache
def shape_keeping_ops(shape: Shape) -> st.SearchStrategy[OpBase]:
    """Ops whose output has the input's shape (branches of a merge)."""
    options: list[st.SearchStrategy[OpBase]] = [common_ops(), st.just(Zero())]
    if len(shape) == 3:
        options.append(
            st.builds(Conv, channels=st.just(shape[0]), kernel=st.sampled_from([1, 3]), bias=st.booleans())
        )
        options.append(st.builds(MaxPool, kernel=st.just(3), stride=st.just(1), padding=st.just(1)))
    else:
        options.append(st.builds(Linear, features=st.just(shape[0]), bias=st.booleans()))
    return st.one_of(*options)


class _Builder:
    """Adds nodes with drawn ids, tracking shapes and which values are still unused."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.graph = Graph()
        self.shapes: dict[NodeId, Shape] = {}
        self.order: list[NodeId] = []

    def add(self, op: OpBase, inputs: list[NodeId]) -> NodeId | None:
        try:
            shape = op.out_shape([self.shapes[i] for i in inputs])
        except ShapeMismatch:
            return None
        nid = self.draw(st.integers(0, 400))
        while nid in self.graph:  # ids are arbitrary but unique, as after rewrites
            nid += 1
        self.graph.add(op, inputs, node_id=nid)
        self.shapes[nid] = shape
        self.order.append(nid)
        return nid

    def pick(self) -> NodeId:
        """A value to extend, biased towards recent ones (so chains grow)."""
        recent = self.order[-3:]
        return self.draw(st.sampled_from(recent) | st.sampled_from(self.order))


@st.composite
def valid_graphs(draw: st.DrawFn, max_steps: int = 14) -> Graph:
    b = _Builder(draw)
    image = draw(st.booleans())
    if image:
        side = draw(st.sampled_from([4, 8, 16]))
        b.add(Input(shape=(draw(st.integers(1, 4)), side, side)), [])
    else:
        b.add(Input(shape=(draw(st.integers(1, 6)),)), [])
    mixed_groups = 0
    for _ in range(draw(st.integers(0, max_steps))):
        step = draw(st.sampled_from(["op", "op", "op", "op", "merge", "merge", "concat", "mixed", "aux"]))
        src = b.pick()
        shape = b.shapes[src]
        if b.graph.kind(src) == "aux":
            continue
        if step == "op":
            ops = image_ops(shape[0]) if len(shape) == 3 else vector_ops()
            b.add(draw(ops), [src])
        elif step == "merge":
            # a merge of branches from one value, or of existing values of the same shape
            same = [n for n in b.order if b.shapes[n] == shape and b.graph.kind(n) != "aux"]
            count = draw(st.integers(2, 3))
            inputs = []
            for _ in range(count):
                if draw(st.booleans()):
                    inputs.append(draw(st.sampled_from(same)))
                else:
                    branch = b.add(draw(shape_keeping_ops(shape)), [src])
                    inputs.append(src if branch is None else branch)
            merge = draw(st.sampled_from(["add", "convex", "weighted_sum"]) if count == 2 else st.just("add"))
            op = {
                "add": st.just(Add()),
                "convex": st.builds(Convex, init=finite),
                "weighted_sum": st.builds(WeightedSum, alpha=finite),
            }[merge]
            b.add(draw(op), inputs)
        elif step == "concat":
            kind = len(shape)
            pool = [n for n in b.order if len(b.shapes[n]) == kind and b.graph.kind(n) != "aux"]
            inputs = draw(st.lists(st.sampled_from(pool), min_size=2, max_size=3))
            b.add(Concat(downsample=draw(st.booleans())), inputs)
        elif step == "mixed":
            count = draw(st.integers(1, 3))
            candidates = [b.add(draw(shape_keeping_ops(shape)), [src]) for _ in range(count)]
            inputs = [src if c is None else c for c in candidates]
            labels = draw(st.just(()) | st.lists(labels_text, min_size=count, max_size=count).map(tuple))
            # one group per mixed op, row 0: a consistent architecture-parameter layout
            group = draw(labels_text.filter(lambda g: g != "")) + f"#{mixed_groups}"
            mixed_groups += 1
            b.add(Mixed(group=group, row=0, labels=labels), inputs)
        else:
            b.add(Aux(weight=draw(finite)), [src])
    # every extra sink becomes an auxiliary output, so there is one main output
    sinks = [n for n in b.order if not b.graph.users(n) and b.graph.kind(n) != "aux"]
    if not sinks:  # only auxiliary outputs so far: give the network a main output
        sinks = [b.add(Identity(), [b.order[0]])]
    for sink in sinks[:-1]:
        b.add(Aux(weight=draw(unit)), [sink])
    used: set[str] = set()
    for nid in b.order:
        if draw(st.integers(0, 3)) == 0:
            name = draw(names)
            if name not in used:
                used.add(name)
                b.graph.set_name(nid, name)
    return verify(b.graph)
