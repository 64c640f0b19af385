"""The words of the genome language: op kinds, their aliases, argument aliases, reserved names.

The tables both parser and printer need live in ``genomorph.ir.printer`` (``ir`` cannot import
``grammar``); this module adds what only the parser needs.
"""

from __future__ import annotations

from genomorph.ir.ops import OP_CLASSES, OpBase
from genomorph.ir.printer import ARG_ALIASES, HRES, KEYWORDS, LITERAL_WORDS, OP_ALIASES, RESERVED

__all__ = [
    "ARG_ALIASES",
    "HRES",
    "KEYWORDS",
    "LITERAL_WORDS",
    "OP_ALIASES",
    "OP_WORDS",
    "RESERVED",
    "describe_fields",
    "field_order",
    "resolve_op",
]


#: every word that can stand where an op is expected (for "did you mean" suggestions)
OP_WORDS: tuple[str, ...] = tuple(sorted((set(OP_CLASSES) - {"input"}) | set(OP_ALIASES) | {HRES}))


def resolve_op(word: str) -> tuple[type[OpBase], dict[str, object]] | None:
    """The op class and preset arguments a word names, or None when it names no op."""
    if word in OP_ALIASES:
        kind, preset = OP_ALIASES[word]
        return OP_CLASSES[kind], dict(preset)
    if word in OP_CLASSES and word != "input":
        return OP_CLASSES[word], {}
    return None


def field_order(cls: type[OpBase]) -> list[str]:
    """Fields in positional-argument order: the op's ``positional`` ones, then the rest."""
    rest = [f for f in cls.model_fields if f != "kind" and f not in cls.positional]
    return [*cls.positional, *rest]


def describe_fields(cls: type[OpBase]) -> str:
    """``channels, kernel (k), stride (s)...`` for messages listing what an op accepts."""
    short = {v: k for k, v in ARG_ALIASES.items()}
    names = [f"{f} ({short[f]})" if f in short else f for f in field_order(cls)]
    return ", ".join(names) if names else "none"
