"""The op kinds imported networks need, in genome text: round trip, rectangular settings, errors."""

from __future__ import annotations

import pytest
from genomorph.grammar import parse
from genomorph.ir import GenomeError
from genomorph.ir.ops import Conv, MaxPool
from genomorph.ir.printer import print_genome

TEXT = """\
input 3x12x12
conv(8, 1x3, stride=1x2, bias=false) bn leaky_relu(0.1)
x = conv(8, 3x1, padding=1x0) bn hardswish
s = adaptive_avgpool(1) conv(2, 1) relu6 conv(8, 1) hardsigmoid
y = mul(x, s) stochastic_depth(0.2, mode=batch)
add(_, x) maxpool(3, stride=2, ceil_mode=true) avgpool(2x1, stride=1, ceil_mode=true) adaptive_avgpool(2x1) flatten linear(5)
"""


def test_round_trip_and_canonical_printing() -> None:
    graph = parse(TEXT)
    text = print_genome(graph)
    again = parse(text)
    assert again.structure() == graph.structure() and print_genome(again) == text
    assert "conv(8, 1x3, stride=1x2, bias=false)" in text and "adaptive_avgpool(2x1)" in text


def test_rectangular_settings_and_lists_mean_the_same() -> None:
    a = parse("input 3x9x9\nconv(4, kernel=[1, 7], stride=[1, 2]) gap linear(2)")
    b = parse("input 3x9x9\nconv(4, 1x7, stride=1x2) gap linear(2)")
    assert a.structure() == b.structure()
    conv = a.op(1)
    assert isinstance(conv, Conv) and conv.kernel == (1, 7) and conv.pad == (0, 3)
    assert a.shapes()[1] == (4, 9, 5)
    # a square pair is stored as one number: one canonical form
    assert parse("input 3x9x9\nconv(4, 3x3) gap linear(2)").op(1) == Conv(channels=4, kernel=3)


def test_ceil_mode_gives_torchs_size() -> None:
    # SqueezeNet: MaxPool2d(3, 2, ceil_mode=True) on 111x111 -> 55x55 (floor would give 55 too)
    # and on 55x55 -> 27x27; 54x54 -> 27x27 with ceil (26x26 without)
    pool = MaxPool(kernel=3, stride=2, ceil_mode=True)
    assert [pool.out_shape([(1, n, n)])[1] for n in (111, 55, 54)] == [55, 27, 27]
    assert MaxPool(kernel=3, stride=2).out_shape([(1, 54, 54)])[1] == 26


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("input 3x8x8\nconv(4, 0x3) gap linear(2)", "must be a positive integer"),
        ("input 3x8x8\nconv(4, 3, stride=[1, 2, 3]) gap linear(2)", "height x width"),
        ("input 3x8x8\nx = conv(4, 3)\ny = x conv(2, 1) gap\nmul(x, y)", "do not broadcast"),
        ("input 3x8x8\nstochastic_depth(1.5) gap linear(2)", "probability"),
        ("input 3x8x8\nstochastic_depth(0.1, mode=column) gap linear(2)", "mode"),
    ],
)
def test_bad_arguments_are_genome_errors(text: str, message: str) -> None:
    with pytest.raises(GenomeError, match=message):
        parse(text)
