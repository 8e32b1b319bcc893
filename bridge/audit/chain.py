"""The audit log's on-disk form: JSON Lines files whose records are chained by SHA-256, and its checks.

Every record carries `prev` (the hash of the record before it; the first record ever carries GENESIS)
and `hash`, the SHA-256 of the record's canonical JSON (sorted keys, no spaces, without `hash`).
Files are `audit-000001.jsonl`, `audit-000002.jsonl`, ...; a rotated file's first record carries the
last hash of the file before, so one chain runs through them all. Editing a record breaks its hash;
removing or inserting one breaks the next record's `prev` (and the `seq` count shows how many).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linebridge.audit.key import ChainHead, mac_ok, sign

GENESIS = "0" * 64
FILE_PATTERN = re.compile(r"^audit-(\d{6,})\.jsonl$")


def file_name(number: int) -> str:
    """The name of the audit file with this number."""
    return f"audit-{number:06d}.jsonl"


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes a record's hash is taken over: sorted keys, no whitespace, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def seal(body: dict[str, Any], prev: str, key: bytes | None = None) -> tuple[bytes, str, str]:
    """A record as one JSON line ending in "\\n" (fields in the order given), its hash and its MAC.

    With a key the record also carries `mac`, HMAC-SHA256 of the hash (audit/key.py); "" without.
    """
    body = {**body, "prev": prev}
    digest = hashlib.sha256(canonical(body)).hexdigest()
    mac = sign(key, digest) if key is not None else ""
    sealed = {**body, "hash": digest, **({"mac": mac} if mac else {})}
    text = json.dumps(sealed, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode() + b"\n", digest, mac


def audit_files(directory: Path) -> list[tuple[int, Path]]:
    """The audit files of a directory, oldest first."""
    found = []
    for entry in directory.iterdir() if directory.is_dir() else ():
        match = FILE_PATTERN.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def files_of(path: Path) -> list[Path]:
    """One file, or the audit files of a directory in order."""
    return [path] if path.is_file() else [p for _, p in audit_files(path)]


@dataclass(slots=True)
class Verdict:
    """What `verify` found: records checked, the last good hash, and the first break (None when intact)."""

    files: int = 0
    records: int = 0
    last_hash: str = GENESIS
    last_seq: int = 0
    error: str | None = None
    where: str = ""  # FILE:LINE of the first broken record
    signed: int = 0  # records whose MAC was checked

    @property
    def ok(self) -> bool:
        """Whether the chain checked out."""
        return self.error is None


def _check_record(line: bytes, prev: str | None, seq: int | None) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) when the line is intact and follows prev/seq (None = accept any), else (record?, why)."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, "not a JSON record (damaged or edited)"
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
        return None, "not an audit record (no hash)"
    body = {k: v for k, v in record.items() if k not in ("hash", "mac")}
    if hashlib.sha256(canonical(body)).hexdigest() != record["hash"]:
        return record, "hash mismatch: the record was changed after it was written"
    if prev is not None and record.get("prev") != prev:
        gap = ""
        if seq is not None and isinstance(record.get("seq"), int) and record["seq"] != seq + 1:
            gap = f" (seq {record['seq']} follows {seq}: {record['seq'] - seq - 1} record(s) missing)"
        return (
            record,
            f"chain broken: prev does not match the record before it{gap} - a record was removed or inserted",
        )
    if seq is not None and record.get("seq") != seq + 1:
        return record, f"seq {record.get('seq')} follows {seq}"
    return record, None


def verify(
    path: Path,
    anchor: str = "",
    key: bytes | None = None,
    head: ChainHead | None = None,
    witness: str = "",
) -> Verdict:
    """Check the chain of one file or a directory of audit files; stop at the first broken record.

    `anchor` is the hash the first record must follow: by default GENESIS for a directory or the
    first file, and whatever it says for a later file checked alone; give a hash kept elsewhere to
    check a log whose older files were archived. With `key` every record's MAC is checked (every
    record must be signed). `head` (the head file) and `witness` (a hash
    published earlier, e.g. GetInfo's audit_head) must be found in the chain, or the tail was cut.
    """
    verdict = Verdict()
    prev, seq = anchor or _default_anchor(path), None
    found_head = found_witness = False
    for file in files_of(path):
        verdict.files += 1
        with file.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                where = f"{file}:{number}"
                if not line.endswith(b"\n"):
                    verdict.error, verdict.where = "incomplete last record (torn write)", where
                    return verdict
                record, error = _check_record(line, prev, seq)
                if error is None and key is not None:
                    error = _check_mac(record, key, verdict)
                if (
                    error is None
                    and head is not None
                    and record is not None
                    and record.get("seq") == head.seq
                ):
                    found_head = True
                    if record["hash"] != head.hash:
                        error = f"record seq {head.seq} is not the one the head file recorded (rewritten)"
                if error is not None:
                    verdict.error, verdict.where = error, where
                    return verdict
                assert record is not None
                prev, seq = record["hash"], record.get("seq")
                found_witness = found_witness or prev == witness
                verdict.records += 1
                verdict.last_hash, verdict.last_seq = prev, seq if isinstance(seq, int) else 0
    _check_tail(verdict, head, found_head, witness, found_witness)
    return verdict


def _check_mac(record: dict[str, Any] | None, key: bytes, verdict: Verdict) -> str | None:
    assert record is not None
    if "mac" not in record:
        return "unsigned record: inserted or rewritten without the key (or written before the log was signed)"
    if not mac_ok(key, record["hash"], record["mac"]):
        return "MAC mismatch: the record was changed (hashes recomputed) or signed with another key"
    verdict.signed += 1
    return None


def _check_tail(
    verdict: Verdict, head: ChainHead | None, found_head: bool, witness: str, found_witness: bool
) -> None:
    if head is not None and not found_head and head.seq > verdict.last_seq:
        verdict.error = (
            f"cut tail: the log ends at seq {verdict.last_seq} but its head file recorded seq {head.seq}"
        )
        verdict.where = "end of log"
    elif witness and not found_witness:
        verdict.error = f"cut tail or rewritten log: the published head hash {witness} is not in the chain"
        verdict.where = "end of log"


def _default_anchor(path: Path) -> str | None:
    match = FILE_PATTERN.match(path.name)
    if path.is_file() and not (match and int(match.group(1)) == 1):
        return None  # a later file alone: its first record names the hash it follows
    return GENESIS


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every parseable record of a file or directory, in order (no chain check)."""
    for file in files_of(path):
        with file.open("rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if isinstance(record, dict):  # found by fuzz/fuzz_files.py: `null` reached `audit tail`
                    yield record


def last_line(data: bytes) -> tuple[bytes, int]:
    """The last complete line of a file's content, and how many bytes follow it (a torn write)."""
    end = data.rfind(b"\n")
    if end < 0:
        return b"", len(data)
    start = data.rfind(b"\n", 0, end) + 1
    return data[start : end + 1], len(data) - end - 1
