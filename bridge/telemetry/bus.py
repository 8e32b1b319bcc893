"""The telemetry bus: fan-out of columnar batches to subscribers that never block a driver."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

from linebridge.errors import NotFound, ResourceExhausted
from linebridge.model import Quality, SampleBatch, Signal, Value
from linebridge.paths import PathGlob, compile_glob
from linebridge.registry import DeviceEvent, DeviceRecord, DeviceRegistry
from linebridge.telemetry.filters import ChangeFilter, filter_batch
from linebridge.telemetry.staleness import STALE, Staleness
from linebridge.telemetry.updates import (
    BatchUpdate,
    CatalogUpdate,
    DroppedUpdate,
    HeartbeatUpdate,
    SubscriptionOptions,
    SyncUpdate,
    Trigger,
    Update,
)

log = logging.getLogger(__name__)

ALL = None  # selection of every signal of a device
_RECENT_LIMIT = 16  # distinct-shape batches kept unfolded per device


Tap = Callable[[SampleBatch], None]


class TelemetryBus:
    """Takes batches from drivers, keeps the latest value of every signal, feeds subscribers."""

    def __init__(
        self,
        registry: DeviceRegistry,
        queue_limit: int = 200_000,
        max_subscriptions: int = 256,
        on_batch: Callable[[SampleBatch], None] | None = None,
    ) -> None:
        self.registry = registry
        self.queue_limit = queue_limit
        self.max_subscriptions = max_subscriptions
        self.subscriptions: set[Subscription] = set()
        self._taps: list[Tap] = []
        self._values: dict[int, Value] = {}
        self._times: dict[int, int] = {}
        self._qualities: dict[int, int] = {}
        # Batches not yet folded into the latest-value dicts, per device. A batch with the same
        # aliases as the previous one replaces it, so a steady stream costs O(1) here and the
        # per-sample fold only happens when someone reads (initial values, Read, sampled streams).
        self._recent: dict[str, list[SampleBatch]] = {}
        self._on_batch = on_batch
        self.staleness = Staleness(registry)
        self.samples_in = 0
        self.samples_out = 0
        self.samples_dropped = 0
        registry.add_listener(self._device_changed)

    # -- producers ---------------------------------------------------------------------------
    def publish(self, batch: SampleBatch) -> None:
        """Hand one batch to every interested consumer. Never blocks; O(batch) at most per consumer."""
        n = len(batch.aliases)
        if not n:
            return
        if not (
            len(batch.values) == len(batch.timestamps) == n
            and (batch.qualities is None or len(batch.qualities) == n)
        ):
            raise ValueError(f"batch from {batch.device_id}: columns differ in length")
        self.samples_in += n
        batch.received = time.monotonic()
        recent = self._recent.setdefault(batch.device_id, [])
        if recent and (recent[-1].aliases is batch.aliases or recent[-1].aliases == batch.aliases):
            recent[-1] = batch
        else:
            recent.append(batch)
            if len(recent) > _RECENT_LIMIT:
                self._fold(recent.pop(0))
        if self._on_batch is not None:
            self._on_batch(batch)
        for tap in self._taps:
            try:
                tap(batch)
            except Exception:
                log.exception("telemetry tap failed")
        for sub in self.subscriptions:
            sub.offer(batch)

    def add_tap(self, tap: Tap) -> Callable[[], None]:
        """Call `tap(batch)` for every batch, synchronously; it must not block (the uplink's door)."""
        self._taps.append(tap)
        return lambda: self._taps.remove(tap) if tap in self._taps else None

    def _fold(self, batch: SampleBatch) -> None:
        self.staleness.fold(batch)
        self._values.update(zip(batch.aliases, batch.values, strict=True))
        self._times.update(zip(batch.aliases, batch.timestamps, strict=True))
        if batch.qualities is None:
            self._qualities.update(dict.fromkeys(batch.aliases, Quality.GOOD))
        else:
            self._qualities.update(zip(batch.aliases, batch.qualities, strict=True))

    def _fold_all(self) -> None:
        for recent in self._recent.values():
            for batch in recent:
                self._fold(batch)
            recent.clear()

    # -- consumers ---------------------------------------------------------------------------
    def latest(self, aliases: Sequence[int]) -> SampleBatch:
        """The last known value of each alias that has one, as one batch."""
        self._fold_all()
        known = [a for a in aliases if a in self._values]
        return SampleBatch(
            device_id="",
            aliases=known,
            values=[self._values[a] for a in known],
            timestamps=[self._times[a] for a in known],
            qualities=self.staleness.mark(known, [self._qualities[a] for a in known]),
        )

    def resolve(self, globs: Sequence[PathGlob], record: DeviceRecord) -> frozenset[int] | None | bool:
        """Which signals of `record` the globs select: ALL (None), a set of aliases, or False."""
        if any(g.selects_whole_device(record.id) for g in globs):
            return ALL if record.signals else False
        chosen = frozenset(
            s.alias
            for g in globs
            if g.matches_device(record.id)
            for path, s in record.signals.items()
            if g.matches(f"{record.id}/{path}")
        )
        return chosen or False

    def select(self, paths: Sequence[str]) -> list[PathGlob]:
        """Compile globs; an exact path (no '*') must name a known signal (NotFound otherwise)."""
        globs = [compile_glob(p) for p in paths]
        for glob in globs:
            if "*" not in glob.text:
                device_id, _, signal_path = glob.text.partition("/")
                self.registry.get(device_id).signal(signal_path)
        return globs

    def subscribe(self, paths: Sequence[str], options: SubscriptionOptions) -> Subscription:
        """A new subscription to the signals the paths select."""
        globs = self.select(paths or ["*"])
        if len(self.subscriptions) >= self.max_subscriptions:
            raise ResourceExhausted(f"the bridge already serves {self.max_subscriptions} subscriptions")
        sub = Subscription(self, globs, options, self.queue_limit)
        self.subscriptions.add(sub)
        return sub

    def read_cached(self, paths: Sequence[str]) -> list[tuple[str, Signal]]:
        """Full path and signal of every signal the paths select; NotFound when none is selected."""
        globs = self.select(paths)
        found: list[tuple[str, Signal]] = []
        for record in self.registry:
            sel = self.resolve(globs, record)
            if sel is False:
                continue
            found += [
                (f"{record.id}/{p}", s) for p, s in record.signals.items() if sel is ALL or s.alias in sel
            ]
        if not found:
            raise NotFound(f"no signal matches {', '.join(paths)}")
        return found

    def value_of(self, alias: int) -> tuple[Value, int, int] | None:
        """(value, timestamp ns, quality) of the latest sample of `alias`; quality STALE when it is stale."""
        self._fold_all()
        if alias not in self._values:
            return None
        quality = STALE if self.staleness.is_stale(alias) else self._qualities[alias]
        return self._values[alias], self._times[alias], quality

    def _device_changed(self, event: DeviceEvent, record: DeviceRecord) -> None:
        if event is DeviceEvent.REMOVED:
            self.staleness.device_removed(record.id)
        elif self.staleness.device_changed(record):
            self._mark_stale(record)
        for sub in self.subscriptions:
            sub.device_changed(event, record)

    def _mark_stale(self, record: DeviceRecord) -> None:
        """Streams get the device's latest values again, marked STALE (one batch, not per sample)."""
        batch = self.latest([s.alias for s in record.signals.values()])
        if not batch.aliases:
            return
        batch.device_id, batch.qualities = record.id, [STALE] * len(batch.aliases)
        for sub in self.subscriptions:
            sub.offer(batch)


class Subscription:
    """One subscriber: its selection, a bounded queue (drop-oldest), its batching window."""

    def __init__(
        self, bus: TelemetryBus, globs: list[PathGlob], options: SubscriptionOptions, queue_limit: int
    ) -> None:
        self.bus, self.globs, self.options = bus, globs, options
        self._limit = queue_limit
        self._select: dict[str, frozenset[int] | None] = {}
        self._queue: deque[SampleBatch] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._catalog_sent: dict[int, str] = {}
        self._catalog_dirty = False
        self.dropped_pending = 0
        self.dropped_total = 0
        for record in bus.registry:
            self._reselect(record)

    def close(self) -> None:
        """Stop receiving batches."""
        self.bus.subscriptions.discard(self)

    @property
    def queued(self) -> int:
        """Samples waiting to be sent."""
        return self._queued

    # -- called by the bus (synchronous, never blocks) ---------------------------------------
    def offer(self, batch: SampleBatch) -> None:
        """Queue the selected samples of a batch; drop the oldest beyond the limit. Never blocks."""
        sel = self._select.get(batch.device_id, False)
        if sel is False or self.options.trigger is Trigger.SAMPLE:
            return
        if sel is not ALL:
            batch = filter_batch(batch, sel)
            if not batch.aliases:
                return
        self._queue.append(batch)
        self._queued += len(batch.aliases)
        while self._queued > self._limit and len(self._queue) > 1:
            lost = len(self._queue.popleft().aliases)
            self._queued -= lost
            self.dropped_pending += lost
            self.dropped_total += lost
            self.bus.samples_dropped += lost
        self._wake.set()

    def device_changed(self, event: DeviceEvent, record: DeviceRecord) -> None:
        """Follow a device that appeared, changed or went away."""
        if event is DeviceEvent.REMOVED:
            self._select.pop(record.id, None)
        else:
            self._reselect(record)
        self._catalog_dirty = True
        self._wake.set()

    def _reselect(self, record: DeviceRecord) -> None:
        sel = self.bus.resolve(self.globs, record)
        if sel is False:
            self._select.pop(record.id, None)
        else:
            self._select[record.id] = sel

    # -- consumed by the API stream ----------------------------------------------------------
    def selected(self) -> list[tuple[int, str, Signal]]:
        """The selected signals now: alias, full path and signal."""
        out = []
        for device_id, sel in self._select.items():
            record = self.bus.registry.find(device_id)
            if record is None:
                continue
            out += [
                (s.alias, f"{device_id}/{p}", s)
                for p, s in record.signals.items()
                if sel is ALL or s.alias in sel
            ]
        return out

    def catalog_delta(self) -> CatalogUpdate | None:
        """Entries not yet sent and aliases no longer selected; None when nothing changed."""
        self._catalog_dirty = False
        current = {alias: (path, sig) for alias, path, sig in self.selected()}
        new = [(a, p, s) for a, (p, s) in current.items() if self._catalog_sent.get(a) != p]
        removed = [a for a in self._catalog_sent if a not in current]
        for a in removed:
            del self._catalog_sent[a]
        for a, p, _ in new:
            self._catalog_sent[a] = p
        return CatalogUpdate(new, removed) if new or removed or not self._catalog_sent else None

    def snapshot(self) -> SampleBatch:
        """The latest values of the selected signals, as one batch."""
        return self.bus.latest([alias for alias, _, _ in self.selected()])

    async def updates(self) -> AsyncIterator[Update]:
        """Catalog, initial values, sync, then (STREAM) batches, drops and heartbeats until closed."""
        opts = self.options
        yield self.catalog_delta() or CatalogUpdate([], [])
        initial = self.snapshot()
        for part in bounded([initial] if initial.aliases else [], opts.max_size):
            yield BatchUpdate(part)
        yield SyncUpdate()
        if opts.once:
            return
        changes = ChangeFilter(opts.deadband) if opts.trigger is Trigger.ON_CHANGE else None
        if changes is not None:
            changes.seed_batch(initial)
        while True:
            if self._catalog_dirty:
                delta = self.catalog_delta()
                if delta is not None:
                    yield delta
            if self.dropped_pending:
                lost, self.dropped_pending = self.dropped_pending, 0
                yield DroppedUpdate(lost, self.dropped_total, "subscriber queue full: oldest samples dropped")
            if opts.trigger is Trigger.SAMPLE:
                batches = await self._sampled()
            else:
                batches = await self._collect()
            if batches is None:
                yield HeartbeatUpdate(time.time_ns())
                continue
            if changes is not None:
                batches = changes.apply_all(batches)
            if batches:
                self.bus.samples_out += sum(len(b.aliases) for b in batches)
                for part in bounded(batches, opts.max_size):
                    yield BatchUpdate(part)

    async def _wait(self, timeout: float | None) -> bool:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def _collect(self) -> list[SampleBatch] | None:
        """Wait for data, then hold it for the batching window; None means heartbeat time."""
        opts = self.options
        heartbeat = opts.heartbeat_interval or None
        while not self._queue:
            self._wake.clear()
            if self._catalog_dirty:
                return []
            if not await self._wait(heartbeat):
                return None
        deadline = time.monotonic() + opts.max_latency
        while self._queued < opts.max_size and not self._catalog_dirty:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wake.clear()
            await self._wait(remaining)
        return self._take(opts.max_size)

    def _take(self, max_size: int) -> list[SampleBatch]:
        """Up to `max_size` samples from the queue; a larger driver batch is split, its rest stays queued
        (the client's `max_batch_size` bounds every batch it receives)."""
        out: list[SampleBatch] = []
        taken = 0
        while self._queue and taken < max_size:
            batch = self._queue.popleft()
            room = max_size - taken
            if len(batch) > room:
                batch, rest = batch.split(room)
                self._queue.appendleft(rest)
            out.append(batch)
            taken += len(batch)
        self._queued -= taken
        return out

    async def _sampled(self) -> list[SampleBatch] | None:
        self._wake.clear()
        await self._wait(self.options.sample_interval)
        if self._catalog_dirty:
            return []
        snap = self.snapshot()
        return [snap] if snap.aliases else []


def bounded(batches: list[SampleBatch], max_size: int) -> Iterator[list[SampleBatch]]:
    """Group batches into updates of at most `max_size` samples, splitting a batch where it must (one
    update reaches the client as one SampleBatch, which `max_batch_size` bounds)."""
    part: list[SampleBatch] = []
    room = max_size
    for batch in batches:
        rest: SampleBatch | None = batch
        while rest is not None and len(rest):
            if room == 0:
                yield part
                part, room = [], max_size
            head, rest = rest.split(room) if len(rest) > room else (rest, None)
            part.append(head)
            room -= len(head)
    if part:
        yield part
