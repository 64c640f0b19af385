"""The canonical genome text of a graph: the inverse of ``genomorph.grammar.parse``.

Canonical form (docs/genome.md, "Canonical form"):

- nodes are written in ``graph.order()``; definitions never appear (everything is flat);
- a node joins the chain on the current line when it reads the previous node; otherwise it
  starts a new statement (``ref op`` when it reads an older value, just ``op`` when it reads
  the previous statement's value);
- a value read anywhere but by the very next node needs a name: its user name, or ``%N``
  (N = its position in the order). A named value ends its statement: ``name = chain``;
- merges list their inputs by name, ``_`` for the previous node; op arguments are positional
  for the op's ``positional`` fields, keywords for the rest, and defaults are left out.

Because the parser creates nodes in text order, ``parse(print_genome(g))`` numbers nodes in
``g.order()``: same structure, and printing it again gives the same text.

This module also holds the words of the language that both directions need (reserved names,
aliases), since ``ir`` cannot import ``grammar``.
"""

from __future__ import annotations

import json
import math
import re

from .errors import VerifyError
from .graph import Graph, NodeId
from .ops import OP_CLASSES, OpBase

# ---------------------------------------------------------------------- shared vocabulary
#: alias -> (op kind, preset arguments the user may still override)
OP_ALIASES: dict[str, tuple[str, dict[str, object]]] = {
    "silu": ("swish", {}),
    "skip": ("identity", {}),
    "none": ("zero", {}),
    "dil_conv": ("sep_conv", {"dilation": 2}),
    "batchnorm": ("bn", {}),
    "max_pool": ("maxpool", {}),
    "avg_pool": ("avgpool", {}),
    "global_avg_pool": ("gap", {}),
    "fc": ("linear", {}),
}

#: short argument names -> field names (accepted by every op that has the field)
ARG_ALIASES: dict[str, str] = {"k": "kernel", "s": "stride", "p": "padding", "d": "dilation", "g": "groups"}

#: the built-in H-ResNet form (expanded by the parser; not an op kind)
HRES = "hres"

#: words that are values, not names, where an argument value is expected
LITERAL_WORDS: dict[str, object] = {"true": True, "false": False, "none": None}

#: words the lexer or the parser treat specially
KEYWORDS: frozenset[str] = frozenset({"input", "def", "_", HRES, *LITERAL_WORDS})

#: names a value, parameter or def may not take: they already mean something
RESERVED: frozenset[str] = KEYWORDS | frozenset(OP_CLASSES) | frozenset(OP_ALIASES)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_value_name(name: str) -> bool:
    """Can ``name`` name a value in genome text?"""
    return bool(_IDENTIFIER.fullmatch(name)) and name not in RESERVED


# ---------------------------------------------------------------------- values and ops
def format_value(value: object) -> str:
    """One argument value as genome text (the parser reads it back to an equal value)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise VerifyError(f"the value {value} cannot be written in a genome (numbers must be finite)")
        return repr(value)
    if isinstance(value, str):
        bare = _IDENTIFIER.fullmatch(value) and value not in KEYWORDS
        return value if bare else json.dumps(value)
    if isinstance(value, tuple | list):
        if len(value) >= 2 and all(type(v) is int and v >= 0 for v in value):
            return "x".join(str(v) for v in value)  # a rectangular kernel/stride/size: `7x1`
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    raise TypeError(f"no genome syntax for {type(value).__name__} values")  # a bug in an op model


def _keyword_args(op: OpBase, skip: tuple[str, ...]) -> list[str]:
    return [f"{k}={format_value(v)}" for k, v in op.arguments().items() if k not in skip]


def format_op(op: OpBase) -> str:
    """``conv(32, 3, stride=2)``; ``relu`` without parentheses when nothing differs from defaults."""
    args = op.arguments()
    positional = [format_value(args[f]) for f in op.positional if f in args]
    parts = positional + _keyword_args(op, op.positional)
    kind = op.kind  # type: ignore[attr-defined]
    return f"{kind}({', '.join(parts)})" if parts else kind


def format_merge(op: OpBase, refs: list[str]) -> str:
    """``concat(_, x, downsample=true)``: inputs first, then the merge's own settings as keywords."""
    return f"{op.kind}({', '.join([*refs, *_keyword_args(op, ())])})"  # type: ignore[attr-defined]


def format_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


# ---------------------------------------------------------------------- the printer
def _value_names(graph: Graph, order: list[NodeId], inputs: dict[NodeId, list[NodeId]]) -> dict[NodeId, str]:
    """User names, and ``%N`` for unnamed values read by anything but the very next node."""
    position = {nid: i for i, nid in enumerate(order)}
    needed = {src for nid in order for src in inputs[nid] if position[src] + 1 != position[nid]}
    names: dict[NodeId, str] = {}
    seen: dict[str, NodeId] = {}
    for nid in order:
        node = graph.node(nid)
        if node.name is not None:
            if not is_value_name(node.name):
                raise VerifyError(
                    f"{node.describe()} has the name {node.name!r}, which genome text cannot use",
                    span=node.span,
                    hint="value names are identifiers that are not op names or keywords",
                )
            if node.name in seen:
                raise VerifyError(
                    f"{node.describe()} and n{seen[node.name]} share the name '{node.name}'",
                    span=node.span,
                    hint="names must be unique",
                )
            seen[node.name] = nid
            names[nid] = node.name
        elif nid in needed:
            names[nid] = f"%{position[nid]}"
    return names


def print_genome(graph: Graph) -> str:
    """The canonical genome text of ``graph`` (flat: no defs), ending with a newline."""
    order = graph.order()
    inputs = {nid: graph.inputs(nid) for nid in order}
    names = _value_names(graph, order, inputs)
    lines: list[str] = []
    terms: list[str] = []  # the open statement, not yet written
    previous: NodeId | None = None

    def flush(name: str | None = None) -> None:
        if terms:
            lines.append((f"{name} = " if name else "") + " ".join(terms))
            terms.clear()

    for nid in order:
        op = graph.op(nid)
        ins = inputs[nid]
        reads_previous = previous is not None and previous in ins
        if op.kind == "input":  # type: ignore[attr-defined]
            flush()
            terms.append(f"input {format_shape(op.shape)}")  # type: ignore[attr-defined]
            if nid not in names:
                flush()  # the input stands on its own line
        elif op.is_merge:
            refs = ["_" if i == previous else names[i] for i in ins]
            if not reads_previous:
                flush()
            terms.append(format_merge(op, refs))
        else:
            if not (terms and reads_previous):
                flush()
                if not reads_previous:
                    terms.append(names[ins[0]])
            terms.append(format_op(op))
        if nid in names:
            flush(names[nid])
        previous = nid
    flush()
    return "\n".join(lines) + "\n"
