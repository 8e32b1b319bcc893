"""One AGV behind the fleet connection: its device description, telemetry and commands.

It is the handler the bridge routes the AGV's commands to (drivers/base.py DeviceHost). Commands end
only when the AGV's own state shows their result: an order when its base is driven and its actions
are final, an instant action when its actionState is FINISHED or FAILED (§6.10, §6.11). A
validationError, orderError or orderUpdateError the AGV reports (§6.6.4) fails the command with the
AGV's words.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from linebridge.drivers.base import (
    BatchSink,
    CommandKind,
    CommandRequest,
    CommandResult,
    DeviceDescription,
    DeviceError,
    DeviceKind,
    Driver,
    DriverContext,
    InvalidArgument,
    MethodArg,
    MethodSpec,
    ProgressFn,
    SampleBatch,
    Signal,
    StreamHints,
    Unsupported,
    ValueType,
)
from linebridge.drivers.vda5050 import messages as m
from linebridge.drivers.vda5050.order_rules import OrderContext, base_end, check_order
from linebridge.drivers.vda5050.signals import Columns, make_signals, state_values

# §6.8.1 predefined instant actions every AGV is asked to understand.
STANDARD_INSTANT = (
    "startPause",
    "stopPause",
    "cancelOrder",
    "initPosition",
    "stateRequest",
    "factsheetRequest",
)
ORDER_ERRORS = ("validationError", "orderError", "orderUpdateError")
_FINAL = ("FINISHED", "FAILED")

ORDER_METHOD = MethodSpec(
    "order",
    (MethodArg("order", ValueType.STRING, "JSON: orderId, orderUpdateId, nodes, edges (VDA 5050 §6.6)"),),
    description="send an order (checked against §6.6 first); ends when the AGV finished or failed it",
)
INSTANT_METHOD = MethodSpec(
    "instant_actions",
    (MethodArg("actions", ValueType.STRING, "JSON: a list of actions {actionType, actionParameters, ...}"),),
    description="send instant actions (§6.9); ends when each one is FINISHED or FAILED; runs beside a running order",
    immediate=True,  # §6.9: instant actions are for the AGV's running order (pause it, cancel it)
)

Send = Callable[[str, str, msgspec.Struct], Awaitable[None]]  # serial, topic, message


def ns_of(timestamp: datetime) -> int:
    """Nanoseconds since the epoch of a header timestamp."""
    return int(timestamp.timestamp() * 1_000_000) * 1000


class Agv(Driver):
    """The handler of one AGV device (attached by the fleet driver, never connected on its own)."""

    type_name = "vda5050"

    def __init__(self, ctx: DriverContext, manufacturer: str, serial: str, send: Send) -> None:
        super().__init__(ctx)
        self.manufacturer, self.serial, self._send = manufacturer, serial, send
        self.signals: list[Signal] = make_signals()
        self.columns: Columns | None = None
        self.factsheet: m.Factsheet | None = None
        self.state: m.State | None = None
        self.last_header = -1
        self.last_time: datetime | None = None
        self.seen_ns = 0
        self._last_values: dict[int, object] = {}
        self._waiters: list[asyncio.Future[m.State]] = []
        self._header_ids: dict[str, int] = {}
        self._sent: OrderContext | None = None

    # -- description -----------------------------------------------------------------------------
    def describe(self) -> DeviceDescription:
        """The AGV as a device: identity and kind from its factsheet, its signals and instant actions."""
        f = self.factsheet
        return DeviceDescription(
            kind=DeviceKind.AGV,
            vendor=self.manufacturer,
            model=f.type_specification.series_name if f else "",
            serial_number=self.serial,
            identity=f"vda5050:{self.manufacturer}/{self.serial}",
            name=f"{self.manufacturer} {self.serial}",
            signals=self.signals,
            methods=[ORDER_METHOD, INSTANT_METHOD],
            commands=frozenset({CommandKind.INVOKE, CommandKind.STOP}),
        )

    def attached(self, device_id: str) -> None:
        """Aliases were assigned: build the column alias lists."""
        self.columns = Columns.of(device_id, self.signals)

    def instant_types(self) -> set[str]:
        """The instant action types this AGV accepts (the standard ones and its factsheet's)."""
        actions = self.factsheet.protocol_features.agv_actions if self.factsheet else []
        # §7 agvActions: actionScopes INSTANT, NODE, EDGE; only the INSTANT ones go in instantActions.
        declared = {a.action_type for a in actions if not a.action_scopes or "INSTANT" in a.action_scopes}
        return set(STANDARD_INSTANT) | declared

    # -- telemetry -------------------------------------------------------------------------------
    def new_session(self) -> None:
        """The AGV (re)connected: its headerIds may start again (§6.4 counts per sent message)."""
        self.last_header, self.last_time = -1, None

    def is_stale(self, state: m.State) -> bool:
        """An older state than the last one seen, by headerId or timestamp."""
        if state.header_id <= self.last_header:
            return True
        return self.last_time is not None and state.timestamp < self.last_time

    def on_state(self, state: m.State, sink: BatchSink | None) -> None:
        """Take a state message: publish its values and end the commands it settles."""
        self.state, self.last_header, self.last_time = state, state.header_id, state.timestamp
        self.seen_ns = ns_of(state.timestamp)
        if self.columns is not None and sink is not None:
            batch = self.columns.state_batch(state, self.seen_ns)
            self._last_values.update(zip(batch.aliases, batch.values, strict=True))
            sink.publish(batch)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(state)

    def on_visualization(self, viz: m.Visualization, sink: BatchSink | None) -> None:
        """Take a visualization message: publish position and velocity."""
        if self.columns is None or sink is None:
            return
        self.seen_ns = ns_of(viz.timestamp)
        batch = self.columns.viz_batch(viz, self.seen_ns)
        if batch is not None:
            self._last_values.update(zip(batch.aliases, batch.values, strict=True))
            sink.publish(batch)

    def position(self) -> tuple[float, float, float, str] | None:
        """x, y, theta and map of the latest state or visualization."""
        if self.columns is None or self.state is None or self.state.agv_position is None:
            return None
        a = self.columns.state
        x, y, theta = (self._last_values.get(a[i]) for i in range(3))
        return float(x), float(y), float(theta), self.state.agv_position.map_id  # type: ignore[arg-type]

    # -- driver contract -------------------------------------------------------------------------
    async def connect(self) -> DeviceDescription:
        """The AGV's description (its connection is the fleet driver's)."""
        raise Unsupported("an AGV is attached through its fleet connection")

    async def stream(self, signals: Sequence[Signal], sink: BatchSink, hints: StreamHints) -> None:
        """Unsupported: an AGV's values arrive through its fleet connection, not a stream of its own."""
        raise Unsupported("an AGV streams through its fleet connection")

    async def close(self) -> None:
        """Nothing to close: the fleet driver owns the connection."""
        return None

    async def read(self, signals: Sequence[Signal]) -> SampleBatch:
        """The latest values the AGV reported."""
        if self.state is None:
            raise Unsupported(f"AGV {self.serial} has sent no state yet")
        values = dict(zip((s.alias for s in self.signals), state_values(self.state), strict=True))
        values.update(self._last_values)
        return SampleBatch(
            self.device_id,
            [s.alias for s in signals],
            [values[s.alias] for s in signals],
            [self.seen_ns] * len(signals),
        )

    def check(self, request: CommandRequest) -> None:
        """Refuse an order that breaks VDA 5050 §6.6 before anything is sent (INVALID_ARGUMENT naming the rule)."""
        if request.kind is CommandKind.INVOKE and request.method is not None:
            if request.method.name == "order":
                self._parse_order(str(request.args[0]))
            elif request.method.name == "instant_actions":
                self._parse_actions(str(request.args[0]))

    async def execute(self, request: CommandRequest, progress: ProgressFn) -> CommandResult:
        """Send an order or instant actions and wait until the AGV's state shows the result."""
        if request.kind is CommandKind.STOP:
            actions = [self._action("cancelOrder"), self._action("startPause")]
            return await self._run_instant(actions, progress, stop=True)
        if request.kind is CommandKind.INVOKE and request.method is not None:
            if request.method.name == "order":
                return await self._run_order(self._parse_order(str(request.args[0])), progress)
            if request.method.name == "instant_actions":
                return await self._run_instant(self._parse_actions(str(request.args[0])), progress)
        raise Unsupported(f"AGVs do not support {request.kind} commands")

    # -- parsing -----------------------------------------------------------------------------------
    def _header(self, topic: str) -> dict[str, object]:
        self._header_ids[topic] = self._header_ids.get(topic, -1) + 1  # §6.4: per topic
        return {
            "headerId": self._header_ids[topic],
            "timestamp": m.now(),
            "version": m.VERSION,
            "manufacturer": self.manufacturer,
            "serialNumber": self.serial,
        }

    def context(self) -> OrderContext | None:
        """What the AGV holds: from its state, or from our last order when the state has not caught up."""
        s = self.state
        if self._sent is not None and (
            s is None
            or (s.order_id == self._sent.order_id and s.order_update_id <= self._sent.order_update_id)
        ):
            return self._sent
        if s is None or not s.order_id:
            return None
        released = [n for n in s.node_states if n.released]
        node_id, seq = (
            (released[-1].node_id, released[-1].sequence_id)
            if released
            else (s.last_node_id, s.last_node_sequence_id)
        )
        return OrderContext(s.order_id, s.order_update_id, node_id, seq)

    def _parse_order(self, text: str) -> m.Order:
        try:
            body = msgspec.json.decode(text)
            if not isinstance(body, dict):
                raise InvalidArgument("order: expected a JSON object")
            order = msgspec.convert({**body, **self._header("order")}, m.Order)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise InvalidArgument(f"order: {exc}") from None
        check_order(order, self.context())
        return order

    def _action(self, action_type: str, blocking: str = "NONE", params: list[Any] | None = None) -> m.Action:
        return m.Action(
            action_type=action_type,
            action_id=f"lb-{uuid.uuid4().hex[:12]}",
            blocking_type=blocking,  # type: ignore[arg-type]
            action_parameters=params or [],
        )

    def _parse_actions(self, text: str) -> list[m.Action]:
        try:
            raw = msgspec.json.decode(text)
            items = raw if isinstance(raw, list) else [raw]
            actions = [
                msgspec.convert(
                    {"actionId": f"lb-{uuid.uuid4().hex[:12]}", "blockingType": "NONE", **item}, m.Action
                )
                for item in items
            ]
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
            raise InvalidArgument(f"instant_actions: {exc}") from None
        if not actions:
            raise InvalidArgument("instant_actions: no action given")
        allowed = self.instant_types()
        for action in actions:
            if action.action_type not in allowed:
                raise InvalidArgument(
                    f"instant_actions: {action.action_type!r} is neither predefined (§6.8.1) nor declared in "
                    f"AGV {self.serial}'s factsheet (allowed: {', '.join(sorted(allowed))})"
                )
        return actions

    def state_request(self) -> m.InstantActions:
        """An instantActions message asking for a state now (§6.8.1 stateRequest)."""
        return m.InstantActions(
            **_snake(self._header("instantActions")), actions=[self._action("stateRequest")]
        )

    # -- running ---------------------------------------------------------------------------------
    async def next_state(self) -> m.State:
        """The next state message this AGV sends."""
        waiter: asyncio.Future[m.State] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    def _new_errors(self, state: m.State, before: set[tuple[str, str]]) -> list[m.Error]:
        return [e for e in state.errors if (e.error_type, e.error_description or "") not in before]

    def _known_errors(self) -> set[tuple[str, str]]:
        return {(e.error_type, e.error_description or "") for e in self.state.errors} if self.state else set()

    async def _run_order(self, order: m.Order, progress: ProgressFn) -> CommandResult:
        known = self._known_errors()
        cancels = self._finished_cancels()
        action_ids = {a.action_id for element in [*order.nodes, *order.edges] for a in element.actions}
        base = sum(1 for n in order.nodes if n.released)
        await self._send(self.serial, "order", order)
        self._sent = base_end(order)
        while True:
            s = await self.next_state()
            for e in self._new_errors(s, known):
                if e.error_type in ORDER_ERRORS or e.error_level == "FATAL":
                    raise DeviceError(
                        f"AGV {self.serial}: {e.error_type}: {e.error_description or ''}".rstrip(": ")
                    )
            if s.order_id != order.order_id or s.order_update_id < order.order_update_id:
                continue
            if s.order_update_id > order.order_update_id:
                return CommandResult(
                    message=f"order {order.order_id} continued by update {s.order_update_id}"
                )
            if self._finished_cancels() - cancels:
                raise DeviceError(f"AGV {self.serial}: order {order.order_id} was cancelled (cancelOrder)")
            ours = [a for a in s.action_states if a.action_id in action_ids]
            for a in ours:
                if a.action_status == "FAILED":
                    raise DeviceError(
                        f"AGV {self.serial}: action {a.action_id} ({a.action_type}) FAILED: {a.result_description or ''}"
                    )
            left = sum(1 for n in s.node_states if n.released)
            progress(1.0 - left / max(base, 1), f"at {s.last_node_id}")
            if (
                left == 0
                and all(a.action_status == "FINISHED" for a in ours)
                and len(ours) == len(action_ids)
            ):
                return CommandResult(message=f"order {order.order_id} finished at {s.last_node_id}")

    def _finished_cancels(self) -> set[str]:
        s = self.state
        return {
            a.action_id
            for a in (s.action_states if s else [])
            if a.action_type == "cancelOrder" and a.action_status == "FINISHED"
        }

    async def _run_instant(
        self, actions: list[m.Action], progress: ProgressFn, stop: bool = False
    ) -> CommandResult:
        known = self._known_errors()
        message = m.InstantActions(**_snake(self._header("instantActions")), actions=actions)
        ids = {a.action_id: a.action_type for a in actions}
        await self._send(self.serial, "instantActions", message)
        while True:
            s = await self.next_state()
            states = {a.action_id: a for a in s.action_states if a.action_id in ids}
            progress(sum(1 for a in states.values() if a.action_status in _FINAL) / len(ids), "")
            if len(states) < len(ids) or any(a.action_status not in _FINAL for a in states.values()):
                continue
            failed = [a for a in states.values() if a.action_status == "FAILED"]
            if stop:  # cancelOrder fails when there is no order (§6.6.3.2): the AGV is stopped all the same
                failed = [a for a in failed if ids[a.action_id] != "cancelOrder"]
            if failed:
                words = "; ".join(f"{ids[a.action_id]}: {a.result_description or 'FAILED'}" for a in failed)
                errors = [e for e in self._new_errors(s, known) if _refers(e, set(ids))]
                words += "".join(f"; {e.error_type}: {e.error_description or ''}" for e in errors)
                raise DeviceError(f"AGV {self.serial}: {words}")
            return CommandResult(message=", ".join(f"{t} FINISHED" for t in ids.values()))


def _refers(error: m.Error, ids: set[str]) -> bool:
    return any(r.reference_value in ids for r in error.error_references)


def _snake(header: dict[str, object]) -> dict[str, object]:
    names = {"headerId": "header_id", "serialNumber": "serial_number"}
    return {names.get(k, k): v for k, v in header.items()}
