"""Machine state per device (PackML-style states that OEE needs) and time accumulated in each state."""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from linebridge.analytics.config import Condition, StateRule


class MachineState(IntEnum):
    """PackML-style machine states (ISA-TR88.00.02) plus OFFLINE when the bridge cannot reach the device."""

    EXECUTE = 1  # producing
    IDLE = 2
    SUSPENDED = 3  # starved or blocked by upstream/downstream
    HELD = 4  # a fault is being cleared
    STOPPED = 5
    ABORTED = 6
    SETUP = 7
    OFFLINE = 8


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _holds(cond: Condition, value: Any) -> bool:
    if value is None:
        return False
    for name, test in _TESTS.items():
        want = getattr(cond, name)
        if want is None:
            continue
        try:
            if not test(value, want):
                return False
        except TypeError:  # a string compared with a number never holds
            return False
    return cond.in_ is None or value in cond.in_


class StateModel:
    """Ordered state rules: the first rule whose conditions all hold gives the state."""

    def __init__(self, rules: Sequence[StateRule], default: MachineState) -> None:
        self.rules = list(rules)
        self.default = default

    @property
    def inputs(self) -> list[str]:
        """Signal paths the rules read."""
        return sorted({c.signal for r in self.rules for c in r.when})

    def evaluate(self, values: Mapping[str, Any]) -> MachineState:
        """The state for the latest values by signal path (missing values never satisfy a condition)."""
        for rule in self.rules:
            if all(_holds(c, values.get(c.signal)) for c in rule.when):
                return rule.state
        return self.default


@dataclass(slots=True)
class _Span:
    state: MachineState
    start_ns: int
    end_ns: int


class StateClock:
    """Time in each state: since start, and over any recent window (spans kept for `keep_seconds`)."""

    def __init__(
        self, now_ns: int, state: MachineState = MachineState.OFFLINE, keep_seconds: float = 86_400
    ) -> None:
        self.state = state
        self.since_ns = now_ns
        self.started_ns = now_ns
        self.total: dict[MachineState, float] = dict.fromkeys(MachineState, 0.0)
        self._spans: deque[_Span] = deque()
        self._keep_ns = int(keep_seconds * 1e9)

    def set(self, state: MachineState, now_ns: int) -> bool:
        """Enter `state` at `now_ns`; True when the state changed."""
        if state == self.state:
            return False
        now_ns = max(now_ns, self.since_ns)  # a sample older than the last change does not rewind time
        self.total[self.state] += (now_ns - self.since_ns) / 1e9
        self._spans.append(_Span(self.state, self.since_ns, now_ns))
        while self._spans and self._spans[0].end_ns < now_ns - self._keep_ns:
            self._spans.popleft()
        self.state, self.since_ns = state, now_ns
        return True

    def since_start(self, now_ns: int) -> dict[MachineState, float]:
        """Seconds in each state since the clock started."""
        out = dict(self.total)
        out[self.state] += max(0, now_ns - self.since_ns) / 1e9
        return out

    def window(self, start_ns: int, end_ns: int) -> dict[MachineState, float]:
        """Seconds in each state between start_ns and end_ns (as far as the kept spans reach)."""
        out = dict.fromkeys(MachineState, 0.0)
        for span in (*self._spans, _Span(self.state, self.since_ns, end_ns)):
            lo, hi = max(span.start_ns, start_ns), min(span.end_ns, end_ns)
            if hi > lo:
                out[span.state] += (hi - lo) / 1e9
        return out

    def spans(self, start_ns: int, end_ns: int) -> list[tuple[MachineState, int, int]]:
        """(state, start, end) of every span that overlaps the window, clipped to it."""
        out = []
        for span in (*self._spans, _Span(self.state, self.since_ns, end_ns)):
            lo, hi = max(span.start_ns, start_ns), min(span.end_ns, end_ns)
            if hi > lo:
                out.append((span.state, lo, hi))
        return out
