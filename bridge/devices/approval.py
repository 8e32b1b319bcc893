"""Discovery approval: which devices found through mDNS the bridge may connect to.

mDNS is unauthenticated: anything on the line network can announce a service. A device that matches
an `auto_approve` rule, or that an admin approved, gets a session; any other stays DISCOVERED
(visible, never connected) until an admin approves it. Approval is by device id; a device that
re-announces itself at a new address keeps its approval (the same trust mDNS dedupe already gives).

Identity pinning: the identity a device reports on its first connection after approval (OPC UA
ApplicationUri, serial number, UR serial) is recorded; a later connection that reports another one is
refused until an admin approves the device again (which records the new identity).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from linebridge.config import DEVICE_ID
from linebridge.drivers.base import DriverOptions, MdnsService
from linebridge.errors import ConfigError, FailedPrecondition
from linebridge.security.config import ApprovalRule

log = logging.getLogger(__name__)


def bare_type(service_type: str) -> str:
    """'_opcua-tcp._tcp.local.' and '_opcua-tcp._tcp' compare equal."""
    return service_type.rstrip(".").removesuffix(".local")


def rule_matches(rule: ApprovalRule, service: MdnsService) -> bool:
    """True when every field the rule gives matches the service (globs, case-sensitive)."""
    if rule.service_type and not fnmatchcase(bare_type(service.service_type), bare_type(rule.service_type)):
        return False
    if rule.name and not fnmatchcase(service.instance, rule.name):
        return False
    for key, pattern in rule.txt.items():
        value = service.properties.get(key)
        if value is None or not fnmatchcase(value, pattern):
            return False
    return True


@dataclass(frozen=True, slots=True)
class Pending:
    """A discovered device waiting for approval: what its session will need."""

    driver: str
    options: DriverOptions


class Approvals:
    """Auto-approve rules, manual approvals (optionally kept in a file) and devices waiting for one."""

    def __init__(self, rules: Sequence[ApprovalRule], path: Path | None = None) -> None:
        self.rules = list(rules)
        self.path = path
        self.pending: dict[str, Pending] = {}
        self.identities: dict[str, str] = {}  # device id -> the identity pinned at approval
        self.approved: set[str] = self._load() if path is not None else set()

    def _load(self) -> set[str]:
        assert self.path is not None
        if not self.path.exists():
            return set()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            approved, identities = data["approved"], data.get("identities", {})
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ConfigError(f'{self.path}: not an approvals file ({{"approved": [ids]}}): {exc}') from None
        # Found by fuzz/fuzz_files.py: `"approved": "abc"` became ids a, b, c and `[null]` the id "None".
        if not isinstance(approved, list) or not all(
            isinstance(i, str) and DEVICE_ID.fullmatch(i) for i in approved
        ):
            raise ConfigError(f"{self.path}: approved: expected a list of device ids, got {approved!r:.80}")
        if not isinstance(identities, dict) or not all(isinstance(v, str) for v in identities.values()):
            raise ConfigError(
                f"{self.path}: identities: expected device id -> identity text, got {identities!r:.80}"
            )
        self.identities = dict(identities)
        return set(approved)

    async def pin(self, device_id: str, identity: str) -> None:
        """Record the identity a device showed on its first connection after approval (saved if a file is set)."""
        self.identities[device_id] = identity
        if self.path is not None:
            try:
                await asyncio.to_thread(self._save, sorted(self.approved))
            except OSError as exc:  # kept in memory; the next approval or pin saves it again
                log.error("cannot save the identity of %s to %s: %s", device_id, self.path, exc.strerror)

    def allows(self, device_id: str, service: MdnsService) -> bool:
        """Whether a discovered device may connect: approved by an admin or by a rule."""
        return device_id in self.approved or any(rule_matches(rule, service) for rule in self.rules)

    def hold(self, device_id: str, pending: Pending) -> None:
        """Keep a discovered device waiting for approval."""
        self.pending[device_id] = pending

    async def approve(self, device_id: str) -> Pending | None:
        """Approve a waiting device: its Pending entry (None when it was not waiting); saved if a file is set."""
        pending = self.pending.pop(device_id, None)  # taken at once: a concurrent approve sees None
        if pending is None:
            return None
        pinned = self.identities.pop(device_id, None)  # the next connection pins the identity it shows
        if self.path is not None:
            try:
                await asyncio.to_thread(self._save, sorted(self.approved | {device_id}))
            except OSError as exc:
                self.pending[device_id] = pending
                if pinned is not None:
                    self.identities[device_id] = pinned
                raise FailedPrecondition(f"cannot save the approval to {self.path}: {exc.strerror}") from None
        self.approved.add(device_id)
        return pending

    def _save(self, ids: list[str]) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        data = {"approved": ids, "identities": dict(sorted(self.identities.items()))}
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a crash leaves the old file or the new one, never half
