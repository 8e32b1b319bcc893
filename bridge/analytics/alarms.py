"""Alarms after ISA-18.2 and OPC UA Part 9: active, acknowledged, RTN-unacknowledged, shelved, suppressed.

State names follow OPC UA Part 9 (AlarmConditionType §5.8.2): ActiveState, AckedState, ShelvingState
(Unshelved / TimedShelved, §5.8.17), SuppressedState. ISA-18.2's "returned to normal, unacknowledged"
is an inactive alarm whose AckedState is false; an alarm is kept (Retain) while it is active or unacked.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from enum import IntEnum

from linebridge.errors import FailedPrecondition, InvalidArgument, NotFound
from linebridge.model import Identity

log = logging.getLogger(__name__)


class AlarmChange(IntEnum):
    """What happened to an alarm; numbers match linebridge.v1.AlarmChange."""

    RAISED = 1
    CLEARED = 2
    ACKNOWLEDGED = 3
    SHELVED = 4
    UNSHELVED = 5
    SUPPRESSED = 6
    UNSUPPRESSED = 7
    UPDATED = 8  # severity or message changed while active
    CONFIRMED = 9


@dataclass(slots=True)
class Alarm:
    """One alarm of one device; `id` is `<device>/<name>`."""

    device_id: str
    name: str
    source: str  # "rule", "opcua", "device"
    severity: int
    message: str = ""
    signals: tuple[str, ...] = ()
    active: bool = False  # ActiveState
    acked: bool = True  # AckedState
    suppressed: bool = False  # SuppressedState
    shelved_until_ns: int = 0  # ShelvingState: TimedShelved until then, 0 = Unshelved
    shelve_reason: str = ""
    shelved_by: str = ""
    raised_ns: int = 0
    cleared_ns: int = 0
    acked_ns: int = 0
    acked_by: str = ""
    ack_comment: str = ""
    confirmed: bool = True  # ConfirmedState: a device alarm may need a Confirm after its acknowledgement
    confirmed_ns: int = 0
    confirmed_by: str = ""

    @property
    def id(self) -> str:
        """The alarm's id: `<device>/<name>`."""
        return f"{self.device_id}/{self.name}"

    @property
    def shelved(self) -> bool:
        """Whether an operator shelved the alarm."""
        return self.shelved_until_ns > 0

    @property
    def retain(self) -> bool:
        """OPC UA Part 9 Retain: the alarm is of interest (active, or its return not yet acknowledged)."""
        return self.active or not self.acked or not self.confirmed

    @property
    def annunciated(self) -> bool:
        """Shown to operators: neither shelved nor suppressed (ISA-18.2)."""
        return not (self.shelved or self.suppressed)


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """A change of one alarm, with a copy of the alarm after it."""

    seq: int
    time_ns: int
    change: AlarmChange
    alarm: Alarm
    who: str = ""
    comment: str = ""


@dataclass(slots=True, eq=False)
class Watch:
    """One WatchAlarms stream: a bounded queue that drops the oldest events and counts the loss."""

    limit: int
    queue: deque[AlarmEvent] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped_pending: int = 0
    dropped_total: int = 0

    def offer(self, event: AlarmEvent) -> None:
        """Queue an event for the watcher; beyond the limit the oldest is dropped and counted."""
        self.queue.append(event)
        if len(self.queue) > self.limit:
            self.queue.popleft()
            self.dropped_pending += 1
            self.dropped_total += 1
        self.wake.set()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The alarms of interest when a watch starts."""

    alarms: list[Alarm]


@dataclass(frozen=True, slots=True)
class Changes:
    """Alarm events in order."""

    events: list[AlarmEvent]


@dataclass(frozen=True, slots=True)
class Dropped:
    """Events this watcher lost because it read too slowly."""

    events: int
    total: int


WatchItem = Snapshot | Changes | Dropped
AckForwarder = Callable[[Alarm, str, Identity], object]  # may return an awaitable


class AlarmManager:
    """Keeps every alarm's state, its history, and the watchers; rules and drivers report into it."""

    def __init__(
        self, history: int = 10_000, audit: Callable[[str, Alarm, Identity, dict], None] | None = None
    ):
        self.alarms: dict[str, Alarm] = {}
        self.history: deque[AlarmEvent] = deque(maxlen=history)
        self.watches: set[Watch] = set()
        self.audit = audit
        self.forwarders: dict[str, AckForwarder] = {}  # alarm source -> who acknowledges at the device
        self.confirm_forwarders: dict[str, AckForwarder] = {}  # alarm source -> who confirms at the device
        self.listeners: list[Callable[[AlarmEvent], None]] = []
        self._seq = 0

    # -- reports from rules and drivers ----------------------------------------------------------
    def report(
        self,
        device_id: str,
        name: str,
        active: bool,
        *,
        severity: int = 500,
        message: str = "",
        source: str = "rule",
        signals: tuple[str, ...] = (),
        at_ns: int | None = None,
        acked: bool | None = None,
        confirmed: bool | None = None,
    ) -> Alarm:
        """Set an alarm's ActiveState (and, for device alarms, its AckedState as the device reports it)."""
        now = at_ns or time.time_ns()
        key = f"{device_id}/{name}"
        alarm = self.alarms.get(key)
        if alarm is None:
            alarm = self.alarms[key] = Alarm(device_id, name, source, severity, message, signals)
        changed_meta = (alarm.severity, alarm.message) != (severity, message)
        alarm.severity, alarm.message, alarm.signals = (
            severity,
            message or alarm.message,
            signals or alarm.signals,
        )
        if active and not alarm.active:
            alarm.active, alarm.acked, alarm.raised_ns, alarm.cleared_ns = True, False, now, 0
            alarm.acked_by = alarm.ack_comment = ""
            self._emit(AlarmChange.RAISED, alarm, now)
        elif not active and alarm.active:
            alarm.active, alarm.cleared_ns = False, now
            self._emit(AlarmChange.CLEARED, alarm, now)
        elif changed_meta and alarm.active:
            self._emit(AlarmChange.UPDATED, alarm, now)
        if acked is not None and acked and not alarm.acked:
            alarm.acked, alarm.acked_ns, alarm.acked_by = True, now, "device"
            self._emit(AlarmChange.ACKNOWLEDGED, alarm, now, "device")
        if confirmed is not None and confirmed != alarm.confirmed:
            alarm.confirmed = confirmed  # the device's ConfirmedState (false: it waits for a Confirm)
            if confirmed:
                alarm.confirmed_ns, alarm.confirmed_by = now, alarm.confirmed_by or "device"
                self._emit(AlarmChange.CONFIRMED, alarm, now, "device")
        return alarm

    def suppress(self, alarm_id: str, suppressed: bool) -> None:
        """Suppression by design (the machine state makes the alarm meaningless), ISA-18.2 §12."""
        alarm = self.alarms.get(alarm_id)
        if alarm is None or alarm.suppressed == suppressed:
            return
        alarm.suppressed = suppressed
        self._emit(AlarmChange.SUPPRESSED if suppressed else AlarmChange.UNSUPPRESSED, alarm, time.time_ns())

    # -- operator actions ----------------------------------------------------------------------
    def get(self, alarm_id: str) -> Alarm:
        """An alarm by id; NotFound otherwise."""
        try:
            return self.alarms[alarm_id]
        except KeyError:
            raise NotFound(f"unknown alarm {alarm_id!r}") from None

    async def acknowledge(self, alarm_id: str, who: Identity, comment: str = "") -> Alarm:
        """AckedState -> true (OPC UA Part 9 §5.7.3 Acknowledge); forwarded to the device for its own alarms."""
        alarm = self.get(alarm_id)
        if alarm.acked:
            raise FailedPrecondition(f"alarm {alarm_id!r} is already acknowledged")
        forward = self.forwarders.get(alarm.source)
        if forward is not None:
            result = forward(alarm, comment, who)
            if asyncio.iscoroutine(result):
                await result
        now = time.time_ns()
        alarm.acked, alarm.acked_ns, alarm.acked_by, alarm.ack_comment = True, now, who.name, comment
        self._audit("alarm.acknowledge", alarm, who, {"comment": comment})
        self._emit(AlarmChange.ACKNOWLEDGED, alarm, now, who.name, comment)
        return alarm

    async def confirm(self, alarm_id: str, who: Identity, comment: str = "") -> Alarm:
        """ConfirmedState -> true (OPC UA Part 9 §5.7.4 Confirm), after an acknowledgement; forwarded to the device."""
        alarm = self.get(alarm_id)
        if not alarm.acked:
            raise FailedPrecondition(f"alarm {alarm_id!r} is not acknowledged yet: acknowledge it first")
        if alarm.confirmed:
            raise FailedPrecondition(f"alarm {alarm_id!r} needs no confirmation (or is confirmed already)")
        forward = self.confirm_forwarders.get(alarm.source)
        if forward is not None:
            result = forward(alarm, comment, who)
            if asyncio.iscoroutine(result):
                await result
        now = time.time_ns()
        alarm.confirmed, alarm.confirmed_ns, alarm.confirmed_by = True, now, who.name
        self._audit("alarm.confirm", alarm, who, {"comment": comment})
        self._emit(AlarmChange.CONFIRMED, alarm, now, who.name, comment)
        return alarm

    def shelve(self, alarm_id: str, who: Identity, seconds: float, reason: str) -> Alarm:
        """TimedShelve (OPC UA Part 9 §5.8.17.4): hide the alarm for `seconds`; a reason is required."""
        alarm = self.get(alarm_id)
        if not 0 < seconds <= 7 * 86_400:
            raise InvalidArgument(f"shelving duration must be in (0 s, 7 days], got {seconds:g} s")
        if not reason.strip():
            raise InvalidArgument("shelving needs a reason")
        now = time.time_ns()
        alarm.shelved_until_ns, alarm.shelve_reason, alarm.shelved_by = (
            now + int(seconds * 1e9),
            reason,
            who.name,
        )
        self._audit("alarm.shelve", alarm, who, {"seconds": seconds, "reason": reason})
        self._emit(AlarmChange.SHELVED, alarm, now, who.name, reason)
        return alarm

    def unshelve(self, alarm_id: str, who: Identity, reason: str = "") -> Alarm:
        """Unshelve (OPC UA Part 9 §5.8.17.2); FAILED_PRECONDITION when the alarm is not shelved."""
        alarm = self.get(alarm_id)
        if not alarm.shelved:
            raise FailedPrecondition(f"alarm {alarm_id!r} is not shelved")
        self._unshelve(alarm, who.name, reason)
        self._audit("alarm.unshelve", alarm, who, {"reason": reason})
        return alarm

    def _unshelve(self, alarm: Alarm, who: str, reason: str) -> None:
        alarm.shelved_until_ns, alarm.shelve_reason, alarm.shelved_by = 0, "", ""
        self._emit(AlarmChange.UNSHELVED, alarm, time.time_ns(), who, reason)

    def expire_shelving(self, now_ns: int) -> None:
        """Unshelve every alarm whose shelving time ran out (the ShelvingState timer)."""
        for alarm in self.alarms.values():
            if alarm.shelved and alarm.shelved_until_ns <= now_ns:
                self._unshelve(alarm, "timer", "shelving time expired")

    # -- reading -------------------------------------------------------------------------------
    def current(self, device_glob: str = "*", include_inactive: bool = False) -> list[Alarm]:
        """Alarms of interest (Retain, or shelved), newest first."""
        out = [
            a
            for a in self.alarms.values()
            if fnmatch.fnmatchcase(a.device_id, device_glob) and (include_inactive or a.retain or a.shelved)
        ]
        return sorted(out, key=lambda a: (-a.severity, -a.raised_ns))

    def events(self, device_glob: str = "*", since_ns: int = 0, limit: int = 1000) -> list[AlarmEvent]:
        """Past events, oldest first (at most `limit`, the newest ones)."""
        out = [
            e
            for e in self.history
            if e.time_ns >= since_ns and fnmatch.fnmatchcase(e.alarm.device_id, device_glob)
        ]
        return out[-limit:]

    def active_spans(self, device_id: str, start_ns: int, end_ns: int) -> dict[str, list[tuple[int, int]]]:
        """Per alarm name of a device, the spans it was active inside the window (from the history)."""
        spans: dict[str, list[tuple[int, int]]] = {}
        opened: dict[str, int] = {}
        for e in self.history:
            if e.alarm.device_id != device_id:
                continue
            if e.change is AlarmChange.RAISED:
                opened[e.alarm.name] = e.time_ns
            elif e.change is AlarmChange.CLEARED and e.alarm.name in opened:
                spans.setdefault(e.alarm.name, []).append((opened.pop(e.alarm.name), e.time_ns))
        for name, t in opened.items():
            spans.setdefault(name, []).append((t, end_ns))
        return {
            n: [(max(a, start_ns), min(b, end_ns)) for a, b in s if b > start_ns and a < end_ns]
            for n, s in spans.items()
        }

    async def watch(self, device_glob: str = "*", limit: int = 10_000) -> AsyncIterator[WatchItem]:
        """The current alarms first (Snapshot), then Changes as they happen, and Dropped notices."""
        w = Watch(limit)
        self.watches.add(w)  # registered before the snapshot is taken: no change falls between
        try:
            yield Snapshot(self.current(device_glob))
            while True:
                await w.wake.wait()
                w.wake.clear()
                if w.dropped_pending:
                    lost, w.dropped_pending = w.dropped_pending, 0
                    yield Dropped(lost, w.dropped_total)
                events = [e for e in w.queue if fnmatch.fnmatchcase(e.alarm.device_id, device_glob)]
                w.queue.clear()
                if events:
                    yield Changes(events)
        finally:
            self.watches.discard(w)

    # -- internals -------------------------------------------------------------------------------
    def _emit(self, change: AlarmChange, alarm: Alarm, now: int, who: str = "", comment: str = "") -> None:
        self._seq += 1
        event = AlarmEvent(self._seq, now, change, replace(alarm), who, comment)
        self.history.append(event)
        for w in self.watches:
            w.offer(event)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("alarm listener failed")

    def _audit(self, action: str, alarm: Alarm, who: Identity, detail: dict) -> None:
        if self.audit is not None:
            self.audit(action, alarm, who, detail)
