"""Where every AGV and load is, from the latest values of AGV devices, and zone enter/leave events.

Nothing here is on the telemetry hot path: queries and the zone check (every `interval_seconds`) read
the bus's latest-value cache. A device counts as an AGV when its kind is AGV and it has the signals
position/x, position/y, position/theta, position/map_id and load/ids (the vda5050 driver's names).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from linebridge.errors import NotFound
from linebridge.model import DeviceKind, DeviceState
from linebridge.registry import DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus
from linebridge.transport.config import TransportConfig, inside

log = logging.getLogger(__name__)
ENTERED, LEFT = 1, 2
Values = dict[int, tuple[object, int]]  # alias -> (latest value, its time in ns)


@dataclass(frozen=True, slots=True)
class Place:
    """A position on a map at a time, with the zones that contain it."""

    map_id: str
    x: float
    y: float
    theta: float
    zones: tuple[str, ...]
    time_ns: int


@dataclass(slots=True)
class TransporterView:
    """One AGV's row of the fleet table."""

    device_id: str
    state: DeviceState
    place: Place | None
    load_ids: list[str]
    values: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadPlace:
    """Where a load is: the AGV with it (or that last had it), and where."""

    load_id: str
    device_id: str
    on_board: bool
    place: Place


@dataclass(frozen=True, slots=True)
class ZoneChange:
    """A load or an AGV entered or left a zone."""

    kind: int  # ENTERED or LEFT
    zone: str
    device_id: str
    load_id: str
    place: Place


class TransportIndex:
    """Answers LocateLoad and the fleet table; runs the zone check as an owned task."""

    def __init__(self, registry: DeviceRegistry, bus: TelemetryBus, config: TransportConfig) -> None:
        self.registry, self.bus, self.config = registry, bus, config
        self._dropped: dict[str, LoadPlace] = {}  # load id -> where it was last seen off board
        self._carried: dict[str, LoadPlace] = {}  # load id -> last seen on board
        self._zones_of: dict[tuple[str, str], frozenset[str]] = {}  # (device, load or "") -> zones
        self._watchers: list[Callable[[ZoneChange], None]] = []
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the task that follows AGV positions into zone enter/leave events."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="transport:zones")

    async def stop(self) -> None:
        """Stop that task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def watch(self, callback: Callable[[ZoneChange], None]) -> Callable[[], None]:
        """Call `callback` for every zone change (synchronously, from the zone task)."""
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback) if callback in self._watchers else None

    # -- queries ---------------------------------------------------------------------------------
    PATHS = ("position/x", "position/y", "position/theta", "position/map_id", "load/ids")
    ROW_PATHS = (
        "battery/charge",
        "order/id",
        "order/last_node_id",
        "order/nodes_left",
        "order/edges_left",
        "driving",
        "paused",
        "errors/text",
    )

    def agvs(self) -> list[DeviceRecord]:
        """The devices that are AGVs (they carry transport signals)."""
        return sorted(
            (
                r
                for r in self.registry
                if r.description is not None
                and r.description.kind is DeviceKind.AGV
                and "load/ids" in r.signals
            ),
            key=lambda r: r.id,
        )

    def snapshot(self, records: list[DeviceRecord], paths: tuple[str, ...] = PATHS) -> Values:
        """The latest value and time of `paths` of every record, from one read of the bus cache."""
        aliases = [r.signals[p].alias for r in records for p in paths if p in r.signals]
        latest = self.bus.latest(aliases)  # one call: the cache folds pending batches once
        return dict(zip(latest.aliases, zip(latest.values, latest.timestamps, strict=True), strict=True))

    @staticmethod
    def _value(record: DeviceRecord, path: str, values: Values) -> tuple[object, int] | None:
        signal = record.signals.get(path)
        return values.get(signal.alias) if signal is not None else None

    def zones_at(self, map_id: str, x: float, y: float) -> tuple[str, ...]:
        """The names of the configured zones of `map_id` that contain the point."""
        return tuple(name for name, poly in self.config.zones.get(map_id, {}).items() if inside(poly, x, y))

    def place_of(self, record: DeviceRecord, values: Values | None = None) -> Place | None:
        """Where an AGV is, from its latest values (None before its first position)."""
        values = self.snapshot([record]) if values is None else values
        found = [self._value(record, p, values) for p in self.PATHS[:4]]
        if any(f is None for f in found):
            return None
        (x, t), (y, _), (theta, _), (map_id, _) = found  # type: ignore[misc]
        if not all(isinstance(v, float) and math.isfinite(v) for v in (x, y)):
            return None
        return Place(str(map_id), x, y, float(theta), self.zones_at(str(map_id), x, y), t)  # type: ignore[arg-type]

    def loads_of(self, record: DeviceRecord, values: Values | None = None) -> list[str]:
        """The load ids an AGV carries, from its latest values."""
        values = self.snapshot([record]) if values is None else values
        found = self._value(record, "load/ids", values)
        return [i for i in str(found[0]).split(",") if i] if found else []

    def transporters(self) -> list[TransporterView]:
        """One row per AGV for the fleet table."""
        records = self.agvs()
        values = self.snapshot(records, self.PATHS + self.ROW_PATHS)
        rows = []
        for r in records:
            row = {}
            for path in self.ROW_PATHS:
                found = self._value(r, path, values)
                row[path] = found[0] if found else None
            rows.append(
                TransporterView(r.id, r.state, self.place_of(r, values), self.loads_of(r, values), row)
            )
        return rows

    def locate(self, load_id: str) -> LoadPlace:
        """Where `load_id` is now (on board), or where it was last seen; NotFound when never seen."""
        records = self.agvs()
        values = self.snapshot(records)
        for record in records:
            if load_id in self.loads_of(record, values):
                place = self.place_of(record, values)
                if place is not None:
                    return LoadPlace(load_id, record.id, True, place)
        found = self._dropped.get(load_id) or self._carried.get(load_id)
        if found is None:
            raise NotFound(f"no AGV has reported load {load_id!r}")
        return found

    # -- zone check ------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval_seconds)
            try:
                self.check()
            except Exception:  # a bug here must not end zone events for good
                log.exception("transport zone check failed")

    def check(self) -> None:
        """One pass: update where loads were last seen and emit zone changes."""
        on_board: set[str] = set()
        records = self.agvs()
        values = self.snapshot(records)
        zoned = bool(self.config.zones)
        for record in records:
            loads = self.loads_of(record, values)
            if not loads and not zoned:
                continue  # nothing to remember and no zone to enter: skip the position (hot with many AGVs)
            place = self.place_of(record, values)
            if place is None:
                continue
            if zoned:
                self._compare(record.id, "", place)
            for load_id in loads:
                on_board.add(load_id)
                self._carried[load_id] = LoadPlace(load_id, record.id, True, place)
                self._dropped.pop(load_id, None)
                if zoned:
                    self._compare(record.id, load_id, place)
        for load_id, seen in list(self._carried.items()):
            if load_id not in on_board:  # dropped where its AGV last was; it stays in its zones
                del self._carried[load_id]
                self._dropped[load_id] = LoadPlace(load_id, seen.device_id, False, seen.place)

    def _compare(self, device_id: str, load_id: str, place: Place) -> None:
        key = (device_id if not load_id else "", load_id)
        now = frozenset(place.zones)
        before = self._zones_of.get(key, frozenset())
        if now == before:
            return
        self._zones_of[key] = now
        for zone in sorted(before - now):
            self._emit(ZoneChange(LEFT, zone, device_id, load_id, place))
        for zone in sorted(now - before):
            self._emit(ZoneChange(ENTERED, zone, device_id, load_id, place))

    def _emit(self, change: ZoneChange) -> None:
        for watcher in list(self._watchers):
            try:
                watcher(change)
            except Exception:
                log.exception("zone watcher failed")

    def occupancy(self) -> list[ZoneChange]:
        """The zones every AGV and carried load is in now, as ENTERED changes."""
        changes = []
        for (device_id, load_id), zones in self._zones_of.items():
            seen = self._carried.get(load_id) if load_id else None
            device = seen.device_id if seen else device_id
            place = seen.place if seen else None
            for zone in sorted(zones):
                if place is None:
                    record = self.registry.find(device)
                    place = self.place_of(record) if record is not None else None
                if place is not None:
                    changes.append(ZoneChange(ENTERED, zone, device, load_id, place))
        return changes
