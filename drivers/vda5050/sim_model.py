"""The simulated AGV's vehicle logic, without MQTT: orders, motion, actions, loads, battery, errors.

Order acceptance follows §6.6 (and Figure 8): a lower orderUpdateId is rejected with
`orderUpdateError`, a repeat is ignored (§6.6.4.3), a malformed order is refused with
`validationError` (§6.6.4.1), an action the AGV cannot do with `orderError` (§6.6.4.2).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from linebridge.drivers.vda5050 import messages as m
from linebridge.drivers.vda5050.order_rules import OrderContext, OrderRuleError, check_order

# Sim-only instant actions, declared in the factsheet: raise an error, clear errors, drop the link.
SIM_ACTIONS = ("simRaiseError", "simClearErrors", "simDropConnection")
STANDARD_ACTIONS = (
    "startPause",
    "stopPause",
    "cancelOrder",
    "initPosition",
    "stateRequest",
    "factsheetRequest",
)
NODE_ACTIONS = ("pick", "drop")
ORDER_WARNINGS = ("validationError", "orderError", "orderUpdateError")
_FINAL = ("FINISHED", "FAILED")


@dataclass
class AgvConfig:
    """How one simulated AGV behaves."""

    serial: str
    manufacturer: str = "linebridge-sim"
    interface: str = "uagv"
    x: float = 0.0
    y: float = 0.0
    map_id: str = "plant"
    node_id: str = ""
    viz_hz: float = 5.0
    state_interval: float = 30.0
    action_seconds: float = 1.0  # how long a pick or drop takes
    drain_per_m: float = 0.05  # battery % per m driven
    speed_max: float = 2.0
    reconnect_seconds: float = 1.0  # after a deliberate connection drop


@dataclass
class _Running:
    """An action the AGV executes (node action or instant action)."""

    action: m.Action
    state: m.ActionState
    left: float = 0.0


@dataclass
class _World:
    """Everything that goes into `state`."""

    order_id: str = ""
    order_update_id: int = 0
    last_node_id: str = ""
    last_node_seq: int = 0
    nodes: list[m.Node] = field(default_factory=list)
    edges: list[m.Edge] = field(default_factory=list)
    actions: dict[str, m.ActionState] = field(default_factory=dict)
    queue: list[_Running] = field(default_factory=list)
    loads: list[m.Load] = field(default_factory=list)
    errors: list[m.Error] = field(default_factory=list)
    battery: float = 100.0
    paused: bool = False
    driving: bool = False


class AgvModel:
    """Vehicle logic: feed it orders and instant actions, call step(dt); read `w` and the position."""

    def __init__(self, config: AgvConfig) -> None:
        self.cfg = config
        self.x, self.y, self.theta = config.x, config.y, 0.0
        self.w = _World(last_node_id=config.node_id)
        self._speed = 0.0
        self._dirty = True  # publish a state at the next tick (§6.10: on every event)
        self._drop = asyncio.Event()
        self.want_factsheet = False

    def changed(self) -> None:
        """Mark the vehicle's state as changed (the next state message goes out now)."""
        self._dirty = True

    # -- errors ----------------------------------------------------------------------------------
    def _warn(self, error_type: str, description: str, refs: dict[str, str] | None = None) -> None:
        self._error(error_type, "WARNING", description, refs)

    def _error(
        self, error_type: str, level: str, description: str, refs: dict[str, str] | None = None
    ) -> None:
        error = m.Error(
            error_type=error_type,
            error_level=level,  # type: ignore[arg-type]
            error_description=description,
            error_references=[m.Reference(k, v) for k, v in (refs or {}).items()],
        )
        self.w.errors = [e for e in self.w.errors if e.error_type != error_type] + [error]
        self.changed()

    @property
    def fatal(self) -> bool:
        """Whether a FATAL error is active."""
        return any(e.error_level == "FATAL" for e in self.w.errors)

    # -- orders ----------------------------------------------------------------------------------
    def _base_end(self) -> OrderContext:
        w = self.w
        released = [n for n in w.nodes if n.released]
        node_id, seq = (
            (released[-1].node_id, released[-1].sequence_id)
            if released
            else (w.last_node_id, w.last_node_seq)
        )
        return OrderContext(w.order_id, w.order_update_id, node_id, seq)

    def _active(self) -> bool:
        return bool(self.w.nodes) or any(r.action.action_id in self.w.actions for r in self.w.queue)

    def on_order(self, order: m.Order) -> None:
        """Accept, update, ignore or reject an order (§6.6.2, §6.6.4)."""
        w, refs = self.w, {"orderId": order.order_id, "orderUpdateId": str(order.order_update_id)}
        current: OrderContext | None = None
        if order.order_id == w.order_id:
            if order.order_update_id == w.order_update_id:
                return  # §6.6.4.3: the same orderId and orderUpdateId twice: the second is ignored
            if order.order_update_id < w.order_update_id:
                self._warn(
                    "orderUpdateError", f"orderUpdateId {order.order_update_id} < {w.order_update_id}", refs
                )
                return
            current = self._base_end()
        elif self._active():
            self._warn("orderUpdateError", f"still executing order {w.order_id!r}", refs)
            return
        try:
            check_order(order, current)
            if current is None:
                self._check_reachable(order.nodes[0])
        except OrderRuleError as exc:
            self._warn("validationError", str(exc), refs)
            return
        for element in [*order.nodes, *order.edges]:
            for action in element.actions:
                if action.action_type not in NODE_ACTIONS:
                    refs["actionType"] = action.action_type
                    self._warn("orderError", f"cannot perform action {action.action_type!r}", refs)
                    return
        self._accept(order, current)

    def _check_reachable(self, first: m.Node) -> None:
        # §6.6.1: "The first node of an order must be trivially reachable for the AGV."
        p = first.node_position
        if first.node_id == self.w.last_node_id and not self.w.nodes:
            return
        reach = (p.allowed_deviation_x_y or 0.5) if p is not None else 0.0
        if p is None or math.hypot(p.x - self.x, p.y - self.y) > reach:
            raise OrderRuleError(
                "first_node_reachable", "§6.6.1", f"node {first.node_id!r} is not where the AGV is"
            )

    def _accept(self, order: m.Order, current: OrderContext | None) -> None:
        w = self.w
        w.errors = [e for e in w.errors if e.error_type not in ORDER_WARNINGS]  # §6.6.4.1: until accepted
        new_nodes, new_edges = list(order.nodes), list(order.edges)
        if current is None:
            w.actions = {k: v for k, v in w.actions.items() if v.action_status not in _FINAL}
            w.nodes, w.edges = new_nodes, new_edges
        else:  # stitch: keep the base up to the stitching node, replace the horizon (§6.6.2)
            # The stitching node is sent again unchanged; the AGV keeps its first copy (or has passed it).
            w.nodes = [n for n in w.nodes if n.released] + new_nodes[1:]
            w.edges = [e for e in w.edges if e.released] + new_edges
        w.order_id, w.order_update_id = order.order_id, order.order_update_id
        fresh = order.nodes[1:] if current is not None else order.nodes
        for element in [*fresh, *order.edges]:
            for action in element.actions:
                w.actions[action.action_id] = m.ActionState(
                    action_id=action.action_id, action_type=action.action_type, action_status="WAITING"
                )
        if current is None:
            self._arrive()  # the first node is where the AGV stands
        self.changed()

    # -- motion ----------------------------------------------------------------------------------
    def _arrive(self) -> None:
        w = self.w
        node = w.nodes.pop(0)
        if w.edges and w.edges[0].end_node_id == node.node_id and w.edges[0].sequence_id < node.sequence_id:
            w.edges.pop(0)
        w.last_node_id, w.last_node_seq = node.node_id, node.sequence_id
        if node.node_position is not None:
            self.x, self.y = node.node_position.x, node.node_position.y
        for action in node.actions:
            w.queue.append(_Running(action, w.actions[action.action_id], self.cfg.action_seconds))
        self.changed()

    def step(self, dt: float) -> None:
        """Advance the world by dt seconds: run the current action or drive toward the next node."""
        w = self.w
        moving = False
        if w.queue:
            if not w.paused:
                self._run_action(w.queue[0], dt)
        elif w.nodes and w.nodes[0].released and not w.paused and not self.fatal:
            moving = self._drive(dt)
        if moving != w.driving:
            w.driving = moving
            self.changed()

    def _drive(self, dt: float) -> bool:
        w = self.w
        target = w.nodes[0]
        if target.node_position is None or not (w.edges and w.edges[0].released):
            return False
        edge = w.edges[0]
        self._speed = min(edge.max_speed or self.cfg.speed_max, self.cfg.speed_max)
        dx, dy = target.node_position.x - self.x, target.node_position.y - self.y
        distance = math.hypot(dx, dy)
        travel = min(distance, self._speed * dt)
        if distance > 1e-9:
            self.theta = math.atan2(dy, dx)
            self.x += dx / distance * travel
            self.y += dy / distance * travel
        w.battery = max(0.0, w.battery - travel * self.cfg.drain_per_m)
        if distance - travel <= 1e-6:
            w.edges.pop(0)
            self._arrive()
        return True

    # -- actions ---------------------------------------------------------------------------------
    def _run_action(self, running: _Running, dt: float) -> None:
        if running.state.action_status == "WAITING":
            running.state.action_status = "RUNNING"
            self.changed()
        running.left -= dt
        if running.left > 0:
            return
        self.w.queue.pop(0)
        failure = self._load_effect(running.action)
        running.state.action_status = "FAILED" if failure else "FINISHED"
        running.state.result_description = failure or None
        self.changed()

    def _load_effect(self, action: m.Action) -> str:
        """Apply a pick or drop to `loads`; return why it failed, or ""."""
        params = {p.key: p.value for p in action.action_parameters}
        load_id = str(params.get("loadId", ""))
        loads = self.w.loads
        if action.action_type == "pick":
            if loads:
                return f"already carrying load {loads[0].load_id}"
            loads.append(
                m.Load(
                    load_id=load_id or None,
                    load_type=str(params.get("loadType", "")) or None,
                    load_position="front",
                    weight=120.0,
                )
            )
            return ""
        if not loads:
            return "no load to drop"
        if load_id and loads[0].load_id != load_id:
            return f"carrying load {loads[0].load_id}, not {load_id}"
        loads.pop(0)
        return ""

    def on_instant(self, message: m.InstantActions) -> None:
        """Answer instant actions (§6.9, predefined in §6.8.1, plus the sim-only ones)."""
        for action in message.actions:
            state = m.ActionState(
                action_id=action.action_id, action_type=action.action_type, action_status="RUNNING"
            )
            self.w.actions[action.action_id] = state
            failure = self._instant(action)
            state.action_status = "FAILED" if failure else "FINISHED"
            state.result_description = failure or None
        self.changed()

    def _instant(self, action: m.Action) -> str:
        w, t = self.w, action.action_type
        params = {p.key: p.value for p in action.action_parameters}
        if t in ("startPause", "stopPause"):
            w.paused = t == "startPause"
        elif t == "cancelOrder":
            return self._cancel(action.action_id)
        elif t == "initPosition":
            self.x, self.y = float(params.get("x", self.x)), float(params.get("y", self.y))  # type: ignore[arg-type]
            self.theta = float(params.get("theta", self.theta))  # type: ignore[arg-type]
            w.last_node_id = str(params.get("lastNodeId", w.last_node_id))
        elif t == "factsheetRequest":
            self.want_factsheet = True
        elif t == "simRaiseError":
            level = str(params.get("errorLevel", "FATAL"))
            self._error(
                str(params.get("errorType", "simError")),
                level,
                str(params.get("errorDescription", "raised on request")),
            )
        elif t == "simClearErrors":
            w.errors = []
        elif t == "simDropConnection":
            self._drop.set()
        elif t != "stateRequest":
            return f"unknown instant action {t!r}"
        return ""

    def _cancel(self, action_id: str) -> str:
        w = self.w
        if not self._active():
            # §6.6.3.2: no order to cancel: the action fails, warning noOrderToCancel referencing it.
            self._warn("noOrderToCancel", "there is no order to cancel", {"action_id": action_id})
            return "no order to cancel"
        for running in w.queue:  # §6.6.3: scheduled and running actions are cancelled and report FAILED
            running.state.action_status = "FAILED"
            running.state.result_description = "cancelled"
        for state in w.actions.values():
            if state.action_status == "WAITING":
                state.action_status = "FAILED"
        w.queue.clear()
        w.nodes, w.edges = [], []  # orderId and orderUpdateId are kept (§6.6.3)
        return ""
