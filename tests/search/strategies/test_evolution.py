"""Aging evolution and random search: selection, aging, budgets, determinism, resumable state.

The evaluation is a deterministic pseudo-accuracy of the genome text (strategy_harness.score),
which is enough to check *which* genomes a strategy picks; the real trainer runs in the
end-to-end tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from genomorph.grammar import parse
from genomorph.ir import ConfigError
from genomorph.search.core.protocol import EvalRequest
from genomorph.search.strategies import STRATEGIES
from genomorph.search.strategies._common import Member
from genomorph.search.strategies.evolution import AgingEvolution, EvolutionConfig, tournament
from genomorph.search.strategies.random_search import RandomConfig, RandomSearch
from genomorph.search.strategies.sequential import decode, genes_from_json
from genomorph.search.strategies.space import parse_space
from strategy_harness import DIGITS, Run, setup

ROOT = Path(__file__).resolve().parents[3]
SPACE_TEXT = (ROOT / "examples" / "space_ga.toml").read_text()
SPACE = parse_space(SPACE_TEXT).bind((1, 8, 8), 10)


def evolution(seed: int = 0, width: int = 1, **options: object) -> AgingEvolution:
    config = EvolutionConfig(**{"population": 4, "cycles": 12, "sample_size": 2, **options})  # type: ignore[arg-type]
    return AgingEvolution(config, setup(seed=seed, space=SPACE_TEXT, width=width))


def searched(run: Run) -> list:  # type: ignore[type-arg]
    return [r for r in run.results if r.request.meta.get("role") != "final"]


def test_registry_names_the_three_strategies() -> None:
    assert {"random", "evolution", "nash"} <= set(STRATEGIES)
    assert STRATEGIES["evolution"] is AgingEvolution and STRATEGIES["random"].Config is RandomConfig


def test_evolution_runs_its_budget_then_trains_the_best_on_train_and_val() -> None:
    run = Run(evolution()).run()
    found = searched(run)
    assert len(found) == 12
    assert [r.request.meta["role"] for r in found] == ["init"] * 4 + ["child"] * 8
    best = max(found, key=lambda r: (r.metrics.objective, -r.id))
    final = run.results[-1]
    assert final.request.meta["role"] == "final"
    assert final.request.genome == best.request.genome
    assert final.request.init_checkpoint == best.checkpoint and final.request.parent == best.id
    assert final.request.budget.train_on == "train+val" and final.request.budget.test
    assert run.strategy.result_candidate() == final.id


def test_every_genome_is_in_the_space_and_parses() -> None:
    run = Run(evolution(seed=3, cycles=20)).run()
    for result in searched(run):
        genes = genes_from_json(result.request.meta["genes"])
        graph = parse(result.request.genome)
        assert decode(SPACE, graph) == genes


def test_children_are_mutants_of_a_living_parent() -> None:
    run = Run(evolution(seed=1)).run()
    found = searched(run)
    by_id = {r.id: r for r in found}
    for result in found[4:]:
        parent = by_id[result.request.parent]
        assert parent.id < result.id
        assert result.request.genome != parent.request.genome
        assert result.request.rewrites[0]["mutation"] == result.request.meta["mutation"]


def test_aging_keeps_the_youngest_members() -> None:
    strategy = evolution(seed=2)
    run = Run(strategy)
    while run.step():
        observed = [r.id for r in run.results if r.ok and r.request.meta.get("role") != "final"]
        ids = [m.id for m in strategy.state.population]
        # the population is always the P most recent finished candidates, oldest first
        assert ids == observed[-4:]


def test_failed_candidates_never_join_the_population() -> None:
    failing = {1, 5, 6}
    run = Run(evolution(seed=4), evaluate=lambda req, cid: (cid not in failing, 0.5 + cid / 100)).run()
    population = [m["id"] for m in run.strategy.dump_state()["population"]]
    assert not failing & set(population)
    assert len(searched(run)) == 12  # failures count towards the budget C
    assert all(r.request.parent not in failing for r in searched(run))


def test_tournament_picks_the_best_of_the_sample() -> None:
    members = [Member(id=i, genome=str(i), objective=obj) for i, obj in enumerate([0.3, 0.9, 0.5, 0.7, 0.1])]
    for seed in range(30):
        drawn = np.random.default_rng(seed).integers(len(members), size=3)
        winner = tournament(members, np.random.default_rng(seed), 3)
        assert winner.objective == max(members[i].objective for i in drawn)
    # S = 1 is a random parent; a large S almost surely finds the best
    assert tournament(members, np.random.default_rng(0), 200).id == 1


def test_same_seed_same_search_different_seed_different_search() -> None:
    genomes = [r.request.genome for r in Run(evolution(seed=5)).run().results]
    assert genomes == [r.request.genome for r in Run(evolution(seed=5)).run().results]
    assert genomes != [r.request.genome for r in Run(evolution(seed=6)).run().results]


def test_parallel_width_results_do_not_depend_on_batching() -> None:
    # with w = 3 evaluations in flight the children depend on w, never on how the driver batches
    a = Run(evolution(seed=7, width=3), width=3).run()
    b = Run(evolution(seed=7, width=3), width=1).run()
    assert [r.request.genome for r in a.results] == [r.request.genome for r in b.results]


@pytest.mark.parametrize("cut", [1, 4, 5, 9])
def test_state_round_trip_continues_identically(cut: int) -> None:
    whole = Run(evolution(seed=8)).run()
    first = Run(evolution(seed=8))
    for _ in range(cut):
        first.step()
    state = json.loads(json.dumps(first.strategy.dump_state()))
    resumed_strategy = evolution(seed=8)
    resumed_strategy.load_state(state)
    first.strategy = resumed_strategy
    first.run()
    assert [r.request.genome for r in first.results] == [r.request.genome for r in whole.results]
    assert first.strategy.result_candidate() == whole.strategy.result_candidate()


def test_wrap_up_stops_breeding_and_trains_the_best() -> None:
    run = Run(evolution(seed=9))
    for _ in range(6):
        run.step()
    run.ctx.wrap_up = True
    run.run()
    assert len(searched(run)) < 12
    assert run.results[-1].request.meta["role"] == "final"


def test_budget_flag_sets_the_cycles_and_clashes_are_errors() -> None:
    strategy = AgingEvolution(EvolutionConfig(population=3), setup(space=SPACE_TEXT, budget=5))
    assert len(searched(Run(strategy).run())) == 5
    with pytest.raises(ConfigError, match="--budget"):
        AgingEvolution(EvolutionConfig(cycles=7), setup(space=SPACE_TEXT, budget=5))


def test_evolution_without_a_space_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="--space"):
        AgingEvolution(EvolutionConfig(), setup())


def test_unknown_mutation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mutations"):
        EvolutionConfig(mutations=("swap", "crossover"))


def test_random_search_samples_independent_genomes_then_trains_the_best() -> None:
    strategy = RandomSearch(RandomConfig(candidates=6, epochs=2), setup(seed=1, space=SPACE_TEXT))
    run = Run(strategy, width=2).run()
    found = searched(run)
    assert len(found) == 6 and all(r.request.parent is None for r in found)
    assert all(r.request.budget.epochs == 2 for r in found)
    for result in found:
        assert decode(SPACE, parse(result.request.genome))
    best = max(found, key=lambda r: r.metrics.objective)
    assert run.results[-1].request.init_checkpoint == best.checkpoint
    again = Run(RandomSearch(RandomConfig(candidates=6, epochs=2), setup(seed=1, space=SPACE_TEXT))).run()
    assert [r.request.genome for r in again.results] == [r.request.genome for r in run.results]


def test_random_search_state_round_trip() -> None:
    def fresh() -> RandomSearch:
        return RandomSearch(RandomConfig(candidates=5), setup(seed=2, space=SPACE_TEXT))

    whole = Run(fresh()).run()
    part = Run(fresh())
    for _ in range(3):
        part.step()
    resumed = fresh()
    resumed.load_state(json.loads(json.dumps(part.strategy.dump_state())))
    part.strategy = resumed
    part.run()
    assert [r.request.genome for r in part.results] == [r.request.genome for r in whole.results]


def test_all_failed_ends_without_a_final_training() -> None:
    strategy = RandomSearch(RandomConfig(candidates=3), setup(space=SPACE_TEXT))
    run = Run(strategy, evaluate=lambda req, cid: (False, 0.0)).run()
    assert len(run.results) == 3 and strategy.result_candidate() is None


def test_request_is_plain_data() -> None:
    strategy = evolution()
    proposals = strategy.propose(Run(strategy).ctx)
    request = proposals[0].request
    assert EvalRequest.model_validate_json(request.model_dump_json()) == request


def test_the_same_space_file_runs_on_mnist_shapes() -> None:
    mnist = DIGITS.model_copy(update={"name": "mnist", "input_shape": (1, 28, 28), "train_size": 54_000})
    strategy = AgingEvolution(EvolutionConfig(), setup(space=SPACE_TEXT, dataset=mnist))
    # the defaults scaled to full MNIST's size (strategies/scale.py), not picked by the name
    assert (strategy.population_size, strategy.cycles, strategy.epochs) == (4, 13, 1)
    run = Run(strategy)
    for _ in range(8):
        run.step()
    mnist_space = parse_space(SPACE_TEXT).bind((1, 28, 28), 10)
    for result in run.results:
        graph = parse(result.request.genome)
        assert graph.stats().input_shape == (1, 28, 28)
        decode(mnist_space, graph)


def test_planned_is_the_number_of_candidates_a_run_evaluates() -> None:
    strategy = evolution(cycles=9)
    planned = strategy.planned()
    assert planned == len(Run(strategy).run().results) == 10


def test_random_search_plans_its_candidates_and_the_final_training() -> None:
    from genomorph.search.strategies.random_search import RandomSearch

    strategy = RandomSearch(RandomConfig(candidates=5, epochs=1, final_epochs=1), setup(space=SPACE_TEXT))
    assert strategy.planned() == len(Run(strategy).run().results) == 6
