"""The demo plant's station graph: goods-in -> body shop -> paint -> goods-out, and orders along it."""

from __future__ import annotations

import math

from linebridge.drivers.vda5050.messages import (
    Action,
    ActionParameter,
    Edge,
    Node,
    NodePosition,
    Order,
    header,
)

MAP_ID = "plant"
# Station node -> (x, y) in m on map "plant".
STATIONS: dict[str, tuple[float, float]] = {
    "goods-in": (0.0, 0.0),
    "body-shop": (24.0, 0.0),
    "paint": (24.0, 16.0),
    "goods-out": (0.0, 16.0),
}
LOOP = ["goods-in", "body-shop", "paint", "goods-out"]
EDGE_SPEED = 2.0  # m/s, each edge's maxSpeed


def zones(half: float = 3.0) -> dict[str, dict[str, list[list[float]]]]:
    """Zone polygons around each station: map id -> zone name -> [[x, y], ...] (for config)."""
    return {
        MAP_ID: {
            name: [[x - half, y - half], [x + half, y - half], [x + half, y + half], [x - half, y + half]]
            for name, (x, y) in STATIONS.items()
        }
    }


def node(node_id: str, sequence_id: int, released: bool = True, actions: list[Action] | None = None) -> Node:
    """A station node at its position."""
    x, y = STATIONS[node_id]
    return Node(
        node_id=node_id,
        sequence_id=sequence_id,
        released=released,
        actions=actions or [],
        node_position=NodePosition(x=x, y=y, map_id=MAP_ID, allowed_deviation_x_y=0.5),
    )


def load_action(kind: str, action_id: str, load_id: str, load_type: str = "body") -> Action:
    """A pick or drop action (§6.8.1 predefined) carrying the load's id as a parameter."""
    return Action(
        action_type=kind,
        action_id=action_id,
        blocking_type="HARD",
        action_parameters=[
            ActionParameter("loadId", load_id),
            ActionParameter("loadType", load_type),
        ],
    )


def route_order(
    manufacturer: str,
    serial: str,
    order_id: str,
    path: list[str],
    actions: dict[int, list[Action]] | None = None,
    update_id: int = 0,
    first_sequence: int = 0,
    released: int | None = None,
) -> Order:
    """An order along station names; `actions` by node index; the first `released` nodes form the base."""
    actions = actions or {}
    count = len(path) if released is None else released
    nodes = [node(name, first_sequence + 2 * i, i < count, actions.get(i)) for i, name in enumerate(path)]
    edges = []
    for i in range(len(path) - 1):
        (ax, ay), (bx, by) = STATIONS[path[i]], STATIONS[path[i + 1]]
        edges.append(
            Edge(
                edge_id=f"{path[i]}->{path[i + 1]}",
                sequence_id=first_sequence + 2 * i + 1,
                released=i + 1 < count,
                start_node_id=path[i],
                end_node_id=path[i + 1],
                actions=[],
                max_speed=EDGE_SPEED,
                length=math.hypot(bx - ax, by - ay),
            )
        )
    return Order(
        **header(0, manufacturer, serial),
        order_id=order_id,
        order_update_id=update_id,
        nodes=nodes,
        edges=edges,
    )
