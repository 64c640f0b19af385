"""Rewrites that carry weights: network morphisms, approximate morphisms, pruning, H-ResNet growth.

One module per rewrite (``deepen``, ``widen``, ...), each with a frozen ``Move``, its places
and its edit, registered as one ``Rewrite`` (``module.REWRITE``) that gives
``candidates(graph)``, ``moves_at(graph, node)`` and a pure
``apply(graph, weights, move, rng) -> RewriteResult``. The registry ``REWRITES`` maps the CLI
names (``skip-add``, ``prune-channels``, ...) to them. See docs/rewrites.md.
"""

from ._base import Outcome, Record, Rewrite, RewriteResult, Work, move_from_dict, move_to_dict, op_text
from ._init import fill_missing, init_node, randomized
from ._registry import APPROXIMATE, EXACT, REWRITES, get, random_chain, replay, sample

__all__ = [
    "APPROXIMATE",
    "EXACT",
    "REWRITES",
    "Outcome",
    "Record",
    "Rewrite",
    "RewriteResult",
    "Work",
    "fill_missing",
    "get",
    "init_node",
    "move_from_dict",
    "move_to_dict",
    "op_text",
    "random_chain",
    "randomized",
    "replay",
    "sample",
]
