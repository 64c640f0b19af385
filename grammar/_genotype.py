"""Reading and writing DARTS ``Genotype(...)`` text without evaluating it.

The text is parsed with :func:`ast.parse` (never evaluated) and only this shape is accepted::

    [NAME =] Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
                      reduce=[('max_pool_3x3', 0), ...], reduce_concat=range(2, 6))

with the four fields as keywords or positionally (the namedtuple's order), lists or tuples,
any whitespace and newlines, and ``range(a, b[, step])`` for the concat lists as the DARTS
code itself writes them. Errors point at the offending piece of text.
"""

from __future__ import annotations

import ast

from genomorph.ir import GenomeSemanticError, GenomeSyntaxError, Span
from pydantic import BaseModel, ConfigDict

from ._darts_ops import OPS, UNSUPPORTED

FIELDS: tuple[str, ...] = ("normal", "normal_concat", "reduce", "reduce_concat")
_HINT = (
    "write it as printed by DARTS: Genotype(normal=[('sep_conv_3x3', 0), ...], "
    "normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])"
)

Edge = tuple[str, int]


class Genotype(BaseModel):
    """A DARTS genotype: two edges (op, input state) per intermediate node, and the concat lists.

    States 0 and 1 are the cell's two inputs; intermediate node ``k`` (``k >= 2``) takes the
    edges ``2(k-2)`` and ``2(k-2)+1`` and may read states ``0..k-1``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    def text(self) -> str:
        """The text DARTS prints for a genotype built with lists."""

        def edges(items: tuple[Edge, ...]) -> str:
            return "[" + ", ".join(f"({op!r}, {j})" for op, j in items) + "]"

        def ints(items: tuple[int, ...]) -> str:
            return "[" + ", ".join(str(i) for i in items) + "]"

        return (
            f"Genotype(normal={edges(self.normal)}, normal_concat={ints(self.normal_concat)}, "
            f"reduce={edges(self.reduce)}, reduce_concat={ints(self.reduce_concat)})"
        )


class _Reader:
    """Turns the AST of one Genotype call into a :class:`Genotype`, with spans for errors."""

    def __init__(self, text: str, source_name: str) -> None:
        # leading whitespace would be an indentation error to Python, not to a user
        self.text = text.strip()
        self.lines = self.text.splitlines()
        self.source_name = source_name

    def span(self, node: ast.AST) -> Span:
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0) + 1
        end_line = getattr(node, "end_lineno", line)
        end_col = getattr(node, "end_col_offset", col) + 1
        source = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        return Span(line, col, end_line, end_col, file=self.source_name, source_line=source)

    def syntax(self, message: str, node: ast.AST, hint: str | None = _HINT) -> GenomeSyntaxError:
        return GenomeSyntaxError(message, span=self.span(node), hint=hint)

    def read(self) -> Genotype:
        try:
            module = ast.parse(self.text, mode="exec")
        except (RecursionError, MemoryError, ValueError):
            raise GenomeSyntaxError(
                "cannot read the Genotype text: it is nested too deeply or holds NUL bytes", hint=_HINT
            ) from None
        except SyntaxError as err:
            line = err.lineno or 1
            source = self.lines[line - 1] if 0 < line <= len(self.lines) else None
            span = Span(line, max(err.offset or 1, 1), file=self.source_name, source_line=source)
            raise GenomeSyntaxError(
                f"cannot read the Genotype text: {err.msg}", span=span, hint=_HINT
            ) from None
        if len(module.body) != 1:
            raise GenomeSyntaxError(
                "expected exactly one Genotype(...)" if module.body else "the Genotype text is empty",
                span=self.span(module.body[1]) if len(module.body) > 1 else None,
                hint=_HINT,
            )
        stmt = module.body[0]
        value = stmt.value if isinstance(stmt, ast.Expr | ast.Assign) else stmt
        call = value
        if not (isinstance(call, ast.Call) and _callee(call) == "Genotype"):
            raise self.syntax("expected a call Genotype(...)", call)
        fields = self.fields(call)
        edges = {name: self.edges(fields[name], name) for name in ("normal", "reduce")}
        concats = {name: self.concat(fields[name], name) for name in ("normal_concat", "reduce_concat")}
        for kind in ("normal", "reduce"):
            self.check_cell(
                kind, fields[kind], edges[kind], fields[f"{kind}_concat"], concats[f"{kind}_concat"]
            )
        return Genotype(
            normal=tuple(e for e, _ in edges["normal"]),
            normal_concat=tuple(i for i, _ in concats["normal_concat"]),
            reduce=tuple(e for e, _ in edges["reduce"]),
            reduce_concat=tuple(i for i, _ in concats["reduce_concat"]),
        )

    def fields(self, call: ast.Call) -> dict[str, ast.expr]:
        if len(call.args) > len(FIELDS):
            raise self.syntax(f"Genotype takes {len(FIELDS)} fields, got {len(call.args)}", call.args[-1])
        fields: dict[str, ast.expr] = dict(zip(FIELDS, call.args, strict=False))
        for kw in call.keywords:
            if kw.arg not in FIELDS:
                raise self.syntax(
                    f"unknown Genotype field {kw.arg!r}", kw, hint=f"the fields are {', '.join(FIELDS)}"
                )
            if kw.arg in fields:
                raise self.syntax(f"Genotype field {kw.arg!r} is given twice", kw)
            fields[kw.arg] = kw.value
        missing = [name for name in FIELDS if name not in fields]
        if missing:
            raise self.syntax(f"Genotype is missing the field(s) {', '.join(missing)}", call)
        return fields

    def sequence(self, node: ast.expr, what: str) -> list[ast.expr]:
        if not isinstance(node, ast.List | ast.Tuple):
            raise self.syntax(f"{what} must be a list", node)
        return list(node.elts)

    def edges(self, node: ast.expr, field: str) -> list[tuple[Edge, ast.expr]]:
        out = []
        for item in self.sequence(node, field):
            parts = item.elts if isinstance(item, ast.Tuple | ast.List) else []
            ok = (
                len(parts) == 2
                and isinstance(parts[0], ast.Constant)
                and isinstance(parts[0].value, str)
                and _int(parts[1]) is not None
            )
            if not ok:
                raise self.syntax(f"each {field} edge must be a pair ('op_name', input_index)", item)
            op, index = parts[0].value, _int(parts[1])  # type: ignore[union-attr]
            if op in UNSUPPORTED:
                raise GenomeSemanticError(
                    f"DARTS operation {op!r} cannot be converted: {UNSUPPORTED[op]}", span=self.span(parts[0])
                )
            if op not in OPS:
                raise GenomeSemanticError(
                    f"unknown DARTS operation {op!r}",
                    span=self.span(parts[0]),
                    hint=f"the operations are {', '.join(OPS)}",
                )
            out.append(((op, index), item))  # type: ignore[arg-type]
        return out

    def concat(self, node: ast.expr, field: str) -> list[tuple[int, ast.expr]]:
        if isinstance(node, ast.Call) and _callee(node) == "range":
            bounds = [_int(a) for a in node.args]
            if node.keywords or not 1 <= len(bounds) <= 3 or None in bounds or bounds[-1] == 0:
                raise self.syntax(f"{field} range(...) takes one to three integers", node)
            return [(i, node) for i in range(*bounds)]  # type: ignore[arg-type]
        out = []
        for item in self.sequence(node, field):
            value = _int(item)
            if value is None:
                raise self.syntax(f"{field} must list state indices (integers)", item)
            out.append((value, item))
        return out

    def check_cell(
        self,
        kind: str,
        node: ast.expr,
        edges: list[tuple[Edge, ast.expr]],
        concat_node: ast.expr,
        concat: list[tuple[int, ast.expr]],
    ) -> None:
        if not edges or len(edges) % 2:
            raise GenomeSemanticError(
                f"{kind} must list two edges per intermediate node, got {len(edges)}",
                span=self.span(node),
                hint="DARTS cells sum exactly two operations into each node",
            )
        for position, ((op, index), item) in enumerate(edges):
            state = position // 2 + 2
            if not 0 <= index < state:
                raise GenomeSemanticError(
                    f"{kind} edge {position} ({op!r}, {index}) feeds node {state}, which can only read "
                    f"states 0..{state - 1}",
                    span=self.span(item),
                    hint="states 0 and 1 are the cell inputs, node k reads earlier states only",
                )
        states = len(edges) // 2 + 2
        if not concat:
            raise GenomeSemanticError(f"{kind}_concat is empty", span=self.span(concat_node))
        for index, item in concat:
            if not 0 <= index < states:
                raise GenomeSemanticError(
                    f"{kind}_concat names state {index}, but the {kind} cell has states 0..{states - 1}",
                    span=self.span(item),
                )


def _callee(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):  # genotypes.Genotype(...)
        return func.attr
    return None


def _int(node: ast.expr) -> int | None:
    """An integer literal (allowing a leading minus), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def parse_genotype(text: str, source_name: str = "<genotype>") -> Genotype:
    """Read DARTS ``Genotype(...)`` text (never evaluated); raise GenomeError on bad text."""
    if not isinstance(text, str):
        raise GenomeSyntaxError(f"expected Genotype text, got {type(text).__name__}", hint=_HINT)
    return _Reader(text, source_name).read()
