"""Machine state per device (PackML-style states that OEE needs) and time accumulated in each state."""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from linebridge.analytics.machine_state import MachineState

if TYPE_CHECKING:
    from linebridge.analytics.config import Condition, StateRule


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


_N = len(MachineState)
MAX_SPANS = 50_000  # state changes kept for windows (a day of a change every two seconds)


class StateClock:
    """Time in each state: since start, and over any recent window in O(log n) (prefix sums over spans)."""

    def __init__(
        self, now_ns: int, state: MachineState = MachineState.OFFLINE, keep_seconds: float = 86_400
    ) -> None:
        self.state = state
        self.since_ns = now_ns
        self.started_ns = now_ns
        self.total: dict[MachineState, float] = dict.fromkeys(MachineState, 0.0)
        # Closed spans: start/end times, state, and the totals per state (seconds) up to each span's end.
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._states: list[MachineState] = []
        self._cum: list[tuple[float, ...]] = []
        self._keep_ns = int(keep_seconds * 1e9)

    def set(self, state: MachineState, now_ns: int) -> bool:
        """Enter `state` at `now_ns`; True when the state changed."""
        if state == self.state:
            return False
        now_ns = max(now_ns, self.since_ns)  # a sample older than the last change does not rewind time
        seconds = (now_ns - self.since_ns) / 1e9
        self.total[self.state] += seconds
        self._starts.append(self.since_ns)
        self._ends.append(now_ns)
        self._states.append(self.state)
        self._cum.append(tuple(self.total[s] for s in MachineState))
        if len(self._ends) > MAX_SPANS or (self._ends and self._ends[0] < now_ns - self._keep_ns):
            drop = max(len(self._ends) - MAX_SPANS, bisect.bisect_left(self._ends, now_ns - self._keep_ns))
            for column in (self._starts, self._ends, self._states, self._cum):
                del column[:drop]
        self.state, self.since_ns = state, now_ns
        return True

    def since_start(self, now_ns: int) -> dict[MachineState, float]:
        """Seconds in each state since the clock started."""
        out = dict(self.total)
        out[self.state] += max(0, now_ns - self.since_ns) / 1e9
        return out

    def _at(self, t: int) -> list[float]:
        """Seconds in each state since the clock started, up to time t (t within the kept spans)."""
        i = bisect.bisect_right(self._ends, t)  # spans 0..i-1 ended by t
        if i:
            prefix = list(self._cum[i - 1])
        elif self._ends:  # before the oldest kept span ended: its totals minus its own length
            prefix = list(self._cum[0])
            prefix[self._states[0] - 1] -= (self._ends[0] - self._starts[0]) / 1e9
        else:
            prefix = [self.total[s] for s in MachineState]
        start, state = (
            (self._starts[i], self._states[i]) if i < len(self._ends) else (self.since_ns, self.state)
        )
        if t > start:
            prefix[state - 1] += (t - start) / 1e9
        return prefix

    def window(self, start_ns: int, end_ns: int) -> dict[MachineState, float]:
        """Seconds in each state between start_ns and end_ns (as far as the kept spans reach)."""
        if self._starts:
            start_ns = max(start_ns, self._starts[0])
        else:
            start_ns = max(start_ns, self.since_ns)
        if end_ns <= start_ns:
            return dict.fromkeys(MachineState, 0.0)
        hi, lo = self._at(end_ns), self._at(start_ns)
        return {s: max(0.0, hi[s - 1] - lo[s - 1]) for s in MachineState}

    def spans(self, start_ns: int, end_ns: int) -> list[tuple[MachineState, int, int]]:
        """(state, start, end) of every span that overlaps the window, clipped to it."""
        out = []
        first = bisect.bisect_right(self._ends, start_ns)
        rows = zip(self._states[first:], self._starts[first:], self._ends[first:], strict=True)
        for state, a, b in (*rows, (self.state, self.since_ns, end_ns)):
            lo, hi = max(a, start_ns), min(b, end_ns)
            if hi > lo:
                out.append((state, lo, hi))
        return out
