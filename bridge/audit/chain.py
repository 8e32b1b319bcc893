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

GENESIS = "0" * 64
FILE_PATTERN = re.compile(r"^audit-(\d{6,})\.jsonl$")


def file_name(number: int) -> str:
    """The name of the audit file with this number."""
    return f"audit-{number:06d}.jsonl"


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes a record's hash is taken over: sorted keys, no whitespace, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def seal(body: dict[str, Any], prev: str) -> tuple[bytes, str]:
    """A record as one JSON line ending in "\\n" (fields in the order given), and its hash."""
    body = {**body, "prev": prev}
    digest = hashlib.sha256(canonical(body)).hexdigest()
    text = json.dumps({**body, "hash": digest}, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode() + b"\n", digest


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

    @property
    def ok(self) -> bool:
        """Whether the chain checked out."""
        return self.error is None


def _check_record(line: bytes, prev: str | None, seq: int | None) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) when the line is intact and follows prev/seq (None = accept any), else (record?, why)."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None, "not a JSON record (damaged or edited)"
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
        return None, "not an audit record (no hash)"
    body = {k: v for k, v in record.items() if k != "hash"}
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


def verify(path: Path, anchor: str = "") -> Verdict:
    """Check the chain of one file or a directory of audit files; stop at the first broken record.

    `anchor` is the hash the first record must follow: by default GENESIS for a directory or the
    first file, and whatever it says for a later file checked alone; give a hash kept elsewhere to
    check a log whose older files were archived.
    """
    verdict = Verdict()
    prev, seq = anchor or _default_anchor(path), None
    for file in files_of(path):
        verdict.files += 1
        with file.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                where = f"{file}:{number}"
                if not line.endswith(b"\n"):
                    verdict.error, verdict.where = "incomplete last record (torn write)", where
                    return verdict
                record, error = _check_record(line, prev, seq)
                if error is not None:
                    verdict.error, verdict.where = error, where
                    return verdict
                assert record is not None
                prev, seq = record["hash"], record.get("seq")
                verdict.records += 1
                verdict.last_hash, verdict.last_seq = prev, seq if isinstance(seq, int) else 0
    return verdict


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
                    yield json.loads(line)
                except ValueError:
                    continue


def last_line(data: bytes) -> tuple[bytes, int]:
    """The last complete line of a file's content, and how many bytes follow it (a torn write)."""
    end = data.rfind(b"\n")
    if end < 0:
        return b"", len(data)
    start = data.rfind(b"\n", 0, end) + 1
    return data[start : end + 1], len(data) - end - 1
