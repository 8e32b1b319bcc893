"""The signed audit chain (issue 12, risk 5): a key outside the audit folder, MACs that an editor who
recomputes the hashes cannot forge, a head file and a published head that show a cut tail."""

from __future__ import annotations

import hashlib
import json
import stat
import sys
from pathlib import Path

import pytest

from linebridge.api import pb
from linebridge.audit.chain import audit_files, canonical, verify
from linebridge.audit.key import default_key_file, head_file, read_head, read_key, write_head
from linebridge.audit.log import AuditConfig, AuditLog
from linebridge.errors import ConfigError
from tests.test_audit_chain import write_log
from tests.test_cli import cli, run


def _file(directory: Path) -> Path:
    (file,) = [p for _, p in audit_files(directory)]
    return file


def _rehash(records: list[dict], start: int) -> None:
    """What an editor without the key does: recompute every hash (and prev) from `start` on, keep the MACs."""
    for index in range(start, len(records)):
        body = {k: v for k, v in records[index].items() if k not in ("hash", "mac")}
        if index:
            body["prev"] = records[index - 1]["hash"]
        records[index] = {
            **body,
            "hash": hashlib.sha256(canonical(body)).hexdigest(),
            "mac": records[index]["mac"],
        }


def _save(path: Path, records: list[dict]) -> None:
    path.write_bytes(b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records))


async def test_the_key_is_created_0600_outside_the_folder_and_signs_every_record(tmp_path):
    folder = tmp_path / "audit"
    await write_log(folder, 3)
    key_file = default_key_file(folder)
    assert key_file == tmp_path / "audit.key" and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    records = [json.loads(line) for line in _file(folder).read_bytes().splitlines()]
    assert all("mac" in r for r in records)
    verdict = verify(folder, key=read_key(key_file), head=read_head(head_file(key_file)))
    assert verdict.ok and verdict.signed == len(records) == 5


async def test_an_edit_with_recomputed_hashes_fails_verify(tmp_path):
    """Before: editing a record and recomputing the hashes passed `audit verify`."""
    folder = tmp_path / "audit"
    await write_log(folder, 5)
    file = _file(folder)
    records = [json.loads(line) for line in file.read_bytes().splitlines()]
    records[3]["what"]["device"] = "robot-2"
    _rehash(records, 3)
    _save(file, records)
    assert verify(folder).ok  # the hash chain alone is fooled
    verdict = verify(folder, key=read_key(default_key_file(folder)))
    assert not verdict.ok and "MAC mismatch" in verdict.error and verdict.where.endswith(":4")


async def test_stripping_the_macs_fails_verify(tmp_path):
    folder = tmp_path / "audit"
    await write_log(folder, 2)
    file = _file(folder)
    records = [json.loads(line) for line in file.read_bytes().splitlines()]
    _save(file, [{k: v for k, v in r.items() if k != "mac"} for r in records])
    verdict = verify(folder, key=read_key(default_key_file(folder)))
    assert not verdict.ok and "unsigned record" in verdict.error


async def test_a_cut_tail_is_found_by_the_head_file_and_by_a_published_head(tmp_path):
    """Before: cutting the tail passed `audit verify`."""
    folder = tmp_path / "audit"
    log = await write_log(folder, 5)
    published = log.head()
    key_file = default_key_file(folder)
    file = _file(folder)
    lines = file.read_bytes().splitlines(keepends=True)
    file.write_bytes(b"".join(lines[:-2]))
    key = read_key(key_file)
    assert verify(folder, key=key).ok  # the chain itself is intact
    verdict = verify(folder, key=key, head=read_head(head_file(key_file)))
    assert not verdict.ok and "cut tail" in verdict.error and "seq 7" in verdict.error
    # an editor who also rewrites the head file to the new last record still misses the published head
    last = json.loads(lines[-3])
    write_head(
        head_file(key_file), type(published)(published.segment, last["seq"], last["hash"], last["mac"])
    )
    assert verify(folder, key=key, head=read_head(head_file(key_file))).ok
    verdict = verify(folder, key=key, head=read_head(head_file(key_file)), witness=published.hash)
    assert not verdict.ok and published.hash in verdict.error


async def test_a_key_inside_the_audit_folder_or_readable_by_others_is_refused(tmp_path):
    folder = tmp_path / "audit"
    inside = AuditLog(AuditConfig(path=str(folder)), folder, "b", folder / "audit.key")
    with pytest.raises(ConfigError, match="audit.key_file: .* inside the audit folder"):
        await inside.open()
    loose = tmp_path / "loose.key"
    loose.write_text("ab" * 32)
    loose.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by group or others"):
        await AuditLog(AuditConfig(path=str(folder)), folder, "b", loose).open()


async def test_verify_cli_checks_macs_and_the_head(tmp_path):
    folder = tmp_path / "audit"
    await write_log(folder, 2)
    code, out, _ = await run(sys.executable, "-m", "linebridge.cli", "audit", "verify", str(folder))
    assert code == 0 and "chain intact" in out and "4 MAC(s) checked" in out
    file = _file(folder)
    file.write_bytes(b"".join(file.read_bytes().splitlines(keepends=True)[:-1]))
    code, out, _ = await run(sys.executable, "-m", "linebridge.cli", "audit", "verify", str(folder))
    assert code == 1 and "cut tail" in out


async def test_get_info_publishes_the_chain_head(start_bridge, client_for):
    app = await start_bridge([])
    info = await client_for(app).bridge.GetInfo(pb.bridge.GetInfoRequest())
    head = info.audit_head
    assert head.sequence == app.audit.seq >= 1 and head.hash == app.audit.last_hash
    assert head.segment == "audit-000001.jsonl" and len(head.mac) == 64
    code, out, _ = await cli(app, "info")
    assert code == 0 and f"hash {app.audit.last_hash}" in out
