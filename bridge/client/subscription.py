"""A telemetry subscription: Batches from a Subscribe stream that reconnects and says what it lost."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from linebridge.api import pb
from linebridge.client import errors
from linebridge.client._channel import Caller
from linebridge.client._wire import decode_batch, parse_update, split_update
from linebridge.client.batch import Batch, Sample
from linebridge.client.catalog import Catalog

log = logging.getLogger("linebridge.client")
SUBSCRIBE = "/linebridge.v1.TelemetryService/Subscribe"


class NoticeKind(enum.Enum):
    """What happened to a subscription's stream."""

    SYNC = "sync"  # the initial values have been sent
    CATALOG = "catalog"  # signals came or went (a device was added, removed or re-described)
    DROPPED = "dropped"  # the bridge dropped samples because this subscriber fell behind
    DISCONNECTED = "disconnected"  # the stream broke; samples until reconnection are lost
    RECONNECTED = "reconnected"  # a new stream runs (new catalog, initial values again)


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing that happened to a subscription's stream."""

    kind: NoticeKind
    message: str
    samples: int = 0  # DROPPED: samples lost since the previous notice
    added: tuple[str, ...] = ()  # CATALOG: paths added
    removed: tuple[str, ...] = ()  # CATALOG: paths removed
    time_ns: int = 0


class Subscription:
    """Async iterator of Batches. Notices (sync, drops, catalog changes, disconnects) go to `on_notice`,
    the `notices` list and the log; the stream reconnects with backoff on its own. Batches of the last
    `history_seconds` are kept for history()."""

    def __init__(
        self,
        client: Caller,
        request: pb.telemetry.SubscribeRequest,
        on_notice: Callable[[Notice], Any] | None = None,
        history_seconds: float = 60.0,
        reconnect: bool = True,
    ) -> None:
        self.request, self.on_notice, self.reconnect = request, on_notice, reconnect
        self.history_seconds = history_seconds
        self._client = client
        self.catalog = Catalog()
        self.notices: deque[Notice] = deque(maxlen=1000)
        self.dropped_total = 0
        self.reconnects = 0
        self.synced = asyncio.Event()
        self._kept: deque[tuple[float, Batch]] = deque()
        self._call: Any = None
        self._closed = False

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._batches()

    async def samples(self) -> AsyncIterator[Sample]:
        """One Sample at a time (small uses; builds a Python object per sample)."""
        batches = self._batches()
        try:
            async for batch in batches:
                for sample in batch:
                    yield sample
        finally:
            await batches.aclose()

    def close(self) -> None:
        """End the stream (an iteration in progress ends)."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    def history(self, paths: Sequence[str] | None = None, seconds: float | None = None) -> Batch:
        """What this subscription received in the last `seconds` (default all it keeps), as one Batch."""
        since = time.monotonic() - (self.history_seconds if seconds is None else seconds)
        batch = Batch.concat([b for at, b in self._kept if at >= since])
        return batch.select(paths) if paths else batch

    async def _batches(self) -> AsyncGenerator[Batch, None]:
        next_delay = self._client.backoff.delays()
        lost_at: float | None = None
        self._client._subscriptions.add(self)
        try:
            while not self._closed:
                try:
                    async for batch in self._stream():
                        if lost_at is not None:
                            lost_at, next_delay = None, self._client.backoff.delays()
                        yield batch
                    return
                except errors.ClientError as error:
                    if not self._retry(error, lost_at):
                        raise
                    lost_at = lost_at or time.monotonic()
                    await asyncio.sleep(next_delay())
        finally:
            self._client._subscriptions.discard(self)
            self.close()

    def _retry(self, error: errors.ClientError, lost_at: float | None) -> bool:
        if (
            self._closed
            or not self.reconnect
            or not isinstance(error, errors.BridgeUnavailable | errors.Cancelled)
        ):
            return False
        if lost_at is not None and time.monotonic() - lost_at > self._client.reconnect_seconds:
            return False
        if lost_at is None:
            self._notice(NoticeKind.DISCONNECTED, f"stream lost ({error.message}); reconnecting")
        return True

    async def _stream(self) -> AsyncIterator[Batch]:
        """One Subscribe call; raises ClientError when it breaks."""
        method = self._client.channel.unary_stream(
            SUBSCRIBE, request_serializer=pb.telemetry.SubscribeRequest.SerializeToString
        )
        self._call = call = method(self.request)
        first = True
        try:
            while True:
                data = await call.read()
                if data is grpc.aio.EOF:
                    return
                if first and self.catalog.view.entries:
                    self._reconnected()
                first = False
                batch = self._handle(data)
                if batch is not None:
                    yield batch
        except grpc.RpcError as exc:
            if self._closed:
                return
            raise errors.from_rpc_error(exc) from None
        finally:
            call.cancel()

    def _reconnected(self) -> None:
        self.reconnects += 1
        self.catalog.reset()
        self.synced.clear()
        self._notice(NoticeKind.RECONNECTED, "stream reconnected; a new catalog and initial values follow")

    def _handle(self, data: bytes) -> Batch | None:
        """The Batch of a batch message; other messages update the catalog and make notices."""
        kind, start, end = split_update(data)
        if kind == "batch":
            batch = Batch.decode(decode_batch(data, start, end), self.catalog.view)
            self._keep(batch)
            return batch
        update = parse_update(data)
        kind = update.WhichOneof("update")
        if kind == "batch":  # an unusual encoding: protobuf parsed it, the columns come from its bytes
            batch = Batch.decode(decode_batch(update.batch.SerializeToString()), self.catalog.view)
            self._keep(batch)
            return batch
        if kind == "catalog":
            added, removed = self.catalog.apply(update.catalog)
            text = f"catalog: {len(added)} signal(s) added, {len(removed)} removed"
            paths = tuple(e.path for e in added), tuple(e.path for e in removed)
            self._notice(NoticeKind.CATALOG, text, added=paths[0], removed=paths[1])
        elif kind == "sync":
            self.synced.set()
            self._notice(NoticeKind.SYNC, "initial values sent")
        elif kind == "dropped":
            self.dropped_total += update.dropped.samples
            text = f"the bridge dropped {update.dropped.samples} samples: {update.dropped.reason or 'slow reader'}"
            self._notice(NoticeKind.DROPPED, text, samples=update.dropped.samples)
        return None

    def _keep(self, batch: Batch) -> None:
        now = time.monotonic()
        self._kept.append((now, batch))
        while self._kept and self._kept[0][0] < now - self.history_seconds:
            self._kept.popleft()

    def _notice(self, kind: NoticeKind, message: str, **fields: Any) -> None:
        notice = Notice(kind, message, time_ns=time.time_ns(), **fields)
        self.notices.append(notice)
        quiet = kind in (NoticeKind.SYNC, NoticeKind.CATALOG)
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "subscription %s: %s",
            list(self.request.paths),
            message,
        )
        if self.on_notice is not None:
            self.on_notice(notice)
