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


# The outbox file's tables.
SCHEMA = """
CREATE TABLE outbox (id INTEGER PRIMARY KEY, device TEXT NOT NULL, created_ms INTEGER NOT NULL,
                     samples INTEGER NOT NULL, historical INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE aliases (device TEXT NOT NULL, path TEXT NOT NULL, alias INTEGER NOT NULL UNIQUE,
                      datatype INTEGER NOT NULL, PRIMARY KEY (device, path));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# What a row read back must look like (found by fuzz/fuzz_files.py: a sample count or creation time stored
# as text made open() raise TypeError). SQLite stores any type in any column, so the types are checked here.
ROW_CHECKS = {
    "outbox": "typeof(id) = 'integer' AND typeof(device) = 'text' AND typeof(created_ms) = 'integer'"
    " AND typeof(samples) = 'integer' AND samples >= 0 AND typeof(historical) = 'integer'"
    " AND typeof(body) = 'blob'",
    "aliases": "typeof(device) = 'text' AND typeof(path) = 'text' AND typeof(alias) = 'integer'"
    " AND alias > 0 AND alias < 4294967296 AND typeof(datatype) = 'integer'",
    "meta": "typeof(key) = 'text' AND typeof(value) = 'text'",
}
