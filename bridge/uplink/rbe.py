"""Report by exception (Sparkplug 3.0, Operational Behavior > Data Publish): only values that changed, beyond a deadband."""

from __future__ import annotations

from itertools import compress
from operator import ne

from linebridge.model import SampleBatch, Value

_MISSING = object()


def _subset(batch: SampleBatch, mask: list[bool]) -> SampleBatch:
    q = batch.qualities
    return SampleBatch(
        device_id=batch.device_id,
        aliases=list(compress(batch.aliases, mask)),
        values=list(compress(batch.values, mask)),
        timestamps=list(compress(batch.timestamps, mask)),
        qualities=None if q is None else list(compress(q, mask)),
        value_type=batch.value_type,
    )


class ChangeFilter:
    """Keeps the last reported value per signal alias and drops repeats of it.

    Without deadbands the test is one C-level `map(ne, ...)` per batch. Signals with a deadband are
    compared one by one against the last value actually reported, so slow drifts still get through.
    """

    def __init__(self) -> None:
        self.last: dict[int, Value] = {}
        self.deadbands: dict[int, float] = {}
        self.suppressed = 0

    def set_deadband(self, alias: int, deadband: float) -> None:
        """The absolute deadband of one signal alias (0: any change is reported)."""
        if deadband > 0:
            self.deadbands[alias] = deadband
        else:
            self.deadbands.pop(alias, None)

    def seed(self, alias: int, value: Value | None) -> None:
        """A birth reported this value."""
        if value is None:
            self.last.pop(alias, None)
        else:
            self.last[alias] = value

    def apply(self, batch: SampleBatch) -> SampleBatch | None:
        """The samples worth reporting: the batch itself when all are, None when none are."""
        if batch.qualities is not None:  # quality changes matter even when the value repeats
            self.last.update(zip(batch.aliases, batch.values, strict=True))
            return batch
        if self.deadbands and not self.deadbands.keys().isdisjoint(batch.aliases):
            mask = self._with_deadbands(batch)
        else:
            mask = list(map(ne, map(self.last.get, batch.aliases), batch.values))
            self.last.update(zip(batch.aliases, batch.values, strict=True))
        if all(mask):
            return batch
        kept = sum(mask)
        self.suppressed += len(mask) - kept
        return _subset(batch, mask) if kept else None

    def _with_deadbands(self, batch: SampleBatch) -> list[bool]:
        last, deadbands = self.last, self.deadbands
        mask = []
        for alias, value in zip(batch.aliases, batch.values, strict=True):
            old = last.get(alias, _MISSING)
            band = deadbands.get(alias, 0.0)
            changed = old is _MISSING or (
                old != value
                and not (
                    band
                    and type(value) in (int, float)
                    and type(old) in (int, float)
                    and abs(value - old) <= band
                )
            )  # type: ignore[operator]
            if changed:
                last[alias] = value
            mask.append(changed)
        return mask
