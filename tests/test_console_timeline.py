"""The console's state timeline keeps changes only, and serves the last hour with the state then in force."""

from __future__ import annotations

from linebridge.client import Batch, Sample, ValueType
from linebridge.console.timeline import KEEP_SECONDS, StateTimeline

MS = 1_000_000  # ns


def states(*rows: tuple[str, float, str]) -> Batch:
    samples = [Sample(f"{device}/state/current", state, int(t_ms * MS)) for device, t_ms, state in rows]
    types = {s.path: ValueType.STRING for s in samples} | {"rob/oee/oee": ValueType.DOUBLE}
    return Batch.from_samples(samples, types)


async def test_repeats_are_not_changes_and_other_signals_are_ignored() -> None:
    timeline = StateTimeline(client=None)  # type: ignore[arg-type]
    timeline.since_ms = 0.0
    timeline.add(states(("rob", 1000, "IDLE"), ("rob", 1500, "IDLE"), ("plc", 1200, "EXECUTE")))
    timeline.add(states(("rob", 2000, "EXECUTE"), ("rob", 2500, "EXECUTE")))
    view = timeline.view(now_ms=3000)
    assert view["devices"] == {"plc": [[1200.0, "EXECUTE"]], "rob": [[1000.0, "IDLE"], [2000.0, "EXECUTE"]]}
    assert (view["since_ms"], view["now_ms"], view["error"]) == (0.0, 3000, "")


async def test_only_the_last_hour_is_served_starting_with_the_state_in_force_then() -> None:
    timeline = StateTimeline(client=None)  # type: ignore[arg-type]
    timeline.since_ms = 0.0
    hour = KEEP_SECONDS * 1e3
    timeline.add(states(("rob", 10, "IDLE"), ("rob", 20, "EXECUTE"), ("rob", hour + 500, "HELD")))
    view = timeline.view(now_ms=hour + 1000)
    # EXECUTE began before the window (at 20 ms) and was still in force at its start (1000 ms)
    assert view["since_ms"] == 1000.0
    assert view["devices"]["rob"] == [[1000.0, "EXECUTE"], [hour + 500, "HELD"]]
