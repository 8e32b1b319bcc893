"""Batch filters: take samples by position or alias, and the deadband change filter of on-change streams."""

from __future__ import annotations

from linebridge.model import Quality, SampleBatch, Value, ValueType

_MISSING = object()
_GOOD = int(Quality.GOOD)


def take(batch: SampleBatch, idx: list[int]) -> SampleBatch:
    """The samples of `batch` at positions `idx`, as a new batch (the batch itself when that is all)."""
    if len(idx) == len(batch.aliases):
        return batch
    q = batch.qualities
    return SampleBatch(
        device_id=batch.device_id,
        aliases=[batch.aliases[i] for i in idx],
        values=[batch.values[i] for i in idx],
        timestamps=[batch.timestamps[i] for i in idx],
        qualities=None if q is None else [q[i] for i in idx],
        value_type=batch.value_type,
    )


def filter_batch(batch: SampleBatch, keep: frozenset[int]) -> SampleBatch:
    """The samples of `batch` whose alias is in `keep` (used only for partial selections)."""
    return take(batch, [i for i, a in enumerate(batch.aliases) if a in keep])


class ChangeFilter:
    """Keeps the last value and quality sent per alias; lets through changes beyond the deadband and
    every change of quality (a value turning STALE or BAD is news even when the number is the same)."""

    def __init__(self, deadband: float, types: dict[int, ValueType]) -> None:
        self.deadband = deadband
        self.types = types
        self.last: dict[int, Value] = {}
        self.quality: dict[int, int] = {}

    def seed(self, batch: SampleBatch) -> None:
        self.last.update(zip(batch.aliases, batch.values, strict=True))
        if batch.qualities is not None:
            self.quality.update(zip(batch.aliases, batch.qualities, strict=True))

    def apply(self, batches: list[SampleBatch]) -> list[SampleBatch]:
        out = []
        for batch in batches:
            q = batch.qualities or [_GOOD] * len(batch.aliases)
            keep = [
                i
                for i, (a, v) in enumerate(zip(batch.aliases, batch.values, strict=True))
                if self._changed(a, v, q[i])
            ]
            if keep:
                out.append(take(batch, keep))
        return out

    def _changed(self, alias: int, value: Value, quality: int) -> bool:
        if self.quality.get(alias, _GOOD) != quality:
            self.quality[alias] = quality
            self.last[alias] = value
            return True
        old = self.last.get(alias, _MISSING)
        if (
            old is _MISSING
            or old != value
            and not (
                self.deadband
                and isinstance(value, float | int)
                and not isinstance(value, bool)
                and isinstance(old, float | int)
                and abs(value - old) <= self.deadband
            )
        ):
            self.last[alias] = value
            return True
        return False
