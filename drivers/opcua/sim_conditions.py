"""Alarms & Conditions of the robot simulator: real AlarmConditionType events, Retain, Acknowledge.

OPC UA Part 9: each condition has a ConditionId (a node of its own), ActiveState/AckedState two-state
variables, Retain while it is active or unacknowledged (§5.5.2), and the Acknowledge method of
AcknowledgeableConditionType (§5.7.3), called with the EventId of the notification being acknowledged.
ConditionRefresh (§5.5.7) is served by asyncua from the retained events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from asyncua import Server, ua
from asyncua.server.event_generator import EventGenerator

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SimCondition:
    """One condition instance: its node, its event generator (holding the current state), and state."""

    name: str
    severity: int
    message: str
    node_id: ua.NodeId
    generator: EventGenerator
    active: bool = False
    acked: bool = True
    confirmed: bool = True


class SimConditions:
    """The simulator's conditions; `set(name, active)` raises or clears one and notifies clients."""

    def __init__(self) -> None:
        self.conditions: dict[str, SimCondition] = {}
        self.by_node: dict[ua.NodeId, SimCondition] = {}
        self.acknowledged: list[tuple[str, str]] = []  # (condition, comment), for tests
        self.confirmed: list[tuple[str, str]] = []

    async def build(
        self, server: Server, parent: ua.NodeId, ns: int, specs: list[tuple[str, int, str]]
    ) -> None:
        """Create a node and an event generator per (name, severity, message)."""
        folder = await server.get_node(parent).add_object(
            ua.NodeId("Alarms", ns), ua.QualifiedName("Alarms", ns)
        )
        for name, severity, message in specs:
            node = await folder.add_object(ua.NodeId(f"Alarms/{name}", ns), ua.QualifiedName(name, ns))
            gen = await server.get_event_generator(ua.ObjectIds.AlarmConditionType, ua.ObjectIds.Server)
            ev = gen.event
            ev.NodeId = node.nodeid  # the ConditionId
            ev.ConditionName = name
            ev.SourceNode = node.nodeid
            ev.SourceName = name
            ev.Severity = severity
            setattr(ev, "EnabledState/Id", True)
            ev.EnabledState = ua.LocalizedText("Enabled")
            cond = SimCondition(name, severity, message, node.nodeid, gen)
            self._fields(cond)
            self.conditions[name] = cond
            self.by_node[node.nodeid] = cond
        session = server.iserver.isession
        session.add_method_callback(
            ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge), self._acknowledge
        )
        session.add_method_callback(
            ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Confirm), self._confirm
        )
        service = server.iserver.subscription_service
        for etype in (ua.ObjectIds.RefreshStartEventType, ua.ObjectIds.RefreshEndEventType):
            marker = EventGenerator(session)
            await marker.init(etype, add_generates_event=False)
            service.standard_events[etype] = marker

        # asyncua's own ConditionRefresh (a @uamethod: it unwraps the SubscriptionId Variant itself).
        session.add_method_callback(
            ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh), service.condition_refresh
        )

    def _fields(self, cond: SimCondition) -> None:
        ev = cond.generator.event
        setattr(ev, "ActiveState/Id", cond.active)
        ev.ActiveState = ua.LocalizedText("Active" if cond.active else "Inactive")
        setattr(ev, "AckedState/Id", cond.acked)
        ev.AckedState = ua.LocalizedText("Acknowledged" if cond.acked else "Unacknowledged")
        setattr(ev, "ConfirmedState/Id", cond.confirmed)
        ev.ConfirmedState = ua.LocalizedText("Confirmed" if cond.confirmed else "Unconfirmed")
        ev.Retain = cond.active or not cond.acked or not cond.confirmed  # Part 9 §5.5.2

    async def set(self, name: str, active: bool) -> None:
        """Raise or clear a condition; a newly active condition is unacknowledged."""
        cond = self.conditions[name]
        if cond.active == active:
            return
        cond.active = active
        if active:
            cond.acked, cond.confirmed = False, True  # a new activation starts a new ack/confirm cycle
        self._fields(cond)
        text = cond.message if active else f"{cond.message} (returned to normal)"
        await cond.generator.trigger(message=text)

    async def _acknowledge(self, parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        """AcknowledgeableConditionType.Acknowledge(EventId, Comment) called on a ConditionId."""
        cond = self.by_node.get(parent)
        if cond is None:
            return ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)
        if len(args) != 2:
            return ua.StatusCode(ua.StatusCodes.BadArgumentsMissing)
        current = cond.generator.event.EventId
        current_bytes = current.Value if isinstance(current, ua.Variant) else current
        if _plain(args[0]) != current_bytes:
            return ua.StatusCode(ua.StatusCodes.BadEventIdUnknown)  # Part 9 §5.7.3: not the latest state
        if cond.acked:
            return ua.StatusCode(ua.StatusCodes.BadConditionBranchAlreadyAcked)
        cond.acked = True
        cond.confirmed = False  # Part 9 §5.7.4: after an acknowledgement the condition waits for a Confirm
        text = _plain(args[1])
        comment = text.Text if isinstance(text, ua.LocalizedText) else str(text or "")
        self.acknowledged.append((cond.name, comment or ""))
        self._fields(cond)
        ev = cond.generator.event
        ev.Comment = ua.LocalizedText(comment or "")
        await cond.generator.trigger(message=f"{cond.message} (acknowledged)")
        return []

    async def _confirm(self, parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        """AcknowledgeableConditionType.Confirm(EventId, Comment) called on a ConditionId."""
        cond = self.by_node.get(parent)
        if cond is None:
            return ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)
        if len(args) != 2:
            return ua.StatusCode(ua.StatusCodes.BadArgumentsMissing)
        current = cond.generator.event.EventId
        if _plain(args[0]) != (current.Value if isinstance(current, ua.Variant) else current):
            return ua.StatusCode(ua.StatusCodes.BadEventIdUnknown)
        if cond.confirmed:
            return ua.StatusCode(ua.StatusCodes.BadConditionBranchAlreadyConfirmed)
        cond.confirmed = True
        text = _plain(args[1])
        self.confirmed.append(
            (cond.name, text.Text if isinstance(text, ua.LocalizedText) else str(text or ""))
        )
        self._fields(cond)
        await cond.generator.trigger(message=f"{cond.message} (confirmed)")
        return []


def _plain(arg: object) -> object:
    """A method argument's value (asyncua hands Variants to some callbacks and plain values to others)."""
    return arg.Value if isinstance(arg, ua.Variant) else arg
