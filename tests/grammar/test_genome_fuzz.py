"""The parser never crashes: on any text, only GenomeError subclasses may escape.

Two sources of text, 2,000 cases in the default (derandomized) run:
- 500 strings drawn from the grammar itself (``hypothesis.extra.lark.from_lark``): they
  parse, and most then fail in the builder (unknown names, shapes), which is the point;
- 1,500 valid genomes (the example files, the docs, generated graphs) with random character
  edits: insertions, deletions, replacements, duplicated and swapped lines.
A successful parse must also print and re-parse to the same graph.
"""

from __future__ import annotations

import re
from pathlib import Path

from genome_strategies import genome_settings, valid_graphs
from genomorph.grammar import parse
from genomorph.grammar.parser import genome_parser
from genomorph.ir import GenomeError
from genomorph.ir.printer import print_genome
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

ROOT = Path(__file__).resolve().parents[2]
SMALL_EXAMPLES = ["vanilla", "ga_sequential", "hresnet_mlp", "resnet18_cifar"]


def _seeds() -> list[str]:
    seeds = [(ROOT / "examples" / f"{name}.genome").read_text() for name in SMALL_EXAMPLES]
    doc = (ROOT / "docs" / "genome.md").read_text()
    seeds += re.findall(r"```genome\n(.*?)```", doc, re.S)
    return seeds


SEEDS = _seeds()

# Words the grammar's NAME terminal is drawn from, so generated text reaches the builder's
# paths (ops, merges, defs, hres, literals) instead of failing on random identifiers.
WORDS = [
    "conv", "sep_conv", "bn", "relu", "tanh", "linear", "maxpool", "avgpool", "gap", "flatten",
    "dropout", "zero", "none", "skip", "add", "concat", "convex", "weighted_sum", "mixed", "aux",
    "hres", "factorized_reduce", "dil_conv", "true", "false", "x", "y", "f", "c", "k", "stride",
    "downsample", "labels", "group", "act", "cnov",
]  # fmt: skip


def parse_or_genome_error(text: str) -> None:
    try:
        graph = parse(text)
    except GenomeError as err:
        assert str(err)  # renders without crashing
        return
    printed = print_genome(graph)
    assert parse(printed).structure() == graph.structure()


# Explicit strategies for every regex terminal: drawing them from their regexes (full Unicode)
# costs far more than the parse under test, and these samples reach the same code paths.
TERMINALS = {
    "NAME": st.sampled_from(WORDS).map(lambda w: f" {w} "),
    "INT": st.sampled_from(["0", "1", "2", "3", "4", "8", "16", "32x32", "9" * 5000]),
    "DIMS": st.sampled_from(["3x8x8", "1x4x4", "2x2", "0x1x1"]),
    "FLOAT": st.sampled_from(["0.5", "1e-5", ".3", "2.", "1e999"]),
    "STRING": st.sampled_from(['"a"', '""', '"normal"', r'"\"x"', '"\u00e9"', r'"\q"', '"\t"']),
    "ANON": st.sampled_from(["%0", "%1", "%2"]),
    "COMMENT": st.sampled_from(["# c", "#"]),
    "WS": st.sampled_from([" ", "\t"]),
    "_NL": st.sampled_from(["\n", "\n  \n", "\r\n"]),
}


# Most generated statements need a value flowing in; an input line first lets them get further.
PREFIXES = st.sampled_from(["", "input 3x8x8\n", "input 4\n"])


@genome_settings(max_examples=500)
@given(PREFIXES, from_lark(genome_parser(), explicit=TERMINALS))
def test_text_from_the_grammar_never_crashes(prefix: str, text: str) -> None:
    parse_or_genome_error(prefix + text)


EDIT_CHARS = "()[]{},;=_%#\"\\ \n\t-+*/.x0123456789abcdefghijklmnopqrstuvwxyz@$'\u00e9\u2028\x00"


@st.composite
def edited_genomes(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS) | valid_graphs(max_steps=8).map(print_genome))
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["insert", "delete", "replace", "duplicate line", "swap lines"]))
        lines = text.split("\n")
        if edit == "duplicate line" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        elif edit == "swap lines" and len(lines) > 1:
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:
            at = draw(st.integers(0, len(text)))
            char = draw(st.sampled_from(EDIT_CHARS))
            if edit == "insert":
                text = text[:at] + char + text[at:]
            elif edit == "delete":
                text = text[:at] + text[at + 1 :]
            else:
                text = text[:at] + char + text[at + 1 :]
    return text


@genome_settings(max_examples=1500)
@given(edited_genomes())
def test_edited_genomes_never_crash(text: str) -> None:
    parse_or_genome_error(text)
