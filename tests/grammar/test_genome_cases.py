"""Data-driven genome cases: text -> facts about the graph, or text -> the error (message and line:col)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from genomorph.grammar import parse, parse_file
from genomorph.grammar._syntax import _EXAMPLES
from genomorph.ir import GenomeError, GenomeSemanticError, GenomeSyntaxError, ShapeError, VerifyError
from genomorph.ir.ops import Concat, Conv, Convex, Linear, Mixed, SepConv, WeightedSum


@dataclass(frozen=True)
class Valid:
    text: str
    nodes: int
    output: tuple[int, ...]
    histogram: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # name -> kind of the named node
    params: int | None = None


VALID = {
    "one line": Valid("input 2 linear(8) relu linear(2)", 4, (2,), {"linear": 2, "relu": 1}, params=42),
    "semicolons": Valid("input 2; linear(8) relu; linear(2)", 4, (2,), {"linear": 2}, params=42),
    "multi-line with comments": Valid(
        "# a comment\ninput 3x8x8   # images\n\nconv(4, 3) bn relu  # a block\n# trailing\ngap linear(2)\n",
        6,
        (2,),
        {"conv": 1, "bn": 1, "gap": 1},
        params=3 * 4 * 9 + 4 + 8 + 10,
    ),
    "crlf and bom": Valid("\ufeffinput 2\r\nlinear(3)\r\n", 2, (3,), {"linear": 1}),
    "newlines inside brackets": Valid("input 2\nlinear(\n  3,\n  bias=false\n)\n", 2, (3,), params=6),
    "named values": Valid(
        "input 3x8x8\nstem = conv(4, 3)\nb = stem relu\nadd(stem, b)",
        4,
        (4, 8, 8),
        {"add": 1},
        {"stem": "conv", "b": "relu"},
    ),
    "alias names the first": Valid("input 2\nx = linear(2)\ny = x\ny relu", 3, (2,), names={"x": "linear"}),
    "alias names an anonymous value": Valid(
        "input 2\n%5 = linear(2)\ny = %5\ny relu", 3, (2,), names={"y": "linear"}
    ),
    "flow into merge": Valid("input 3x8x8 conv(3, 3) add(_, conv(3, 1))", 4, (3, 8, 8), {"add": 1}),
    "branch starts from a name": Valid(
        "input 3x8x8\nx = relu\nadd(x conv(3, 1), x tanh)",
        5,
        (3, 8, 8),
        {"conv": 1, "tanh": 1},
        {"x": "relu"},
    ),
    "concat downsample by 2 and 4": Valid(
        "input 3x16x16\nx = conv(4, 3)\ny = x maxpool(2)\nz = y maxpool(2)\nconcat(x, y, z, downsample=true)",
        5,
        (12, 4, 4),
        {"concat": 1, "maxpool": 2},
        {"x": "conv", "y": "maxpool", "z": "maxpool"},
    ),
    "vector concat": Valid(
        "input 4\nx = linear(3)\nconcat(x, _ relu linear(5))", 5, (8,), names={"x": "linear"}
    ),
    "convex and weighted_sum": Valid(
        "input 4\nx = linear(4)\nconvex(x, x tanh, init=0.5) weighted_sum(_, _ relu)",
        6,
        (4,),
        {"convex": 1, "weighted_sum": 1},
        {"x": "linear"},
        params=20 + 1,
    ),
    "aux output": Valid(
        "input 3x8x8\nx = conv(4, 3)\nx gap linear(2) aux(0.3)\nx relu gap linear(2)",
        8,
        (2,),
        {"aux": 1, "linear": 2},
        {"x": "conv"},
    ),
    "aliases of ops and arguments": Valid(
        "input 3x8x8 conv(4, k=1, s=2, p=0) batchnorm silu skip max_pool(2) global_avg_pool fc(3)",
        8,
        (3,),
        {"swish": 1, "identity": 1, "bn": 1, "maxpool": 1, "gap": 1, "linear": 1},
    ),
    "dil_conv preset": Valid("input 3x8x8 dil_conv(4, 3)", 2, (4, 8, 8), {"sep_conv": 1}),
    "none is zero in a chain, None as a value": Valid(
        "input 3x8x8 none conv(3, 3, padding=none)", 3, (3, 8, 8), {"zero": 1, "conv": 1}
    ),
    "arithmetic": Valid("input 2 linear(2 * 3 + 1) linear((2 + 2) // 3) dropout(1 / 4)", 4, (1,)),
    "negative numbers": Valid("input 2 convex(_, _ tanh, init=-1.5 * 2)", 3, (2,), {"convex": 1}),
    "trailing commas": Valid("input 2 linear(3,) add(_, relu,)", 4, (3,)),
    "def with defaults and keywords": Valid(
        "def blk(c, s=1) = conv(c, 3, stride=s) bn relu\ninput 3x16x16\nblk(8) blk(16, s=2) blk(c=4)",
        10,
        (4, 8, 8),
        {"conv": 3, "bn": 3, "relu": 3},
    ),
    "def default uses an earlier parameter": Valid(
        "def wide(c, w=c * 2) = linear(w) relu linear(c)\ninput 4 wide(4)",
        4,
        (4,),
        params=(4 * 8 + 8) + (8 * 4 + 4),
    ),
    "def block body": Valid(
        "def res(c) {\n  x = conv(c, 3) bn\n  add(_, x) relu\n}\ninput 4x8x8\nres(4) res(4)",
        9,
        (4, 8, 8),
        {"add": 2, "conv": 2},
    ),
    "def taking values (a cell)": Valid(
        "def cell(a, b) = concat(a relu, b tanh)\ninput 3x8x8\nx = conv(4, 1)\ny = x conv(4, 3)\nc = cell(x, y)\nc gap linear(2)",
        8,
        (2,),
        names={"c": "concat", "x": "conv", "y": "conv"},
    ),
    "def taking a branch as an argument": Valid(
        "def two(a, b) = add(a, b)\ninput 4 two(_, _ linear(4))", 3, (4,), {"add": 1}
    ),
    "def taking an op name": Valid(
        "def layer(c, act=relu) = linear(c) act\ninput 2 layer(4) layer(3, tanh) layer(2, act=gelu)",
        7,
        (2,),
        {"relu": 1, "tanh": 1, "gelu": 1},
    ),
    "def taking a def name": Valid(
        "def a = relu\ndef b = tanh\ndef twice(f) = f f\ninput 2 twice(a) twice(b)",
        5,
        (2,),
        {"relu": 2, "tanh": 2},
    ),
    "def passed to an earlier def": Valid(
        "def twice(f) = f f\ndef blk = linear(2) relu\ninput 2 twice(blk)", 5, (2,), {"linear": 2, "relu": 2}
    ),
    "convolutional hres": Valid(
        "input 3x8x8 hres(conv(4, 1), conv(8, 3) bn, conv(4, 3) bn, act=swish)",
        8,
        (4, 8, 8),
        {"conv": 3, "bn": 2, "swish": 1, "add": 1},
    ),
    "def names are local": Valid(
        "def blk {\n  h = linear(2)\n  add(_, h)\n}\ninput 2 blk blk", 5, (2,), names={}
    ),
    "hres one level": Valid(
        "input 2 hres(linear(3), linear(8), linear(3))",
        6,
        (3,),
        {"linear": 3, "relu": 1, "add": 1},
        params=(2 * 3 + 3) + (2 * 8 + 8) + (8 * 3 + 3),
    ),
    "hres nested twice with act": Valid(
        "def l(o, h) = hres(linear(o), linear(h), linear(o))\n"
        "input 2 hres(linear(2), hres(linear(6), l(4, 3), l(6, 3)), l(2, 3), act=tanh)",
        22,
        (2,),
        {"add": 5, "tanh": 1, "relu": 4, "linear": 11},
    ),
    "mixed op": Valid(
        'input 3x8x8 mixed(zero, maxpool(3, 1, 1), skip, group=reduce, row=0, labels=["none", max_pool_3x3, skip_connect])',
        5,
        (3, 8, 8),
        {"mixed": 1, "zero": 1, "maxpool": 1, "identity": 1},
    ),
    "input may be named": Valid("x = input 2\nx linear(2)", 2, (2,), names={"x": "input"}),
}


@pytest.mark.parametrize("case", VALID.values(), ids=VALID.keys())
def test_valid_genome(case: Valid) -> None:
    graph = parse(case.text)
    assert len(graph) == case.nodes
    stats = graph.stats()
    assert stats.output_shape == case.output
    histogram = graph.histogram()
    for kind, count in case.histogram.items():
        assert histogram.get(kind, 0) == count, kind
    named = {n.name: n.kind for n in graph.nodes() if n.name is not None}
    assert named == case.names
    if case.params is not None:
        assert stats.params == case.params


def test_node_ids_follow_the_text_and_spans_point_at_ops() -> None:
    graph = parse("input 3x8x8\nx = conv(4, 3)\nadd(_, x relu)")
    assert [n.id for n in graph.nodes()] == [0, 1, 2, 3]
    conv, relu, add = graph.node(1), graph.node(2), graph.node(3)
    assert (conv.span.line, conv.span.column, conv.span.end_column) == (2, 5, 15)
    assert conv.span.source_line == "x = conv(4, 3)"
    assert (relu.span.line, relu.span.column) == (3, 10)
    assert (add.span.line, add.span.column) == (3, 1)
    assert graph.inputs(3) == [1, 2]


def test_merge_inputs_keep_their_order() -> None:
    graph = parse("input 3x8x8\nx = conv(2, 1)\ny = x conv(5, 1)\nconcat(y, x, _)")
    concat = graph.output_node()
    assert graph.inputs(concat) == [2, 1, 2]
    assert graph.shapes()[concat] == (12, 8, 8)


def test_argument_values_reach_the_op_models() -> None:
    graph = parse(
        "input 3x16x16\n"
        "conv(8, 5, stride=2, padding=1, dilation=1, groups=1, bias=false) sep_conv(8, 3, d=2)\n"
        "x = relu\n"
        'y = x mixed(_ relu, _ tanh, group="g 1", row=0, labels=[a, "b c"])\n'
        "convex(x, y, init=0.25) weighted_sum(_, x, alpha=0.7) concat(_, x, downsample=false)\n"
        "gap linear(2, bias=false)"
    )
    ops = {n.kind: n.op for n in graph.nodes()}
    assert ops["conv"] == Conv(channels=8, kernel=5, stride=2, padding=1, bias=False)
    assert ops["sep_conv"] == SepConv(channels=8, kernel=3, dilation=2)
    assert ops["mixed"] == Mixed(group="g 1", row=0, labels=("a", "b c"))
    assert ops["convex"] == Convex(init=0.25)
    assert ops["weighted_sum"] == WeightedSum(alpha=0.7)
    assert ops["concat"] == Concat()
    assert ops["linear"] == Linear(features=2, bias=False)


def test_parse_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "bad.genome"
    path.write_text("input 2\nlinear(2) cnov\n")
    with pytest.raises(GenomeSemanticError) as info:
        parse_file(path)
    assert info.value.span.file == str(path)
    assert str(info.value).startswith(f"{path}:2:11: error: unknown op `cnov`")
    with pytest.raises(GenomeError, match="no such genome file"):
        parse_file(tmp_path / "missing.genome")
    (tmp_path / "latin1.genome").write_bytes(b"input 2 # \xe9\n")
    with pytest.raises(GenomeError, match="not UTF-8"):
        parse_file(tmp_path / "latin1.genome")


@dataclass(frozen=True)
class Bad:
    text: str
    error: type[GenomeError]
    message: str
    line: int
    column: int
    hint: str | None = None


BAD = {
    # ---------------------------------------------------------------- syntax
    "empty": Bad("", GenomeSemanticError, "the genome is empty", 1, 1, "input 3x32x32"),
    "only comments": Bad("# nothing\n\n", GenomeSemanticError, "the genome is empty", 1, 1),
    "open parens": Bad("(((", GenomeSyntaxError, "unexpected `(`", 1, 1, "a statement starts with"),
    "unfinished call": Bad(
        "conv(", GenomeSyntaxError, "ended unexpectedly", 1, 6, "`(` at 1:5 is never closed"
    ),
    "unfinished on a later line": Bad(
        "input 2\nlinear(3,\n  4\n", GenomeSyntaxError, "ended unexpectedly", 3, 4, "`(` at 2:7"
    ),
    "bad character": Bad("@@@", GenomeSyntaxError, "unexpected character '@'", 1, 1, "no meaning"),
    "bad character later": Bad("input 2\nlinear(2) $", GenomeSyntaxError, "unexpected character '$'", 2, 11),
    "missing comma": Bad("input 3x8x8\nconv(8 3)", GenomeSyntaxError, "unexpected `3`", 2, 8, "commas"),
    "commas between layers": Bad(
        "input 2\nlinear(2), relu", GenomeSyntaxError, "unexpected `,`", 2, 10, "spaces"
    ),
    "empty argument": Bad("input 2\nlinear(2,, 3)", GenomeSyntaxError, "unexpected `,`", 2, 10, "missing"),
    "keyword without value": Bad(
        "input 2 linear(2, bias=)", GenomeSyntaxError, "unexpected `)`", 1, 24, "after `=`"
    ),
    "input with commas": Bad("input 3, 32, 32", GenomeSyntaxError, "unexpected `,`", 1, 8, "input 3x32x32"),
    "input with spaces": Bad(
        "input 3 x 32 x 32", GenomeSyntaxError, "unexpected `32`", 1, 11, "input 3x32x32"
    ),
    "def without body": Bad(
        "def f(c) linear(c)", GenomeSyntaxError, "unexpected `linear`", 1, 10, "`= chain`"
    ),
    "arrow": Bad("input 2 linear(2) -> relu", GenomeSyntaxError, "unexpected `-`", 1, 19, "no arrows"),
    "stray closer": Bad("input 2 linear(2) )", GenomeSyntaxError, "unexpected `)`", 1, 19, "no matching `(`"),
    "unclosed string": Bad(
        'input 2 mixed(relu, group="a)', GenomeSyntaxError, "unexpected character", 1, 27, "closing"
    ),
    # ---------------------------------------------------------------- names and ops
    "unknown op": Bad("input 3x8x8\nconv(8) cnov", GenomeSemanticError, "unknown op `cnov`", 2, 9, "`conv`"),
    "unknown name": Bad("input 2\nfoo relu", GenomeSemanticError, "unknown op or name `foo`", 2, 1),
    "unknown argument": Bad(
        "input 3x8x8\nconv(8, kernal=3)",
        GenomeSemanticError,
        "conv has no argument `kernal`",
        2,
        9,
        "kernel (k)",
    ),
    "too many arguments": Bad("input 2 relu(3)", GenomeSemanticError, "relu takes at most 0", 1, 14),
    "argument twice": Bad("input 3x8x8 conv(8, 3, k=3)", GenomeSemanticError, "given twice", 1, 24),
    "missing argument": Bad(
        "input 2 linear", GenomeSemanticError, "linear needs a value for `features`", 1, 9
    ),
    "bad value": Bad(
        "input 3x8x8\nconv(0)", GenomeSemanticError, "bad value 0 for `channels`", 2, 6, "accepts"
    ),
    "float for int": Bad("input 3x8x8 conv(8.5)", GenomeSemanticError, "bad value 8.5 for `channels`", 1, 18),
    "int for bool": Bad("input 2 linear(2, bias=1)", GenomeSemanticError, "bad value 1 for `bias`", 1, 19),
    "dropout range": Bad("input 2 dropout(1.5)", GenomeSemanticError, "dropout probability", 1, 17),
    "odd factorized_reduce": Bad(
        "input 3x8x8 factorized_reduce(3)", GenomeSemanticError, "even number", 1, 31
    ),
    "chain where a value is expected": Bad(
        "input 2 linear(relu tanh)", GenomeSemanticError, "expected a value", 1, 16
    ),
    "division by zero": Bad("input 2 linear(4 // 0)", GenomeSemanticError, "division by zero", 1, 16),
    "arithmetic on a string": Bad(
        'input 2 linear("a" * 2)', GenomeSemanticError, "arithmetic needs numbers", 1, 16
    ),
    "infinite number": Bad("input 2 dropout(1e999)", GenomeSemanticError, "too large", 1, 17),
    "used before definition": Bad(
        "input 2\nadd(_, y)\ny = relu",
        GenomeSemanticError,
        "`y` is used before its definition at 3:1",
        2,
        8,
        "cycle",
    ),
    "self reference": Bad(
        "input 2\nx = add(_, x)", GenomeSemanticError, "`x` is used before its definition", 2, 12
    ),
    "undefined anonymous": Bad("input 2\n%3 relu", GenomeSemanticError, "`%3` is not defined", 2, 1),
    "name defined twice": Bad(
        "input 2\nx = relu\nx = tanh", GenomeSemanticError, "`x` is already defined at 2:1", 3, 1
    ),
    "op name as value name": Bad("input 2\nrelu = linear(2)", GenomeSemanticError, "reserved", 2, 1),
    "value used as op": Bad(
        "input 2\nx = relu\nlinear(2) x", GenomeSemanticError, "`x` is a value, not an op", 3, 11
    ),
    "flow in the middle": Bad("input 2 relu _", GenomeSemanticError, "`_` can only start", 1, 14),
    "nothing flows": Bad("relu", GenomeSemanticError, "no value flows into `relu`", 1, 1, "input"),
    "flow before input": Bad("add(_, _)", GenomeSemanticError, "`_` has no value here", 1, 5),
    "second input": Bad("input 2 relu\ninput 3", GenomeSemanticError, "already has an input at 1:1", 2, 1),
    "bad input shape": Bad("input 3x0x4", GenomeSemanticError, "bad input shape 3x0x4", 1, 1),
    "merge with one input": Bad(
        "input 2\nadd(_)", GenomeSemanticError, "add takes at least 2 input(s) but has 1", 2, 1
    ),
    "convex with three": Bad(
        "input 2\nconvex(_, _, _)", GenomeSemanticError, "convex takes 2 input(s)", 2, 1
    ),
    "number as merge input": Bad("input 2\nadd(_, 3)", GenomeSemanticError, "must be a value", 2, 8),
    "hres with two branches": Bad(
        "input 2 hres(linear(2), relu)", GenomeSemanticError, "three branches", 1, 9
    ),
    "hres bad act": Bad(
        "input 2 hres(linear(2), linear(3), linear(2), act=conv)", GenomeSemanticError, "activation", 1, 9
    ),
    # ---------------------------------------------------------------- defs
    "recursive def": Bad(
        "def f = f relu\ninput 2 f", GenomeSemanticError, "def `f` calls itself", 1, 9, "forever"
    ),
    "def used before its definition": Bad(
        "input 2 f\ndef f = relu", GenomeSemanticError, "def `f` is used before its definition at 2:5", 1, 9
    ),
    "def calls a later def": Bad(
        "def a = b\ndef b = relu\ninput 2 a", GenomeSemanticError, "def `b` is used in def `a` before", 1, 9
    ),
    "missing def argument": Bad(
        "def f(a, b) = add(a, b)\ninput 2\nf(_)", GenomeSemanticError, "needs a value for parameter `b`", 3, 1
    ),
    "too many def arguments": Bad(
        "def f(a) = linear(a)\ninput 2\nf(1, 2)",
        GenomeSemanticError,
        "takes 1 argument(s) but got more",
        3,
        6,
    ),
    "unknown def parameter": Bad(
        "def f(a) = linear(a)\ninput 2\nf(b=1)", GenomeSemanticError, "has no parameter `b`", 3, 3, "a"
    ),
    "parameter twice": Bad(
        "def f(a, a) = relu\ninput 2 f(1, 2)", GenomeSemanticError, "appears twice", 1, 10
    ),
    "default before required": Bad(
        "def f(a=1, b) = relu\ninput 2 f", GenomeSemanticError, "without a default", 1, 12
    ),
    "def redefined": Bad(
        "def f = relu\ndef f = tanh\ninput 2 f", GenomeSemanticError, "already defined at 1:5", 2, 5
    ),
    "recursion through a parameter": Bad(
        "def twice(f) = f f\ninput 2 twice(twice)", GenomeSemanticError, "def `twice` calls itself", 1, 16
    ),
    "nested def": Bad(
        "def f {\n def g = relu\n relu\n}\ninput 2 f", GenomeSemanticError, "inside def `f`", 2, 6
    ),
    "top-level name inside def": Bad(
        "def f = add(_, x)\ninput 2\nx = relu\nf",
        GenomeSemanticError,
        "`x` is not visible inside def `f`",
        1,
        16,
    ),
    "number parameter as value": Bad(
        "def f(a) = a relu\ninput 2 f(3)", GenomeSemanticError, "parameter `a` holds 3, not a value", 1, 12
    ),
    "error inside expansion names the call": Bad(
        "def f(c) {\n  linear(c) relu(1)\n}\ninput 2\nf(3)",
        GenomeSemanticError,
        "(in `f` called at 5:1)",
        2,
        18,
    ),
    # ---------------------------------------------------------------- shapes and structure
    "channel mismatch": Bad(
        "input 3x8x8\nadd(_, conv(16, 3))",
        ShapeError,
        "add inputs must have the same shape",
        2,
        1,
        "same number of channels",
    ),
    "channel mismatch is named": Bad(
        "input 3x8x8\nadd(_, conv(16, 3))", ShapeError, "(channel mismatch)", 2, 1
    ),
    "spatial mismatch at concat": Bad(
        "input 3x8x8\nconcat(_, maxpool(2))",
        ShapeError,
        "concat input 0 is 8x8 but the smallest input is 4x4",
        2,
        1,
        "downsample=true",
    ),
    "downsample factor 8": Bad(
        "input 3x32x32\nconcat(_, maxpool(8), downsample=true)", ShapeError, "spatial mismatch", 2, 1
    ),
    "conv on a vector": Bad(
        "input 2\nconv(3)", ShapeError, "n1 (conv): conv needs an image input", 2, 1, "linear"
    ),
    "linear on an image": Bad(
        "input 3x4x4 linear(3)", ShapeError, "linear needs a vector input", 1, 13, "gap or flatten"
    ),
    "kernel too large": Bad(
        "input 3x4x4 conv(3, 7, padding=0)", ShapeError, "does not fit the 4x4 input", 1, 13
    ),
    "shape error inside a def": Bad(
        "def blk(c) = add(_, conv(c + 1))\ninput 3x8x8\nconv(8) blk(8)",
        ShapeError,
        "n3 (add): add inputs must have the same shape",
        1,
        14,
    ),
    "mixed labels count": Bad(
        "input 2 mixed(relu, tanh, labels=[a])", ShapeError, "mixed has 2 candidates but 1 labels", 1, 9
    ),
    "two outputs": Bad(
        "input 2\nx = linear(3)\nx relu\nx tanh", VerifyError, "exactly one output, found 2", 3, 3
    ),
    "no main output": Bad("input 2\nlinear(2) aux(0.4)\n", VerifyError, "exactly one output, found 0", 2, 19),
    "pool stride zero": Bad(
        "input 3x8x8 maxpool(2, stride=0)", GenomeSemanticError, "must be a positive integer", 1, 24
    ),
    "negative padding": Bad("input 3x8x8 conv(3, p=-1)", GenomeSemanticError, "must not be negative", 1, 21),
    "aux read by another op": Bad(
        "input 2 linear(2) aux(0.4) relu", VerifyError, "used by other nodes", 1, 19, "very end"
    ),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_genome(case: Bad) -> None:
    with pytest.raises(case.error) as info:
        parse(case.text)
    err = info.value
    assert case.message in err.message
    assert err.span is not None
    assert (err.span.line, err.span.column) == (case.line, case.column)
    if case.hint is not None:
        assert err.hint is not None and case.hint in err.hint
    text = str(err)
    assert text.startswith(f"<genome>:{case.line}:{case.column}: error: ")


def test_error_text_has_the_source_line_and_a_caret() -> None:
    with pytest.raises(GenomeSemanticError) as info:
        parse("input 3x8x8\nconv(8) cnov(3)")
    assert str(info.value) == (
        "<genome>:2:9: error: unknown op `cnov`\n    conv(8) cnov(3)\n            ^^^^^^^\nhint: did you mean `conv`?"
    )


def test_deep_nesting_is_a_clean_error() -> None:
    deep = "input 2 " + "add(_, " * 2000 + "relu" + ")" * 2000
    with pytest.raises(GenomeSyntaxError, match="nests too deeply"):
        parse(deep)


def test_huge_integer_literal_is_a_clean_error() -> None:
    with pytest.raises(GenomeError):
        parse("input 2 linear(" + "9" * 6000 + ")")


def test_expected_alternatives_are_listed_when_few() -> None:
    with pytest.raises(GenomeSyntaxError) as info:
        parse("def f(a b) = relu")
    assert info.value.hint == "expected one of `)`, `,`, `=`"
    with pytest.raises(GenomeSyntaxError) as info:
        parse("input")
    assert info.value.message == "the genome ended unexpectedly"
    assert info.value.hint == "expected one of a shape such as 3x32x32, an integer"


@pytest.mark.parametrize("label", sorted(_EXAMPLES))
def test_every_known_mistake_is_recognised(label: str) -> None:
    for text in _EXAMPLES[label]:
        with pytest.raises(GenomeSyntaxError) as info:
            parse(text)
        assert info.value.hint == label, text
