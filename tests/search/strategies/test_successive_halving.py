"""SH / SHR / SHRsep: the halving schedule, survivors continuing from their own weights, the
one-schedule-per-step (SH) against restarts (SHR), the operator sets, wrap-up and resumable state.

Evaluations are strategy_harness's deterministic pseudo-accuracy of the genome text: a stand-in
for testing the selection logic only; real training runs in test_sh_pareto_end_to_end.py.
"""

from __future__ import annotations

import json

import pytest
from genomorph.ir import ConfigError
from genomorph.search.strategies._common import Member
from genomorph.search.strategies.successive_halving import (
    FIVE_OPERATORS,
    SuccessiveHalving,
    SuccessiveHalvingConfig,
    SuccessiveHalvingRestarts,
    SuccessiveHalvingSeparable,
    halving_plan,
    survivors,
)
from strategy_harness import Run, score, setup


def make(cls=SuccessiveHalving, seed: int = 0, width: int = 1, **options: object):  # type: ignore[no-untyped-def]
    config = SuccessiveHalvingConfig(
        **{
            "steps": 2,
            "children": 4,
            "ops": 2,
            "step_epochs": 8,
            "start_epochs": 1,
            "final_epochs": 1,
            **options,
        }
    )  # type: ignore[arg-type]
    return cls(config, setup(seed=seed, width=width))


def by_step(run: Run, step: int) -> list:  # type: ignore[type-arg]
    return [r for r in run.results if r.request.meta.get("step") == step]


def test_halving_plan_follows_algorithm_1() -> None:
    # paper 001: n = 8, b = 160 -> 3 rungs of b/3 child-epochs each, winner + b/3
    rungs, extra = halving_plan(8, 160)
    assert [(r.population, r.epochs) for r in rungs] == [(8, 7), (4, 13), (2, 27)]
    assert extra == 53
    rungs, extra = halving_plan(8, 24)
    assert [(r.population, r.epochs) for r in rungs] == [(8, 1), (4, 2), (2, 4)] and extra == 8
    rungs, _ = halving_plan(5, 12)  # not a power of two: ceil(log2 5) = 3 rungs, 5 -> 3 -> 2
    assert [r.population for r in rungs] == [5, 3, 2]
    with pytest.raises(ConfigError):
        halving_plan(1, 10)


def test_survivors_are_the_better_half_ties_to_the_earlier() -> None:
    members = [Member(id=i, genome="g", objective=o) for i, o in enumerate([0.5, 0.9, 0.9, 0.1])]
    assert [m.id for m in survivors(members, 2)] == [1, 2]


def test_each_step_halves_with_survivors_continuing_from_their_own_weights() -> None:
    run = Run(make()).run()
    roles = [r.request.meta["role"] for r in run.results]
    # start, 2 steps x (4 + 2 children trainings + 1 winner), final
    assert roles == ["start"] + (["child"] * 6 + ["winner"]) * 2 + ["final"]
    start = run.results[0]
    parent = start
    for step in (1, 2):
        batch = by_step(run, step)
        assert batch, "no candidates in the step"
        first = [r for r in batch if r.request.meta["rung"] == 0]
        second = [r for r in batch if r.request.meta["rung"] == 1]
        winner = [r for r in batch if r.request.meta["role"] == "winner"]
        assert len(first) == 4 and len(second) == 2 and len(winner) == 1
        assert {r.request.parent for r in first} == {parent.id}
        assert all(r.request.init_checkpoint is None for r in first)  # weights travel in the proposal
        best_two = sorted(first, key=lambda r: (-score(r.request.genome), r.id))[:2]
        assert [r.request.parent for r in second] == [r.id for r in best_two]
        assert [r.request.init_checkpoint for r in second] == [r.checkpoint for r in best_two]
        assert [r.request.genome for r in second] == [r.request.genome for r in best_two]
        top = min(second, key=lambda r: (-score(r.request.genome), r.id))
        assert winner[0].request.parent == top.id and winner[0].request.init_checkpoint == top.checkpoint
        parent = winner[0]
    final = run.results[-1]
    assert (
        final.request.genome == parent.request.genome and final.request.init_checkpoint == parent.checkpoint
    )
    assert final.request.budget.train_on == "train+val" and final.request.budget.test
    assert run.strategy.result_candidate() == final.id
    steps = run.strategy.summary()["steps"]
    assert [h["step"] for h in steps] == [0, 1, 2] and all(h["moved"] for h in steps[1:])
    assert [len(r["trained"]) for r in steps[1]["rungs"]] == [4, 2, 1]


def test_sh_runs_one_cosine_schedule_over_the_step_and_shr_restarts() -> None:
    sh = Run(make(SuccessiveHalving)).run()
    shr = Run(make(SuccessiveHalvingRestarts)).run()
    # b = 8, 4 children, 2 rungs: 1 epoch x 4, 2 epochs x 2, winner 4 -> schedule of 7 epochs
    sh_budgets = [(r.request.budget.epochs, r.request.budget.schedule_offset, r.request.budget.schedule_epochs)
                  for r in by_step(sh, 1)]  # fmt: skip
    assert sh_budgets == [(1, 0.0, 7.0)] * 4 + [(2, 1.0, 7.0)] * 2 + [(4, 3.0, 7.0)]
    shr_budgets = [(r.request.budget.epochs, r.request.budget.schedule_offset, r.request.budget.schedule_epochs)
                   for r in by_step(shr, 1)]  # fmt: skip
    assert shr_budgets == [(1, 0.0, None)] * 4 + [(2, 0.0, None)] * 2 + [(4, 0.0, None)]
    assert all(r.request.budget.schedule == "cosine" for r in sh.results[1:-1] + shr.results[1:-1])


def test_operator_sets_of_the_three_variants() -> None:
    def used(run: Run) -> set[str]:
        return {rec["rewrite"] for r in run.results for rec in r.request.rewrites}

    assert make(SuccessiveHalving).operators == FIVE_OPERATORS
    assert make(SuccessiveHalvingRestarts).operators == FIVE_OPERATORS
    assert make(SuccessiveHalvingSeparable).operators == (*FIVE_OPERATORS, "sepconv")
    sep = Run(make(SuccessiveHalvingSeparable, seed=3, ops=5, steps=2)).run()
    assert used(sep) <= set(FIVE_OPERATORS) | {"sepconv"}
    plain = Run(make(SuccessiveHalving, seed=3, ops=5, steps=2)).run()
    assert used(plain) and used(plain) <= set(FIVE_OPERATORS)
    assert "sepconv" in used(sep)


def test_failed_children_are_discarded_and_all_failed_rung_keeps_the_parent() -> None:
    def fail_some(request, cid):  # type: ignore[no-untyped-def]
        return (request.meta.get("child") != 0, score(request.genome))

    run = Run(make(), evaluate=fail_some).run()
    assert all(r.request.meta.get("child") != 0 for r in run.results if r.request.meta.get("rung") == 1)

    def fail_children(request, cid):  # type: ignore[no-untyped-def]
        return (request.meta.get("role") != "child", score(request.genome))

    run = Run(make(), evaluate=fail_children).run()
    assert run.results[-1].request.genome == run.results[0].request.genome  # never moved
    assert all(h.get("moved") is False for h in run.strategy.state.history[1:])


def test_wrap_up_ends_the_rung_in_flight_and_trains_the_best() -> None:
    run = Run(make(steps=3))
    for _ in range(4):  # start + three children of step 1 observed
        run.step()
    run.ctx.wrap_up = True
    run.run()
    final = run.results[-1]
    assert final.request.meta["role"] == "final"
    assert len(run.results) < run.strategy.planned()


def test_state_round_trip_reproduces_the_rest_of_the_run() -> None:
    whole = Run(make(seed=5, width=2), width=2).run()
    first = Run(make(seed=5, width=2), width=2)
    for _ in range(7):
        first.step()
    state = json.loads(json.dumps(first.strategy.dump_state()))
    fresh = make(seed=5, width=2)
    fresh.load_state(state)
    first.strategy = fresh
    first.run()
    assert [r.request for r in first.results] == [r.request for r in whole.results]


def test_planned_count_matches_a_full_run() -> None:
    run = Run(make(steps=2)).run()
    assert len(run.results) == run.strategy.planned() == 1 + 2 * 7 + 1
