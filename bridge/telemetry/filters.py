"""Batch filters: take samples by position or alias, and the deadband change filter of on-change streams."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain, compress
from operator import ne

from linebridge.model import Quality, SampleBatch, Value

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
    """Report by exception: keeps the last value and quality passed per alias; lets through changes.

    A sample passes when its quality differs from the alias's last one (a value turning STALE or BAD
    is news even when the number is the same) or its value changed beyond the alias's deadband (its
    own, else the default). The comparison is against the last value actually passed, so slow drifts
    still get through. With no deadband and no quality in play the test is C-level `map(ne, ...)` per
    batch, batches of repeated rows included. Used by on-change subscriptions and the uplink.
    """

    def __init__(self, deadband: float = 0.0) -> None:
        self.deadband = deadband
        self.deadbands: dict[int, float] = {}
        self.last: dict[int, Value] = {}
        self.quality: dict[int, int] = {}  # aliases whose last quality is not GOOD
        self.suppressed = 0

    def set_deadband(self, alias: int, deadband: float) -> None:
        """The absolute deadband of one alias (0: the default deadband applies)."""
        if deadband > 0:
            self.deadbands[alias] = deadband
        else:
            self.deadbands.pop(alias, None)

    def seed(self, alias: int, value: Value | None) -> None:
        """`value` was reported for `alias` by other means (None: forget the alias)."""
        if value is None:
            self.last.pop(alias, None)
        else:
            self.last[alias] = value

    def seed_batch(self, batch: SampleBatch) -> None:
        """Every sample of `batch` was reported by other means (the initial values of a stream)."""
        self.last.update(zip(batch.aliases, batch.values, strict=True))
        if batch.qualities is not None:
            for alias, quality in zip(batch.aliases, batch.qualities, strict=True):
                self._set_quality(alias, quality)

    def apply(self, batch: SampleBatch) -> SampleBatch | None:
        """The samples worth reporting: the batch itself when all are, None when none are."""
        aliases = batch.aliases
        simple = not (
            batch.qualities is not None
            or self.deadband
            or (self.quality and not self.quality.keys().isdisjoint(aliases))
            or (self.deadbands and not self.deadbands.keys().isdisjoint(aliases))
        )
        mask = self._exact(aliases, batch.values) if simple else None
        if mask is None:
            mask = self._one_by_one(batch)
        if all(mask):
            return batch
        kept = sum(mask)
        self.suppressed += len(mask) - kept
        return take(batch, list(compress(range(len(mask)), mask))) if kept else None

    def apply_all(self, batches: list[SampleBatch]) -> list[SampleBatch]:
        """apply() to each batch in order, keeping the batches that still hold samples."""
        return [kept for batch in batches if (kept := self.apply(batch)) is not None]

    def _exact(self, aliases: list[int], values: list[Value]) -> list[bool] | None:
        """Changed-or-not per sample in C-level loops, when the batch is rows of one alias list.

        Without a deadband a sample's reference is the sample before it of the same alias (the last
        one passed had that value too). None for irregular repeats: they go one by one.
        """
        n, distinct = len(aliases), len(set(aliases))
        if distinct == n:
            previous: Iterable[Value | None] = map(self.last.get, aliases)
        elif n % distinct == 0 and aliases == aliases[:distinct] * (n // distinct):
            previous = chain(map(self.last.get, aliases[:distinct]), values[: n - distinct])
        else:
            return None
        mask = list(map(ne, previous, values))
        self.last.update(zip(aliases, values, strict=True))  # the last row wins
        return mask

    def _one_by_one(self, batch: SampleBatch) -> list[bool]:
        last, deadbands, default = self.last, self.deadbands, self.deadband
        qualities = batch.qualities if batch.qualities is not None else [_GOOD] * len(batch.aliases)
        mask = []
        for alias, value, quality in zip(batch.aliases, batch.values, qualities, strict=True):
            if self.quality.get(alias, _GOOD) != quality:
                self._set_quality(alias, quality)
                last[alias] = value
                mask.append(True)
                continue
            old = last.get(alias, _MISSING)
            band = deadbands.get(alias, default)
            changed = old is _MISSING or (
                old != value
                and not (
                    band
                    and type(value) in (int, float)
                    and type(old) in (int, float)
                    and abs(value - old) <= band  # type: ignore[operator]
                )
            )
            if changed:
                last[alias] = value
            mask.append(changed)
        return mask

    def _set_quality(self, alias: int, quality: int) -> None:
        if quality == _GOOD:
            self.quality.pop(alias, None)
        else:
            self.quality[alias] = quality
