"""Defaults scaled to the data given (strategies/scale.py): digits keeps the main job's values,
larger data gets fewer passes and smaller searches, small user data more passes, and the
dataset's name plays no part."""

from __future__ import annotations

from pathlib import Path

import pytest
from genomorph.search.core.protocol import DatasetInfo
from genomorph.search.strategies.evolution import AgingEvolution, EvolutionConfig
from genomorph.search.strategies.nash import Nash, NashConfig
from genomorph.search.strategies.random_search import RandomConfig, RandomSearch
from genomorph.search.strategies.scale import MAX_WORK, DataScale
from strategy_harness import DIGITS, setup

ROOT = Path(__file__).resolve().parents[3]
SPACE_TEXT = (ROOT / "examples" / "space_ga.toml").read_text()


def info(name: str, shape: tuple[int, ...], train: int, classes: int = 10) -> DatasetInfo:
    return DatasetInfo(name=name, task="classification", input_shape=shape, num_outputs=classes,
                       train_size=train, val_size=train // 9, test_size=1000)  # fmt: skip


MNIST_5K = info("mnist", (1, 28, 28), 4500)  # a 5 000-image subset, 10 % held out
MNIST = info("mnist", (1, 28, 28), 54_000)
CIFAR = info("cifar10", (3, 32, 32), 45_000)
FOLDER = info("folder", (1, 16, 16), 540)  # the acceptance script's ImageFolder tree
PHOTOS = info("folder", (3, 224, 224), 2_000)
WINE = info("csv", (13,), 142, classes=3)


def evolution(data: DatasetInfo) -> AgingEvolution:
    return AgingEvolution(EvolutionConfig(), setup(space=SPACE_TEXT, dataset=data))


def test_digits_keeps_the_main_jobs_defaults() -> None:
    nash = Nash(NashConfig(), setup())
    assert (nash.steps, nash.children, nash.ops, nash.epochs, nash.start_epochs, nash.final_epochs) == (
        3, 6, 3, 3, 6, 4,
    )  # fmt: skip
    assert nash.max_params == 1_000_000
    evo = evolution(DIGITS)
    assert (evo.population_size, evo.cycles, evo.sample_size, evo.epochs, evo.final_epochs) == (
        8,
        24,
        3,
        8,
        10,
    )
    rand = RandomSearch(RandomConfig(), setup(space=SPACE_TEXT))
    assert (rand.candidates, rand.epochs, rand.final_epochs) == (16, 8, 10)


def test_the_name_picks_nothing() -> None:
    renamed = DIGITS.model_copy(update={"name": "cifar10"})
    a, b = evolution(DIGITS), evolution(renamed)
    assert (a.population_size, a.cycles, a.epochs) == (b.population_size, b.cycles, b.epochs)


def test_a_5k_mnist_subset_trains_several_epochs_per_candidate() -> None:
    evo = evolution(MNIST_5K)
    # one pass over 4 500 images gave a noise-level search signal; the rule gives 4 passes
    assert evo.epochs == 4 and evo.epochs * MNIST_5K.train_size >= 15_000
    assert (evo.population_size, evo.cycles, evo.final_epochs) == (5, 15, 5)


@pytest.mark.parametrize(
    ("data", "epochs", "cycles"),
    [(DIGITS, 8, 24), (FOLDER, 12, 21), (MNIST_5K, 4, 15), (MNIST, 1, 13), (CIFAR, 1, 11), (PHOTOS, 1, 9)],
)
def test_epochs_and_counts_per_data_size(data: DatasetInfo, epochs: int, cycles: int) -> None:
    evo = evolution(data)
    assert (evo.epochs, evo.cycles) == (epochs, cycles)


def test_more_data_means_fewer_passes_but_more_samples_seen() -> None:
    sizes = [142, 540, 1149, 4500, 20_000, 54_000]
    scales = [DataScale(train_size=n, input_values=64) for n in sizes]
    epochs = [s.epochs(8) for s in scales]
    assert epochs == sorted(epochs, reverse=True) and epochs[0] > 8 > epochs[-1] >= 1
    seen = [e * n for e, n in zip(epochs, sizes, strict=True)]
    assert seen[-1] > seen[2] > seen[0]


def test_the_time_cap_bounds_a_candidate_on_large_images() -> None:
    scale = DataScale.of(PHOTOS)
    assert scale.epochs(8) == 1  # without the cap it would be 6
    for data in (DIGITS, FOLDER, MNIST_5K, CIFAR, WINE):
        s = DataScale.of(data)
        assert s.epochs(8) == 1 or s.epochs(8) * s.train_size * s.input_values <= MAX_WORK


def test_small_tables_get_more_epochs_and_never_bigger_searches() -> None:
    scale = DataScale.of(WINE)
    assert scale.epochs(8) == 23 and scale.epochs(0) == 0
    assert scale.count(24, 8) == 24  # cheap candidates do not enlarge the search beyond the reference
    nash = Nash(NashConfig(), setup(dataset=WINE, start_genome="input 13\nlinear(32) relu linear(3)\n"))
    assert (nash.epochs, nash.start_epochs, nash.final_epochs, nash.children) == (9, 17, 11, 6)


def test_parameter_cap_grows_with_the_data_within_paper_bounds() -> None:
    assert DataScale.of(DIGITS).max_params() == 1_000_000
    assert DataScale.of(MNIST_5K).max_params() == 1_800_000
    assert DataScale.of(CIFAR).max_params() == 18_000_000
    assert DataScale.of(MNIST).max_params() == 20_000_000


def test_explicit_options_and_flags_beat_the_scaled_defaults() -> None:
    evo = AgingEvolution(EvolutionConfig(epochs=2, population=3), setup(space=SPACE_TEXT, dataset=MNIST))
    assert (evo.epochs, evo.population_size) == (2, 3)
    flagged = AgingEvolution(EvolutionConfig(), setup(space=SPACE_TEXT, dataset=MNIST, epochs=5, budget=7))
    assert (flagged.epochs, flagged.cycles) == (5, 7)
