"""Property tests for the §6.6 order rules (drivers/vda5050/order_rules.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linebridge.drivers.vda5050 import messages as m
from linebridge.drivers.vda5050.order_rules import OrderContext, OrderRuleError, base_end, check_order


def make_order(
    names: list[str], released: int, first_seq: int = 0, order_id: str = "o", update: int = 0
) -> m.Order:
    nodes = [
        m.Node(node_id=n, sequence_id=first_seq + 2 * i, released=i < released, actions=[])
        for i, n in enumerate(names)
    ]
    edges = [
        m.Edge(
            edge_id=f"e{i}",
            sequence_id=first_seq + 2 * i + 1,
            released=i + 1 < released,
            start_node_id=names[i],
            end_node_id=names[i + 1],
            actions=[],
        )
        for i in range(len(names) - 1)
    ]
    return m.Order(
        **m.header(0, "x", "y"), order_id=order_id, order_update_id=update, nodes=nodes, edges=edges
    )


@st.composite
def orders(draw: st.DrawFn, first_seq: int = 0) -> m.Order:
    names = draw(
        st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=12)
    )  # loops allowed
    released = draw(st.integers(1, len(names)))
    return make_order(names, released, first_seq)


@given(orders())
def test_a_well_formed_new_order_passes(order: m.Order) -> None:
    check_order(order, None)


@given(orders(), st.data())
@settings(max_examples=300)
def test_every_broken_rule_is_named(order: m.Order, data: st.DataObject) -> None:
    mutations = ["sequence_id", "base_then_horizon", "base_present", "node_present"]
    if order.edges:
        mutations += ["edge_count", "edge_nodes", "edge_release"]
    rule = data.draw(st.sampled_from(mutations))
    nodes, edges = order.nodes, order.edges
    if rule == "node_present":
        nodes.clear()
        edges.clear()
    elif rule == "edge_count":
        edges.pop(data.draw(st.integers(0, len(edges) - 1)))
    elif rule == "sequence_id":
        target = data.draw(st.sampled_from([*nodes[1:], *edges] or nodes))
        if target is nodes[0]:
            rule = "sequence_start"
        target.sequence_id += data.draw(st.sampled_from([-1, 1, 2, 7]))
    elif rule == "edge_nodes":
        edge = data.draw(st.sampled_from(edges))
        edge.end_node_id += "-elsewhere"
    elif rule == "edge_release":
        i = data.draw(st.integers(0, len(edges) - 1))
        for j, n in enumerate(nodes):
            n.released = j <= i
        for e in edges[:i]:
            e.released = True
        for e in edges[i:]:
            e.released = False
        edges[i].released = True  # released edge, unreleased end node
        rule = "edge_release"
    elif rule == "base_present":
        for element in [*nodes, *edges]:
            element.released = False
    elif rule == "base_then_horizon":
        if len(nodes) == 1:  # add an unreleased edge to a released node
            last = nodes[0]
            edges.append(
                m.Edge(
                    edge_id="ez",
                    sequence_id=1,
                    released=False,
                    start_node_id=last.node_id,
                    end_node_id="z",
                    actions=[],
                )
            )
            nodes.append(m.Node(node_id="z", sequence_id=2, released=True, actions=[]))
        else:  # everything after the first node unreleased, but the last node released again
            for element in [*nodes[1:], *edges]:
                element.released = False
            nodes[-1].released = True
    with pytest.raises(OrderRuleError) as caught:
        check_order(order, None)
    assert caught.value.rule == rule, str(caught.value)
    assert "§6" in str(caught.value)


@given(orders(), st.integers(0, 5), st.integers(1, 4))
def test_an_update_stitches_on_the_last_base_node_with_a_higher_update_id(
    order: m.Order, extra: int, step: int
) -> None:
    held = base_end(order)
    stitch = make_order(
        [held.base_node_id, *["n"] * extra], released=1 + extra, first_seq=held.base_sequence_id, update=step
    )
    check_order(stitch, held)
    same = make_order([held.base_node_id], 1, held.base_sequence_id, update=0)
    with pytest.raises(OrderRuleError, match="update_id_increases"):
        check_order(same, held)
    moved = make_order([held.base_node_id + "x"], 1, held.base_sequence_id, update=step)
    with pytest.raises(OrderRuleError, match="stitching_node"):
        check_order(moved, held)


def test_a_new_order_id_starts_over_at_sequence_zero() -> None:
    held = OrderContext("old", 4, "a", 6)
    check_order(make_order(["a", "b"], 2, order_id="new"), held)
    with pytest.raises(OrderRuleError, match="sequence_start"):
        check_order(make_order(["a", "b"], 2, first_seq=6, order_id="new"), held)
