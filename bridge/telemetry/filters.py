"""Batch filters: take samples by position or alias, and the deadband change filter of on-change streams."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain, compress
from operator import ne

from linebridge.model import SampleBatch, Value

_MISSING = object()


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
    """Report by exception: keeps the last value passed per alias and lets through only changes.

    A numeric change within the alias's deadband (its own, else the default) is no change; the
    comparison is against the last value actually passed, so slow drifts still get through. Without a
    deadband in play the test is C-level `map(ne, ...)` per batch, batches of repeated rows included.
    With `report_quality`, a batch that carries qualities passes whole (a quality change is news even
    when the value repeats).
    Used by on-change subscriptions and by the uplink's report by exception.
    """

    def __init__(self, deadband: float = 0.0, report_quality: bool = False) -> None:
        self.deadband = deadband
        self.report_quality = report_quality
        self.deadbands: dict[int, float] = {}
        self.last: dict[int, Value] = {}
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
        """Every value of `batch` was reported by other means (the initial values of a stream)."""
        self.last.update(zip(batch.aliases, batch.values, strict=True))

    def apply(self, batch: SampleBatch) -> SampleBatch | None:
        """The samples worth reporting: the batch itself when all are, None when none are."""
        if self.report_quality and batch.qualities is not None:
            self.seed_batch(batch)
            return batch
        aliases = batch.aliases
        banded = self.deadband or (self.deadbands and not self.deadbands.keys().isdisjoint(aliases))
        mask = None if banded else self._exact(aliases, batch.values)
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
        mask = []
        for alias, value in zip(batch.aliases, batch.values, strict=True):
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
