"""OEE after ISO 22400-2:2014: availability, effectiveness, quality rate, from states, shifts and counters.

ISO 22400-2:2014 §5 (time elements, quantities) and §6 (KPI definitions) name the time elements and quantities used here:
  APT  actual production time (here: time in EXECUTE)
  PBT  planned busy time (shift time minus planned breaks and planned maintenance)
  PRI  planned run time per item
  PQ   produced quantity, GQ good quantity
  Availability = APT / PBT, Effectiveness = PRI x PQ / APT, Quality rate = GQ / PQ, OEE = A x E x Q.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

MAX_EVENTS = 100_000  # counting batches kept for windows


class CounterTracker:
    """Turns a counter signal into produced increments: a step back is a reset (or a rollover), never negative."""

    def __init__(self, counter_max: int = 0, keep_seconds: float = 86_400) -> None:
        self.counter_max = counter_max
        self.last: float | None = None
        self.total = 0.0
        self.resets = 0
        # Per batch that counted something: its time and the running total after it (prefix sums).
        self._times: list[int] = []
        self._before: list[float] = []  # running total before the batch
        self._totals: list[float] = []  # ... and after it
        self._keep_ns = int(keep_seconds * 1e9)

    def update(self, values: np.ndarray, times: np.ndarray) -> float:
        """Fold one batch column of counter readings in; returns the quantity produced in it."""
        if not len(values):
            return 0.0
        seq = values if self.last is None else np.concatenate(([self.last], values))
        steps = np.diff(seq)
        back = steps < 0
        if back.any():
            prev, new = seq[:-1][back], seq[1:][back]
            if self.counter_max:
                # A step from the upper half to the lower half of the range is a wrap (rollover).
                wrap = (prev > self.counter_max / 2) & (new < self.counter_max / 2)
                steps[back] = np.where(wrap, self.counter_max + 1 - prev + new, new)
                self.resets += int((~wrap).sum())
            else:
                steps[back] = new  # counted again from zero after the reset
                self.resets += int(back.sum())
        produced = float(steps.sum())
        self.last = float(values[-1])
        if produced:
            self._before.append(self.total)
            self.total += produced
            now = int(times[-1])
            if self._times and now < self._times[-1]:
                now = self._times[-1]  # keep the time column sorted for bisect
            self._times.append(now)
            self._totals.append(self.total)
            if self._times[0] < now - self._keep_ns or len(self._times) > MAX_EVENTS:
                drop = max(
                    len(self._times) - MAX_EVENTS, bisect.bisect_left(self._times, now - self._keep_ns)
                )
                del self._times[:drop], self._totals[:drop], self._before[:drop]
        return produced

    def between(self, start_ns: int, end_ns: int) -> float:
        """Quantity counted between start_ns and end_ns (by the time of each batch's last reading)."""
        lo = bisect.bisect_left(self._times, start_ns)
        hi = bisect.bisect_left(self._times, end_ns)
        if hi <= lo:
            return 0.0
        return self._totals[hi - 1] - self._before[lo]


@dataclass(slots=True)
class Efficiency:
    """The ISO 22400-2 elements and KPIs of one device over one window (seconds and items)."""

    device_id: str
    window: str
    start_ns: int
    end_ns: int
    apt: float = 0.0
    pbt: float = 0.0
    pri: float = 0.0
    pq: float = 0.0
    gq: float = 0.0
    availability: float = 0.0
    effectiveness: float = 0.0
    quality: float = 0.0
    oee: float = 0.0
    seconds_by_state: dict[str, float] = field(default_factory=dict)
    down_by_alarm: dict[str, float] = field(default_factory=dict)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def compute(eff: Efficiency) -> Efficiency:
    """Fill availability, effectiveness, quality rate and OEE from APT, PBT, PRI, PQ and GQ."""
    eff.availability = _ratio(eff.apt, eff.pbt)  # ISO 22400-2 §6: Availability
    eff.effectiveness = _ratio(eff.pri * eff.pq, eff.apt)  # §6: Effectiveness
    eff.quality = _ratio(eff.gq, eff.pq)  # §6: Quality rate
    eff.oee = eff.availability * eff.effectiveness * eff.quality  # §6: OEE index
    return eff
