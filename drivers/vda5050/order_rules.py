"""The §6.6 rules an order must keep, checked before the driver sends it.

VDA 5050 2.0/2.1 §6.6.1 (concept and logic), §6.6.2 (orders and order update), §6.6.4.3 (order
update ids). Every refusal names the rule and the section, so the caller can fix the order.
"""

from __future__ import annotations

from dataclasses import dataclass

from linebridge.drivers.base import InvalidArgument
from linebridge.drivers.vda5050.messages import Order


class OrderRuleError(InvalidArgument):
    """An order breaks a §6.6 rule; `rule` is a stable short name for it."""

    def __init__(self, rule: str, section: str, detail: str) -> None:
        super().__init__(f"order breaks VDA 5050 {section} rule {rule!r}: {detail}")
        self.rule = rule


@dataclass(frozen=True, slots=True)
class OrderContext:
    """What the AGV holds: its order id and update id, and the last node of its base (the stitch)."""

    order_id: str
    order_update_id: int
    base_node_id: str
    base_sequence_id: int


def check_order(order: Order, current: OrderContext | None) -> None:
    """Raise OrderRuleError for the first §6.6 rule `order` breaks, given what the AGV holds."""
    _check_shape(order)
    _check_release(order)
    if current is not None and current.order_id == order.order_id:
        _check_update(order, current)
    elif order.nodes[0].sequence_id != 0:
        # §6.6.2: "first node of an order receives a 0"; the ids are reset when a new orderId is issued.
        raise OrderRuleError(
            "sequence_start",
            "§6.6.2",
            f"a new order starts at sequenceId 0, not {order.nodes[0].sequence_id}",
        )


def _check_shape(order: Order) -> None:
    nodes, edges = order.nodes, order.edges
    if not nodes:  # §6.6.1: "For a valid order, at least one node must be present."
        raise OrderRuleError("node_present", "§6.6.1", "an order has at least one node")
    if len(edges) != len(nodes) - 1:  # §6.6.1: "the number of nodes minus one, not more or less"
        raise OrderRuleError(
            "edge_count", "§6.6.1", f"{len(nodes)} node(s) need {len(nodes) - 1} edge(s), got {len(edges)}"
        )
    first = nodes[0].sequence_id
    for i, node in enumerate(nodes):  # §6.6.2: the sequenceId runs over nodes and edges alternately
        if node.sequence_id != first + 2 * i:
            raise OrderRuleError(
                "sequence_id",
                "§6.6.2",
                f"node {node.node_id!r} has sequenceId {node.sequence_id}, expected {first + 2 * i}",
            )
    for i, edge in enumerate(edges):
        if edge.sequence_id != first + 2 * i + 1:
            raise OrderRuleError(
                "sequence_id",
                "§6.6.2",
                f"edge {edge.edge_id!r} has sequenceId {edge.sequence_id}, expected {first + 2 * i + 1}",
            )
        start, end = nodes[i].node_id, nodes[i + 1].node_id
        if (edge.start_node_id, edge.end_node_id) != (start, end):  # §6.6.1: edges join the listed nodes
            raise OrderRuleError(
                "edge_nodes",
                "§6.6.1",
                f"edge {edge.edge_id!r} runs {edge.start_node_id!r}->{edge.end_node_id!r}, "
                f"but sits between {start!r} and {end!r}",
            )
    seen: set[str] = set()
    for element in [*nodes, *edges]:  # §6.8: an actionId identifies one action
        for action in element.actions:
            if action.action_id in seen:
                raise OrderRuleError(
                    "action_id_unique", "§6.8", f"actionId {action.action_id!r} is used twice"
                )
            seen.add(action.action_id)


def _check_release(order: Order) -> None:
    if not order.nodes[0].released:  # the base holds at least the first node
        raise OrderRuleError("base_present", "§6.6.1", "the first node must be released (the base)")
    horizon_from: str | None = None
    for i, node in enumerate(order.nodes):
        chain = [node] if i == 0 else [order.edges[i - 1], node]
        for element in chain:
            name = getattr(element, "node_id", None) or getattr(element, "edge_id", "")
            if element.released and horizon_from is not None:
                # §6.6.1: "After an unreleased edge, no released nodes or edges can follow in the sequence."
                raise OrderRuleError(
                    "base_then_horizon", "§6.6.1", f"{name!r} is released after unreleased {horizon_from!r}"
                )
            if not element.released and horizon_from is None:
                horizon_from = name
    for i, edge in enumerate(order.edges):
        if edge.released and not (order.nodes[i].released and order.nodes[i + 1].released):
            # §6.6.1: "An edge only can be released if both the start and end node of the edge are released."
            raise OrderRuleError(
                "edge_release", "§6.6.1", f"edge {edge.edge_id!r} is released but one of its nodes is not"
            )


def _check_update(order: Order, current: OrderContext) -> None:
    if order.order_update_id <= current.order_update_id:
        # §6.6.4.3: a lower orderUpdateId is rejected by the AGV, an equal one ignored.
        raise OrderRuleError(
            "update_id_increases",
            "§6.6.4.3",
            f"orderUpdateId {order.order_update_id} does not exceed the AGV's {current.order_update_id}",
        )
    first = order.nodes[0]
    if (first.node_id, first.sequence_id) != (current.base_node_id, current.base_sequence_id):
        # §6.6.2: "the first node of the job update corresponds to the last shared base node".
        raise OrderRuleError(
            "stitching_node",
            "§6.6.2",
            f"an update starts at the last base node {current.base_node_id!r} "
            f"(sequenceId {current.base_sequence_id}), not {first.node_id!r} (sequenceId {first.sequence_id})",
        )


def base_end(order: Order) -> OrderContext:
    """The context the AGV holds after accepting `order`: its id, update id and last base node."""
    last = order.nodes[0]
    for node in order.nodes:
        if node.released:
            last = node
    return OrderContext(order.order_id, order.order_update_id, last.node_id, last.sequence_id)
