"""Devices known to the bridge: their records, state machine, signal aliases and watchers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from linebridge.errors import NotFound
from linebridge.model import DeviceDescription, DeviceState, Signal, ValueType

log = logging.getLogger(__name__)


class DeviceEvent(Enum):
    """What happened to a device."""

    ADDED = 1
    CHANGED = 2
    REMOVED = 3


@dataclass(slots=True)
class DeviceRecord:
    """The bridge's view of one device."""

    id: str
    driver: str
    endpoint: str
    name: str = ""
    source: str = "config"  # "config" or "mdns"
    state: DeviceState = DeviceState.DISCOVERED
    state_reason: str = ""
    description: DeviceDescription | None = None
    signals: dict[str, Signal] = field(default_factory=dict)  # signal path -> Signal
    details: dict[str, str] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        """Whether the device can take reads and commands (ONLINE or DEGRADED)."""
        return self.state in (DeviceState.ONLINE, DeviceState.DEGRADED)

    def signal(self, path: str) -> Signal:
        """A signal of the device by path; NotFound otherwise."""
        try:
            return self.signals[path]
        except KeyError:
            raise NotFound(f"device {self.id!r} has no signal {path!r}") from None


Listener = Callable[[DeviceEvent, DeviceRecord], None]

# Allowed transitions of the state machine; anything else is a bug in the caller.
_TRANSITIONS: dict[DeviceState, frozenset[DeviceState]] = {
    DeviceState.DISCOVERED: frozenset({DeviceState.CONNECTING}),
    DeviceState.CONNECTING: frozenset(
        {DeviceState.ONLINE, DeviceState.DEGRADED, DeviceState.OFFLINE, DeviceState.DISCOVERED}
    ),
    # ONLINE/DEGRADED -> CONNECTING: the session was restarted on purpose (the device moved).
    DeviceState.ONLINE: frozenset(
        {DeviceState.DEGRADED, DeviceState.OFFLINE, DeviceState.DISCOVERED, DeviceState.CONNECTING}
    ),
    DeviceState.DEGRADED: frozenset(
        {DeviceState.ONLINE, DeviceState.OFFLINE, DeviceState.DISCOVERED, DeviceState.CONNECTING}
    ),
    DeviceState.OFFLINE: frozenset({DeviceState.CONNECTING, DeviceState.DISCOVERED}),
}


class DeviceRegistry:
    """Owns device records and the global alias space; tells listeners about every change."""

    def __init__(self) -> None:
        self._devices: dict[str, DeviceRecord] = {}
        self._listeners: list[Listener] = []
        self._alias_of: dict[str, int] = {}  # full path -> alias, kept across reconnects
        self._by_alias: dict[int, tuple[str, Signal]] = {}  # alias -> (device id, signal)
        # alias -> value type, read by encoders once per batch column rather than per signal lookup
        self.value_types: dict[int, ValueType] = {}
        # Signals derived from a device's own (machine state, OEE, alarms): set by the analytics engine.
        self.derive: Callable[[str, DeviceDescription], list[Signal]] | None = None

    # -- queries -----------------------------------------------------------------------------
    def get(self, device_id: str) -> DeviceRecord:
        """A device by id; NotFound otherwise."""
        try:
            return self._devices[device_id]
        except KeyError:
            raise NotFound(f"unknown device {device_id!r}") from None

    def find(self, device_id: str) -> DeviceRecord | None:
        """A device by id, or None."""
        return self._devices.get(device_id)

    def __iter__(self) -> Iterator[DeviceRecord]:
        return iter(list(self._devices.values()))

    def __len__(self) -> int:
        return len(self._devices)

    def by_alias(self, alias: int) -> tuple[str, Signal] | None:
        """The full path and signal of an alias, or None."""
        return self._by_alias.get(alias)

    def find_identity(self, identity: str) -> DeviceRecord | None:
        """The device that reported this identity (ApplicationUri, serial), if any."""
        if not identity:
            return None
        for record in self._devices.values():
            if record.description is not None and record.description.identity == identity:
                return record
        return None

    # -- changes -----------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` on every device event; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: DeviceEvent, record: DeviceRecord) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, record)
            except Exception:  # a broken watcher must not break the registry
                log.exception("device listener failed")

    def add(self, record: DeviceRecord) -> DeviceRecord:
        """Register a new device; ValueError when the id is taken."""
        if record.id in self._devices:
            raise ValueError(f"device {record.id!r} already registered")
        self._devices[record.id] = record
        self._emit(DeviceEvent.ADDED, record)
        return record

    def remove(self, device_id: str) -> None:
        """Forget a device and its aliases (nothing when unknown)."""
        record = self._devices.pop(device_id, None)
        if record is None:
            return
        for signal in record.signals.values():
            self._by_alias.pop(signal.alias, None)
        self._emit(DeviceEvent.REMOVED, record)

    def update_endpoint(self, device_id: str, endpoint: str) -> None:
        """Move a device to a new endpoint."""
        record = self.get(device_id)
        if record.endpoint != endpoint:
            record.endpoint = endpoint
            self._emit(DeviceEvent.CHANGED, record)

    def set_state(self, device_id: str, state: DeviceState, reason: str = "") -> None:
        """Move a device to `state`; ValueError for a transition the state machine does not allow."""
        record = self.get(device_id)
        if record.state == state and record.state_reason == reason:
            return
        if state != record.state and state not in _TRANSITIONS[record.state]:
            raise ValueError(f"device {device_id}: no transition {record.state.name} -> {state.name}")
        record.state, record.state_reason = state, reason
        self._emit(DeviceEvent.CHANGED, record)

    def set_description(
        self, device_id: str, description: DeviceDescription, details: dict[str, str] | None = None
    ) -> None:
        """Store what the driver reported and give every signal its alias (stable across reconnects)."""
        record = self.get(device_id)
        for signal in record.signals.values():
            self._by_alias.pop(signal.alias, None)
        signals: dict[str, Signal] = {}
        self._assign(device_id, description.signals, signals)
        if self.derive is not None:  # after the device's own aliases: derived rules bind to them
            extra = [d for d in self.derive(device_id, description) if d.path not in signals]
            self._assign(device_id, extra, signals)
        record.description, record.signals = description, signals
        record.details = dict(details or {})
        if not record.name:
            record.name = description.name or device_id
        self._emit(DeviceEvent.CHANGED, record)

    def _assign(self, device_id: str, new: list[Signal], signals: dict[str, Signal]) -> None:
        for signal in new:
            full = f"{device_id}/{signal.path}"
            alias = self._alias_of.get(full)
            if alias is None:
                alias = self._alias_of[full] = len(self._alias_of) + 1
            signal.alias = alias
            signals[signal.path] = signal
            self._by_alias[alias] = (device_id, signal)
            self.value_types[alias] = signal.value_type
