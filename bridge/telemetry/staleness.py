"""Which of the bus's latest values are stale (issue 12 defect 6, issue 14 "Data quality").

A value is stale when its device is not ONLINE or DEGRADED (it went offline, or its session found it
silent past its liveness bound), or when it arrived before the device last came back: a value from
before an outage stays stale until the device sends it again. Silence of a device that is still
connected is turned into OFFLINE by the session's liveness watchdog, so one rule covers both "the
device went offline" and "the signal stopped updating within its expected period".

The hot path pays one `time.monotonic()` per batch (`SampleBatch.received`, set by the bus) and one
`dict.update` per batch when the bus folds it into the latest values; the per-alias work happens only
for Read, initial values and sampled streams.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from linebridge.model import Quality, SampleBatch
from linebridge.registry import DeviceRecord, DeviceRegistry

STALE = int(Quality.STALE)


class Staleness:
    """Tracks device availability and value arrival times; marks stale values."""

    def __init__(self, registry: DeviceRegistry) -> None:
        self.registry = registry
        self._down: set[str] = set()  # devices whose values are stale now
        self._since: dict[str, float] = {}  # device -> monotonic time it last came back
        self._arrived: dict[int, float] = {}  # alias -> monotonic arrival of its latest value

    def fold(self, batch: SampleBatch) -> None:
        """Record when the batch's values arrived (called where the bus folds its latest values)."""
        self._arrived.update(dict.fromkeys(batch.aliases, batch.received))

    def device_changed(self, record: DeviceRecord) -> bool:
        """Follow a state change; True when the device's values just turned stale."""
        if record.available:
            if record.id in self._down:
                self._down.discard(record.id)
                self._since[record.id] = time.monotonic()
            return False
        if record.id in self._down:
            return False
        self._down.add(record.id)
        return True

    def device_removed(self, device_id: str) -> None:
        """Forget a device that left the registry."""
        self._down.discard(device_id)
        self._since.pop(device_id, None)

    def is_stale(self, alias: int) -> bool:
        """Whether the latest value of `alias` is stale (False for an alias without a device)."""
        found = self.registry.by_alias(alias)
        if found is None:
            return False
        device_id = found[0]
        if device_id in self._down:
            return True
        since = self._since.get(device_id)
        return since is not None and self._arrived.get(alias, 0.0) < since

    def stale_devices(self) -> frozenset[str]:
        """Devices whose every value is stale now (offline, connecting, or silent past their bound)."""
        return frozenset(self._down)

    def mark(self, aliases: Sequence[int], qualities: list[int]) -> list[int]:
        """`qualities` with STALE where the value of the alias at the same position is stale."""
        if not self._down and not self._since:
            return qualities
        return [STALE if self.is_stale(a) else q for a, q in zip(aliases, qualities, strict=True)]
