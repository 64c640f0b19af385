"""NASH hill climbing: children by exact morphisms, hill climbing, Lamarckian weights, the cap.

Evaluations are a deterministic pseudo-accuracy of the genome text (strategy_harness.score);
"training" keeps the inherited weights, which is all the morphisms of the next step need.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from genomorph.grammar import parse
from genomorph.ir import DataError
from genomorph.ir.rewrites import REWRITES, replay
from genomorph.ir.weights import check_weights
from genomorph.search.core.protocol import DatasetInfo, canonical
from genomorph.search.strategies.nash import VANILLA, Nash, NashConfig, grow, start_genome
from strategy_harness import DIGITS, Run, score, setup

ROOT = Path(__file__).resolve().parents[3]
MORPHISMS = {"deepen", "widen", "skip-add", "skip-concat"}


def nash(seed: int = 0, width: int = 1, dataset: DatasetInfo = DIGITS, **options: object) -> Nash:
    config = NashConfig(
        **{"steps": 2, "children": 3, "ops": 2, "epochs": 1, "final_epochs": 2, "max_params": 0, **options}
    )  # type: ignore[arg-type]
    return Nash(config, setup(seed=seed, width=width, dataset=dataset))


def by_role(run: Run, role: str) -> list:  # type: ignore[type-arg]
    return [r for r in run.results if r.request.meta.get("role") == role]


def test_start_then_steps_of_children_then_final_training() -> None:
    run = Run(nash()).run()
    roles = [r.request.meta["role"] for r in run.results]
    assert roles == ["start"] + ["child"] * 6 + ["final"]
    assert [r.request.meta["step"] for r in by_role(run, "child")] == [1, 1, 1, 2, 2, 2]
    assert all(
        r.request.budget.schedule == "cosine" and r.request.budget.epochs == 1 for r in by_role(run, "child")
    )


def test_hill_climbing_moves_to_the_best_child_of_each_step() -> None:
    run = Run(nash(seed=1, steps=3)).run()
    start = by_role(run, "start")[0]
    children = by_role(run, "child")
    parent = start
    for step in (1, 2, 3):
        batch = [r for r in children if r.request.meta["step"] == step]
        assert {r.request.parent for r in batch} == {parent.id}
        parent = max(batch, key=lambda r: (score(r.request.genome), -r.id))
    final = run.results[-1]
    assert (
        final.request.genome == parent.request.genome and final.request.init_checkpoint == parent.checkpoint
    )
    assert final.request.budget.train_on == "train+val" and final.request.budget.test
    assert run.strategy.result_candidate() == final.id


def test_children_are_exact_morphisms_of_their_parent_with_its_weights() -> None:
    run = Run(nash(seed=2, ops=3)).run()
    by_id = {r.id: r for r in run.results}
    for child in by_role(run, "child"):
        records = child.request.rewrites
        assert 1 <= len(records) <= 3
        assert all(rec["exact"] and rec["rewrite"] in MORPHISMS for rec in records)
        # Lamarckian: the parent's trained weights, replayed through the records, give the child
        parent = by_id[child.request.parent]
        parent_weights = run.ctx.checkpoints[parent.checkpoint]
        replayed = replay(parse(parent.request.genome), parent_weights, records)
        assert replayed is not None
        text, weights = canonical(replayed.graph, replayed.weights)
        assert text == child.request.genome
        proposal_weights = run.proposals[child.id].weights
        assert proposal_weights is not None
        check_weights(parse(child.request.genome), proposal_weights)
        for nid, arrays in weights.items():  # type: ignore[union-attr]
            for name, array in arrays.items():
                np.testing.assert_array_equal(array, proposal_weights[nid][name])


def test_parameter_cap_is_never_exceeded() -> None:
    start_params = parse(start_genome(setup())).stats().params
    cap = int(start_params * 1.25)
    run = Run(nash(seed=3, steps=2, children=3, ops=4, max_params=cap)).run()
    children = by_role(run, "child")
    assert all(parse(r.request.genome).stats().params <= cap for r in children)
    # the cap refuses growth but does not stop the search
    assert len(children) == 6


def test_grow_respects_the_operator_set() -> None:
    graph = parse(start_genome(setup()))
    _, _, records = grow(graph, None, np.random.default_rng(0), 6, ("widen",), None)
    assert len(records) == 6 and {r["rewrite"] for r in records} == {"widen"}  # type: ignore[index]
    _, _, records = grow(graph, None, np.random.default_rng(0), 6, ("skip",), None)
    assert {r["rewrite"] for r in records} <= {"skip-add", "skip-concat"}  # type: ignore[index]


def test_same_seed_same_search() -> None:
    genomes = [r.request.genome for r in Run(nash(seed=4)).run().results]
    assert genomes == [r.request.genome for r in Run(nash(seed=4)).run().results]
    assert genomes != [r.request.genome for r in Run(nash(seed=5)).run().results]
    # children depend on (seed, step, child), not on how many the driver asks for at once
    assert genomes == [r.request.genome for r in Run(nash(seed=4, width=3), width=3).run().results]


@pytest.mark.parametrize("cut", [1, 2, 4, 7])
def test_state_round_trip_continues_identically(cut: int) -> None:
    whole = Run(nash(seed=6)).run()
    part = Run(nash(seed=6))
    for _ in range(cut):
        part.step()
    resumed = nash(seed=6)
    resumed.load_state(json.loads(json.dumps(part.strategy.dump_state())))
    part.strategy = resumed
    part.run()
    assert [r.request.genome for r in part.results] == [r.request.genome for r in whole.results]
    assert part.strategy.result_candidate() == whole.strategy.result_candidate()


def test_wrap_up_finishes_the_step_in_flight_then_trains_the_winner() -> None:
    run = Run(nash(seed=7, steps=5), width=2)
    for _ in range(3):
        run.step()
    run.ctx.wrap_up = True
    run.run()
    assert run.results[-1].request.meta["role"] == "final"
    assert len(by_role(run, "child")) < 15


def test_all_children_failing_keeps_the_parent() -> None:
    run = Run(
        nash(seed=8), evaluate=lambda req, cid: (req.meta["role"] != "child" or req.meta["step"] == 2, 0.9)
    ).run()
    start = by_role(run, "start")[0]
    step2 = [r for r in by_role(run, "child") if r.request.meta["step"] == 2]
    assert {r.request.parent for r in step2} == {start.id}


def test_failed_start_ends_the_search() -> None:
    strategy = nash()
    run = Run(strategy, evaluate=lambda req, cid: (False, 0.0)).run()
    assert len(run.results) == 1 and strategy.done() and strategy.result_candidate() is None


@pytest.mark.parametrize(
    ("info", "shape", "classes"),
    [
        (DIGITS, (1, 8, 8), 10),
        (DIGITS.model_copy(update={"name": "mnist", "input_shape": (1, 28, 28)}), (1, 28, 28), 10),
        (
            DIGITS.model_copy(update={"name": "cifar100", "input_shape": (3, 32, 32), "num_outputs": 100}),
            (3, 32, 32),
            100,
        ),
    ],
)
def test_vanilla_start_is_fitted_to_the_dataset(info: DatasetInfo, shape: tuple, classes: int) -> None:  # type: ignore[type-arg]
    stats = parse(start_genome(setup(dataset=info))).stats()
    assert stats.input_shape == shape and stats.output_shape == (classes,)


def test_vanilla_example_file_is_the_default_start() -> None:
    example = parse((ROOT / "examples" / "vanilla.genome").read_text())
    assert example.same_structure(parse(VANILLA))
    cifar = DIGITS.model_copy(update={"name": "cifar10", "input_shape": (3, 32, 32)})
    assert parse(start_genome(setup(dataset=cifar))).same_structure(example)


def test_a_given_start_genome_is_fitted_to_the_data_unless_asked_not_to() -> None:
    text = "input 3x16x16\nconv(8, 3) relu gap linear(7)\n"
    fitted = parse(start_genome(setup(start_genome=text))).stats()
    assert fitted.input_shape == (1, 8, 8) and fitted.output_shape == (10,)
    with pytest.raises(DataError, match="start genome maps 3x16x16 to 7"):
        start_genome(setup(start_genome=text), fit=False)
    exact = "input 1x8x8\nconv(8, 3) relu gap linear(10)\n"
    assert start_genome(setup(start_genome=exact), fit=False) == canonical(parse(exact))[0]
    with pytest.raises(DataError, match="does not fit"):
        start_genome(
            setup(
                start_genome="input 1x32x32\nconv(8, 5, padding=0) maxpool(4) conv(8, 5, padding=0) gap linear(2)\n"
            )
        )


def test_vector_data_needs_a_start_genome() -> None:
    spirals = DatasetInfo(name="spirals", task="classification", input_shape=(2,), num_outputs=2,
                          train_size=1, val_size=1, test_size=1)  # fmt: skip
    with pytest.raises(DataError, match="vector inputs"):
        start_genome(setup(dataset=spirals))


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown operators"):
        NashConfig(operators=("deepen", "teleport"))
    assert set(NashConfig().operators) == {"deepen", "widen", "skip"}
    assert all(REWRITES[name].exact for name in MORPHISMS)


@pytest.mark.parametrize(("steps", "children"), [(0, 3), (2, 3), (3, 1)])
def test_planned_is_the_number_of_candidates_a_run_evaluates(steps: int, children: int) -> None:
    strategy = nash(steps=steps, children=children)
    planned = strategy.planned()
    assert planned == len(Run(strategy).run().results)
