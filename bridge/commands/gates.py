"""The gates every command passes in CommandManager.submit: rate, role, safety, in that order."""

from __future__ import annotations

from linebridge.commands.policy import DevicePolicy, PolicyBook, authorize
from linebridge.commands.ratelimit import RateLimiter, RateLimits
from linebridge.commands.safety import LatestValue, SafetyGate
from linebridge.model import CommandKind, CommandRequest, Identity
from linebridge.registry import DeviceRecord


def _nothing(alias: int) -> None:
    return None


class CommandGates:
    """Who may send a command, how often, and whether the device is in a state to take it."""

    def __init__(
        self,
        book: PolicyBook | None = None,
        limiter: RateLimiter | None = None,
        latest: LatestValue = _nothing,
    ) -> None:
        self.book = book or PolicyBook()
        self.limiter = limiter or RateLimiter(RateLimits())
        self.safety = SafetyGate(latest)

    @classmethod
    def from_config(
        cls,
        policies: dict[str, DevicePolicy],
        devices: dict[str, DevicePolicy],
        limits: RateLimits,
        latest: LatestValue,
    ) -> CommandGates:
        """Gates from the config's `policies`, `devices[].policy` and `commands.rate_limits`."""
        return cls(PolicyBook(policies, devices), RateLimiter(limits), latest)

    def admit(self, device_id: str, kind: CommandKind, method: str, identity: Identity | None) -> str:
        """The caller's rate limit, then its role; returns the command class.

        Stop passes no rate limit: a stop request is never held back.
        """
        policy, where = self.book.of(device_id)
        command_class = policy.command_class(kind, method)
        if kind is not CommandKind.STOP:
            self.limiter.identity("local" if identity is None else identity.name)
        authorize(identity, device_id, command_class, policy, where)
        return command_class

    def may_cancel(self, device_id: str, command_class: str, identity: Identity | None) -> None:
        """PermissionDenied unless the caller may send commands of `command_class` to the device."""
        policy, where = self.book.of(device_id)
        authorize(identity, device_id, command_class or "write", policy, where)

    def check(self, command_class: str, device: DeviceRecord, request: CommandRequest | None) -> None:
        """The safety gates of motion and program commands (enabled, required state, limits)."""
        policy, where = self.book.of(device.id)
        self.safety.check(command_class, device, request, policy, where)

    def device_rate(self, device_id: str, kind: CommandKind) -> None:
        """The device's rate limit, taken last so refused commands do not use it up."""
        if kind is not CommandKind.STOP:
            self.limiter.device(device_id)
