"""genomorph.grammar: the genome language (text -> IR) and the interchange formats.

- ``parse(text, source_name="<genome>") -> Graph`` and ``parse_file(path) -> Graph``: genome
  text to a verified IR (docs/genome.md is the language reference).
- ``genomorph.grammar.darts`` and ``genomorph.grammar.nb201``: DARTS ``Genotype(...)`` text and
  NAS-Bench-201 arch strings (import those submodules directly).

The printer, the inverse of ``parse``, is ``genomorph.ir.printer.print_genome``.
"""

from .parser import parse, parse_file, parse_syntax

__all__ = ["parse", "parse_file", "parse_syntax"]
