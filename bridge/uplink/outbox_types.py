"""What the outbox stores and reports: one stored payload (Row) and what it had to give up (Losses)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Row:
    """One stored payload: a DDATA body (device) or NDATA body (device "")."""

    id: int
    device_id: str
    body: bytes
    samples: int
    created_ms: int
    historical: bool


@dataclass(slots=True)
class Losses:
    """What the outbox had to give up, and why."""

    dropped_messages: int = 0  # budget full
    dropped_samples: int = 0
    expired_messages: int = 0  # older than the age limit
    expired_samples: int = 0
