"""OEE after ISO 22400-2:2014: availability, effectiveness, quality rate, from states, shifts and counters.

ISO 22400-2:2014 §5 (time elements, quantities) and §6 (KPI definitions) name the time elements and quantities used here:
  APT  actual production time (here: time in EXECUTE)
  PBT  planned busy time (shift time minus planned breaks and planned maintenance)
  PRI  planned run time per item
  PQ   produced quantity, GQ good quantity
  Availability = APT / PBT, Effectiveness = PRI x PQ / APT, Quality rate = GQ / PQ, OEE = A x E x Q.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


class CounterTracker:
    """Turns a counter signal into produced increments: a step back is a reset (or a rollover), never negative."""

    def __init__(self, counter_max: int = 0, keep_seconds: float = 86_400) -> None:
        self.counter_max = counter_max
        self.last: float | None = None
        self.total = 0.0
        self.resets = 0
        self._events: deque[tuple[int, float]] = deque()  # (time ns, increment) per batch
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
            self.total += produced
            self._events.append((int(times[-1]), produced))
            while self._events and self._events[0][0] < int(times[-1]) - self._keep_ns:
                self._events.popleft()
        return produced

    def between(self, start_ns: int, end_ns: int) -> float:
        """Quantity counted between start_ns and end_ns (by the time of each batch's last reading)."""
        return sum(q for t, q in self._events if start_ns <= t < end_ns)


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
