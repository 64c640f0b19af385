"""The Graph wrapper: editing, ordering, identity, and the structural checks of verify()."""

from __future__ import annotations

import pytest
from genomorph.ir import Graph, ShapeError, VerifyError, verify
from genomorph.ir.ops import Add, Aux, Concat, Conv, GlobalAvgPool, Input, Linear, Relu, ShapeMismatch


def small_net() -> tuple[Graph, dict[str, int]]:
    g = Graph()
    x = g.add(Input(shape=(3, 8, 8)))
    c = g.add(Conv(channels=4), [x], name="c")
    r = g.add(Relu(), [c])
    a = g.add(Add(), [r, r])
    p = g.add(GlobalAvgPool(), [a])
    out = g.add(Linear(features=2), [p])
    return g, {"x": x, "c": c, "r": r, "a": a, "p": p, "out": out}


def test_inputs_are_ordered_by_port_and_duplicates_kept() -> None:
    g, n = small_net()
    assert g.inputs(n["a"]) == [n["r"], n["r"]]
    assert g.users(n["r"]) == [(n["a"], 0), (n["a"], 1)]


def test_copy_is_independent() -> None:
    g, n = small_net()
    h = g.copy()
    h.set_op(n["c"], Conv(channels=8))
    h.remove(n["out"])
    assert g.op(n["c"]) == Conv(channels=4)
    assert n["out"] in g and n["out"] not in h
    assert g.shapes()[n["c"]] == (4, 8, 8)


def test_edits_invalidate_cached_shapes() -> None:
    g, n = small_net()
    assert g.shapes()[n["a"]] == (4, 8, 8)
    g.set_op(n["c"], Conv(channels=6))
    assert g.shapes()[n["a"]] == (6, 8, 8)


def test_new_ids_are_never_reused() -> None:
    g, n = small_net()
    g.remove(n["out"])
    fresh = g.add(Linear(features=3), [n["p"]])
    assert fresh > max(n.values())


def test_find_accepts_ids_and_names() -> None:
    g, n = small_net()
    assert g.find("c") == n["c"] == g.find(f"n{n['c']}") == g.find(str(n["c"]))
    with pytest.raises(KeyError):
        g.find("nope")


def test_relabeled_and_structure_ignore_ids() -> None:
    g, n = small_net()
    h = Graph()
    h.add(Input(shape=(1,)), node_id=40)  # a different numbering of the same network
    h.remove(40)
    x = h.add(Input(shape=(3, 8, 8)), node_id=100)
    c = h.add(Conv(channels=4), [x], name="c")
    r = h.add(Relu(), [c])
    a = h.add(Add(), [r, r])
    p = h.add(GlobalAvgPool(), [a])
    h.add(Linear(features=2), [p])
    assert g.same_structure(h)
    relabeled, mapping = h.relabeled()
    assert relabeled.order() == list(range(6)) and mapping[100] == 0
    assert relabeled.same_structure(g)
    h.set_name(c, "other")
    assert not g.same_structure(h)


def test_replace_uses_rewires_every_user_but_the_kept() -> None:
    g, n = small_net()
    extra = g.add(Relu(), [n["c"]])
    g.replace_uses(n["c"], extra, keep=[extra])
    assert g.inputs(n["r"]) == [extra]
    assert g.inputs(extra) == [n["c"]]


def test_stats_totals() -> None:
    g, _ = small_net()
    s = verify(g).stats()
    assert s.params == (4 * 3 * 9 + 4) + (2 * 4 + 2)
    assert s.macs == 4 * 8 * 8 * 3 * 9 + 4 * 2
    assert s.depth == 2
    assert s.input_shape == (3, 8, 8) and s.output_shape == (2,)
    assert s.histogram["add"] == 1


def test_cycle_is_reported_with_the_nodes() -> None:
    g, n = small_net()
    g.set_inputs(n["c"], [n["r"]])  # c -> r -> c
    with pytest.raises(VerifyError, match="cycle"):
        verify(g)


def test_two_outputs_are_rejected_unless_aux() -> None:
    g, n = small_net()
    dangling = g.add(Linear(features=5), [n["p"]])
    with pytest.raises(VerifyError, match="exactly one output"):
        verify(g)
    g.remove(dangling)
    head = g.add(Linear(features=5), [n["p"]])
    g.add(Aux(weight=0.4), [head])
    assert verify(g).aux_outputs()


def test_arity_and_shape_errors_name_the_node() -> None:
    g, n = small_net()
    g.set_inputs(n["a"], [n["r"]])
    with pytest.raises(VerifyError, match=rf"n{n['a']} \(add\) takes at least 2"):
        verify(g)
    g, n = small_net()
    other = g.add(Conv(channels=5), [n["x"]])
    g.set_inputs(n["a"], [n["r"], other])
    with pytest.raises(ShapeError, match="channel mismatch"):
        verify(g)


def test_concat_downsampling_factors() -> None:
    cat = Concat(downsample=True)
    assert cat.out_shape([(4, 16, 16), (2, 8, 8)]) == (6, 8, 8)
    assert cat.pool_factors([(4, 32, 32), (2, 8, 8)]) == [4, 1]
    with pytest.raises(ShapeMismatch, match="spatial mismatch") as err:
        cat.out_shape([(4, 24, 24), (2, 8, 8)])
    assert "factors of 2 or 4" in (err.value.hint or "")
    with pytest.raises(ShapeMismatch) as err:
        Concat().out_shape([(4, 16, 16), (2, 8, 8)])
    assert "downsample=true" in (err.value.hint or "")


def test_order_is_networkx_lexicographical_order_on_random_dags() -> None:
    import random

    import networkx as nx
    from genomorph.ir.ops import Identity

    seed = 20261202
    rng = random.Random(seed)
    for trial in range(200):
        g = Graph()
        ids: list[int] = [g.add(Input(shape=(4,)), node_id=rng.randrange(1000))]
        for _ in range(rng.randint(0, 25)):
            # ids in random order (not creation order), two-input adds, and add(x, x)'s double edge
            inputs = [rng.choice(ids), rng.choice(ids)] if rng.random() < 0.5 else [rng.choice(ids)]
            node_id = rng.choice([i for i in range(1000) if i not in ids])
            ids.append(g.add(Add() if len(inputs) == 2 else Identity(), inputs, node_id=node_id))
        expected = list(nx.lexicographical_topological_sort(g._g))
        assert g.order() == expected, f"seed {seed}, trial {trial}"


def test_cached_inputs_and_users_follow_edits() -> None:
    g, n = small_net()
    assert g.inputs(n["p"]) == [n["a"]] and g.users(n["c"]) == [(n["r"], 0)]
    extra = g.add(Relu(), [n["c"]])
    assert g.users(n["c"]) == [(n["r"], 0), (extra, 0)]
    g.set_inputs(n["p"], [extra])
    assert g.inputs(n["p"]) == [extra]
    h = g.copy()
    h.set_inputs(n["p"], [n["a"]])
    assert h.inputs(n["p"]) == [n["a"]] and g.inputs(n["p"]) == [extra]
    returned = g.inputs(n["a"])
    returned.append(999)  # a caller's list: the cache keeps its own
    assert g.inputs(n["a"]) == [n["r"], n["r"]]


def test_remove_unreachable_drops_what_feeds_no_kept_output() -> None:
    g, n = small_net()
    branch = g.add(Relu(), [n["c"]])
    tail = g.add(Relu(), [branch])  # a dangling chain off c
    removed = g.remove_unreachable([n["out"]])
    assert removed == {branch, tail}
    assert g.order() == [n["x"], n["c"], n["r"], n["a"], n["p"], n["out"]]
    assert g.users(n["c"]) == [(n["r"], 0)]
    assert g.remove_unreachable([n["out"]]) == set()


def test_memo_computes_once_per_graph_until_an_edit_and_holds_for_copies() -> None:
    g, n = small_net()
    calls: list[int] = []

    def width() -> int:
        calls.append(1)
        return g.shape(n["c"])[0]

    assert g.memo(("width", n["c"]), width) == 4 and g.memo(("width", n["c"]), width) == 4
    assert len(calls) == 1
    h = g.copy()  # identical: what g memoised holds for h
    assert h.memo(("width", n["c"]), lambda: -1) == 4
    h.set_op(n["c"], Conv(channels=6))  # an edit of the copy forgets its memos, not g's
    assert h.memo(("width", n["c"]), lambda: h.shape(n["c"])[0]) == 6
    assert g.memo(("width", n["c"]), width) == 4 and len(calls) == 1
    g.set_op(n["c"], Conv(channels=5))
    assert g.memo(("width", n["c"]), width) == 5 and len(calls) == 2


def test_a_memoised_refusal_is_raised_again_as_a_new_exception() -> None:
    from genomorph.ir import NotApplicable
    from genomorph.ir.rewrites.prune_channels import check_prunable

    g, n = small_net()
    errors = []
    for _ in range(2):
        with pytest.raises(NotApplicable, match="not a") as caught:
            check_prunable(g, n["r"], image=None)  # a relu has no units of its own
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert check_prunable(g, n["c"], image=True) == 4


def test_a_graph_and_its_unedited_copy_share_later_memos() -> None:
    g, n = small_net()
    h = g.copy()
    assert h.memo("fact", lambda: "from h") == "from h"
    assert g.memo("fact", lambda: "from g") == "from h"  # the same graph: computed once for both
    g.set_op(n["c"], Conv(channels=6))
    assert g.memo("fact", lambda: "g edited") == "g edited"
    assert h.memo("fact", lambda: "not again") == "from h"
