"""OPC UA Alarms & Conditions on the client side: event subscription, ConditionRefresh, Acknowledge.

OPC UA Part 9: events of AlarmConditionType are subscribed on the Server object (§5.5.1); after the
subscription exists the client calls ConditionRefresh (§5.5.7) to get every condition with Retain
true; Acknowledge (§5.7.3) is called on the ConditionId with the EventId of the state acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from asyncua import ua
from asyncua.client.ua_session import UaSession

from linebridge.drivers.base import AlarmReport, DeviceError, NotFound

# (browse path below the event type, type the field belongs to); the ConditionId is the NodeId attribute.
_FIELDS: tuple[tuple[str, int], ...] = (
    ("EventId", ua.ObjectIds.BaseEventType),
    ("Time", ua.ObjectIds.BaseEventType),
    ("Message", ua.ObjectIds.BaseEventType),
    ("Severity", ua.ObjectIds.BaseEventType),
    ("SourceName", ua.ObjectIds.BaseEventType),
    ("ConditionName", ua.ObjectIds.ConditionType),
    ("Retain", ua.ObjectIds.ConditionType),
    ("ActiveState/Id", ua.ObjectIds.AlarmConditionType),
    ("AckedState/Id", ua.ObjectIds.AcknowledgeableConditionType),
    ("ConfirmedState/Id", ua.ObjectIds.AcknowledgeableConditionType),  # optional: null when not offered
)


def event_filter() -> ua.EventFilter:
    """Select the fields above plus the ConditionId; only events of AlarmConditionType (or subtypes)."""
    selects = []
    for path, type_id in _FIELDS:
        op = ua.SimpleAttributeOperand()
        op.TypeDefinitionId = ua.NodeId(type_id)
        op.BrowsePath = [ua.QualifiedName(p, 0) for p in path.split("/")]
        op.AttributeId = ua.AttributeIds.Value
        selects.append(op)
    cid = ua.SimpleAttributeOperand()
    cid.TypeDefinitionId = ua.NodeId(ua.ObjectIds.ConditionType)
    cid.AttributeId = ua.AttributeIds.NodeId
    selects.append(cid)
    where = ua.ContentFilter()
    element = ua.ContentFilterElement()
    element.FilterOperator = ua.FilterOperator.OfType
    element.FilterOperands = [ua.LiteralOperand(Value=ua.Variant(ua.NodeId(ua.ObjectIds.AlarmConditionType)))]
    where.Elements = [element]
    return ua.EventFilter(SelectClauses=selects, WhereClause=where)


def snake(name: str) -> str:
    """ConditionName -> alarm name: 'MotorOverTemperature' -> 'motor_over_temperature'."""
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).strip("_")
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in out.lower()) or "condition"


@dataclass(slots=True)
class _Known:
    condition_id: ua.NodeId
    event_id: bytes


class ConditionWatch:
    """One event subscription on the Server object; reports conditions to `report` as AlarmReports."""

    def __init__(
        self, session: UaSession, report: Callable[[AlarmReport], None], logger: logging.Logger
    ) -> None:
        self._session = session
        self._report = report
        self._log = logger
        self.known: dict[str, _Known] = {}
        self.subscription_id: int | None = None

    async def start(self, publishing_interval: float) -> None:
        """Subscribe to A&C events, then ConditionRefresh so conditions already active are reported."""
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=publishing_interval * 1000.0,
            RequestedLifetimeCount=300,
            RequestedMaxKeepAliveCount=10,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        result = await self._session.create_subscription(params, self._on_publish)
        self.subscription_id = result.SubscriptionId
        item = ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(
                NodeId=ua.NodeId(ua.ObjectIds.Server), AttributeId=ua.AttributeIds.EventNotifier
            ),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=ua.MonitoringParameters(
                ClientHandle=1, SamplingInterval=0, Filter=event_filter(), QueueSize=1000, DiscardOldest=True
            ),
        )
        params_items = ua.CreateMonitoredItemsParameters(
            SubscriptionId=self.subscription_id,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            ItemsToCreate=[item],
        )
        (created,) = await self._session.create_monitored_items(params_items)
        if not created.StatusCode.is_good():
            self._log.info("the server offers no Alarms & Conditions events (%s)", created.StatusCode.name)
            return
        await self.refresh()

    async def refresh(self) -> None:
        """ConditionRefresh (Part 9 §5.5.7): the server resends every retained condition."""
        request = ua.CallMethodRequest(
            ObjectId=ua.NodeId(ua.ObjectIds.ConditionType),
            MethodId=ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh),
            InputArguments=[ua.Variant(self.subscription_id, ua.VariantType.UInt32)],
        )
        (result,) = await self._session.call([request])
        if not result.StatusCode.is_good():
            self._log.info("ConditionRefresh refused: %s", result.StatusCode.name)

    def _on_publish(self, result: ua.PublishResult) -> None:
        for notification in result.NotificationMessage.NotificationData or ():
            if isinstance(notification, ua.EventNotificationList):
                for event in notification.Events:
                    self._event([f.Value for f in event.EventFields])

    def _event(self, fields: list[object]) -> None:
        if len(fields) != len(_FIELDS) + 1:
            return
        event_id, _time, message, severity, source, name, retain, active, acked, confirmed, condition_id = (
            fields
        )
        if not name or not isinstance(condition_id, ua.NodeId):
            return  # RefreshStart/End and other non-condition events
        key = snake(str(name))
        self.known[key] = _Known(condition_id, bytes(event_id or b""))
        text = message.Text if isinstance(message, ua.LocalizedText) else str(message or "")
        self._report(
            AlarmReport(
                name=key,
                active=bool(active),
                acked=bool(acked),
                severity=int(severity or 500),
                message=text or str(name),
                source=str(source or ""),
                retain=bool(retain),
                confirmed=True if confirmed is None else bool(confirmed),
            )
        )

    async def acknowledge(self, name: str, comment: str) -> None:
        """Forward an operator's acknowledgement to the server's Acknowledge method (Part 9 §5.7.3)."""
        await self._call(name, comment, ua.ObjectIds.AcknowledgeableConditionType_Acknowledge, "Acknowledge")

    async def confirm(self, name: str, comment: str) -> None:
        """Forward an operator's confirmation to the server's Confirm method (Part 9 §5.7.4)."""
        await self._call(name, comment, ua.ObjectIds.AcknowledgeableConditionType_Confirm, "Confirm")

    async def _call(self, name: str, comment: str, method: int, what: str) -> None:
        known = self.known.get(name)
        if known is None:
            raise NotFound(f"the server reported no condition {name!r}")
        request = ua.CallMethodRequest(
            ObjectId=known.condition_id,
            MethodId=ua.NodeId(method),
            InputArguments=[
                ua.Variant(known.event_id, ua.VariantType.ByteString),
                ua.Variant(ua.LocalizedText(comment), ua.VariantType.LocalizedText),
            ],
        )
        (result,) = await self._session.call([request])
        if not result.StatusCode.is_good():
            raise DeviceError(f"the server refused {what} of {name}: {result.StatusCode.name}")

    async def stop(self) -> None:
        """Delete the subscription (best effort)."""
        if self.subscription_id is None:
            return
        sid, self.subscription_id = self.subscription_id, None
        with contextlib.suppress(Exception):
            await self._session.delete_subscriptions([sid])
        self._session._subscription_callbacks.pop(sid, None)
