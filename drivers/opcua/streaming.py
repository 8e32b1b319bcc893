"""One OPC UA subscription whose publish responses become SampleBatches, one batch per response.

asyncua's Subscription object explodes every DataChangeNotification into one event (and, in
handler mode, one task) per monitored item. This module registers its own publish callback with the
session instead, so each PublishResponse is decoded straight into the columns of one SampleBatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from asyncua import ua
from asyncua.client.ua_session import UaSession

from linebridge.drivers.base import (
    BatchSink,
    Quality,
    SampleBatch,
    Signal,
    StreamHints,
    Unavailable,
    Value,
    ValueType,
)
from linebridge.drivers.opcua.conversion import sample_of, status_name
from linebridge.drivers.tasks import bounded

MAX_QUEUE_SIZE = 1000
CHUNK = 500
# Filters a server may refuse (OPC 10000-4 §7.22.2): the item is retried without a deadband.
_FILTER_REFUSALS = frozenset(
    {
        ua.StatusCodes.BadMonitoredItemFilterUnsupported,
        ua.StatusCodes.BadFilterNotAllowed,
        ua.StatusCodes.BadDeadbandFilterInvalid,
        ua.StatusCodes.BadMonitoredItemFilterInvalid,
    }
)
_NUMERIC = (ValueType.DOUBLE, ValueType.INT)


@dataclass(frozen=True, slots=True)
class SubscriptionSettings:
    """Subscription timing, in seconds (the driver's options)."""

    publishing_interval: float
    keepalive_interval: float
    request_timeout: float


class SubscriptionStream:
    """Streams `signals` into `sink` until the link breaks (raises Unavailable) or it is cancelled."""

    def __init__(
        self,
        session: UaSession,
        device_id: str,
        signals: Sequence[Signal],
        sink: BatchSink,
        hints: StreamHints,
        settings: SubscriptionSettings,
        node_id: Callable[[Signal], ua.NodeId],
        link_down: Callable[[], str | None],
        logger: logging.Logger,
    ) -> None:
        self._session = session
        self._device_id = device_id
        self._signals = list(signals)
        self._aliases = [s.alias for s in signals]  # client handle = index into these columns
        self._types = [s.value_type for s in signals]
        self._sink = sink
        self._hints = hints
        self._settings = settings
        self._node_id = node_id
        self._link_down = link_down
        self._log = logger
        self._bad: dict[int, int] = {}  # client handle -> bad status, while it lasts
        self._degraded = False
        self._lost: asyncio.Future[str] | None = None
        self._last_publish = time.monotonic()
        self._keepalive = settings.keepalive_interval  # revised by the server on create
        self._closed = False
        self.subscription_id: int | None = None
        self.batches = 0
        self.timestamps_replaced = 0

    async def run(self) -> None:
        """Create the subscription and its monitored items, then wait for the link to break."""
        self._lost = asyncio.get_running_loop().create_future()
        try:
            await self._create()
            while True:
                done, _ = await asyncio.wait(
                    [self._lost], timeout=min(0.5, self._settings.keepalive_interval)
                )
                reason = self._lost.result() if done else self._health()
                if reason is not None:
                    raise Unavailable(f"OPC UA stream of {self._device_id} stopped: {reason}")
        finally:
            await self._delete()

    def lose(self, reason: str) -> None:
        """Wake run() because the connection is gone."""
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)

    def _health(self) -> str | None:
        down = self._link_down()
        if down is not None:
            return down
        # OPC 10000-4 §5.13.1: the server answers a publish request at least every keep-alive
        # interval, so a longer silence means the server or the path to it is gone.
        silent = time.monotonic() - self._last_publish
        if silent > 3 * self._keepalive + self._settings.request_timeout:
            return f"no publish response or keep-alive for {silent:.1f} s"
        return None

    async def _create(self) -> None:
        settings = self._settings
        keepalive = max(1, math.ceil(settings.keepalive_interval / settings.publishing_interval))
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=settings.publishing_interval * 1000.0,
            RequestedLifetimeCount=keepalive * 10,
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        result = await self._session.create_subscription(params, self._on_publish)
        self.subscription_id = result.SubscriptionId
        revised = result.RevisedPublishingInterval * result.RevisedMaxKeepAliveCount / 1000.0
        self._keepalive = max(settings.keepalive_interval, revised)
        self._last_publish = time.monotonic()
        refused = await self._monitor(list(range(len(self._signals))), with_filter=True)
        retry = [h for h, code in refused.items() if code in _FILTER_REFUSALS]
        if retry:
            for handle in retry:
                del refused[handle]
            refused.update(await self._monitor(retry, with_filter=False))
        for handle, code in refused.items():
            self._log.warning("cannot monitor %s: %s", self._signals[handle].path, status_name(code))
            self._bad[handle] = code
        self._report_degraded()

    async def _monitor(self, handles: list[int], with_filter: bool) -> dict[int, int]:
        """Create monitored items for `handles`; return the refused ones with their status."""
        refused: dict[int, int] = {}
        for start in range(0, len(handles), CHUNK):
            chunk = handles[start : start + CHUNK]
            params = ua.CreateMonitoredItemsParameters(
                SubscriptionId=self.subscription_id,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
                ItemsToCreate=[self._item(h, with_filter) for h in chunk],
            )
            results = await self._session.create_monitored_items(params)
            for handle, result in zip(chunk, results, strict=True):
                if not result.StatusCode.is_good():
                    refused[handle] = result.StatusCode.value
        return refused

    def _item(self, handle: int, with_filter: bool) -> ua.MonitoredItemCreateRequest:
        hints = self._hints
        sampling = max(hints.sampling_interval, 0.0)
        per_publish = self._settings.publishing_interval / sampling if sampling > 0 else MAX_QUEUE_SIZE
        deadband = None
        if with_filter and hints.deadband > 0 and self._types[handle] in _NUMERIC:
            deadband = ua.DataChangeFilter(
                Trigger=ua.DataChangeTrigger.StatusValue,
                DeadbandType=ua.DeadbandType.Absolute,
                DeadbandValue=hints.deadband,
            )
        # Queue every sample taken between two publishes, so sampled data is not thinned to the last.
        parameters = ua.MonitoringParameters(
            ClientHandle=handle,
            SamplingInterval=sampling * 1000.0,
            Filter=deadband,
            QueueSize=min(MAX_QUEUE_SIZE, math.ceil(per_publish) + 1),
            DiscardOldest=True,
        )
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(
                NodeId=self._node_id(self._signals[handle]), AttributeId=ua.AttributeIds.Value
            ),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=parameters,
        )

    def _on_publish(self, result: ua.PublishResult) -> None:
        """Session publish-loop callback: one call per PublishResponse."""
        if self._closed:
            return
        self._last_publish = time.monotonic()
        if not result.NotificationMessage.NotificationData:
            self._sink.alive()  # a keep-alive (OPC 10000-4 §5.13.1.1): the server is there, nothing changed
        for notification in result.NotificationMessage.NotificationData or ():
            if isinstance(notification, ua.DataChangeNotification):
                self._deliver(notification.MonitoredItems)
            elif isinstance(notification, ua.StatusChangeNotification) and not notification.Status.is_good():
                # BadShutdown / BadTimeout: the server dropped the subscription, or asyncua's
                # connection watchdog reports the transport gone.
                self.lose(f"subscription status {notification.Status.name}")

    def _deliver(self, items: Sequence[ua.MonitoredItemNotification]) -> None:
        """Decode one DataChangeNotification into the columns of one SampleBatch."""
        aliases: list[int] = []
        values: list[Value] = []
        stamps: list[int] = []
        qualities: list[int] = []
        kinds: set[ValueType] = set()
        count = len(self._aliases)
        all_good = True
        for item in items:
            handle = item.ClientHandle
            if handle >= count:
                continue
            data = item.Value
            kind = self._types[handle]
            value, stamp, quality, trusted = sample_of(data, kind)
            if not trusted:
                self._count_clamped(handle)
            if quality is Quality.BAD:
                status = 0 if data.StatusCode is None else data.StatusCode.value
                self._bad[handle] = status or ua.StatusCodes.BadTypeMismatch
            elif self._bad:
                self._bad.pop(handle, None)
            all_good = all_good and quality is Quality.GOOD
            aliases.append(self._aliases[handle])
            values.append(value)
            stamps.append(stamp)
            qualities.append(quality.value)
            kinds.add(kind)
        if aliases:
            self.batches += 1
            self._sink.publish(
                SampleBatch(
                    device_id=self._device_id,
                    aliases=aliases,
                    values=values,
                    timestamps=stamps,
                    qualities=None if all_good else qualities,
                    value_type=kinds.pop() if len(kinds) == 1 else None,
                )
            )
        self._report_degraded()

    def _count_clamped(self, handle: int) -> None:
        """A timestamp the server sent as 0 or beyond int64 ns: counted, logged once per stream."""
        self.timestamps_replaced += 1
        if self.timestamps_replaced == 1:
            self._log.warning(
                "%s: %s has a source timestamp outside 1677-2262 (OPC UA DateTime 0 or max); "
                "replaced and marked UNCERTAIN (counted in timestamps_replaced)",
                self._device_id,
                self._signals[handle].path,
            )

    def _report_degraded(self) -> None:
        """Tell the sink when data turns bad and when it is all good again, not on every batch."""
        degraded = bool(self._bad)
        if degraded == self._degraded:
            return
        self._degraded = degraded
        if not degraded:
            self._sink.degraded(None)
            return
        handle, status = next(iter(self._bad.items()))
        self._sink.degraded(
            f"{len(self._bad)} signal(s) bad, e.g. {self._signals[handle].path}: {status_name(status)}"
        )

    async def _delete(self) -> None:
        """Best effort: the link may already be gone, and cancellation must not wait long."""
        self._closed = True
        if self.subscription_id is None:
            return
        subscription_id, self.subscription_id = self.subscription_id, None
        with contextlib.suppress(Exception):
            await bounded(
                self._session.delete_subscriptions([subscription_id]), self._settings.request_timeout
            )
        self._session._subscription_callbacks.pop(subscription_id, None)  # asyncua keeps it on failure
