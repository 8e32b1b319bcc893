"""The shift calendar: which shift is on, and planned busy time (PBT, ISO 22400-2) over any window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from linebridge.analytics.config import PlannedStop, Shift

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEK = 7 * 1440


def _minutes(t: dtime) -> int:
    return t.hour * 60 + t.minute


def _length(start: dtime, end: dtime) -> int:
    """Minutes from start to end; an end at or before the start is on the next day."""
    n = _minutes(end) - _minutes(start)
    return n if n > 0 else n + 1440


def check_overlaps(shifts: Sequence[Shift]) -> None:
    """Raise ValueError naming the first two shifts whose times overlap on some day of the week."""
    spans: list[tuple[int, int, str]] = []
    for shift in shifts:
        for day in shift.days:
            start = DAYS.index(day) * 1440 + _minutes(shift.start)
            spans.append((start, start + _length(shift.start, shift.end), shift.name))
    for i, (a0, a1, an) in enumerate(spans):
        for b0, b1, bn in spans[i + 1 :]:
            for shift_week in (-_WEEK, 0, _WEEK):  # a Sunday night shift reaches into Monday
                if a0 < b1 + shift_week and b0 + shift_week < a1 and an != bn:
                    raise ValueError(f"shifts {an!r} and {bn!r} overlap")
    names = [s.name for s in shifts]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"shift {name!r} appears more than once")
    for shift in shifts:
        for stop in (*shift.breaks, *shift.maintenance):
            if _offset(shift, stop.start) + _length(stop.start, stop.end) > _length(shift.start, shift.end):
                raise ValueError(
                    f"shift {shift.name!r}: planned stop {stop.start}-{stop.end} is outside the shift"
                )


def _offset(shift: Shift, t: dtime) -> int:
    """Minutes from the shift's start to clock time t (inside a shift that may cross midnight)."""
    return (_minutes(t) - _minutes(shift.start)) % 1440


class ShiftCalendar:
    """Shifts with their planned stops, evaluated in the bridge's local time zone."""

    def __init__(self, shifts: Sequence[Shift], tz=None) -> None:  # noqa: ANN001 - tzinfo or None
        self.shifts = list(shifts)
        self.tz = tz

    def _occurrences(self, start_ns: int, end_ns: int) -> list[tuple[Shift, datetime, datetime]]:
        """Every shift occurrence (shift, start, end) that overlaps the window."""
        t0 = datetime.fromtimestamp(start_ns / 1e9, self.tz).astimezone(self.tz)
        t1 = datetime.fromtimestamp(end_ns / 1e9, self.tz).astimezone(self.tz)
        out = []
        day = (t0 - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        while day <= t1:
            for shift in self.shifts:
                if DAYS[day.weekday()] not in shift.days:
                    continue
                s = day.replace(hour=shift.start.hour, minute=shift.start.minute)
                e = s + timedelta(minutes=_length(shift.start, shift.end))
                if s < t1 and e > t0:
                    out.append((shift, s, e))
            day += timedelta(days=1)
        return out

    def current(self, now_ns: int) -> tuple[str, int, int] | None:
        """(name, start ns, end ns) of the shift on at now_ns, or None between shifts."""
        for shift, s, e in self._occurrences(now_ns, now_ns + 1):
            return shift.name, int(s.timestamp() * 1e9), int(e.timestamp() * 1e9)
        return None

    def planned_busy_seconds(self, start_ns: int, end_ns: int) -> float:
        """PBT inside [start_ns, end_ns): shift time minus planned breaks and planned maintenance."""
        total = 0.0
        for shift, s, e in self._occurrences(start_ns, end_ns):
            total += _overlap(s, e, start_ns, end_ns)
            for stop in (*shift.breaks, *shift.maintenance):
                total -= _overlap(*_stop_span(shift, s, stop), start_ns, end_ns)
        return max(total, 0.0)


def _stop_span(shift: Shift, shift_start: datetime, stop: PlannedStop) -> tuple[datetime, datetime]:
    s = shift_start + timedelta(minutes=_offset(shift, stop.start))
    return s, s + timedelta(minutes=_length(stop.start, stop.end))


def _overlap(s: datetime, e: datetime, start_ns: int, end_ns: int) -> float:
    lo = max(s.timestamp(), start_ns / 1e9)
    hi = min(e.timestamp(), end_ns / 1e9)
    return max(0.0, hi - lo)
