"""The contract every rewrite keeps: pure, verified, stable ids, records that print and replay."""

from __future__ import annotations

import numpy as np
import pytest
from genomorph.ir import NotApplicable, verify
from genomorph.ir.rewrites import (
    APPROXIMATE,
    EXACT,
    REWRITES,
    Record,
    move_from_dict,
    move_to_dict,
    random_chain,
    replay,
    sample,
)
from genomorph.ir.weights import check_weights
from rewrite_helpers import APPLICABLE, APPLIES, NETS, net, same_snapshot, snapshot, trained

ALL = sorted(REWRITES)


def test_registry_names_and_exactness() -> None:
    assert set(EXACT) == {
        "deepen", "widen", "skip-add", "skip-concat", "merge-convex", "merge-concat", "split", "sepconv",
        "add-neurons", "hres-grow",
    }  # fmt: skip
    assert set(APPROXIMATE) == {
        "remove-block",
        "prune-channels",
        "prune-neurons",
        "substitute-sepconv",
        "hres-shrink",
    }
    for name, rewrite in REWRITES.items():
        assert name == rewrite.name
        assert rewrite.exact == (name in EXACT)


@pytest.mark.parametrize("name", ALL)
def test_each_rewrite_applies_exactly_where_the_table_says(name: str) -> None:
    # the table the candidate loops below are parametrised by: keep it true, both ways
    assert APPLIES[name], f"{name} has no small net to be tested on"
    assert {n for n in sorted(NETS) if REWRITES[name].candidates(net(n))} == set(APPLIES[name])


@pytest.mark.parametrize(("name", "net_name"), APPLICABLE)
def test_candidates_apply_purely_and_verify(name: str, net_name: str) -> None:
    graph = net(net_name)
    weights = trained(graph)
    before = snapshot(graph, weights)
    rng = np.random.default_rng(0)
    moves = REWRITES[name].candidates(graph, weights)
    assert moves, f"{name} has no candidates on {net_name}"
    for move in moves:
        assert move.node in graph
        result = REWRITES[name].apply(graph, weights, move, rng)
        assert same_snapshot(before, snapshot(graph, weights)), f"{name} {move} changed its input"
        verify(result.graph)
        check_weights(result.graph, result.weights)
        record = result.record
        assert str(record) == record.text and record.text.startswith(f"{name}: ")
        assert record.exact == (name in EXACT) or record.move.get("noise")
        # untouched nodes keep their ids; new ids are fresh
        assert set(graph.order()) - set(record.removed) <= set(result.graph.order())
        assert all(nid >= graph.new_id() for nid in record.created)
        assert set(result.repair) <= set(result.graph.order())
        if name in APPROXIMATE:
            assert result.repair, f"{name} {move} names no node to repair"


@pytest.mark.parametrize("name", ALL)
def test_not_applicable_leaves_input_alone(name: str) -> None:
    graph = net("branches")
    weights = trained(graph)
    before = snapshot(graph, weights)
    rewrite = REWRITES[name]
    with pytest.raises(NotApplicable):
        rewrite.moves_at(graph, graph.input_node())
    with pytest.raises(NotApplicable):
        rewrite.moves_at(graph, 999)
    sample_move = rewrite.candidates(net(APPLIES[name][0]))
    assert sample_move, f"{name} has no candidates on {APPLIES[name][0]}"
    # a move aimed at the input node of this graph
    bad = type(sample_move[0])(**{**move_to_dict(sample_move[0]), "node": graph.input_node()})
    with pytest.raises(NotApplicable):
        rewrite.apply(graph, weights, bad, np.random.default_rng(0))
    assert same_snapshot(before, snapshot(graph, weights))


@pytest.mark.parametrize("name", ALL)
def test_untrained_networks_get_default_weights(name: str) -> None:
    graph = net(APPLIES[name][-1])
    moves = REWRITES[name].candidates(graph)
    assert moves, f"{name} has no candidates on {APPLIES[name][-1]}"
    result = REWRITES[name].apply(graph, None, moves[-1], np.random.default_rng(1))
    check_weights(result.graph, result.weights)  # complete: every parameterised node


def test_record_round_trips_through_json() -> None:
    rng = np.random.default_rng(3)
    for name in ALL:
        graph = net(APPLIES[name][0])
        moves = REWRITES[name].candidates(graph)
        assert moves, f"{name} has no candidates on {APPLIES[name][0]}"
        record = REWRITES[name].apply(graph, None, moves[0], rng).record
        again = Record.model_validate_json(record.model_dump_json())
        assert again == record
        assert move_from_dict(REWRITES[name].move_type, again.move) == REWRITES[name].move(record.move)


@pytest.mark.parametrize("net_name", sorted(NETS))
def test_replay_reproduces_a_history(net_name: str) -> None:
    graph = net(net_name)
    weights = trained(graph)
    results = random_chain(graph, weights, 6, np.random.default_rng(7), names=ALL)
    records = [r.record.model_dump(mode="json") for r in results]  # as a run store keeps them
    again = replay(graph, weights, records)
    assert again is not None
    final = results[-1]
    assert again.graph.structure() == final.graph.structure()
    assert set(again.graph.order()) == set(final.graph.order())
    assert again.weights.keys() == final.weights.keys()
    for nid, arrays in final.weights.items():
        for key, array in arrays.items():
            np.testing.assert_array_equal(again.weights[nid][key], array)


def test_replay_of_nothing_is_none() -> None:
    assert replay(net("mlp"), None, []) is None


def test_sample_draws_every_applicable_rewrite() -> None:
    graph = net("branches")
    rng = np.random.default_rng(0)
    applicable = {name for name in EXACT if REWRITES[name].candidates(graph)}
    assert applicable == {name for name in EXACT if "branches" in APPLIES[name]}
    drawn = {sample(graph, rng)[0] for _ in range(100)}
    assert drawn == applicable
    by_place = [sample(graph, rng, by="place") for _ in range(50)]
    assert len({name for name, _ in by_place}) > 1
    for name, move in by_place:
        assert move in REWRITES[name].candidates(graph)


def test_sample_says_when_nothing_applies() -> None:
    with pytest.raises(NotApplicable, match="applies anywhere"):
        sample(net("mlp"), np.random.default_rng(0), names=["merge-convex", "sepconv"])


def test_unknown_rewrite_name() -> None:
    from genomorph.ir.rewrites import get

    with pytest.raises(NotApplicable, match="no rewrite called"):
        get("deeper")
