"""Bearer tokens: random 256-bit secrets, of which the bridge stores only SHA-256 hashes.

Format of the tokens file, one token a line (`#` starts a comment):

    mes        sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08

Why a plain SHA-256 and not a slow, salted KDF (scrypt, PBKDF2): the tokens are generated here with
256 bits from `secrets`, so an offline guess is hopeless with or without stretching; a slow KDF only
protects low-entropy secrets (passwords) and would cost every RPC milliseconds. Do not put a hash of
a human-chosen password in this file; make tokens with `linebridge token new`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from linebridge.errors import ConfigError

TOKEN_PREFIX = "lbt_"  # recognisable in logs and by secret scanners
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")


def hash_token(token: str) -> str:
    """The tokens-file form of a token: 'sha256:<hex>'."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh bearer token (256 random bits, URL-safe)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_line(name: str, token: str) -> str:
    """A tokens-file line for `token` under `name`; ConfigError for a name that cannot be stored."""
    if not _NAME.match(name):
        raise ConfigError(f"token name {name!r}: expected letters, digits, '.', '_', '@' or '-' (at most 64)")
    return f"{name} {hash_token(token)}"


@dataclass(frozen=True, slots=True)
class TokenTable:
    """Token names and their hashes, as read from the tokens file."""

    entries: tuple[tuple[str, bytes], ...]  # (name, sha256 digest)

    @classmethod
    def parse(cls, text: str, source: str) -> TokenTable:
        """Read the file's text; ConfigError naming the line of anything malformed."""
        entries: list[tuple[str, bytes]] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or not _NAME.match(parts[0]) or not (m := _HASH.match(parts[1])):
                raise ConfigError(f"{source}:{number}: expected 'NAME sha256:<64 lowercase hex digits>'")
            if any(name == parts[0] for name, _ in entries):
                raise ConfigError(f"{source}:{number}: token name {parts[0]!r} appears more than once")
            entries.append((parts[0], bytes.fromhex(m[1])))
        return cls(tuple(entries))

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        """Read the tokens file; ConfigError naming it when it cannot be read or is not UTF-8 text."""
        try:
            return cls.parse(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read tokens file: {exc.strerror}") from None
        except UnicodeDecodeError as exc:  # found by fuzz/fuzz_files.py
            raise ConfigError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None

    def verify(self, token: str) -> str | None:
        """The name of the token, or None; compares with every entry in constant time (no early exit)."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for name, expected in self.entries:
            if hmac.compare_digest(digest, expected):
                found = name
        return found
