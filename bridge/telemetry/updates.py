"""Subscription options and the updates a subscription yields (catalog, batch, sync, dropped, heartbeat)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from linebridge.model import SampleBatch, Signal


class Trigger(Enum):
    """When a streaming subscription sends samples."""

    ALL = 1
    ON_CHANGE = 2
    SAMPLE = 3


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """What a subscriber asked for (seconds for every interval)."""

    once: bool = False
    trigger: Trigger = Trigger.ALL
    sample_interval: float = 1.0
    deadband: float = 0.0
    heartbeat_interval: float = 0.0
    max_latency: float = 0.01
    max_size: int = 10_000


@dataclass(slots=True)
class CatalogUpdate:
    """New aliases (alias, full path, signal) and aliases that went away."""

    entries: list[tuple[int, str, Signal]]
    removed: list[int]


@dataclass(slots=True)
class BatchUpdate:
    """Batches to send as one message; columns concatenate in order."""

    batches: list[SampleBatch]


@dataclass(slots=True)
class SyncUpdate:
    """Initial values have been sent."""


@dataclass(slots=True)
class DroppedUpdate:
    """Samples lost by this subscriber since the last notice."""

    samples: int
    total: int
    reason: str


@dataclass(slots=True)
class HeartbeatUpdate:
    """Nothing to send for heartbeat_interval."""

    time_ns: int


Update = CatalogUpdate | BatchUpdate | SyncUpdate | DroppedUpdate | HeartbeatUpdate
