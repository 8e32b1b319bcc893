"""The outbox on its own: durability, resume, budget and age limits, foreign and corrupt files, aliases."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from linebridge.uplink.config import DropPolicy, OutboxConfig
from linebridge.uplink.outbox import ROW_OVERHEAD, Outbox


def config(path: Path, **changes: object) -> OutboxConfig:
    return OutboxConfig(path=str(path), **changes)  # type: ignore[arg-type]


def exists(path: str) -> bool:
    return Path(path).exists()


async def opened(cfg: OutboxConfig) -> Outbox:
    outbox = Outbox(cfg)
    await outbox.open()
    return outbox


async def test_unacknowledged_payloads_survive_a_restart_in_order(tmp_path: Path) -> None:
    outbox = await opened(config(tmp_path / "o.sqlite"))
    rows = [outbox.append("dev", f"body-{i}".encode(), samples=i + 1, historical=False) for i in range(5)]
    assert all(r is not None for r in rows)
    outbox.ack(rows[1].id)  # type: ignore[union-attr]
    await outbox.flush()
    outbox.ack(rows[3].id)  # type: ignore[union-attr]  (acknowledged after its commit: a delete)
    await outbox.close()

    again = await opened(config(tmp_path / "o.sqlite"))
    assert again.messages == 3 and again.samples == 1 + 3 + 5
    found, last = await again.read(0, 10)
    assert [r.body for r in found] == [b"body-0", b"body-2", b"body-4"]
    assert last == found[-1].id
    new = again.append("dev", b"next", 1, True)
    assert new is not None and new.id > last  # ids keep growing across restarts
    await again.close()


async def test_a_payload_acknowledged_before_its_commit_is_never_written(tmp_path: Path) -> None:
    outbox = await opened(config(tmp_path / "o.sqlite"))
    row = outbox.append("dev", b"x" * 100, 10, False)
    assert row is not None
    outbox.ack(row.id)
    await outbox.close()
    with sqlite3.connect(tmp_path / "o.sqlite") as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


async def test_commits_run_in_the_writer_thread_not_the_event_loop(tmp_path: Path) -> None:
    outbox = await opened(config(tmp_path / "o.sqlite"))
    threads: list[str] = []
    original = outbox._commit_sync

    def spy(*args: object) -> None:
        threads.append(threading.current_thread().name)
        original(*args)  # type: ignore[arg-type]

    outbox._commit_sync = spy  # type: ignore[method-assign]
    for i in range(100):
        outbox.append("dev", bytes(100), i, False)
    await outbox.flush()
    await outbox.close()
    assert threads and all(name.startswith("uplink-outbox") for name in threads)
    assert threading.current_thread().name not in threads


@pytest.mark.parametrize("policy", [DropPolicy.DROP_OLDEST, DropPolicy.REJECT_NEWEST])
async def test_a_full_budget_drops_by_policy_counts_and_logs_once_per_episode(
    tmp_path: Path, policy: DropPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    size = 1000 + ROW_OVERHEAD
    outbox = await opened(config(tmp_path / "o.sqlite", budget_bytes=5 * size, policy=policy))
    caplog.set_level(logging.WARNING, logger="linebridge.uplink.outbox")
    rows = [outbox.append("dev", bytes([i]) * 1000, 10, True) for i in range(8)]
    assert outbox.messages == 5 and outbox.bytes <= 5 * size
    assert outbox.losses.dropped_messages == 3 and outbox.losses.dropped_samples == 30
    found, _ = await outbox.read(0, 100)
    kept = [r.body[0] for r in found]
    if policy is DropPolicy.DROP_OLDEST:
        assert kept == [3, 4, 5, 6, 7]
    else:
        assert kept == [0, 1, 2, 3, 4] and rows[5:] == [None, None, None]
    assert len([r for r in caplog.records if "outbox full" in r.getMessage()]) == 1
    for row in found:  # the broker takes it all: the episode ends
        outbox.ack(row.id)
    outbox.append("dev", bytes(1000), 10, True)
    for _ in range(6):
        outbox.append("dev", bytes(1000), 10, True)
    assert len([r for r in caplog.records if "outbox full" in r.getMessage()]) == 2  # a second episode
    await outbox.close()


async def test_payloads_older_than_the_age_limit_expire(tmp_path: Path) -> None:
    outbox = await opened(config(tmp_path / "o.sqlite", max_age_seconds=60))
    now_ms = time.time_ns() // 1_000_000
    old = outbox.append("dev", b"old", 4, True, created_ms=now_ms - 30_000)
    new = outbox.append("dev", b"new", 2, True, created_ms=now_ms)
    assert old is not None and new is not None
    outbox.expire(now_ms + 30_001)
    assert outbox.messages == 1 and outbox.losses.expired_samples == 4 and outbox.losses.dropped_samples == 0
    found, _ = await outbox.read(0, 10)
    assert [r.body for r in found] == [b"new"]
    await outbox.close()


@pytest.mark.parametrize("content", ["garbage", "foreign"])
async def test_a_corrupt_or_foreign_file_is_moved_aside_with_a_clear_error(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.sqlite"
    if content == "garbage":
        path.write_bytes(b"this is not a database" * 100)
    else:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
            db.execute("INSERT INTO orders VALUES (1, 'keep me')")
    caplog.set_level(logging.ERROR, logger="linebridge.uplink.outbox")
    outbox = await opened(config(path))
    assert outbox.moved_aside and exists(outbox.moved_aside)
    message = " ".join(r.getMessage() for r in caplog.records)
    assert str(path) in message and outbox.moved_aside in message and "unusable" in message
    row = outbox.append("dev", b"fresh", 1, False)
    await outbox.close()
    again = await opened(config(path))
    found, _ = await again.read(0, 10)
    assert row is not None and [r.body for r in found] == [b"fresh"] and not again.moved_aside
    await again.close()
    if content == "foreign":
        with sqlite3.connect(outbox.moved_aside) as db:  # the foreign data is untouched, just moved
            assert db.execute("SELECT item FROM orders").fetchone()[0] == "keep me"


async def test_aliases_and_meta_are_stable_across_restarts(tmp_path: Path) -> None:
    outbox = await opened(config(tmp_path / "o.sqlite"))
    a = outbox.alias("dev", "x", 10)
    b = outbox.alias("dev", "y", 10)
    assert a != b and outbox.alias("dev", "x", 10) == a
    outbox.set_meta("bdseq", "7")
    await outbox.close()
    again = await opened(config(tmp_path / "o.sqlite"))
    assert again.alias("dev", "x", 10) == a and again.alias("dev", "y", 10) == b
    assert again.meta["bdseq"] == "7"
    changed = again.alias("dev", "x", 12)  # a new datatype is a new metric: a new alias
    assert changed not in (a, b) and again.alias("other", "x", 10) not in (a, b, changed)
    await again.close()
