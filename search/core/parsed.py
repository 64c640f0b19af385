"""Genome text parsed once per process: the strategy and the worker read the same texts.

A noisy iteration reads each genome several times: the worker parses the candidate's text, and the
strategy parses the very same text again to shrink, rewrite and record it (tens of milliseconds
each on a small network, most of it the lark parse). `parsed` keeps the last graphs per text and
hands out copies, so a caller that edits its graph never changes what another caller gets.
Torch-free: strategies use it as well as the worker.
"""

from __future__ import annotations

import contextlib
import functools

from genomorph.ir import Graph

#: distinct genome texts kept per process (a few iterations' worth; graphs are small)
CACHED_GENOMES = 32


@functools.lru_cache(maxsize=CACHED_GENOMES)
def _parse(text: str) -> Graph:
    from genomorph.grammar import parse

    return parse(text)


def parsed(text: str, source_name: str = "<genome>") -> Graph:
    """``grammar.parse(text, source_name)``, from the cache when this text was parsed before.

    Only texts that parse are cached: a bad one is parsed again under ``source_name``, so the
    error names the caller's source as an uncached parse would.
    """
    from genomorph.ir import GenomorphError

    try:
        remembered = _REMEMBERED.get(text)
        graph = remembered if remembered is not None else _parse(text)
    except GenomorphError:
        from genomorph.grammar import parse

        return parse(text, source_name=source_name)
    # computed once on the cached graph, not on every copy: the worker reads the stats of each
    # candidate, and a remembered graph is the strategy's own object, which reads them too
    with contextlib.suppress(GenomorphError):  # the caller's own use of the copy reports it
        graph.stats()
    # the copy brings what parsing computed along (``Graph.copy``: order, shapes, stats and the
    # memos): recomputing shapes was a third of a cached parse's cost
    copy = graph.copy()
    copy.source_name = source_name
    return copy


_REMEMBERED: dict[str, Graph] = {}


def remember(text: str, graph: Graph) -> None:
    """Seed the cache with the graph ``parse(text)`` gives, known without parsing: a strategy that
    printed ``text`` from ``graph.relabeled()`` (``protocol.canonical``) has it already, and the
    in-process worker then reads the candidate without parsing it (the last `CACHED_GENOMES`)."""
    _REMEMBERED.pop(text, None)
    while len(_REMEMBERED) >= CACHED_GENOMES:  # the oldest goes (dicts keep insertion order)
        del _REMEMBERED[next(iter(_REMEMBERED))]
    _REMEMBERED[text] = graph


__all__ = ["CACHED_GENOMES", "parsed", "remember"]
