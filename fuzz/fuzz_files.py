"""Fuzz target: the bridge's own state files as a disk, an editor or an attacker may leave them — the
tokens file, read by `TokenTable.load` at start.

Contract: a malformed file raises ConfigError naming the file (the bridge does not start); a file that
loads gives entries with valid names and 32-byte digests, and `verify` finds a stored token by its name.
Nothing else escapes (UnicodeDecodeError, IndexError, ValueError from bytes.fromhex, ...).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fuzz.engine import Cursor, instrumented, run

with instrumented(__name__):
    from linebridge.errors import ConfigError
    from linebridge.security.tokens import TokenTable, hash_token

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


def one_input(data: bytes) -> None:
    """libFuzzer entry: which file, then its bytes."""
    cursor = Cursor(data)
    kind = cursor.byte() % 1
    if kind == 0:
        check_tokens_file(cursor.rest())


def seeds() -> Iterator[bytes]:
    """A well-formed tokens file, with a comment and a blank line."""
    lines = f"# tokens\nmes {hash_token('secret-1')}\n\nhmi@cell {hash_token('secret-2')}\n"
    yield b"\x00" + lines.encode()
    yield b"\x00" + b"ops sha256:" + hashlib.sha256(b"x").hexdigest().encode() + b"\n"


if __name__ == "__main__":
    run(one_input, seeds)
