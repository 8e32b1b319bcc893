"""The `sim` driver: a device that lives inside the bridge process and produces columnar batches.

It exists to exercise and measure the core without any protocol in between: endpoint `sim://NAME`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Sequence

from pydantic import Field

from linebridge.drivers.base import (
    Access,
    BatchSink,
    CommandKind,
    DeviceDescription,
    DeviceError,
    DeviceKind,
    Driver,
    DriverOptions,
    InvalidArgument,
    MethodArg,
    MethodSpec,
    ProgressFn,
    SampleBatch,
    Signal,
    StreamHints,
    Unavailable,
    Value,
    ValueType,
)


class SimOptions(DriverOptions):
    """Shape of the synthetic device."""

    signals: int = Field(6, ge=1, le=1_000_000)
    # Samples per signal per second; 0 streams as fast as the bridge takes batches.
    rate_hz: float = Field(100.0, ge=0)
    # Rows (time steps) per batch: each batch carries signals x rows samples.
    rows_per_batch: int = Field(1, ge=1, le=100_000)
    # Fail connect() while true (lets tests drive the session supervisor).
    fail_connect: bool = False


_CYCLE = 64  # distinct precomputed batches per stream

# A process-wide switchboard so tests can cut and restore a simulated link by name.
LINKS_DOWN: set[str] = set()
# Connect attempts per device name, so a test can prove retries happened before it asserts on their logs.
CONNECT_ATTEMPTS: Counter[str] = Counter()


class SimDriver(Driver):
    """Signals `values/N` (doubles following sines), a writable `setpoint` and `enabled`, method `Echo`."""

    type_name = "sim"
    options_model = SimOptions

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self.options: SimOptions = ctx.options  # type: ignore[assignment]
        self.name = ctx.endpoint.removeprefix("sim://") or ctx.device_id
        self.state: dict[str, Value] = {"setpoint": 0.0, "enabled": False, "label": ""}
        self.stopped = 0
        self.connected = False

    async def connect(self) -> DeviceDescription:
        """Describe the simulated device (fails while the link is down)."""
        CONNECT_ATTEMPTS[self.name] += 1
        if self.options.fail_connect or self.name in LINKS_DOWN:
            raise Unavailable(f"sim device {self.name} is unreachable")
        self.connected = True
        signals = [Signal(f"values/{i}", ValueType.DOUBLE, unit="1") for i in range(self.options.signals)]
        signals += [
            Signal("setpoint", ValueType.DOUBLE, unit="mm/s", access=Access.READ_WRITE),
            Signal("enabled", ValueType.BOOL, access=Access.READ_WRITE),
            Signal("label", ValueType.STRING, access=Access.READ_WRITE),
            Signal("counter", ValueType.INT),
        ]
        methods = [
            MethodSpec(
                "Echo", (MethodArg("text", ValueType.STRING),), (MethodArg("text", ValueType.STRING),)
            ),
            MethodSpec("Slow", (MethodArg("seconds", ValueType.DOUBLE),), ()),
            MethodSpec("Fail", (), ()),
        ]
        return DeviceDescription(
            kind=DeviceKind.OTHER,
            vendor="Linebridge",
            model="Synthetic",
            serial_number=self.name,
            identity=f"sim:{self.name.partition('?')[0]}",  # the same device wherever it is reached
            name=self.name,
            signals=signals,
            methods=methods,
            commands=frozenset({CommandKind.WRITE, CommandKind.INVOKE, CommandKind.STOP}),
        )

    async def close(self) -> None:
        """Drop the simulated connection."""
        self.connected = False

    async def stream(self, signals: Sequence[Signal], sink: BatchSink, hints: StreamHints) -> None:
        """Publish batches of the `values/N` signals at the configured rate until cancelled."""
        waves = [s for s in signals if s.path.startswith("values/")]
        rows = self.options.rows_per_batch
        aliases = [s.alias for s in waves] * rows
        # Value columns are computed once for a cycle of batches, so the driver itself costs next
        # to nothing per batch and measurements see the bridge, not math.sin.
        cycle = [
            [math.sin((step * rows + row) * 0.01 + i) for row in range(rows) for i in range(len(waves))]
            for step in range(_CYCLE)
        ]
        period = rows / self.options.rate_hz if self.options.rate_hz else 0.0
        step = 0
        next_at = time.monotonic()
        while True:
            self._check_link()
            values = cycle[step % _CYCLE]
            step += 1
            sink.publish(
                SampleBatch(
                    self.device_id,
                    aliases,
                    values,
                    [time.time_ns()] * len(aliases),
                    value_type=ValueType.DOUBLE,
                )
            )
            if period:
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            else:
                await asyncio.sleep(0)

    def _check_link(self) -> None:
        if self.name in LINKS_DOWN:
            raise Unavailable(f"sim device {self.name}: link cut")

    async def read(self, signals: Sequence[Signal]) -> SampleBatch:
        """The current values of the signals."""
        self._check_link()
        now = time.time_ns()
        values = [self.state.get(s.path, 0.0) for s in signals]
        return SampleBatch(self.device_id, [s.alias for s in signals], values, [now] * len(signals))

    async def write(self, writes: Sequence[tuple[Signal, Value]]) -> None:
        """Set signal values."""
        self._check_link()
        for signal, value in writes:
            if signal.path == "setpoint" and not -1000.0 <= float(value) <= 1000.0:  # type: ignore[arg-type]
                raise DeviceError(f"setpoint {value} out of range -1000..1000")
        for signal, value in writes:
            self.state[signal.path] = value

    async def call(self, method: MethodSpec, args: Sequence[Value], progress: ProgressFn) -> list[Value]:
        """Run a simulated method: Echo, Slow or Fail."""
        self._check_link()
        if method.name == "Echo":
            return [args[0]]
        if method.name == "Slow":
            seconds = float(args[0])  # type: ignore[arg-type]
            if seconds < 0:
                raise InvalidArgument("seconds must not be negative")
            for i in range(10):
                progress(i / 10, f"step {i + 1}/10")
                await asyncio.sleep(seconds / 10)
            return []
        raise DeviceError("the device reports: method failed on purpose")

    async def stop(self) -> None:
        """Stop the simulated device (counted)."""
        self._check_link()
        self.stopped += 1
