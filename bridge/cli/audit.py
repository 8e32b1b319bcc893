"""`linebridge audit verify|tail`: check the audit log's hash chain, show and follow its records."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from linebridge.audit.chain import audit_files, files_of, verify
from linebridge.audit.key import ChainHead, default_key_file, head_file, read_head, read_key
from linebridge.config import load_config
from linebridge.errors import ConfigError

_POLL_SECONDS = 0.25


def add_commands(sub: Any) -> None:
    """Register `audit verify` and `audit tail` on the CLI's subcommands."""
    audit = sub.add_parser("audit", help="check and read the audit log")
    actions = audit.add_subparsers(dest="audit_action", required=True, metavar="ACTION")
    check = actions.add_parser("verify", help="check the hash chain; reports the first broken record")
    check.add_argument(
        "--anchor",
        default="",
        metavar="HASH",
        help="hash the first record must follow (for a log whose older files were archived)",
    )
    check.add_argument(
        "--key", metavar="FILE", help="signing key (default: audit.key_file of --config, else <folder>.key)"
    )
    check.add_argument(
        "--head-hash",
        default="",
        metavar="HASH",
        help="a chain head published earlier (GetInfo audit_head.hash): it must be in the chain",
    )
    tail = actions.add_parser("tail", help="show the last records (and follow new ones with -f)")
    tail.add_argument("-n", "--lines", type=int, default=10, help="records to show (default %(default)s)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing records as they are written")
    tail.add_argument("--json", action="store_true", help="print the raw JSON records")
    for parser in (check, tail):
        parser.add_argument(
            "path", nargs="?", help="audit file or folder (default: audit.path of --config, else var/audit)"
        )
        parser.add_argument("-c", "--config", help="bridge config file whose audit.path to use")


def _location(args: argparse.Namespace) -> Path:
    if args.path:
        return Path(args.path)
    if args.config:
        config = load_config(args.config)
        return config.audit.directory(config.base_dir)
    return Path("var/audit")


def run(args: argparse.Namespace) -> int:
    """Run `audit verify` or `audit tail`; the exit code."""
    path = _location(args)
    if not path.exists():
        print(f"linebridge audit: {path} does not exist", file=sys.stderr)
        return 2
    if args.audit_action == "verify":
        try:
            key_file = _key_file(args, path)
            key = read_key(key_file) if key_file.exists() else None
        except ConfigError as exc:
            print(f"linebridge audit: {exc}", file=sys.stderr)
            return 2
        if key is None:
            print(f"WARNING: no key at {key_file}: MACs and the head file are not checked", file=sys.stderr)
        head = read_head(head_file(key_file)) if key is not None else None
        return _verify(path, args.anchor, key, head, args.head_hash)
    try:
        _tail(path, args.lines, args.follow, args.json)
    except KeyboardInterrupt:
        pass
    return 0


def _key_file(args: argparse.Namespace, path: Path) -> Path:
    if args.key:
        return Path(args.key)
    if args.config:
        config = load_config(args.config)
        return config.audit.key_path(config.base_dir)
    folder = path if path.is_dir() else path.parent
    return default_key_file(folder)


def _verify(path: Path, anchor: str, key: bytes | None, head: ChainHead | None, witness: str) -> int:
    verdict = verify(path, anchor, key, head, witness)
    if verdict.ok:
        signed = f"; {verdict.signed} MAC(s) checked" if key is not None else "; MACs NOT checked (no key)"
        print(
            f"{path}: chain intact: {verdict.records} record(s) in {verdict.files} file(s); "
            f"last seq {verdict.last_seq}, hash {verdict.last_hash}{signed}"
        )
        return 0
    print(
        f"{path}: BROKEN at {verdict.where}: {verdict.error}\n"
        f"  {verdict.records} record(s) before it are intact (last good hash {verdict.last_hash})"
    )
    return 1


def describe(record: dict[str, Any]) -> str:
    """One record as a line for people: time, seq, type, result, who, what, outcome."""
    who = record.get("who") or {}
    what = record.get("what") or {}
    outcome = record.get("outcome") or {}
    parts = [
        str(record.get("time", "?")),
        f"#{record.get('seq', '?')}",
        str(record.get("type", "?")),
        str(record.get("result", "")),
    ]
    if who:
        parts.append(f"{who.get('name', '?')}({who.get('role', '')})@{who.get('peer') or who.get('via', '')}")
    if what:
        parts.append(
            " ".join(str(what[k]) for k in ("device", "action", "method", "command_id") if k in what)
        )
        if what.get("arguments"):
            parts.append(json.dumps(what["arguments"], separators=(",", ":")))
    if outcome:
        parts.append(
            f"-> {outcome.get('state') or outcome.get('reason', '')} {outcome.get('message', '')}".rstrip()
        )
    return "  ".join(p for p in parts if p)


def _print(line: bytes, raw: bool) -> None:
    text = line.decode("utf-8", "replace").rstrip("\n")
    if not raw:
        try:
            text = describe(json.loads(text))
        except ValueError:
            text = f"(unreadable) {text}"
    print(text, flush=True)


def _last_lines(files: list[Path], end: int, count: int) -> list[bytes]:
    """The last `count` lines of the files, reading the last one only up to `end`."""
    lines: list[bytes] = []
    for index, file in enumerate(reversed(files)):
        with file.open("rb") as handle:
            data = handle.read(end) if index == 0 else handle.read()
        lines = data.splitlines(keepends=True) + lines
        if len(lines) >= count:
            break
    return lines[-count:] if count > 0 else []


def _tail(path: Path, count: int, follow: bool, raw: bool) -> None:
    files = files_of(path)
    current = files[-1] if files else None
    offset = current.stat().st_size if current else 0  # taken first: what comes after it is followed
    for line in _last_lines(files, offset, count):
        _print(line, raw)
    if not follow:
        return
    pending = b""
    while True:
        newer = _next_file(path, current)  # seen before reading: `current` is then complete
        if current is not None:
            with current.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
            offset += len(data)
            *complete, pending = (pending + data).split(b"\n")
            for line in complete:
                _print(line + b"\n", raw)
        if newer is not None:
            current, offset, pending = newer, 0, b""
            continue
        time.sleep(_POLL_SECONDS)


def _next_file(path: Path, current: Path | None) -> Path | None:
    """The audit file after `current` (the first one when there is none yet)."""
    if path.is_file():
        return None
    files = audit_files(path)
    if current is None:
        return files[0][1] if files else None
    number = next((n for n, p in files if p == current), None)
    later = [p for n, p in files if number is not None and n > number]
    return later[0] if later else None
