"""Telemetry: the bus, subscriptions, their options and updates, and filters."""

from linebridge.telemetry.bus import Subscription, TelemetryBus
from linebridge.telemetry.filters import ChangeFilter, filter_batch, take
from linebridge.telemetry.updates import (
    BatchUpdate,
    CatalogUpdate,
    DroppedUpdate,
    HeartbeatUpdate,
    SubscriptionOptions,
    SyncUpdate,
    Trigger,
    Update,
)

__all__ = [
    "BatchUpdate",
    "CatalogUpdate",
    "ChangeFilter",
    "DroppedUpdate",
    "HeartbeatUpdate",
    "Subscription",
    "SubscriptionOptions",
    "SyncUpdate",
    "TelemetryBus",
    "Trigger",
    "Update",
    "filter_batch",
    "take",
]
