"""The audit chain's signing key and its head file (issue 12, risk 5).

Every record carries `mac`, HMAC-SHA256 under a key the bridge keeps outside the audit folder (created
on first start, mode 0600), over the record's chain hash. Whoever edits a record and recomputes every
hash after it still cannot recompute the MACs. The head file (next to the key) holds the newest
record's seq, hash and MAC after each group commit and at close, so `audit verify` notices a tail cut
while the bridge was down; the head published in GetInfo (and by the uplink) is the outside witness
for a cut that also rewrote the head file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from linebridge.errors import ConfigError

KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest record of the chain: where it is, its seq, hash and MAC ("" when unsigned)."""

    segment: str = ""
    seq: int = 0
    hash: str = ""
    mac: str = ""

    def to_json(self) -> bytes:
        """The head as one JSON line, as the head file holds it."""
        return json.dumps(asdict(self), separators=(",", ":")).encode() + b"\n"


def default_key_file(directory: Path) -> Path:
    """`<audit folder>.key` beside the audit folder (var/audit -> var/audit.key)."""
    return directory.parent / f"{directory.name}.key"


def head_file(key_file: Path) -> Path:
    """Where the chain head is kept: beside the key (var/audit.key -> var/audit.head)."""
    return key_file.with_suffix(".head")


def sign(key: bytes, digest: str) -> str:
    """The MAC of a record: HMAC-SHA256 of its hex chain hash."""
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def mac_ok(key: bytes, digest: str, mac: object) -> bool:
    """Whether `mac` is the record's MAC under `key` (compared in constant time)."""
    return isinstance(mac, str) and hmac.compare_digest(sign(key, digest), mac)


def load_or_create_key(path: Path, audit_dir: Path) -> bytes:
    """The key at `path`, created (0600) when missing; ConfigError naming audit.key_file otherwise."""
    if path.resolve().is_relative_to(audit_dir.resolve()):
        raise ConfigError(
            f"audit.key_file: {path} is inside the audit folder {audit_dir}; keep the key outside it, "
            "so a copy of the log does not carry the key that signs it"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key(path)
    except OSError as exc:
        raise ConfigError(f"audit.key_file: cannot create {path}: {exc.strerror}") from None
    try:
        os.write(fd, secrets.token_hex(KEY_BYTES).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return read_key(path)


def read_key(path: Path) -> bytes:
    """Read a key file; ConfigError when others may read it or it holds no key."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"audit.key_file: cannot read {path}: {getattr(exc, 'strerror', exc)}") from None
    if mode & 0o077:
        raise ConfigError(
            f"audit.key_file: {path} is readable by group or others (mode {mode & 0o777:o}); chmod 600 it"
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise ConfigError(f"audit.key_file: {path} does not hold a hex key of {KEY_BYTES} bytes or more")
    return key


def write_head(path: Path, head: ChainHead) -> None:
    """Replace the head file atomically (write, fsync, rename)."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, head.to_json())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def read_head(path: Path) -> ChainHead | None:
    """The head file's content, None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_bytes())
        return ChainHead(str(data["segment"]), int(data["seq"]), str(data["hash"]), str(data["mac"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
