"""Search strategies: IR/genome-level state machines (no torch), driven by `genomorph.search`.

``STRATEGIES[name]`` is the strategy class for ``--strategy name``; its options model is
``cls.Config``. See docs/strategies.md for the algorithms and their defaults.
"""

from __future__ import annotations

from genomorph.search.core.protocol import Strategy

from .evolution import AgingEvolution, EvolutionConfig
from .nash import Nash, NashConfig
from .random_search import RandomConfig, RandomSearch
from .space import SearchSpace, load_space, parse_space

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (RandomSearch, AgingEvolution, Nash)  # type: ignore[type-abstract]
}

__all__ = [
    "STRATEGIES",
    "AgingEvolution",
    "EvolutionConfig",
    "Nash",
    "NashConfig",
    "RandomConfig",
    "RandomSearch",
    "SearchSpace",
    "load_space",
    "parse_space",
]
