"""Defaults that scale with the data actually given: training samples and input size, never the name.

Every strategy declares its budget knobs as they are on the *reference* data, the embedded
digits set (1 149 training samples of 1×8×8 = 64 values), where they are tuned for the main
job. `DataScale` turns them into the values for the data at hand:

- **epochs** per candidate: ``round(E_ref · sqrt(N_ref / N))``, at least 1. A candidate on
  more data sees more samples in total (``∝ sqrt(N)``) in fewer passes: digits keeps its
  epochs, a 5 000-image MNIST subset gets about half of them (4 instead of 8: ~20 000 samples
  instead of the 5 000 of one pass, whose search signal was noise), full MNIST or CIFAR-10 one
  or two.
- **time cap**: the epochs are then capped so a candidate handles at most `MAX_WORK`
  sample-values (training samples × epochs × input values, a proxy of its CPU time: about three
  CIFAR-10 epochs); large images (an ImageFolder of 224×224 photos) train one epoch per candidate.
- **counts** (candidates, cycles, population, children): a candidate that costs ``r`` times
  the reference one (by the same proxy) shrinks them by ``r^-0.15`` (70× dearer, full MNIST:
  halved), never below a floor and never above the reference, so a default run stays bounded.
- **parameter cap**: about 400 parameters per training sample, between 1 M and 20 M
  (paper 001's cap).

``tests/search/strategies/test_scale.py`` checks the values on digits, a 5 k MNIST subset, full
MNIST, CIFAR-10 and small user data (an image folder, a CSV table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genomorph.ir import ConfigError
from genomorph.search.core.protocol import DatasetInfo

#: the reference data: the embedded digits set's training split and its input size (1×8×8)
REFERENCE_SAMPLES = 1149
REFERENCE_VALUES = 64
#: at most this many sample-values (samples × epochs × input values) per candidate
MAX_WORK = 4e8
#: how strongly counts shrink with the cost of one candidate (see the module docstring)
COUNT_EXPONENT = 0.15
PARAMS_PER_SAMPLE = 400
MIN_PARAMS, MAX_PARAMS = 1_000_000, 20_000_000


@dataclass(frozen=True)
class DataScale:
    """The size of the data a run trains on; turns reference defaults into this data's defaults."""

    train_size: int
    input_values: int

    @classmethod
    def of(cls, info: DatasetInfo) -> DataScale:
        return cls(train_size=max(1, info.train_size), input_values=max(1, math.prod(info.input_shape)))

    def epochs(self, reference: int) -> int:
        """Training epochs for a candidate that trains ``reference`` epochs on the reference data.

        ``0`` stays 0 (e.g. ``final_epochs = 0``: evaluate only)."""
        if reference <= 0:
            return 0
        scaled = max(1, math.floor(reference * math.sqrt(REFERENCE_SAMPLES / self.train_size) + 0.5))
        cap = max(1, math.floor(MAX_WORK / (self.train_size * self.input_values)))
        return min(scaled, cap)

    def cost_ratio(self, reference_epochs: int) -> float:
        """What one candidate costs here relative to the reference data (sample-values handled)."""
        here = self.epochs(reference_epochs) * self.train_size * self.input_values
        return here / (max(1, reference_epochs) * REFERENCE_SAMPLES * REFERENCE_VALUES)

    def count(self, reference: int, epochs: int, minimum: int = 1) -> int:
        """A count (candidates, cycles, children) that is ``reference`` on the reference data,
        for candidates that train ``epochs`` reference epochs each."""
        factor = min(1.0, self.cost_ratio(epochs) ** -COUNT_EXPONENT)
        return max(min(minimum, reference), math.floor(reference * factor + 0.5))

    def max_params(self) -> int:
        """The parameter cap of growing strategies."""
        return min(MAX_PARAMS, max(MIN_PARAMS, PARAMS_PER_SAMPLE * self.train_size))


def resolve(
    key: str,
    configured: int | None,
    default: int,
    cli: int | None = None,
    cli_flag: str | None = None,
) -> int:
    """An option's value: the command-line flag, else the strategy option, else the scaled default.

    Giving both the flag and the option with different values is an error, not a silent choice.
    """
    if cli is not None and configured is not None and cli != configured:
        raise ConfigError(
            f"{cli_flag} {cli} contradicts the strategy option {key} = {configured}",
            hint=f"give only one of {cli_flag} and --set {key}=...",
        )
    if cli is not None:
        return cli
    if configured is not None:
        return configured
    return default


__all__ = ["MAX_WORK", "REFERENCE_SAMPLES", "REFERENCE_VALUES", "DataScale", "resolve"]
