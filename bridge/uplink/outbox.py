"""Store-and-forward: an on-disk SQLite (WAL) queue of Sparkplug payloads, written by one thread.

Appends and acknowledgements happen on the event loop in memory; a writer thread commits them in one
transaction every commit interval, so the loop never waits for the disk and a kill -9 loses at most
that interval. A payload acknowledged before its commit is never written at all (the common case
while the broker keeps up). The same file keeps the Sparkplug alias book and the bdSeq counter, so
aliases in stored payloads stay valid across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from linebridge.errors import ConfigError
from linebridge.uplink.config import DropPolicy, OutboxConfig
from linebridge.uplink.outbox_types import ROW_CHECKS, SCHEMA, Losses, Row

log = logging.getLogger(__name__)

APPLICATION_ID = 0x4C424F58  # "LBOX" in the SQLite header: tells our file from a foreign one
SCHEMA_VERSION = 1
ROW_OVERHEAD = 64  # bytes counted per payload on top of its body (row header, index entry)
T = TypeVar("T")


class OutboxFileError(Exception):
    """The file is not a Linebridge outbox (foreign or corrupt)."""


class Outbox:
    """The queue of payloads not yet acknowledged by the broker, oldest first."""

    def __init__(
        self, config: OutboxConfig, path: Path | None = None, before_commit: Callable[[], None] | None = None
    ) -> None:
        self.config = config
        self.path = path or Path(config.path)
        self._before_commit = before_commit  # e.g. seal open bodies, so they make this commit
        self.losses = Losses()
        self.moved_aside = ""  # where a foreign or corrupt file went
        self.write_errors = 0
        self.damaged_rows = 0  # rows read back with values of the wrong type, dropped at open
        self._db: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uplink-outbox")
        self._index: dict[int, tuple[int, int, int, str]] = {}  # id -> (bytes, samples, created_ms, device)
        self.per_device: Counter[str] = Counter()  # queued payloads per device ("" = the node)
        self._order: deque[int] = deque()  # ids oldest first; ids no longer in _index are skipped
        self._inserts: dict[int, Row] = {}
        self._deletes: list[int] = []
        self._alias_rows: list[tuple[str, str, int, int]] = []
        self._meta_rows: list[tuple[str, str]] = []
        self.aliases: dict[tuple[str, str], tuple[int, int]] = {}  # (device, path) -> (alias, datatype)
        self.meta: dict[str, str] = {}
        self._next_id = 1
        self._next_alias = 1
        self.bytes = 0
        self.samples = 0
        self.oldest: int | None = None  # ms; refreshed on the loop (append, commit), read by status
        self._episode = False
        self._committer: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Open (or create) the file in the writer thread; a foreign or corrupt file is moved aside."""
        rows, aliases, meta = await self._run(self._open_sync)
        for row_id, size, samples, created, device in rows:
            self._index[row_id] = (size + ROW_OVERHEAD, samples, created, device)
            self.per_device[device] += 1
            self._order.append(row_id)
            self.bytes += size + ROW_OVERHEAD
            self.samples += samples
        self._next_id = (rows[-1][0] + 1) if rows else 1
        for device, path, alias, datatype in aliases:
            self.aliases[(device, path)] = (alias, datatype)
            self._next_alias = max(self._next_alias, alias + 1)
        self.meta = dict(meta)
        self.expire(time.time_ns() // 1_000_000)
        self._committer = asyncio.create_task(self._commit_loop(), name="uplink-outbox-commit")
        if rows:
            log.info(
                "uplink outbox %s: resuming with %d payloads (%d samples) not yet delivered",
                self.path,
                len(rows),
                self.samples,
            )

    async def close(self) -> None:
        """Commit what is pending and close the file. Idempotent."""
        task, self._committer = self._committer, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._db is not None:
            await self.flush()
            await self._run(self._close_sync)
        self._executor.shutdown(wait=True)

    def _open_sync(
        self,
    ) -> tuple[list[tuple[int, int, int, int, str]], list[tuple[str, str, int, int]], list[tuple[str, str]]]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"uplink.outbox.path: cannot create the folder of {self.path}: {exc.strerror or exc}"
            ) from None
        try:
            self._db = self._connect_checked()
        except (sqlite3.DatabaseError, OutboxFileError) as exc:
            self._move_aside(str(exc))
            self._db = self._connect_checked()
        db = self._db
        self._drop_damaged(db)
        rows = db.execute(
            "SELECT id, length(body), samples, created_ms, device FROM outbox ORDER BY id"
        ).fetchall()
        aliases = db.execute("SELECT device, path, alias, datatype FROM aliases").fetchall()
        meta = db.execute("SELECT key, value FROM meta").fetchall()
        return rows, aliases, meta

    def _drop_damaged(self, db: sqlite3.Connection) -> None:
        """Delete rows whose values are not of their column's type (SQLite keeps whatever was written):
        an edited or damaged file must not stop the uplink, and what cannot be sent is said once."""
        dropped = 0
        for table, valid in ROW_CHECKS.items():
            dropped += db.execute(f"DELETE FROM {table} WHERE NOT ({valid})").rowcount
        if dropped:
            self.damaged_rows += dropped
            log.error(
                "uplink outbox %s: dropped %d damaged rows (values of the wrong type)", self.path, dropped
            )

    def _connect_checked(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash can lose it.
            db.execute("PRAGMA synchronous=NORMAL")
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if app_id == 0 and not tables:
                db.executescript(SCHEMA)
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif app_id != APPLICATION_ID:
                raise OutboxFileError("not a Linebridge outbox (foreign SQLite database)")
            elif db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                raise OutboxFileError("outbox written by an incompatible Linebridge version")
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise OutboxFileError(f"corrupt: {check}")
            return db
        except BaseException:
            db.close()
            raise

    def _move_aside(self, reason: str) -> None:
        target = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                os.replace(source, f"{target}{suffix}")
        self.moved_aside = str(target)
        log.error(
            "uplink outbox %s is unusable (%s): moved it to %s and started a new one; "
            "the data in it was not sent",
            self.path,
            reason,
            target,
        )

    def _close_sync(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- the queue (event loop side, never blocks) -------------------------------------------
    def append(
        self, device_id: str, body: bytes, samples: int, historical: bool, created_ms: int | None = None
    ) -> Row | None:
        """Queue a payload; None when the budget is full and the policy rejects the newest."""
        now_ms = time.time_ns() // 1_000_000
        self.expire(now_ms)
        now_ms = now_ms if created_ms is None else created_ms
        size = len(body) + ROW_OVERHEAD
        if self.bytes + size > self.config.budget_bytes:
            if self.config.policy is DropPolicy.DROP_OLDEST:
                while self._order and self.bytes + size > self.config.budget_bytes:
                    self._drop(self._order.popleft(), expired=False)
            if self.bytes + size > self.config.budget_bytes:
                self._lost_newest(samples)
                return None
        row = Row(self._next_id, device_id, body, samples, now_ms, historical)
        self._next_id += 1
        self._index[row.id] = (size, samples, now_ms, device_id)
        self.per_device[device_id] += 1
        self._order.append(row.id)
        self._inserts[row.id] = row
        self.bytes += size
        self.samples += samples
        return row

    def ack(self, row_id: int) -> None:
        """The broker has the payload: forget it (never written if it was not committed yet)."""
        if self._forget(row_id) and self._inserts.pop(row_id, None) is None:
            self._deletes.append(row_id)
        if self._episode and self.bytes < 0.9 * self.config.budget_bytes:
            self._episode = False
            log.info(
                "uplink outbox has room again (%d of %d bytes); %d samples dropped so far",
                self.bytes,
                self.config.budget_bytes,
                self.losses.dropped_samples,
            )

    def holds(self, row_id: int) -> bool:
        """Whether the payload is still queued (not acknowledged, dropped or expired)."""
        return row_id in self._index

    @property
    def messages(self) -> int:
        """Payloads queued."""
        return len(self._index)

    @property
    def last_id(self) -> int:
        """The id of the newest payload ever appended."""
        return self._next_id - 1

    def oldest_ms(self) -> int | None:
        """Creation time of the oldest queued payload (event loop only: it tidies the order)."""
        while self._order and self._order[0] not in self._index:
            self._order.popleft()
        return self._index[self._order[0]][2] if self._order else None

    def expire(self, now_ms: int) -> None:
        """Drop payloads older than the age limit (counted as expired)."""
        cutoff = now_ms - int(self.config.max_age_seconds * 1000)
        oldest = self.oldest_ms()
        while oldest is not None and oldest < cutoff:
            self._drop(self._order.popleft(), expired=True)
            oldest = self.oldest_ms()
        self.oldest = oldest

    def _forget(self, row_id: int) -> tuple[int, int, int, str] | None:
        entry = self._index.pop(row_id, None)
        if entry is not None:
            self.bytes -= entry[0]
            self.samples -= entry[1]
            self.per_device[entry[3]] -= 1
            if not self.per_device[entry[3]]:
                del self.per_device[entry[3]]
        return entry

    def _drop(self, row_id: int, expired: bool) -> None:
        entry = self._forget(row_id)
        if entry is None:
            return
        if self._inserts.pop(row_id, None) is None:
            self._deletes.append(row_id)
        losses = self.losses
        if expired:
            losses.expired_messages += 1
            losses.expired_samples += entry[1]
            if not self._episode:
                log.warning(
                    "uplink outbox: dropping payloads older than %g s (the age limit)",
                    self.config.max_age_seconds,
                )
        else:
            losses.dropped_messages += 1
            losses.dropped_samples += entry[1]
            if not self._episode:
                log.warning(
                    "uplink outbox full (%d bytes budget): dropping the oldest data until there is room",
                    self.config.budget_bytes,
                )
        self._episode = True

    def _lost_newest(self, samples: int) -> None:
        self.losses.dropped_messages += 1
        self.losses.dropped_samples += samples
        if not self._episode:
            log.warning(
                "uplink outbox full (%d bytes budget): rejecting new data until there is room",
                self.config.budget_bytes,
            )
        self._episode = True

    # -- aliases and counters persisted with the payloads ------------------------------------
    def alias(self, device_id: str, path: str, datatype: int) -> int:
        """The Sparkplug alias of a metric: stable across restarts, new when its datatype changes."""
        known = self.aliases.get((device_id, path))
        if known is not None and known[1] == datatype:
            return known[0]
        alias = self._next_alias
        self._next_alias += 1
        self.aliases[(device_id, path)] = (alias, datatype)
        self._alias_rows.append((device_id, path, alias, datatype))
        return alias

    def set_meta(self, key: str, value: str) -> None:
        """Persist a small named value (the bdSeq counter) with the next commit."""
        self.meta[key] = value
        self._meta_rows.append((key, value))

    # -- the writer thread -------------------------------------------------------------------
    async def flush(self) -> None:
        """Commit everything appended and acknowledged so far."""
        inserts, self._inserts = list(self._inserts.values()), {}
        deletes, self._deletes = self._deletes, []
        aliases, self._alias_rows = self._alias_rows, []
        meta, self._meta_rows = self._meta_rows, []
        if not (inserts or deletes or aliases or meta) or self._db is None:
            return
        try:
            await self._run(self._commit_sync, inserts, deletes, aliases, meta)
        except sqlite3.Error as exc:  # disk full, I/O error: keep the data in memory and retry
            self.write_errors += 1
            if self.write_errors == 1:
                log.error(
                    "uplink outbox %s: cannot write (%s); keeping data in memory and retrying", self.path, exc
                )
            for row in inserts:
                if row.id in self._index:
                    self._inserts.setdefault(row.id, row)
            self._deletes += deletes
            self._alias_rows = aliases + self._alias_rows
            self._meta_rows = meta + self._meta_rows
        else:
            if self.write_errors:
                log.info("uplink outbox %s: writing again", self.path)
            self.write_errors = 0

    def _commit_sync(
        self,
        inserts: list[Row],
        deletes: list[int],
        aliases: list[tuple[str, str, int, int]],
        meta: list[tuple[str, str]],
    ) -> None:
        db = self._db
        assert db is not None
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO aliases VALUES (?, ?, ?, ?)", aliases)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            db.executemany(
                "INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?, ?, ?)",
                [(r.id, r.device_id, r.created_ms, r.samples, int(r.historical), r.body) for r in inserts],
            )
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in deletes])
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.commit_interval_seconds)
            if self._before_commit is not None:
                self._before_commit()
            self.expire(time.time_ns() // 1_000_000)
            await self.flush()

    async def read(self, after_id: int, limit: int) -> tuple[list[Row], int]:
        """Queued payloads with id > after_id, oldest first, and the last id looked at (commits first)."""
        await self.flush()
        rows = await self._run(self._read_sync, after_id, limit)
        return [r for r in rows if r.id in self._index], (rows[-1].id if rows else after_id)

    def _read_sync(self, after_id: int, limit: int) -> list[Row]:
        assert self._db is not None
        cursor = self._db.execute(
            "SELECT id, device, body, samples, created_ms, historical FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [Row(i, d, b, s, c, bool(h)) for i, d, b, s, c, h in cursor]
