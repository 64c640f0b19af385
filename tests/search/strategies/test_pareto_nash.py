"""Pareto-NASH: start front, generations of proposals and accepted children, the front update,
repair requests for approximate children, hypervolume per generation, sampling modes and state.

Evaluations are strategy_harness's deterministic pseudo-accuracy of the genome text (a stand-in
for testing the selection logic only; params = genome length); real training runs in
test_sh_pareto_end_to_end.py.
"""

from __future__ import annotations

import json

from genomorph.grammar import parse
from genomorph.search.strategies._pareto import nondominated
from genomorph.search.strategies.pareto_nash import START_NETWORKS, ParetoNash, ParetoNashConfig
from strategy_harness import Run, setup


def make(seed: int = 0, width: int = 1, **options: object) -> ParetoNash:
    config = ParetoNashConfig(
        **{"generations": 3, "proposals": 8, "accepted": 3, "epochs": 1, "start_epochs": 1, **options}
    )  # type: ignore[arg-type]
    return ParetoNash(config, setup(seed=seed, width=width))


def test_start_networks_span_the_papers_parameter_range() -> None:
    params = sorted(parse(text).stats().params for text in make().starts)
    assert len(params) == len(START_NETWORKS) == 4
    assert 10_000 < params[0] < 20_000 and 300_000 < params[-1] < 450_000
    assert sum("sep_conv" in text for text in make().starts) == 2


def test_generations_accept_children_of_front_members_and_keep_the_front_non_dominated() -> None:
    run = Run(make()).run()
    roles = [r.request.meta["role"] for r in run.results]
    assert roles == ["start"] * 4 + ["child"] * 9
    state = run.strategy.state
    assert [h["generation"] for h in state.history] == [1, 2, 3]
    assert all(h["proposals"] >= h["accepted"] == 3 for h in state.history)
    values = [p.values for p in state.evaluated]
    front_ids = {p.id for p in state.front}
    assert front_ids == {state.evaluated[i].id for i in nondominated(values)}
    # every child's parent was on the front when its generation began
    fronts = {0: {r.id for r in run.results[:4]}}
    for h in state.history:
        assert set(h["parents"]) <= set().union(*fronts.values())
        fronts[h["generation"]] = set(h["front"])
    children = [r for r in run.results if r.request.meta["role"] == "child"]
    assert children, "no children"
    assert all(r.request.rewrites and r.request.budget.schedule == "cosine" for r in children)


def test_hypervolume_per_generation_never_falls() -> None:
    run = Run(make(seed=2, generations=4)).run()
    summary = run.strategy.summary()
    hv = [summary["hypervolume_start"], *summary["hypervolume"]]
    assert len(hv) == 5 and all(v is not None and v > 0 for v in hv)
    assert all(b >= a - 1e-12 for a, b in zip(hv, hv[1:], strict=False)), hv
    ref = summary["reference_point"]
    assert ref["val_error"] == 1.0 and set(ref) == {"val_error", "log_params"}
    front = run.strategy.front()
    assert front is not None and front.objectives == ("val_error", "log_params")
    assert {m.candidate for m in front.members} == {p.id for p in run.strategy.state.front}


def test_approximate_children_ask_for_repair_against_their_parent() -> None:
    run = Run(make(seed=1, generations=4, operators=("remove-block", "prune-channels"), ops_max=1)).run()
    children = [r for r in run.results if r.request.meta["role"] == "child"]
    assert children, "no children"
    by_id = {r.id: r for r in run.results}
    for child in children:
        repair = child.request.repair
        assert repair is not None and repair.nodes and repair.epochs == make().repair_epochs
        parent = by_id[child.request.parent]
        assert repair.teacher_genome == parent.request.genome
        assert repair.teacher_checkpoint == parent.checkpoint
        n_nodes = len(parse(child.request.genome).order())
        assert all(0 <= n < n_nodes for n in repair.nodes)
    exact = Run(make(seed=1, operators=("deepen", "widen"))).run()
    assert all(r.request.repair is None for r in exact.results)


def test_objectives_and_uniform_sampling() -> None:
    config = ParetoNashConfig.model_validate({"objectives": "params,macs", "sampling": "uniform"})
    assert config.objectives == ("params", "macs")
    strategy = ParetoNash(
        config.model_copy(update={"generations": 2, "proposals": 6, "accepted": 2}), setup()
    )
    run = Run(strategy).run()
    assert run.strategy.front().objectives == ("val_error", "log_params", "log_macs")
    assert make(objectives=("latency",)).names == ("val_error", "latency_ms")


def test_latency_objective_collects_latency_in_every_request() -> None:
    strategy = make(objectives=("params", "latency"))
    run = Run(strategy)
    run.step()
    assert run.results and all(r.request.collect == ("latency",) for r in run.results)


def test_more_workers_overlap_generations_and_one_worker_does_not() -> None:
    one = Run(make(seed=3), width=1).run()
    assert len(one.results) == 4 + 9
    four = Run(make(seed=3, width=4), width=4).run()
    assert len(four.results) == 4 + 9
    assert [h["generation"] for h in four.strategy.state.history] == [1, 2, 3]


def test_state_round_trip_reproduces_the_rest_of_the_run() -> None:
    whole = Run(make(seed=4, width=2), width=2).run()
    part = Run(make(seed=4, width=2), width=2)
    for _ in range(7):
        part.step()
    state = json.loads(json.dumps(part.strategy.dump_state()))
    fresh = make(seed=4, width=2)
    fresh.load_state(state)  # no cached proposals: pending children are regenerated from their seeds
    part.strategy = fresh
    part.run()
    assert [r.request for r in part.results] == [r.request for r in whole.results]


def test_wrap_up_drops_pending_children_and_finishes() -> None:
    run = Run(make(generations=5))
    for _ in range(6):
        run.step()
    run.ctx.wrap_up = True
    run.run()
    assert run.strategy.done() and len(run.results) < run.strategy.planned()
