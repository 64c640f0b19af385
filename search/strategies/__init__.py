"""Search strategies: IR/genome-level state machines (no torch), driven by `genomorph.search`.

``STRATEGIES[name]`` is the strategy class for ``--strategy name``; its options model is
``cls.Config``, its state model ``cls.State``. See docs/strategies.md for the algorithms and their defaults.
"""

from __future__ import annotations

from genomorph.search.core.protocol import Strategy

from .darts import Darts, DartsConfig, HyperDarts
from .evolution import AgingEvolution, EvolutionConfig
from .nash import Nash, NashConfig
from .noisy import Noisy, NoisyConfig
from .pareto_nash import ParetoNash, ParetoNashConfig
from .random_search import RandomConfig, RandomSearch
from .space import SearchSpace, load_space, parse_space
from .successive_halving import (
    SuccessiveHalving,
    SuccessiveHalvingConfig,
    SuccessiveHalvingRestarts,
    SuccessiveHalvingSeparable,
)
from .train_once import TrainOnce

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        RandomSearch,
        AgingEvolution,
        Nash,
        Darts,
        HyperDarts,
        Noisy,
        SuccessiveHalving,
        SuccessiveHalvingRestarts,
        SuccessiveHalvingSeparable,
        ParetoNash,
        TrainOnce,
    )
}

__all__ = [
    "STRATEGIES",
    "AgingEvolution",
    "Darts",
    "DartsConfig",
    "HyperDarts",
    "EvolutionConfig",
    "Nash",
    "NashConfig",
    "ParetoNash",
    "ParetoNashConfig",
    "Noisy",
    "NoisyConfig",
    "RandomConfig",
    "RandomSearch",
    "SearchSpace",
    "SuccessiveHalving",
    "SuccessiveHalvingConfig",
    "SuccessiveHalvingRestarts",
    "SuccessiveHalvingSeparable",
    "load_space",
    "parse_space",
]
