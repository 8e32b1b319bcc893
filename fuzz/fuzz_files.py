"""Fuzz target: the bridge's own state files as a disk, an editor or an attacker may leave them.

* the tokens file (`TokenTable.load`): ConfigError naming the file, or valid names and 32-byte digests;
* the approvals file (`Approvals`): ConfigError naming the file, or approved ids that are device ids;
* audit files (`verify`, `read_records`, behind `linebridge audit verify|tail`): a verdict, never an
  exception; a broken chain is reported with where it broke;
* outbox rows read back after a crash (`Outbox.open`): values of the wrong type are dropped and counted,
  everything left has its column's type; the outbox opens.

Nothing else escapes (UnicodeDecodeError, RecursionError, TypeError, ValueError from bytes.fromhex, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fuzz.engine import Cursor, instrumented, run

with instrumented(__name__):
    from linebridge.audit.chain import read_records, verify
    from linebridge.config import DEVICE_ID
    from linebridge.devices.approval import Approvals
    from linebridge.errors import ConfigError
    from linebridge.security.tokens import TokenTable, hash_token
    from linebridge.uplink.config import OutboxConfig
    from linebridge.uplink.outbox import Outbox

_SCRATCH = Path(tempfile.mkdtemp(prefix="linebridge-fuzz-files-"))


def check_tokens_file(data: bytes) -> TokenTable | None:
    """Load `data` as a tokens file: ConfigError naming the file, or a table whose entries hold."""
    path = _SCRATCH / "tokens"
    path.write_bytes(data)
    try:
        table = TokenTable.load(path)
    except ConfigError as exc:
        assert str(path) in str(exc), f"the error does not name the file: {exc}"
        return None
    names = [name for name, _ in table.entries]
    assert len(names) == len(set(names)), "a name appears twice"
    for name, digest in table.entries:
        assert name and name.isprintable() and len(digest) == 32
    return table


def check_approvals_file(data: bytes) -> set[str] | None:
    """Load `data` as an approvals file: ConfigError naming the file, or approved ids that are device ids."""
    path = _SCRATCH / "approvals.json"
    path.write_bytes(data)
    try:
        approvals = Approvals([], path)
    except ConfigError as exc:
        assert str(path) in str(exc), f"the error does not name the file: {exc}"
        return None
    assert all(DEVICE_ID.fullmatch(i) for i in approvals.approved), approvals.approved
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in approvals.identities.items())
    return approvals.approved


def check_audit_file(data: bytes) -> None:
    """`audit verify` and `audit tail` on `data` as an audit file: a verdict and records, never a crash."""
    path = _SCRATCH / "audit-000001.jsonl"
    path.write_bytes(data)
    verdict = verify(path)
    assert verdict.ok or (verdict.error and verdict.where), verdict
    assert verdict.ok or data, "an empty log is a valid one"
    for record in read_records(path):
        assert isinstance(record, dict), record


def check_outbox_rows(rows: list[tuple[object, ...]]) -> Outbox:
    """Write `rows` into a real outbox file as a crash or an editor may leave them, then open it."""
    path = _SCRATCH / "outbox.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    config = OutboxConfig(path=str(path))
    asyncio.run(_create(config, path))
    db = sqlite3.connect(path)
    for row in rows:
        table, values = str(row[0]), row[1:]
        marks = ",".join("?" * len(values))
        with contextlib.suppress(sqlite3.Error):  # a constraint refuses it: the file cannot hold it
            db.execute(f"INSERT INTO {table} VALUES ({marks})", values)
    db.commit()
    db.close()
    return asyncio.run(_reopen(config, path))


async def _create(config: OutboxConfig, path: Path) -> None:
    outbox = Outbox(config, path)
    await outbox.open()
    await outbox.close()


async def _reopen(config: OutboxConfig, path: Path) -> Outbox:
    outbox = Outbox(config, path)
    await outbox.open()
    try:
        assert not outbox.moved_aside, "a file with the right header is not foreign"
        assert outbox.samples >= 0 and outbox.bytes >= 0
        for (device, route), (alias, datatype) in outbox.aliases.items():
            assert (
                isinstance(device, str) and isinstance(route, str) and alias > 0 and isinstance(datatype, int)
            )
        rows, _ = await outbox.read(0, 1000)
        for row in rows:
            assert isinstance(row.body, bytes) and isinstance(row.device_id, str), row
    finally:
        await outbox.close()
    return outbox


_TABLES = (("outbox", 6), ("aliases", 4), ("meta", 2))


def _value(cursor: Cursor) -> object:
    """One SQLite value of any type: NULL, an integer, a real, text or a blob."""
    kind = cursor.byte() % 5
    if kind == 0:
        return None
    if kind == 1:
        return int.from_bytes(cursor.take(8).ljust(8, b"\x00"), "big", signed=True)
    if kind == 2:
        return cursor.uint(2) / 7.0
    if kind == 3:
        return cursor.text()
    return cursor.chunk()


def one_input(data: bytes) -> None:
    """libFuzzer entry: which file, then its bytes (or, for the outbox, rows of typed values)."""
    cursor = Cursor(data)
    kind = cursor.byte() % 4
    if kind == 0:
        check_tokens_file(cursor.rest())
    elif kind == 1:
        check_approvals_file(cursor.rest())
    elif kind == 2:
        check_audit_file(cursor.rest())
    else:
        rows = []
        for _ in range(cursor.byte() % 6):
            table, width = cursor.choice(_TABLES)
            rows.append((table, *(_value(cursor) for _ in range(width))))
        check_outbox_rows(rows)


def seeds() -> Iterator[bytes]:
    """A well-formed tokens file, with a comment and a blank line."""
    lines = f"# tokens\nmes {hash_token('secret-1')}\n\nhmi@cell {hash_token('secret-2')}\n"
    yield b"\x00" + lines.encode()
    yield b"\x00" + b"ops sha256:" + hashlib.sha256(b"x").hexdigest().encode() + b"\n"
    yield b"\x01" + b'{"approved": ["robot-1", "plc-1"], "identities": {"robot-1": "urn:x"}}'
    yield b"\x02" + b'{"seq": 1, "prev": "0", "hash": "abc"}\n'
    yield b"\x03\x02\x00" + b"\x01" + bytes(8)


if __name__ == "__main__":
    run(one_input, seeds)
