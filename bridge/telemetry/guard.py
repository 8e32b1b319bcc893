"""The driver boundary: every batch a driver hands over is checked once, per batch, before the bus.

What no device may pass on to every client (issue 12, defect 3 and risk 4):

* a string larger than `max_value_bytes` (UTF-8) is truncated to it, or replaced by "" (`oversize:
  bad`), and marked BAD: one 8 MB value must not make every Subscribe and Read message too large;
* a non-finite double (NaN, +-inf), or an integer beyond int64, is marked BAD (the integer becomes 0);
* a number outside the signal's declared range (`Signal.minimum/maximum`, e.g. a Modbus map's
  min/max) is marked UNCERTAIN, as OPC UA does with UncertainEngineeringUnitsExceeded
  (OPC 10000-8 §5.6.2, EURange; OPC 10000-4 §7.39);
* a timestamp outside int64 ns is clamped and marked UNCERTAIN.

Each correction is counted by reason. The common clean batch costs a few C-level passes over its
columns (`sum`, `min`/`max`, `max(map(len, ...))`) and is passed on as the same object.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from linebridge.model import Quality, SampleBatch, Signal, Value, ValueType

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
OVERSIZE, NON_FINITE, OUT_OF_RANGE, TIMESTAMP = "oversize", "non_finite", "out_of_range", "timestamp"
REASONS = (OVERSIZE, NON_FINITE, OUT_OF_RANGE, TIMESTAMP)
Counter = Callable[[str, str, int], None]  # (device id, reason, samples)
_NUMERIC = (ValueType.DOUBLE, ValueType.INT)


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Limits at the driver boundary (telemetry config)."""

    max_value_bytes: int = 65_536
    oversize: Literal["truncate", "bad"] = "truncate"


def truncate_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, never inside a character."""
    return text.encode()[:limit].decode("utf-8", errors="ignore")


class ValueGuard:
    """Checks the batches of one device; `use(signals)` after each connect gives it the ranges."""

    def __init__(self, device_id: str, settings: GuardSettings, count: Counter | None = None) -> None:
        self.device_id = device_id
        self.settings = settings
        self._count = count
        self._ranges: dict[int, tuple[float, float]] = {}
        self.counts: dict[str, int] = dict.fromkeys(REASONS, 0)

    def use(self, signals: Sequence[Signal]) -> None:
        """Remember the declared ranges of the device's signals (by alias)."""
        self._ranges = {
            s.alias: (
                -math.inf if s.minimum is None else s.minimum,
                math.inf if s.maximum is None else s.maximum,
            )
            for s in signals
            if s.value_type in _NUMERIC and (s.minimum is not None or s.maximum is not None)
        }

    def check(self, batch: SampleBatch) -> SampleBatch:
        """The batch itself when it is clean, else a corrected copy (values, qualities, timestamps)."""
        fix: dict[int, tuple[Quality, Value | None]] = {}
        kind = batch.value_type
        values = batch.values
        if kind is ValueType.DOUBLE:
            if not math.isfinite(sum(values)):  # NaN and inf propagate; an overflow only costs a scan
                self._non_finite(values, range(len(values)), fix)
        elif kind is ValueType.INT:
            if values and (min(values) < INT64_MIN or max(values) > INT64_MAX):  # type: ignore[type-var]
                self._int_range(values, fix)
        elif kind is ValueType.STRING:
            if values and max(map(len, values)) * 4 > self.settings.max_value_bytes:
                self._oversize(values, range(len(values)), fix)
        elif kind is None:
            self._mixed(values, fix)
        if self._ranges and kind is not ValueType.STRING and kind is not ValueType.BOOL:
            self._out_of_range(batch, fix)
        stamps = batch.timestamps
        # One time for the whole batch (a poll, a packet) is checked once: list.count compares identity first.
        first = stamps[0] if stamps else 0
        if stamps and stamps.count(first) == len(stamps):
            clamp = not INT64_MIN <= first <= INT64_MAX
        else:
            clamp = bool(stamps) and (min(stamps) < INT64_MIN or max(stamps) > INT64_MAX)
        if not fix and not clamp:
            return batch
        return self._corrected(batch, fix, clamp)

    def _mixed(self, values: list[Value], fix: dict[int, tuple[Quality, Value | None]]) -> None:
        floats = [i for i, v in enumerate(values) if type(v) is float]
        if floats and not math.isfinite(sum(values[i] for i in floats)):  # type: ignore[misc]
            self._non_finite(values, floats, fix)
        limit = self.settings.max_value_bytes
        texts = [i for i, v in enumerate(values) if type(v) is str and len(v) * 4 > limit]
        if texts:
            self._oversize(values, texts, fix)

    def _int_range(self, values: list[Value], fix: dict[int, tuple[Quality, Value | None]]) -> None:
        for i, v in enumerate(values):
            if not INT64_MIN <= v <= INT64_MAX:  # type: ignore[operator]
                fix[i] = (Quality.BAD, 0)
                self._counted(NON_FINITE)

    def _non_finite(
        self, values: list[Value], idx: Sequence[int], fix: dict[int, tuple[Quality, Value | None]]
    ) -> None:
        for i in idx:
            if not math.isfinite(values[i]):  # type: ignore[arg-type]
                fix[i] = (Quality.BAD, None)
                self._counted(NON_FINITE)

    def _oversize(
        self, values: list[Value], idx: Sequence[int], fix: dict[int, tuple[Quality, Value | None]]
    ) -> None:
        limit = self.settings.max_value_bytes
        for i in idx:
            text = values[i]
            assert isinstance(text, str)
            if len(text) * 4 <= limit or len(text.encode()) <= limit:
                continue
            cut = truncate_utf8(text, limit) if self.settings.oversize == "truncate" else ""
            fix[i] = (Quality.BAD, cut)
            self._counted(OVERSIZE)

    def _out_of_range(self, batch: SampleBatch, fix: dict[int, tuple[Quality, Value | None]]) -> None:
        ranges = self._ranges
        for i, alias in enumerate(batch.aliases):
            bounds = ranges.get(alias)
            if bounds is None or i in fix:
                continue
            value = batch.values[i]
            if isinstance(value, int | float) and not bounds[0] <= value <= bounds[1]:
                fix[i] = (Quality.UNCERTAIN, None)
                self._counted(OUT_OF_RANGE)

    def _corrected(
        self, batch: SampleBatch, fix: dict[int, tuple[Quality, Value | None]], clamp: bool
    ) -> SampleBatch:
        n = len(batch.aliases)
        values = list(batch.values)
        qualities = list(batch.qualities) if batch.qualities is not None else [int(Quality.GOOD)] * n
        stamps = batch.timestamps
        for i, (quality, value) in fix.items():
            qualities[i] = max(qualities[i], int(quality))
            if value is not None:
                values[i] = value
        if clamp:
            stamps = [min(max(t, INT64_MIN), INT64_MAX) for t in stamps]
            for i, t in enumerate(batch.timestamps):
                if t != stamps[i]:
                    qualities[i] = max(qualities[i], int(Quality.UNCERTAIN))
                    self._counted(TIMESTAMP)
        return SampleBatch(batch.device_id, batch.aliases, values, stamps, qualities, batch.value_type)

    def _counted(self, reason: str) -> None:
        self.counts[reason] += 1
        if self._count is not None:
            self._count(self.device_id, reason, 1)
