"""The audit log writer: hash-chained JSON Lines, rotation by size, a disk budget, group-commit fsync.

Durability: a record is appended with one `os.write` on an O_APPEND file before the call that
asked for it returns (microseconds: it goes to the page cache, so it survives a crash of the bridge
process). With `fsync: true` (the default) `durable(seq)` waits until an fsync in a worker thread
has covered the record; concurrent waiters share one fsync (group commit), and the event loop never
waits for the disk. The command manager calls the driver only after its "accepted" record is durable,
except for Stop, which never waits for a disk (its record is written, and synced with the next batch).

When the budget (`max_total_bytes`) or the disk is full, `append` raises AuditFailure and the
command that needed the record is refused. The last `reserve_bytes` of the budget are kept for the
outcome records of commands already running and for Stop requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fcntl
import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from linebridge.audit.chain import GENESIS, audit_files, file_name, last_line, seal
from linebridge.audit.key import ChainHead, default_key_file, head_file, load_or_create_key, write_head
from linebridge.configbase import StrictModel, relative_to_config
from linebridge.errors import AuditFailure, AuditFull, ConfigError

log = logging.getLogger(__name__)


class AuditConfig(StrictModel):
    """The `audit` section: where the log goes and how big it may grow."""

    enabled: bool = True
    # A directory; relative paths resolve against the config file's folder (or the working directory).
    path: str = "var/audit"
    max_file_bytes: int = Field(16 << 20, ge=4096)
    # The whole log (all files); beyond it commands are refused until old files are archived.
    max_total_bytes: int = Field(1 << 30, ge=16384)
    # Part of the budget kept for outcome records and Stop once new commands are refused.
    reserve_bytes: int = Field(64 << 10, ge=0)
    # The last part of the budget, which only Stop records may use (a full budget never blocks a Stop).
    stop_reserve_bytes: int = Field(8 << 10, ge=0)
    # Wait for fsync before a command reaches its device (a power cut cannot lose its record).
    fsync: bool = True
    # Longer string arguments are cut to this length in the record (the record notes the full length).
    max_value_chars: int = Field(1024, ge=16)
    # HMAC key that signs every record; must lie outside `path`. Created (mode 0600) on first start.
    # Empty: `<path>.key` beside the audit folder. The chain head is kept next to it (`<path>.head`).
    key_file: str = ""

    @model_validator(mode="after")
    def _sizes(self) -> AuditConfig:
        if self.reserve_bytes + self.stop_reserve_bytes >= self.max_total_bytes:
            raise ValueError("reserve_bytes + stop_reserve_bytes must be smaller than max_total_bytes")
        return self

    def directory(self, base_dir: Path | None) -> Path:
        """The log directory, with a relative path resolved like other paths in the config file."""
        return relative_to_config(self.path, base_dir)

    def key_path(self, base_dir: Path | None) -> Path:
        """The signing key's file, resolved like `path`."""
        if not self.key_file:
            return default_key_file(self.directory(base_dir))
        return relative_to_config(self.key_file, base_dir)


def utc_timestamp(time_ns: int) -> str:
    """ISO 8601 UTC with microseconds, e.g. 2024-05-01T12:00:00.123456Z."""
    moment = datetime.datetime.fromtimestamp(time_ns / 1e9, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sync_files(fds: list[int], closing: list[int], head: tuple[Path, ChainHead] | None = None) -> None:
    """Worker thread: fsync every fd, then close the rotated-out ones (closed even when a sync fails);
    then record the chain head the sync covered."""
    try:
        for fd in fds:
            os.fsync(fd)
        if head is not None:
            with contextlib.suppress(OSError):  # the head is a witness, not the log: never fail a sync on it
                write_head(*head)
    finally:
        for fd in closing:
            with contextlib.suppress(OSError):
                os.close(fd)


class AuditLog:
    """Appends records to the chained log; one writer per directory (the bridge process)."""

    def __init__(
        self, config: AuditConfig, directory: Path, source: str, key_file: Path | None = None
    ) -> None:
        self.config, self.directory, self.source = config, directory, source
        self.key_file = key_file or default_key_file(directory)
        self.head_file = head_file(self.key_file)
        self._key: bytes | None = None
        self.seq = 0
        self.last_hash = GENESIS
        self.last_mac = ""
        self.usage = 0  # bytes of every audit file in the directory
        self._number = 0  # current file's number
        self._size = 0  # current file's size
        self._fd: int | None = None
        self._lock: int | None = None  # flock on .lock: one writer per directory, or the chain forks
        self._retired: list[int] = []  # rotated-out fds awaiting their last fsync
        self._synced = 0  # highest seq known to be on disk
        self._pending: _Sync | None = None  # the fsync running now, shared by every waiter
        self._failed = ""  # set when the log cannot be trusted to take more records
        self._recovered = ""

    @property
    def path(self) -> Path:
        """The file records go to now."""
        return self.directory / file_name(max(self._number, 1))

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Find the end of the chain (repairing a torn last write) and open the current file."""
        await asyncio.to_thread(self._open)
        try:
            self.append(
                {
                    "category": "audit_log_event",
                    "type": "audit.opened",
                    "result": "success",
                    **({"recovered": self._recovered} if self._recovered else {}),
                },
                reserve=True,
            )
        except AuditFailure as exc:
            log.error("audit: %s", exc)

    def _open(self) -> None:
        self._key = load_or_create_key(self.key_file, self.directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._take_lock()
            files = audit_files(self.directory)
            self.usage = sum(p.stat().st_size for _, p in files)
            if files:
                self._number, last = files[-1]
                self._resume(last)
            self._number = max(self._number, 1)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise ConfigError(
                f"audit.path: cannot open the audit log in {self.directory}: {exc.strerror}"
            ) from None

    def _take_lock(self) -> None:
        fd = os.open(self.directory / ".lock", os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                f"audit.path: {self.directory} is in use by another bridge process; give each "
                "bridge an audit folder of its own"
            ) from None
        self._lock = fd

    def _resume(self, path: Path) -> None:
        data = path.read_bytes()
        line, torn = last_line(data)
        if torn:  # a power cut mid-write: the record was never acknowledged (nothing ran on it)
            os.truncate(path, len(data) - torn)
            self.usage -= torn
            self._recovered = f"{path.name}: removed {torn} bytes of an incomplete last record"
            log.warning("audit: %s", self._recovered)
        if not line:
            return
        try:
            record = json.loads(line)
            self.last_hash, self.seq = str(record["hash"]), int(record["seq"])
            self.last_mac = str(record.get("mac", ""))
        except (ValueError, KeyError, TypeError):
            # Never rewrite what is there: chain on from the raw line; `audit verify` points at it.
            self.last_hash = hashlib.sha256(line).hexdigest()
            self._recovered = f"{path.name}: last record unreadable; chained to the sha256 of its raw bytes"
            log.error("audit: %s", self._recovered)
        self._synced = self.seq

    async def close(self) -> None:
        """Sync and close every file. Idempotent."""
        if self._fd is not None and not self._failed:
            with contextlib.suppress(AuditFailure):
                self.append(
                    {"category": "audit_log_event", "type": "audit.closed", "result": "success"}, reserve=True
                )
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pending.future)
        fds = [*self._retired, *([self._fd] if self._fd is not None else [])]
        lock, self._retired, self._fd, self._lock = self._lock, [], None, None
        closing = fds + ([lock] if lock is not None else [])  # the lock goes last, after the final sync
        if closing:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_sync_files, fds if self.config.fsync else [], closing)
        if self.seq and self._key is not None and not self._failed:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(write_head, self.head_file, self.head())
        self._failed = self._failed or "the audit log is closed"

    # -- writing -----------------------------------------------------------------------------
    def append(self, body: dict[str, Any], reserve: bool = False, stop: bool = False) -> int:
        """Write one record now; its seq. AuditFailure when it cannot be written (nothing is then written).

        `reserve` lets the record use the `reserve_bytes` of the budget (outcomes, Stop); `stop` also
        the last `stop_reserve_bytes`, which only Stop records may use.
        """
        if self._failed or self._fd is None:
            raise AuditFailure(f"audit log unavailable: {self._failed or 'not open'}; commands are refused")
        now = time.time_ns()
        record = {
            "seq": self.seq + 1,
            "time": utc_timestamp(now),
            "time_ns": now,
            "source": self.source,
            "event_id": uuid.uuid4().hex,
            **body,
        }
        line, digest, mac = seal(record, self.last_hash, self._key)
        self._check_budget(len(line), reserve or stop, stop)
        if self._size and self._size + len(line) > self.config.max_file_bytes:
            self._rotate()
        self._write(line)
        self.seq, self.last_hash, self.last_mac = self.seq + 1, digest, mac
        return self.seq

    def head(self) -> ChainHead:
        """The newest record: segment file, seq, hash and MAC (GetInfo; the uplink may publish it too)."""
        return ChainHead(self.path.name, self.seq, self.last_hash, self.last_mac) if self.seq else ChainHead()

    def _check_budget(self, size: int, reserve: bool, stop: bool = False) -> None:
        c = self.config
        budget = (
            c.max_total_bytes - (0 if stop else c.stop_reserve_bytes) - (0 if reserve else c.reserve_bytes)
        )
        if self.usage + size > budget:
            raise AuditFull(
                f"audit log full: {self.usage} of {c.max_total_bytes} bytes used (audit.max_total_bytes; the "
                f"last {c.max_total_bytes - budget} are kept for outcome and Stop records) in {self.directory}; "
                "commands are refused until old audit files are archived"
            )

    def _write(self, line: bytes) -> None:
        assert self._fd is not None
        try:
            written = os.write(self._fd, line)
        except OSError as exc:
            raise AuditFailure(
                f"cannot write the audit log {self.path}: {exc.strerror}; commands are refused"
            ) from None
        if written != len(line):  # a short write (disk full mid-record): take it back, keep the chain whole
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise AuditFailure(f"cannot write the audit log {self.path}: disk full; commands are refused")
        self._size += written
        self.usage += written

    def _rotate(self) -> None:
        path = self.directory / file_name(self._number + 1)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o640)
        except OSError as exc:
            raise AuditFailure(
                f"cannot start audit file {path}: {exc.strerror}; commands are refused"
            ) from None
        old, self._fd, self._number, self._size = self._fd, fd, self._number + 1, 0
        if old is not None:
            if self.config.fsync:
                self._retired.append(old)  # closed by the next fsync, never under a running one
            else:
                os.close(old)
        log.info("audit: continuing in %s", path.name)

    # -- durability --------------------------------------------------------------------------
    async def durable(self, seq: int) -> None:
        """Return once record `seq` is on disk (at once when fsync is off); AuditFailure if it cannot be."""
        if not self.config.fsync:
            return
        while self._synced < seq:
            if self._failed:
                raise AuditFailure(f"audit log unavailable: {self._failed}; commands are refused")
            sync = self._pending
            if sync is not None and sync.future.done():
                # Finished, but its done callback runs on a later turn of the loop. Awaiting a finished
                # future does not yield, so waiting here for that callback would spin for ever and freeze
                # the event loop (seen once under load: a command stuck RUNNING, the bridge unresponsive).
                self._sync_finished(sync)
                continue
            sync = sync or self._start_sync()
            with contextlib.suppress(OSError):
                await asyncio.shield(sync.future)

    def _start_sync(self) -> _Sync:
        assert self._fd is not None
        closing = list(self._retired)
        head = (self.head_file, self.head()) if self._key is not None else None
        future = asyncio.get_running_loop().run_in_executor(
            None, _sync_files, [*closing, self._fd], closing, head
        )
        sync = self._pending = _Sync(future, self.seq, closing)
        future.add_done_callback(lambda _: self._sync_finished(sync))
        return sync

    def _sync_finished(self, sync: _Sync) -> None:
        """Take a finished fsync's outcome, once (from its done callback, or earlier from `durable`)."""
        if sync.taken:
            return
        sync.taken = True
        if self._pending is sync:
            self._pending = None
        self._retired = [fd for fd in self._retired if fd not in sync.closing]  # closed by now, synced or not
        f = sync.future
        error = None if f.cancelled() else f.exception()
        if f.cancelled() or error is not None:
            self._failed = f"fsync failed: {getattr(error, 'strerror', None) or error or 'cancelled'}"
            log.error("audit: %s", self._failed)
            return
        self._synced = max(self._synced, sync.target)


@dataclass
class _Sync:
    """One fsync in a worker thread: it covers records up to `target` and closes the `closing` fds."""

    future: asyncio.Future[None]
    target: int
    closing: list[int]
    taken: bool = False
