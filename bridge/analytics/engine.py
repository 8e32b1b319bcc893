"""The analytics engine: a bus tap that runs each device's states, OEE and alarm rules per batch.

Derived values go back onto the bus as ordinary signals of the same device, so Subscribe, Read and
the uplink carry them like any other: `state/current`, `state/seconds/EXECUTE`, `oee/oee`,
`alarms/<name>/active`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import time

from pydantic import ValidationError

from linebridge.analytics.alarms import AlarmEvent, AlarmManager
from linebridge.analytics.config import AnalyticsConfig, DeviceAnalytics
from linebridge.analytics.device import DeviceAnalyticsRuntime
from linebridge.analytics.oee import Efficiency, compute
from linebridge.analytics.shifts import ShiftCalendar
from linebridge.analytics.states import MachineState
from linebridge.errors import InvalidArgument
from linebridge.model import DeviceDescription, SampleBatch, Signal, Value, ValueType
from linebridge.registry import DeviceEvent, DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus

log = logging.getLogger(__name__)

WINDOWS = ("shift", "hour", "start")
_OEE_FIELDS = ("availability", "effectiveness", "quality", "oee", "apt", "pbt", "pq", "gq")
_HOUR_NS = 3600 * 1_000_000_000


def merge(user: DeviceAnalytics | None, defaults: DeviceAnalytics | None) -> tuple[DeviceAnalytics, set[str]]:
    """The user's config over the driver's defaults; also the names of the user's own rules."""
    if user is None:
        assert defaults is not None
        return defaults, set()
    if defaults is None or not user.defaults:
        return user, {r.name for r in user.rules}
    mine = {r.name for r in user.rules}
    rules = [r for r in defaults.rules if r.name not in mine] + list(user.rules)
    merged = user.model_copy(
        update={
            "states": user.states or defaults.states,
            "default_state": user.default_state if user.states else defaults.default_state,
            "oee": user.oee or defaults.oee,
            "rules": rules,
        }
    )
    return merged, mine


class AnalyticsEngine:
    """Runs analytics for every device that has a config or driver defaults; owns one tick task."""

    def __init__(
        self, config: AnalyticsConfig, registry: DeviceRegistry, bus: TelemetryBus, alarms: AlarmManager
    ) -> None:
        self.config, self.registry, self.bus, self.alarms = config, registry, bus, alarms
        self.calendar = ShiftCalendar(config.shifts)
        self.devices: dict[str, DeviceAnalyticsRuntime] = {}
        self.outputs: dict[str, dict[str, Signal]] = {}
        self.derived: set[int] = set()
        self.device_alarms: dict[str, set[str]] = {}  # device id -> names of alarms the device raised itself
        self.pbt_override: dict[str, float] = {}  # device id -> PBT seconds set from outside (an MES)
        self._pending: dict[str, dict[int, Value]] = {}
        self._flush_scheduled = False
        self._task: asyncio.Task[None] | None = None
        self._unhooks = []
        if config.enabled:
            self._unhooks = [registry.add_listener(self._device_changed), bus.add_tap(self.on_batch)]
            registry.derive = self.derived_signals
            alarms.listeners.append(self._alarm_changed)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the tick task (delays, stuck and stale checks, times in state, OEE)."""
        self._task = asyncio.get_running_loop().create_task(self._ticker(), name="analytics-tick")

    async def stop(self) -> None:
        """Unhook from the bus and registry and stop the tick task."""
        for unhook in self._unhooks:
            unhook()
        if self.registry.derive == self.derived_signals:
            self.registry.derive = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.publish_interval_seconds)
            try:
                self.tick(time.time_ns())
            except Exception:
                log.exception("analytics tick failed")

    # -- binding -----------------------------------------------------------------------------------
    def config_for(
        self, device_id: str, description: DeviceDescription
    ) -> tuple[DeviceAnalytics, set[str]] | None:
        """The device's analytics (user config over driver defaults), or None when it has none."""
        user = next((c for g, c in self.config.devices.items() if fnmatch.fnmatchcase(device_id, g)), None)
        defaults = None
        if description.analytics and (user is None or user.defaults):
            try:
                defaults = DeviceAnalytics.model_validate(description.analytics)
            except ValidationError as exc:
                log.error(
                    "device %s: driver analytics defaults ignored: %s", device_id, exc.errors()[0]["msg"]
                )
        if user is None and defaults is None:
            return None
        return merge(user, defaults)

    def derived_signals(self, device_id: str, description: DeviceDescription) -> list[Signal]:
        """Registry hook: bind the device's rules to its signals and declare the derived signals."""
        found = self.config_for(device_id, description)
        if found is None:
            self.devices.pop(device_id, None)
            return []
        config, strict = found
        rt = self.devices.get(device_id)
        if rt is None or rt.config != config:
            rt = self.devices[device_id] = DeviceAnalyticsRuntime(device_id, config, time.time_ns())
        rt.bind({s.path: s for s in description.signals}, lambda rule: rule.name in strict)
        out = [Signal("state/current", ValueType.STRING, description="machine state (PackML-style)")]
        for window in WINDOWS:
            out += [
                Signal(
                    f"state/{_prefix(window)}seconds/{s.name}",
                    ValueType.DOUBLE,
                    "s",
                    description=f"time in {s.name}",
                )
                for s in MachineState
            ]
        if config.oee is not None:
            for window in ("shift", "hour"):
                out += [Signal(f"oee/{_oee_prefix(window)}{f}", ValueType.DOUBLE) for f in _OEE_FIELDS]
        names = [b.rule.name for b in rt.rules] + sorted(self.device_alarms.get(device_id, ()))
        for name in dict.fromkeys(names):
            out += [
                Signal(f"alarms/{name}/active", ValueType.BOOL),
                Signal(f"alarms/{name}/severity", ValueType.INT),
                Signal(f"alarms/{name}/acked", ValueType.BOOL),
            ]
        for s in out:
            s.source_type = "analytics"
        return out

    def _device_changed(self, event: DeviceEvent, record: DeviceRecord) -> None:
        if event is DeviceEvent.REMOVED:
            self.devices.pop(record.id, None)
            self.outputs.pop(record.id, None)
            return
        rt = self.devices.get(record.id)
        if rt is None:
            return
        self.outputs[record.id] = {p: s for p, s in record.signals.items() if s.source_type == "analytics"}
        self.derived.update(s.alias for s in self.outputs[record.id].values())
        if rt.reachable != record.available:
            rt.reachable = record.available
            now = time.time_ns()
            rt.tick(now)
            if rt.evaluate_state(now):
                self._state_out(rt, now)
            self._report(rt, now)

    # -- per batch -----------------------------------------------------------------------------------
    def on_batch(self, batch: SampleBatch) -> None:
        """Bus tap: fold the batch into the device's rules; never blocks."""
        rt = self.devices.get(batch.device_id)
        if rt is None or batch.aliases[0] in self.derived:
            return
        now = time.time_ns()
        if rt.update(batch.aliases, batch.values, batch.timestamps, batch.value_type, now):
            # State changes are dated by the bridge's clock: windows and shifts are on that clock too,
            # whatever the device's own clock says.
            if rt.evaluate_state(now):
                self._state_out(rt, now)
        self._report(rt, now)

    def _report(self, rt: DeviceAnalyticsRuntime, now: int) -> None:
        for bound in rt.rules:
            d = bound.detector
            if d.active != bound.reported:
                bound.reported = d.active
                rule = bound.rule
                if rule.suppress_in:  # suppressed by design from the moment it is raised
                    self.alarms.suppress(f"{rt.device_id}/{rule.name}", rt.clock.state in rule.suppress_in)
                self.alarms.report(
                    rt.device_id,
                    rule.name,
                    d.active,
                    severity=rule.severity,
                    message=f"{rule.message or rule.name}: {d.detail}"
                    if d.active
                    else rule.message or rule.name,
                    signals=tuple(rule.inputs),
                    at_ns=d.changed_ns or now,
                )

    def _state_out(self, rt: DeviceAnalyticsRuntime, at_ns: int) -> None:
        self._queue(rt.device_id, {"state/current": rt.clock.state.name})
        for bound in rt.rules:
            if bound.rule.suppress_in:
                self.alarms.suppress(
                    f"{rt.device_id}/{bound.rule.name}", rt.clock.state in bound.rule.suppress_in
                )

    def _alarm_changed(self, event: AlarmEvent) -> None:
        a = event.alarm
        outputs = self.outputs.get(a.device_id)
        known = self.device_alarms.setdefault(a.device_id, set())
        if outputs is not None and f"alarms/{a.name}/active" not in outputs and a.name not in known:
            # A device's own alarm seen for the first time (an OPC UA condition): declare its signals by
            # describing the device again (its aliases stay; the uplink sends a new DBIRTH).
            known.add(a.name)
            with contextlib.suppress(RuntimeError):  # no loop: nothing to redescribe (unit tests)
                asyncio.get_running_loop().call_soon(self._redescribe, a.device_id)
        self._alarm_changed_values(a)

    def _redescribe(self, device_id: str) -> None:
        record = self.registry.find(device_id)
        if record is not None and record.description is not None:
            self.registry.set_description(device_id, record.description, record.details)
            for alarm in self.alarms.current(device_id, include_inactive=True):
                self._alarm_changed_values(alarm)

    def _alarm_changed_values(self, a) -> None:  # noqa: ANN001 - an Alarm
        self._queue(
            a.device_id,
            {
                f"alarms/{a.name}/active": a.active,
                f"alarms/{a.name}/severity": a.severity,
                f"alarms/{a.name}/acked": a.acked,
            },
        )

    # -- publishing --------------------------------------------------------------------------------------
    def _queue(self, device_id: str, values: dict[str, Value]) -> None:
        outputs = self.outputs.get(device_id)
        if not outputs:
            return
        pending = self._pending.setdefault(device_id, {})
        for path, value in values.items():
            signal = outputs.get(path)
            if signal is not None:
                pending[signal.alias] = value
        if pending and not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (unit tests): publish now
                self.flush()

    def flush(self) -> None:
        """Publish queued derived values, one batch per device (after the tap returned)."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        now = time.time_ns()
        for device_id, values in pending.items():
            if values:
                self.bus.publish(
                    SampleBatch(device_id, list(values), list(values.values()), [now] * len(values))
                )

    def tick(self, now: int) -> None:
        """Delays, stuck, stale, shelving expiry; then times in state and OEE as signals."""
        self.alarms.expire_shelving(now)
        for rt in list(self.devices.values()):
            rt.tick(now)
            self._report(rt, now)
            values: dict[str, Value] = {"state/current": rt.clock.state.name}
            for window in WINDOWS:
                for state, secs in self._seconds(rt, window, now).items():
                    values[f"state/{_prefix(window)}seconds/{state.name}"] = secs
            if rt.config.oee is not None:
                for window in ("shift", "hour"):
                    eff = self.efficiency_of(rt, window, now, losses=False)
                    for f in _OEE_FIELDS:
                        values[f"oee/{_oee_prefix(window)}{f}"] = float(getattr(eff, f))
            self._queue(rt.device_id, values)

    # -- efficiency --------------------------------------------------------------------------------------
    def window_bounds(self, window: str, now: int, rt: DeviceAnalyticsRuntime) -> tuple[int, int]:
        """Start and end (ns) of a named window: the current shift, the last hour, or since start."""
        if window == "shift":
            shift = self.calendar.current(now)
            if shift is not None:
                return shift[1], now
            return now - _HOUR_NS, now  # between shifts (or no calendar): the last hour
        if window == "hour":
            return now - _HOUR_NS, now
        return rt.clock.started_ns, now

    def _seconds(self, rt: DeviceAnalyticsRuntime, window: str, now: int) -> dict[MachineState, float]:
        if window == "start":
            return rt.clock.since_start(now)
        return rt.clock.window(*self.window_bounds(window, now, rt))

    def efficiency_of(
        self, rt: DeviceAnalyticsRuntime, window: str, now: int, losses: bool = True
    ) -> Efficiency:
        """ISO 22400-2 elements and KPIs of one device over a named window."""
        start, end = self.window_bounds(window, now, rt)
        seconds = rt.clock.window(start, end)
        cfg = rt.config.oee
        eff = Efficiency(rt.device_id, window, start, end)
        eff.seconds_by_state = {s.name: v for s, v in seconds.items() if v}
        eff.apt = seconds[MachineState.EXECUTE]
        override = self.pbt_override.get(rt.device_id)
        if override is not None:
            eff.pbt = override
        elif self.config.shifts:
            eff.pbt = self.calendar.planned_busy_seconds(start, end)
        else:  # no calendar: all of the window is planned
            eff.pbt = (end - start) / 1e9
        if cfg is not None:
            eff.pri = cfg.pri_seconds
            counters = rt.counters
            eff.pq = counters["produced"].between(start, end) if "produced" in counters else 0.0
            if "good" in counters:
                eff.gq = counters["good"].between(start, end)
            elif "scrap" in counters:
                eff.gq = max(0.0, eff.pq - counters["scrap"].between(start, end))
            else:
                eff.gq = eff.pq
        if losses:  # scans the alarm history: for GetEfficiency, not for every tick
            eff.down_by_alarm = self._down_by_alarm(rt, start, end)
        return compute(eff)

    def _down_by_alarm(self, rt: DeviceAnalyticsRuntime, start: int, end: int) -> dict[str, float]:
        """Seconds outside EXECUTE during which each alarm of the device was active."""
        down = [(a, b) for s, a, b in rt.clock.spans(start, end) if s is not MachineState.EXECUTE]
        out: dict[str, float] = {}
        for name, spans in self.alarms.active_spans(rt.device_id, start, end).items():
            total = sum(max(0, min(b, d1) - max(a, d0)) for a, b in spans for d0, d1 in down) / 1e9
            if total:
                out[name] = total
        return out

    def efficiency(self, device_glob: str, window: str) -> list[Efficiency]:
        """Efficiency of every device matching the glob that has analytics."""
        if window not in WINDOWS:
            raise InvalidArgument(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
        now = time.time_ns()
        return [
            self.efficiency_of(rt, window, now)
            for device_id, rt in sorted(self.devices.items())
            if fnmatch.fnmatchcase(device_id, device_glob or "*")
        ]

    def set_planned_busy_time(self, device_glob: str, seconds: float) -> list[str]:
        """PBT set from outside (an MES) for the matching devices; 0 returns them to the shift calendar."""
        if seconds < 0:
            raise InvalidArgument(f"planned busy time must not be negative, got {seconds:g} s")
        ids = [d for d in sorted(self.devices) if fnmatch.fnmatchcase(d, device_glob or "*")]
        for device_id in ids:
            if seconds:
                self.pbt_override[device_id] = seconds
            else:
                self.pbt_override.pop(device_id, None)
        return ids

    def errors(self) -> list[str]:
        """Rules that could not be bound (unknown signals, wrong types), one line each."""
        return [e for rt in self.devices.values() for e in rt.errors]


def _prefix(window: str) -> str:
    return "" if window == "start" else f"{window}_"


def _oee_prefix(window: str) -> str:
    return "" if window == "shift" else f"{window}/"
