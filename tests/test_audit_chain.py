"""The audit log on disk: the hash chain, tampering found by `verify`, rotation, recovery, the budget, the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import threading
from pathlib import Path

import pytest

from linebridge.audit import log as log_module
from linebridge.audit.chain import GENESIS, audit_files, canonical, verify
from linebridge.audit.log import AuditConfig, AuditLog
from linebridge.cli import main
from linebridge.errors import AuditFailure, ConfigError

ROOT = Path(__file__).resolve().parent.parent


async def write_log(directory: Path, records: int, **config: object) -> AuditLog:
    """A closed log holding `records` command-like records (plus the opened/closed records)."""
    log = AuditLog(AuditConfig(path=str(directory), **config), directory, "test-bridge")  # type: ignore[arg-type]
    await log.open()
    for n in range(records):
        seq = log.append(
            {
                "category": "control_system_event",
                "type": "command.accepted",
                "result": "success",
                "what": {"device": "robot-1", "action": "write", "arguments": {"n": n}},
            }
        )
        await log.durable(seq)
    await log.close()
    return log


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


async def test_records_chain_from_genesis_and_verify(tmp_path):
    log = await write_log(tmp_path, 5)
    (file,) = [p for _, p in audit_files(tmp_path)]
    records = [json.loads(line) for line in lines_of(file)]
    assert [r["type"] for r in records] == ["audit.opened"] + ["command.accepted"] * 5 + ["audit.closed"]
    assert [r["seq"] for r in records] == list(range(1, 8)) and records[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in zip(records, records[1:], strict=False))
    for field in ("time", "source", "category", "type", "event_id", "result"):  # IEC 62443-4-2 CR 2.8
        assert all(field in r for r in records), field
    verdict = verify(tmp_path)
    assert verdict.ok and verdict.records == 7 and verdict.last_hash == log.last_hash


async def test_an_edited_record_is_found(tmp_path):
    await write_log(tmp_path, 5)
    (file,) = [p for _, p in audit_files(tmp_path)]
    lines = lines_of(file)
    lines[3] = lines[3].replace(b'"robot-1"', b'"robot-2"')
    file.write_bytes(b"".join(lines))
    verdict = verify(tmp_path)
    assert not verdict.ok and verdict.where == f"{file}:4" and "hash mismatch" in verdict.error
    assert verdict.records == 3


async def test_an_edited_record_with_a_fresh_hash_breaks_the_next_link(tmp_path):
    await write_log(tmp_path, 5)
    (file,) = [p for _, p in audit_files(tmp_path)]
    lines = lines_of(file)
    record = json.loads(lines[3])
    record["what"]["device"] = "robot-2"
    del record["hash"]
    record.pop("mac")  # the MAC is not part of the hashed body (and needs the key: tests/test_audit_key.py)
    record["hash"] = hashlib.sha256(canonical(record)).hexdigest()  # the forger re-hashes the record ...
    lines[3] = json.dumps(record).encode() + b"\n"
    file.write_bytes(b"".join(lines))
    verdict = verify(tmp_path)  # ... and the record after it no longer follows
    assert not verdict.ok and verdict.where == f"{file}:5" and "chain broken" in verdict.error


async def test_a_deleted_record_is_found(tmp_path):
    await write_log(tmp_path, 5)
    (file,) = [p for _, p in audit_files(tmp_path)]
    lines = lines_of(file)
    file.write_bytes(b"".join(lines[:2] + lines[3:]))
    verdict = verify(tmp_path)
    assert not verdict.ok and verdict.where == f"{file}:3"
    assert "chain broken" in verdict.error and "1 record(s) missing" in verdict.error


async def test_rotation_keeps_one_chain_across_files(tmp_path):
    await write_log(tmp_path, 60, max_file_bytes=4096)
    files = [p for _, p in audit_files(tmp_path)]
    assert len(files) >= 3 and all(p.stat().st_size <= 4096 for p in files)
    for before, after in zip(files, files[1:], strict=False):
        assert json.loads(lines_of(after)[0])["prev"] == json.loads(lines_of(before)[-1])["hash"]
    verdict = verify(tmp_path)
    assert verdict.ok and verdict.files == len(files) and verdict.records == 62
    assert verify(files[1]).ok  # a later file alone: its first record names the hash it follows
    anchor = json.loads(lines_of(files[0])[-1])["hash"]
    files[0].unlink()  # archived (or removed): the chain no longer starts at genesis ...
    assert "chain broken" in (verify(tmp_path).error or "")
    assert verify(tmp_path, anchor=anchor).ok  # ... unless checked against the hash kept from the archive


async def test_reopening_continues_the_chain_and_drops_a_torn_record(tmp_path):
    first = await write_log(tmp_path, 2)
    (file,) = [p for _, p in audit_files(tmp_path)]
    with file.open("ab") as handle:
        handle.write(b'{"seq":5,"time":"half a rec')  # a power cut in the middle of a write
    second = await write_log(tmp_path, 2)
    records = [json.loads(line) for line in lines_of(file)]
    reopened = records[4]
    assert reopened["type"] == "audit.opened" and reopened["prev"] == first.last_hash
    assert "removed 27 bytes" in reopened["recovered"]
    verdict = verify(tmp_path)
    assert verdict.ok and verdict.last_hash == second.last_hash and verdict.last_seq == 8


async def test_the_budget_refuses_records_but_keeps_a_reserve(tmp_path):
    config = AuditConfig(path=str(tmp_path), max_total_bytes=16384, reserve_bytes=4096, stop_reserve_bytes=0)
    log = AuditLog(config, tmp_path, "b")
    await log.open()
    body = {
        "category": "control_system_event",
        "type": "command.accepted",
        "result": "success",
        "pad": "x" * 200,
    }
    with pytest.raises(
        AuditFailure, match=r"audit log full: .* \(audit.max_total_bytes; the last 4096 are kept"
    ):
        for _ in range(100):
            log.append(body)
    assert 16384 - 4096 - 600 < log.usage <= 16384 - 4096
    seq = log.seq
    log.append(body, reserve=True)  # outcomes and stops still fit
    assert log.seq == seq + 1
    await log.close()
    assert verify(tmp_path).ok


async def test_group_commit_covers_every_waiter(tmp_path):
    log = AuditLog(AuditConfig(path=str(tmp_path)), tmp_path, "b")
    await log.open()
    seqs = [log.append({"type": "t", "n": n}) for n in range(20)]
    await asyncio.gather(*(log.durable(s) for s in seqs))
    assert log._synced >= seqs[-1]
    await log.close()
    with pytest.raises(AuditFailure, match="closed"):
        log.append({"type": "t"})


@pytest.mark.timeout(
    30
)  # before the fix this spun in durable() with the event loop frozen: only the alarm ends it
async def test_a_waiter_that_comes_after_an_fsync_finished_but_before_its_callback_does_not_spin(
    tmp_path, monkeypatch
):
    """Seen once under load: a command stayed RUNNING and the bridge froze. A finished fsync's done callback
    runs one turn of the loop after its result is set; a waiter arriving in between awaited the finished
    future (which does not yield) again and again."""
    finished = threading.Event()
    real = log_module._sync_files

    def sync_and_tell(*args: object) -> None:
        try:
            real(*args)  # type: ignore[arg-type]
        finally:
            finished.set()

    monkeypatch.setattr(log_module, "_sync_files", sync_and_tell)
    log = AuditLog(AuditConfig(path=str(tmp_path)), tmp_path, "b")
    await log.open()
    first = log.append({"type": "t", "n": 1})
    waiting = asyncio.create_task(log.durable(first))
    await asyncio.sleep(0)  # the waiter starts the fsync covering `first`
    second = log.append({"type": "t", "n": 2})  # not covered by it
    assert finished.wait(10)  # (the loop is held) the worker thread is done; its result waits for the loop
    await asyncio.sleep(0)  # one turn: the result is set, the done callback is queued for the next turn
    assert log._pending is not None and log._pending.future.done()  # the moment the old code spun at
    await log.durable(second)  # in this task's own step (a new task would start after the callback)
    await waiting
    assert log._synced >= second
    await log.close()


async def test_cli_verify_and_tail(tmp_path, capsys):
    await write_log(tmp_path, 3)
    assert main(["audit", "verify", str(tmp_path)]) == 0
    assert "chain intact: 5 record(s) in 1 file(s)" in capsys.readouterr().out
    assert main(["audit", "tail", "-n", "2", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "#4  command.accepted" in out[0] and "#5  audit.closed" in out[1]
    (file,) = [p for _, p in audit_files(tmp_path)]
    file.write_bytes(file.read_bytes().replace(b'"n":1', b'"n":9'))
    assert main(["audit", "verify", str(tmp_path)]) == 1
    assert f"BROKEN at {file}:3: hash mismatch" in capsys.readouterr().out
    assert main(["audit", "verify", str(tmp_path / "nowhere")]) == 2


async def test_cli_tail_follows_across_rotation(tmp_path):
    log = AuditLog(AuditConfig(path=str(tmp_path), max_file_bytes=4096), tmp_path, "b")
    await log.open()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linebridge.cli",
        "audit",
        "tail",
        "-f",
        "--json",
        "-n",
        "1",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        first = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        assert first["type"] == "audit.opened"
        for n in range(30):  # several files' worth
            log.append({"type": "test.event", "n": n})
        seen = [json.loads(await asyncio.wait_for(process.stdout.readline(), 20))["n"] for _ in range(30)]
        assert seen == list(range(30)) and len(audit_files(tmp_path)) >= 2
    finally:
        process.terminate()
        await process.wait()
        await log.close()


async def test_one_writer_per_audit_folder(tmp_path):
    first = AuditLog(AuditConfig(path=str(tmp_path)), tmp_path, "a")
    await first.open()
    second = AuditLog(AuditConfig(path=str(tmp_path)), tmp_path, "b")
    with pytest.raises(ConfigError, match="in use by another bridge process"):
        await second.open()
    await second.close()
    await first.close()
    await write_log(tmp_path, 1)  # free again once the first writer closed
    assert verify(tmp_path).ok
